/**
 * Benchmark of hop's bzip2 engine: compress and decompress throughput (MB/s of plain data)
 * with 1 and 2 workers on ~64 MB of mixed data, against native `bzip2 -9` / `bzip2 -d` and
 * `lbzip2 -n 2`, with ratios. Usage: `deno run -A scripts/bench_bzip2.ts [MB] [text|mixed] [runs]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { closePool, compressStream, decompressStream } from "../src/archive/bzip2.ts";
import { BlockSplitter } from "../src/archive/bzip2_split.ts";
import {
  collect,
  mixedBytes,
  sameBytes,
  streamOf,
  textBytes,
} from "../src/archive/bzip2_testdata.ts";

const mb = Number(process.argv[2] ?? 64);
const kind = process.argv[3] ?? "mixed";
/** Each figure is the best of this many runs (other processes share the machine). */
const reps = Number(process.argv[4] ?? 2);
const data = (kind === "text" ? textBytes : mixedBytes)(Math.round(mb * 1e6), 1);
const dir = mkdtempSync(join(tmpdir(), "hop-bench-"));
const plain = join(dir, "plain");
writeFileSync(plain, data);

const rate = (ms: number) => data.length / 1e3 / ms;
const rows: [string, number][] = [];
function row(name: string, ms: number): number {
  const r = rate(ms);
  rows.push([name, r]);
  console.log(`${name.padEnd(44)} ${(ms / 1000).toFixed(2).padStart(7)} s ${r.toFixed(1)} MB/s`);
  return r;
}

function native(name: string, cmd: string): number {
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const r = spawnSync("sh", ["-c", cmd], { cwd: dir, stdio: "inherit" });
    if (r.status !== 0) throw new Error(`${cmd} failed`);
    best = Math.min(best, performance.now() - t);
  }
  return row(name, best);
}

async function ours(
  name: string,
  input: Uint8Array,
  ts: () => TransformStream<Uint8Array, Uint8Array>,
) {
  let best = Infinity;
  let out: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    out = await collect(streamOf(input, 256 * 1024).pipeThrough(ts()));
    best = Math.min(best, performance.now() - t);
  }
  return { out, r: row(name, best) };
}

try {
  console.log(
    `data: ${kind}, ${(data.length / 1e6).toFixed(1)} MB, ${navigator.hardwareConcurrency} cores`,
  );
  const nC = native("native bzip2 -9 compress", "bzip2 -9c plain > n.bz2");
  const nD = native("native bzip2 -d (single stream)", "bzip2 -dc n.bz2 > /dev/null");
  const lC = native("lbzip2 -n 2 -9 compress", "lbzip2 -n 2 -9c plain > l.bz2");
  const lD = native("lbzip2 -n 2 -d (single stream)", "lbzip2 -n 2 -dc n.bz2 > /dev/null");
  const single = new Uint8Array(readFileSync(join(dir, "n.bz2")));
  console.log(`native size ${statSync(join(dir, "n.bz2")).size}`);

  const result: Record<string, number> = {};
  let ourBz: Uint8Array = new Uint8Array(0);
  for (const workers of [1, 2]) {
    const c = await ours(
      `hop compress, ${workers} worker(s)`,
      data,
      () => compressStream({ workers }),
    );
    result[`c${workers}`] = c.r;
    ourBz = c.out;
    const d = await ours(
      `hop decompress ours, ${workers} worker(s)`,
      ourBz,
      () => decompressStream({ workers }),
    );
    if (!sameBytes(d.out, data)) throw new Error("round trip differs");
    result[`d${workers}`] = d.r;
    const f = await ours(
      `hop decompress bzip2 -9 file, ${workers} worker(s)`,
      single,
      () => decompressStream({ workers }),
    );
    if (!sameBytes(f.out, data)) throw new Error("foreign read differs");
    result[`f${workers}`] = f.r;
  }
  console.log(`hop size ${ourBz.length} (${(ourBz.length / single.length).toFixed(4)}x native)`);

  const t = performance.now();
  const s = new BlockSplitter("bench");
  s.push(single);
  let blocks = 0;
  while (s.next(true)) blocks++;
  const scanMs = performance.now() - t;
  console.log(
    `block scan: ${blocks} blocks in ${scanMs.toFixed(0)} ms (${
      (single.length / 1e3 / scanMs).toFixed(0)
    } MB/s of compressed input, incl. copies)`,
  );

  console.log("\nratios (hop / native bzip2):");
  console.log(
    `  compress   1w ${(result.c1 / nC).toFixed(2)}x  2w ${
      (result.c2 / nC).toFixed(2)
    }x   (lbzip2 -n2: ${(lC / nC).toFixed(2)}x)`,
  );
  console.log(
    `  read ours  1w ${(result.d1 / nD).toFixed(2)}x  2w ${
      (result.d2 / nD).toFixed(2)
    }x   (lbzip2 -n2: ${(lD / nD).toFixed(2)}x)`,
  );
  console.log(
    `  read bzip2 1w ${(result.f1 / nD).toFixed(2)}x  2w ${(result.f2 / nD).toFixed(2)}x`,
  );
} finally {
  closePool();
  rmSync(dir, { recursive: true, force: true });
}
