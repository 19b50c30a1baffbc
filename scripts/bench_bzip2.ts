/**
 * Benchmark of hop's bzip2 engine: compress and decompress throughput (MB/s of plain data)
 * with 1 and 2 workers on ~64 MB of mixed data, against native `bzip2 -9` / `bzip2 -d` and
 * `lbzip2 -n 2`, with ratios. Usage: `deno run -A scripts/bench_bzip2.ts [MB] [text|mixed] [runs]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
} from "../tests/helpers/bzip2_data.ts";

const mb = Number(process.argv[2] ?? 64);
const kind = process.argv[3] ?? "mixed";
/** Each figure is the best of this many runs (other processes share the machine). */
const reps = Number(process.argv[4] ?? 3);
const data = (kind === "text" ? textBytes : mixedBytes)(Math.round(mb * 1e6), 1);
const dir = mkdtempSync(join(tmpdir(), "hop-bench-"));
const plain = join(dir, "plain");
writeFileSync(plain, data);

/** Best time (ms) of each measurement; rounds interleave them, so that a moment when
 * another process takes a core spoils one run of each, not every run of one. */
const best = new Map<string, number>();
function record(name: string, ms: number): void {
  best.set(name, Math.min(best.get(name) ?? Infinity, ms));
}
const rate = (name: string) => data.length / 1e3 / best.get(name)!;

function native(name: string, cmd: string): void {
  const t = performance.now();
  const r = spawnSync("sh", ["-c", cmd], { cwd: dir, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
  record(name, performance.now() - t);
}

async function ours(
  name: string,
  input: Uint8Array,
  ts: TransformStream<Uint8Array, Uint8Array>,
): Promise<Uint8Array> {
  const t = performance.now();
  const out = await collect(streamOf(input, 256 * 1024).pipeThrough(ts));
  record(name, performance.now() - t);
  return out;
}

const N_C = "native bzip2 -9 compress";
const N_D = "native bzip2 -d";
const L_C = "lbzip2 -n 2 -9 compress";
const L_D = "lbzip2 -n 2 -d";
const hC = (w: number) => `hop compress, ${w} worker(s)`;
const hD = (w: number) => `hop decompress its own, ${w} worker(s)`;
const hF = (w: number) => `hop decompress bzip2 -9 output, ${w} worker(s)`;

try {
  console.log(
    `data: ${kind}, ${(data.length / 1e6).toFixed(1)} MB, ` +
      `${navigator.hardwareConcurrency} cores, best of ${reps} interleaved rounds`,
  );
  let ourBz: Uint8Array = new Uint8Array(0);
  let single: Uint8Array = new Uint8Array(0);
  for (let round = 0; round < reps; round++) {
    native(N_C, "bzip2 -9c plain > n.bz2");
    native(N_D, "bzip2 -dc n.bz2 > /dev/null");
    native(L_C, "lbzip2 -n 2 -9c plain > l.bz2");
    native(L_D, "lbzip2 -n 2 -dc n.bz2 > /dev/null");
    single = new Uint8Array(readFileSync(join(dir, "n.bz2")));
    for (const w of [1, 2]) {
      ourBz = await ours(hC(w), data, compressStream({ workers: w }));
      const d = await ours(hD(w), ourBz, decompressStream({ workers: w }));
      if (!sameBytes(d, data)) throw new Error("round trip differs");
      const f = await ours(hF(w), single, decompressStream({ workers: w }));
      if (!sameBytes(f, data)) throw new Error("foreign read differs");
    }
  }
  for (const [name, ms] of best) {
    console.log(
      `${name.padEnd(44)} ${(ms / 1000).toFixed(2).padStart(7)} s ${rate(name).toFixed(1)} MB/s`,
    );
  }
  console.log(
    `sizes: native ${single.length}, hop ${ourBz.length} (${
      (ourBz.length / single.length).toFixed(4)
    }x)`,
  );

  const t = performance.now();
  const s = new BlockSplitter("bench");
  s.push(single);
  let blocks = 0;
  while (s.next(true)) blocks++;
  const scanMs = performance.now() - t;
  console.log(
    `block scan: ${blocks} blocks in ${scanMs.toFixed(0)} ms ` +
      `(${(single.length / 1e3 / scanMs).toFixed(0)} MB/s of compressed input, incl. copies)`,
  );

  const x = (a: string, b: string) => `${(rate(a) / rate(b)).toFixed(2)}x`;
  console.log("\nratios to native bzip2 (lbzip2 -n 2 for reference):");
  console.log(`  compress      1w ${x(hC(1), N_C)}  2w ${x(hC(2), N_C)}  (lbzip2 ${x(L_C, N_C)})`);
  console.log(`  read own      1w ${x(hD(1), N_D)}  2w ${x(hD(2), N_D)}  (lbzip2 ${x(L_D, N_D)})`);
  console.log(`  read bzip2's  1w ${x(hF(1), N_D)}  2w ${x(hF(2), N_D)}`);
} finally {
  closePool();
  rmSync(dir, { recursive: true, force: true });
}
