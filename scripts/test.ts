/**
 * The test suite, as `npm test` runs it (README): builds `dist/hop`, then runs
 * every test twice, once on each runtime hop meets:
 *
 * - the Deno lane: `deno test --parallel`, where development happens;
 * - the Bun lane: the same files under `bun test` (tests/runtime/bun_preload.ts
 *   maps `Deno.test`), one process per file, on the runtime of the binary users
 *   download. A fault that shows only on Bun fails here.
 *
 * In both lanes `HOP_BIN` is the built binary, so tests that run the `hop`
 * command (tests/helpers/hop.ts) run what users get. `tests/e2e/` only runs the
 * binary, so it runs in the Deno lane alone.
 *
 * Usage: deno run -A scripts/test.ts [--lane deno|bun] [FILE|DIR ...]
 * Env: HOP_BIN (test this binary instead of building one), HOP_TEST_JOBS (Bun
 * lane processes at once; default 2).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const BUN = join(ROOT, "tools", "node_modules", ".bin", "bun");
const PRELOAD = join(ROOT, "tests", "runtime", "bun_preload.ts");
const SKIP_DIRS = new Set(["node_modules", "dist", ".bench", ".git", "tools"]);

const argv = process.argv.slice(2);
const laneAt = argv.indexOf("--lane");
const lane = laneAt >= 0 ? argv.splice(laneAt, 2)[1] : "both";
if (!["deno", "bun", "both"].includes(lane)) {
  console.error(`test: unknown lane ${lane}; use --lane deno or --lane bun`);
  process.exit(2);
}
const targets = argv.length > 0 ? argv : ["src", "tests"];

/** Every `*_test.ts` under `p` (or `p` itself). */
function testFiles(p: string): string[] {
  const abs = resolve(p);
  if (!existsSync(abs)) {
    console.error(`test: no such file or folder: ${p}`);
    process.exit(2);
  }
  if (statSync(abs).isFile()) return [abs];
  const out: string[] = [];
  for (const e of readdirSync(abs, { withFileTypes: true })) {
    if (SKIP_DIRS.has(e.name)) continue;
    const full = join(abs, e.name);
    if (e.isDirectory()) out.push(...testFiles(full));
    else if (/_test\.ts$/.test(e.name)) out.push(full);
  }
  return out.sort();
}

function build(): string {
  if (process.env.HOP_BIN) return resolve(process.env.HOP_BIN);
  const r = spawnSync(process.execPath, ["run", "-A", join(ROOT, "scripts", "compile.ts")], {
    cwd: ROOT,
    stdio: "inherit",
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
  return join(ROOT, "dist", "hop");
}

interface LaneResult {
  passed: number;
  failed: number;
  failedFiles: string[];
}

/** Runs `cmd` with output passed through; resolves to its exit code and output. */
function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  echo: boolean,
): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env } });
    let output = "";
    const take = (stream: NodeJS.WritableStream) => (d: Uint8Array) => {
      output += new TextDecoder().decode(d);
      if (echo) stream.write(d);
    };
    child.stdout.on("data", take(process.stdout));
    child.stderr.on("data", take(process.stderr));
    child.on("close", (code, signal) => done({ code: code ?? (signal ? 128 : 1), output }));
  });
}

// deno-lint-ignore no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

async function denoLane(files: string[], env: Record<string, string>): Promise<LaneResult> {
  console.log(`\n=== Deno lane: ${files.length} test file(s) on deno ${process.versions.deno}`);
  const { code, output } = await run(
    process.execPath,
    [
      "test",
      "-A",
      "--parallel",
      ...files,
    ],
    env,
    true,
  );
  const m = /(?:^|\n)(?:ok|FAILED) \| (\d+) passed[^|]*\| (\d+) failed/.exec(plain(output));
  const passed = m ? Number(m[1]) : 0;
  const failed = m ? Number(m[2]) : 0;
  const failedFiles = [...plain(output).matchAll(/^(\S+_test\.ts) => .* FAILED/gm)]
    .map((x) => x[1]);
  if (code !== 0 && failed === 0) return { passed, failed: 1, failedFiles: ["(deno test)"] };
  return { passed, failed, failedFiles: [...new Set(failedFiles)] };
}

async function bunLane(files: string[], env: Record<string, string>): Promise<LaneResult> {
  const jobs = Number(process.env.HOP_TEST_JOBS ?? Math.min(2, availableParallelism()));
  const version = spawnSync(BUN, ["--version"], { encoding: "utf8" }).stdout.trim();
  console.log(`\n=== Bun lane: ${files.length} test file(s) on bun ${version}, ${jobs} at a time`);
  const result: LaneResult = { passed: 0, failed: 0, failedFiles: [] };
  const queue = [...files];
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      const started = Date.now();
      const { code, output } = await run(
        BUN,
        [
          "test",
          "--preload",
          PRELOAD,
          "--timeout",
          "900000",
          f,
        ],
        env,
        false,
      );
      const text = plain(output);
      const pass = Number(/^\s*(\d+) pass$/m.exec(text)?.[1] ?? 0);
      const fail = Number(/^\s*(\d+) fail$/m.exec(text)?.[1] ?? 0);
      const rel = relative(ROOT, f);
      const bad = code !== 0 || fail > 0;
      result.passed += pass;
      result.failed += bad ? Math.max(fail, 1) : 0;
      if (bad) {
        result.failedFiles.push(rel);
        process.stdout.write(`\n--- ${rel} (bun) FAILED:\n${output}\n`);
      }
      process.stdout.write(
        `${bad ? "FAILED" : "ok"} ${rel} (bun): ${pass} passed, ${fail} failed ` +
          `(${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
      );
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return result;
}

const hopBin = build();
const env = { HOP_BIN: hopBin };
const files = [...new Set(targets.flatMap(testFiles))];
const results: [string, LaneResult][] = [];
if (lane !== "bun") results.push(["deno", await denoLane(files, env)]);
if (lane !== "deno") {
  const bunFiles = files.filter((f) => !relative(ROOT, f).startsWith("tests/e2e/"));
  if (bunFiles.length > 0) results.push(["bun", await bunLane(bunFiles, env)]);
}

let failed = 0;
console.log("");
for (const [name, r] of results) {
  failed += r.failed;
  console.log(
    `${name} lane: ${r.passed} passed, ${r.failed} failed` +
      (r.failedFiles.length ? ` (${r.failedFiles.join(", ")})` : ""),
  );
}
const total = results.reduce((n, [, r]) => n + r.passed, 0);
console.log(`tests: ${total} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
