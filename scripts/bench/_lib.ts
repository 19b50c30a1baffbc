/**
 * Shared pieces of the benchmarks: running a command while sampling its peak
 * RSS, generating test trees, and printing ratios against a target.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** Repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Wall time and peak resident memory of one command run. */
export interface Measured {
  seconds: number;
  peakRssMB: number;
}

/** The argv prefix that runs hop: HOP_BIN, or the sources through Deno. */
export function hop(): string[] {
  return process.env.HOP_BIN
    ? [process.env.HOP_BIN]
    : [process.execPath, "run", "-A", "--quiet", join(ROOT, "cli.ts")];
}

function rssOf(pid: number): number {
  // VmHWM is the peak RSS so far; children (e.g. bzip2 under tar) are summed.
  let total = 0;
  const pids = [pid];
  for (const p of pids) {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      const m = status.match(/VmHWM:\s+(\d+) kB/);
      if (m) total += Number(m[1]) / 1024;
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim();
      if (kids) pids.push(...kids.split(/\s+/).map(Number));
    } catch { /* the process ended between two reads */ }
  }
  return total;
}

/** Runs argv to completion, sampling peak RSS every 20 ms; throws on failure. */
export function measure(argv: string[], opts: { cwd?: string } = {}): Promise<Measured> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: opts.cwd,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    let peak = 0;
    const timer = setInterval(() => {
      if (child.pid) peak = Math.max(peak, rssOf(child.pid));
    }, 20);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(timer);
      if (code !== 0) return reject(new Error(`${argv.join(" ")} exited ${code}: ${stderr}`));
      resolve({ seconds: (performance.now() - started) / 1000, peakRssMB: peak });
    });
  });
}

/** A small seeded PRNG (mulberry32), so generated trees are the same every run. */
export function prng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ("the of and to in is that for it as with was on be by at this from or have an " +
  "relay cluster node file folder index update pusher puller lock archive page sync transfer " +
  "server client data storage link queue worker block stream checksum mtime size owner").split(" ");

/**
 * Writes a tree of about `totalMB` megabytes into `dir`: half text (compresses
 * like source code or logs), half incompressible bytes; file sizes from 1 kB
 * to 8 MB. Returns the number of files and bytes written.
 */
export async function generateTree(
  dir: string,
  totalMB: number,
  seed = 1,
): Promise<{ files: number; bytes: number }> {
  const rand = prng(seed);
  const target = totalMB * 1e6;
  let bytes = 0;
  let files = 0;
  const enc = new TextEncoder();
  while (bytes < target) {
    const sub = join(dir, `d${files % 17}`, `e${files % 5}`);
    await mkdir(sub, { recursive: true });
    const big = rand() < 0.1;
    const size = Math.min(
      Math.floor(big ? 1e6 + rand() * 7e6 : 1e3 + rand() * 60e3),
      target - bytes + 1,
    );
    let data: Uint8Array;
    if (rand() < 0.5) {
      const parts: string[] = [];
      let n = 0;
      while (n < size) {
        const w = WORDS[Math.floor(rand() * WORDS.length)] + (rand() < 0.1 ? "\n" : " ");
        parts.push(w);
        n += w.length;
      }
      data = enc.encode(parts.join("")).subarray(0, size);
    } else {
      data = new Uint8Array(size);
      for (let i = 0; i < size; i += 4) {
        const v = (rand() * 4294967296) >>> 0;
        data[i] = v;
        data[i + 1] = v >>> 8;
        data[i + 2] = v >>> 16;
        data[i + 3] = v >>> 24;
      }
    }
    await writeFile(join(sub, `f${files}.${data[0] & 1 ? "txt" : "bin"}`), data);
    bytes += size;
    files++;
  }
  return { files, bytes };
}

/** Prints one comparison: ours against the reference, with the target ratio. */
export function ratioLine(
  label: string,
  ours: number,
  reference: number,
  target: number,
  higherIsBetter = true,
): string {
  const ratio = higherIsBetter ? ours / reference : reference / ours;
  const verdict = ratio >= target ? "MET" : "MISSED";
  return `${label}: ${ratio.toFixed(2)}x (target >= ${target}x) ${verdict}`;
}
