/**
 * Builds the single `hop` executable into `dist/`.
 *
 * `deno compile` needs a `denort` runtime (from `DENORT_BIN` or a download).
 * Where none can be had, the same sources are built with `bun build --compile`
 * (npm package `bun`, pinned in tools/package.json). Either way the result is
 * smoke-tested (`hop --version`) before it is kept: a runtime that ignores the
 * embedded code (as a full `deno` binary given as DENORT_BIN does) is caught.
 *
 * Usage: deno run -A scripts/compile.ts [--target linux-x64|linux-arm64|darwin-x64|
 *        darwin-arm64|windows-x64] [--out dist/hop] [--with deno|bun]
 *
 * Cross targets need that target's runtime (a denort or bun download); on a
 * machine without network only the host target builds.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { arch, platform } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const version: string = JSON.parse(
  new TextDecoder().decode(
    await import("node:fs").then((fs) => fs.readFileSync(join(root, "deno.json"))),
  ),
).version;

const TARGETS: Record<string, { deno: string; bun: string; exe: string }> = {
  "linux-x64": { deno: "x86_64-unknown-linux-gnu", bun: "bun-linux-x64", exe: "" },
  "linux-arm64": { deno: "aarch64-unknown-linux-gnu", bun: "bun-linux-arm64", exe: "" },
  "darwin-x64": { deno: "x86_64-apple-darwin", bun: "bun-darwin-x64", exe: "" },
  "darwin-arm64": { deno: "aarch64-apple-darwin", bun: "bun-darwin-arm64", exe: "" },
  "windows-x64": { deno: "x86_64-pc-windows-msvc", bun: "bun-windows-x64", exe: ".exe" },
};

function hostTarget(): string {
  const os = platform() === "win32" ? "windows" : platform();
  return `${os}-${arch() === "arm64" ? "arm64" : "x64"}`;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function run(cmd: string, args: string[], env?: Record<string, string>): boolean {
  console.error(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  return r.status === 0;
}

function tool(name: string): string {
  const local = join(root, "tools", "node_modules", ".bin", name);
  if (existsSync(local)) return local;
  const which = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  console.error(`${name} not found: installing the toolchain into tools/`);
  if (!run("npm", ["install", "--prefix", "tools", "--no-audit", "--no-fund"])) {
    throw new Error(`could not install ${name}; run: npm install --prefix tools`);
  }
  return local;
}

/** The built program must run its embedded code: `--version` prints our version. */
function smokeTest(file: string, target: string): boolean {
  if (target !== hostTarget()) return existsSync(file); // cannot run a foreign binary
  const r = spawnSync(file, ["--version"], { encoding: "utf8", cwd: "/" });
  const ok = r.status === 0 && r.stdout.trim() === version;
  if (!ok) {
    const why = r.error ? r.error.message : `${r.stdout}${r.stderr}`.trim();
    console.error(`smoke test failed for ${file}: ${why}`);
  }
  return ok;
}

function withDeno(out: string, target: string): boolean {
  const deno = process.execPath.includes("deno") ? process.execPath : tool("deno");
  return run(deno, [
    "compile",
    "-A",
    "--no-check",
    "--target",
    TARGETS[target].deno,
    "--output",
    out,
    "cli.ts",
  ]);
}

function withBun(out: string, target: string): boolean {
  return run(tool("bun"), [
    "build",
    "--compile",
    "--minify",
    "--sourcemap=none",
    `--target=${TARGETS[target].bun}`,
    "cli.ts",
    "--outfile",
    out,
  ]);
}

const target = arg("--target") ?? hostTarget();
if (!TARGETS[target]) {
  console.error(`unknown target ${target}; one of ${Object.keys(TARGETS).join(", ")}`);
  process.exit(2);
}
const out = resolve(root, arg("--out") ?? join("dist", "hop" + TARGETS[target].exe));
const only = arg("--with");
mkdirSync(dirname(out), { recursive: true });

const tmp = out + ".building";
const builders: [string, (o: string, t: string) => boolean][] = [
  ["deno", withDeno],
  ["bun", withBun],
];
for (const [name, build] of builders) {
  if (only && only !== name) continue;
  rmSync(tmp, { force: true });
  if (build(tmp, target) && smokeTest(tmp, target)) {
    renameSync(tmp, out);
    console.error(`built ${out} with ${name} (${target}, hop ${version})`);
    process.exit(0);
  }
  console.error(
    `${name} could not build ${target}; ${name === "deno" ? "trying bun" : "giving up"}`,
  );
}
rmSync(tmp, { force: true });
console.error("no compiler could build hop: see the messages above");
process.exit(1);
