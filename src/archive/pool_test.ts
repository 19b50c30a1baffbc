import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { HopError } from "../errors.ts";
import { compressBlock } from "./wasm.ts";
import { closeLane, closePool, liveWorkers, openLane, runJob, setPoolSize } from "./pool.ts";
import { textBytes } from "../../tests/helpers/bzip2_data.ts";
import { scriptCommand } from "../../tests/helpers/script.ts";

const bzip2Url = new URL("./bzip2.ts", import.meta.url).href;
const testdataUrl = new URL("../../tests/helpers/bzip2_data.ts", import.meta.url).href;

/** Run a script on this runtime; resolves with its output, exit code and time (ms) after "done". */
function runScript(
  code: string,
  env: Record<string, string> = {},
): Promise<{ out: string; err: string; status: number | null; afterDone: number }> {
  const dir = mkdtempSync(join(tmpdir(), "hop-pool-"));
  const file = join(dir, "child.ts");
  writeFileSync(file, code);
  return new Promise((resolve, reject) => {
    const [cmd, pre] = scriptCommand(file);
    const child = spawn(cmd, [...pre], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let doneAt = 0;
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout.on("data", (d) => {
      out += d;
      if (!doneAt && out.includes("done")) doneAt = performance.now();
    });
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(killer);
      rmSync(dir, { recursive: true, force: true });
      resolve({ out, err, status, afterDone: doneAt ? performance.now() - doneAt : -1 });
    });
  });
}

Deno.test("a process using the pool exits by itself soon after its work is done", async () => {
  const r = await runScript(`
import { compressStream, decompressStream } from "${bzip2Url}";
import { collect, streamOf, textBytes } from "${testdataUrl}";
const data = textBytes(3_000_000);
const bz = await collect(streamOf(data).pipeThrough(compressStream()));
const back = await collect(streamOf(bz).pipeThrough(decompressStream()));
console.log(back.length === data.length ? "done" : "wrong");
`);
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /done/);
  // By itself, not killed (at 30 s): how soon depends on the load of the machine.
  assert.ok(r.afterDone >= 0 && r.afterDone < 20_000, `exited ${r.afterDone} ms after done`);
});

Deno.test("HOP_WORKERS sets the pool size; a bad value is a HopError", async () => {
  const code = `
import { poolSize } from "${new URL("./pool.ts", import.meta.url).href}";
try { console.log("size", poolSize()); } catch (e) { console.log(e.name, e.message); }
`;
  assert.match((await runScript(code, { HOP_WORKERS: "3" })).out, /size 3/);
  assert.match((await runScript(code, { HOP_WORKERS: "lots" })).out, /HopError HOP_WORKERS=lots/);
});

Deno.test("a lane never runs more jobs at once than its limit; idle workers stop", async () => {
  setPoolSize(2);
  try {
    const lane = openLane(1);
    const jobs = [];
    for (let i = 0; i < 4; i++) {
      jobs.push(runJob(lane, { op: "compress", src: textBytes(200_000, i), level: 9 }));
      assert.ok(lane.running <= 1);
    }
    const replies = await Promise.all(jobs);
    assert.equal(liveWorkers(), 1);
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(replies[i].out, compressBlock(textBytes(200_000, i), 9));
    }
    closeLane(lane);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(liveWorkers(), 0);

    const wide = openLane(2);
    await Promise.all(
      [0, 1, 2].map((i) => runJob(wide, { op: "compress", src: textBytes(500_000, i), level: 9 })),
    );
    assert.equal(liveWorkers(), 2);
    closeLane(wide);
  } finally {
    closePool();
  }
});

Deno.test("closePool fails queued jobs with HopError; the pool restarts on demand", async () => {
  const lane = openLane(1);
  const a = runJob(lane, { op: "compress", src: textBytes(300_000), level: 9 });
  const b = runJob(lane, { op: "compress", src: textBytes(300_000), level: 9 });
  closePool();
  await assert.rejects(a, HopError);
  await assert.rejects(b, HopError);
  const c = await runJob(lane, { op: "compress", src: textBytes(1000), level: 9 });
  assert.ok(c.out && c.out.length > 0);
  closeLane(lane);
  closePool();
});

Deno.test("the pool works in a bun-compiled, minified binary with no file beside it", () => {
  const bun = fileURLToPath(new URL("../../tools/node_modules/.bin/bun", import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), "hop-bun-"));
  try {
    const main = join(dir, "main.ts");
    writeFileSync(
      main,
      `
import { compressStream, decompressStream, compressBytes, decompressBytes } from "${
        fileURLToPath(bzip2Url)
      }";
import { collect, sameBytes, streamOf, textBytes } from "${fileURLToPath(testdataUrl)}";
const data = textBytes(2_500_000);
const bz = await collect(streamOf(data).pipeThrough(compressStream({ workers: 2 })));
const back = await collect(streamOf(bz).pipeThrough(decompressStream({ workers: 2 })));
const small = decompressBytes(compressBytes(data.subarray(0, 1000)));
console.log(sameBytes(back, data) && sameBytes(small, data.subarray(0, 1000)) ? "done" : "wrong");
`,
    );
    const exe = join(dir, "bin", "t");
    const b = spawnSync(bun, ["build", "--compile", "--minify", main, "--outfile", exe], {
      encoding: "utf8",
    });
    assert.equal(b.status, 0, b.stderr);
    rmSync(main);
    const t = performance.now();
    const r = spawnSync(exe, [], { cwd: join(dir, "bin"), encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "done");
    assert.ok(performance.now() - t < 15_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
