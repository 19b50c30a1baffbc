/**
 * Shared pieces of the benchmarks: running a command while sampling its peak
 * RSS, alternating hop with its references (medians), generating test trees,
 * and the rows every benchmark records (hop's figure, its references measured
 * in the same run, ratios, targets, the machine's load), which `bench.ts`
 * prints as one table and writes as JSON.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** Repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Wall time and peak resident memory of one command run. */
export interface Measured {
  seconds: number;
  peakRssMB: number;
  /** Bytes the command's own process read and wrote (rchar/wchar), last sample before exit. */
  io?: { rchar: number; wchar: number };
  /** The command's standard output, when asked for (`stdout: true`). */
  stdout?: string;
}

/** rchar and wchar of a live process (bytes passed to read/write-like calls, files and pipes). */
export function ioOf(pid: number): { rchar: number; wchar: number } | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/io`, "utf8");
    const r = t.match(/rchar:\s+(\d+)/);
    const w = t.match(/wchar:\s+(\d+)/);
    return r && w ? { rchar: Number(r[1]), wchar: Number(w[1]) } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The argv prefix that runs hop: HOP_BIN, which `deno task bench` sets to a freshly
 * built `dist/hop` (the binary users get) unless run with `--sources`; else the
 * sources through Deno.
 */
export function hop(): string[] {
  return process.env.HOP_BIN
    ? [process.env.HOP_BIN]
    : [process.execPath, "run", "-A", "--quiet", join(ROOT, "cli.ts")];
}

/** CPU seconds (user + system) a running process has used so far (Linux `/proc`). */
export function cpuOf(pid: number): number {
  // fields after the command's closing parenthesis: utime and stime are the 12th and 13th
  const after = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ").pop()!.split(" ");
  return (Number(after[11]) + Number(after[12])) / 100; // clock ticks (USER_HZ = 100)
}

/** Peak RSS in MB of a process and its descendants (VmHWM summed). */
export function rssOf(pid: number): number {
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

/** Runs argv to completion, sampling peak RSS every 20 ms; throws on failure (exit not in `codes`). */
export function measure(
  argv: string[],
  opts: { cwd?: string; env?: Record<string, string>; stdout?: boolean; codes?: number[] } = {},
): Promise<Measured> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : undefined,
      stdio: ["ignore", opts.stdout ? "pipe" : "ignore", "pipe"],
    });
    let stdout = "";
    child.stdout?.setEncoding("utf8").on("data", (d) => (stdout += d));
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d) => (stderr += d));
    let peak = 0;
    let io: Measured["io"];
    const timer = setInterval(() => {
      if (!child.pid) return;
      peak = Math.max(peak, rssOf(child.pid));
      io = ioOf(child.pid) ?? io;
    }, 20);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(timer);
      if (!(opts.codes ?? [0]).includes(code ?? -1)) {
        return reject(new Error(`${argv.join(" ")} exited ${code}: ${stderr}`));
      }
      resolve({ seconds: (performance.now() - started) / 1000, peakRssMB: peak, io, stdout });
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

/** `size` bytes of file content: half the time text, else incompressible bytes. */
export function fileContent(rand: () => number, size: number): Uint8Array {
  if (rand() < 0.5) {
    const parts: string[] = [];
    let n = 0;
    while (n < size) {
      const w = WORDS[Math.floor(rand() * WORDS.length)] + (rand() < 0.1 ? "\n" : " ");
      parts.push(w);
      n += w.length;
    }
    return new TextEncoder().encode(parts.join("")).subarray(0, size);
  }
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) {
    const v = (rand() * 4294967296) >>> 0;
    data[i] = v;
    data[i + 1] = v >>> 8;
    data[i + 2] = v >>> 16;
    data[i + 3] = v >>> 24;
  }
  return data;
}

/**
 * Writes exactly `count` files of about `totalMB` megabytes in all into `dir`,
 * sizes log-uniform over four decades (a few hundred bytes to about 1 MB for
 * the default 5,000 files / 500 MB), 100 files per folder, two levels deep.
 */
export async function generateFiles(
  dir: string,
  count: number,
  totalMB: number,
  seed = 2,
): Promise<{ files: number; bytes: number }> {
  const rand = prng(seed);
  const weights = Array.from({ length: count }, () => Math.exp(rand() * Math.log(10_000)));
  const unit = (totalMB * 1e6) / weights.reduce((a, b) => a + b, 0);
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const sub = join(dir, `d${Math.floor(i / 1000)}`, `e${Math.floor(i / 100) % 10}`);
    if (i % 100 === 0) await mkdir(sub, { recursive: true });
    const size = Math.max(1, Math.round(weights[i] * unit));
    await writeFile(join(sub, `f${i}.${i % 2 ? "txt" : "bin"}`), fileContent(rand, size));
    bytes += size;
  }
  return { files: count, bytes };
}

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
  while (bytes < target) {
    const sub = join(dir, `d${files % 17}`, `e${files % 5}`);
    await mkdir(sub, { recursive: true });
    const big = rand() < 0.1;
    const size = Math.min(
      Math.floor(big ? 1e6 + rand() * 7e6 : 1e3 + rand() * 60e3),
      target - bytes + 1,
    );
    const data = fileContent(rand, size);
    await writeFile(join(sub, `f${files}.${data[0] & 1 ? "txt" : "bin"}`), data);
    bytes += size;
    files++;
  }
  return { files, bytes };
}

/** One figure: a time (or another quantity, with its unit) and the peak RSS it took. */
export interface Figure {
  /** Seconds, unless `unit` says otherwise. */
  value: number;
  unit?: string;
  peakRssMB?: number;
}

/** A target of a row, and whether this run met it. */
export interface Target {
  /** What is asked, e.g. `<= 1.5x tar -xjf` or `peak RSS <= 250 MB`. */
  what: string;
  met: boolean;
}

/**
 * One row of the table: hop's figure against references measured in the same run.
 * Ratios are hop / reference (1.0 a tie, below 1 hop is faster), as in issue 13's table.
 */
export interface Row {
  bench: string;
  /** The work, as the table names it. */
  work: string;
  hop: Figure;
  refs: Record<string, Figure>;
  ratios: Record<string, number>;
  targets: Target[];
  /** The 1-minute load average when the row's measurements began and ended. */
  load: [number, number];
  notes?: string[];
}

/** Every row recorded in this run, in order. */
export const rows: Row[] = [];
let currentBench = "";
let rowLoad = loadavg()[0];

/** Names the benchmark the next rows belong to (bench.ts calls it). */
export function benchName(name: string): void {
  currentBench = name;
  rowLoad = loadavg()[0];
}

/** Starts the load window of the next row (its measurements begin now). */
export function rowStart(): void {
  rowLoad = loadavg()[0];
}

/** `<= 1.5x tar -xjf`: hop's value at most `max` times the reference's. */
export function atMost(refs: Record<string, Figure>, hopValue: number, ref: string, max: number) {
  const r = hopValue / refs[ref].value;
  return { what: `<= ${max}x ${ref}`, met: r <= max };
}

/**
 * Records a row (ratios computed against every reference) and prints it at once;
 * `targets` may use {@linkcode atMost}. Returns the row.
 */
export function record(
  work: string,
  hop: Figure,
  refs: Record<string, Figure>,
  targets: (Target | undefined)[] = [],
  notes: string[] = [],
): Row {
  const ratios: Record<string, number> = {};
  for (const [k, f] of Object.entries(refs)) ratios[k] = hop.value / f.value;
  const row: Row = {
    bench: currentBench,
    work,
    hop,
    refs,
    ratios,
    targets: targets.filter((t): t is Target => t !== undefined),
    load: [rowLoad, loadavg()[0]],
    ...(notes.length ? { notes } : {}),
  };
  rows.push(row);
  console.log(formatRow(row));
  rowLoad = loadavg()[0];
  return row;
}

/** A figure as printed: `1.23 s (45 MB)`. */
export function formatFigure(f: Figure): string {
  const unit = f.unit ?? "s";
  const v = Math.abs(f.value) >= 100 ? f.value.toFixed(0) : f.value.toPrecision(3);
  return `${v} ${unit}${f.peakRssMB !== undefined ? ` (${f.peakRssMB.toFixed(0)} MB)` : ""}`;
}

/** One row on one line (and its notes below). */
export function formatRow(r: Row): string {
  const refs = Object.entries(r.refs).map(([k, f]) => `${k} ${formatFigure(f)}`).join(" / ");
  const ratios = Object.entries(r.ratios).map(([k, v]) => `${v.toFixed(2)} ${k}`).join(" / ");
  const targets = r.targets.map((t) => `${t.what}: ${t.met ? "MET" : "MISSED"}`).join("; ");
  return `| ${r.work} | ${formatFigure(r.hop)} | ${refs || "-"} | ${ratios || "-"} | ${
    targets || "-"
  } | load ${r.load[0].toFixed(1)}-${r.load[1].toFixed(1)} |` +
    (r.notes?.length ? "\n" + r.notes.map((n) => `    ${n}`).join("\n") : "");
}

/** The median of `xs` (the lower middle for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/**
 * Runs each of `cases` in turn, `runs` times (alternated, so that a change of the
 * machine's load hits them alike), and gives each one's median time with the highest
 * peak RSS seen. A case may clean up before it measures (only the command is timed).
 */
export async function alternate(
  runs: number,
  cases: Record<string, () => Promise<Measured>>,
  log = true,
): Promise<Record<string, Measured & { all: number[] }>> {
  const got: Record<string, Measured[]> = {};
  for (let i = 0; i < runs; i++) {
    for (const [name, f] of Object.entries(cases)) {
      const m = await f();
      (got[name] ??= []).push(m);
      if (log) {
        console.log(
          `    ${name} #${i + 1}: ${m.seconds.toFixed(2)} s, peak RSS ${m.peakRssMB.toFixed(0)} MB`,
        );
      }
    }
  }
  const out: Record<string, Measured & { all: number[] }> = {};
  for (const [name, ms] of Object.entries(got)) {
    const all = ms.map((m) => m.seconds);
    out[name] = {
      seconds: median(all),
      peakRssMB: Math.max(...ms.map((m) => m.peakRssMB)),
      all,
    };
  }
  return out;
}

/** A measurement as a row's figure. */
export function fig(m: Measured): Figure {
  return { value: m.seconds, peakRssMB: m.peakRssMB > 0 ? m.peakRssMB : undefined };
}

/** `--name=N` from a benchmark's arguments. */
export function opt(args: string[], name: string, def: number): number {
  const a = optText(args, name);
  return a !== undefined ? Number(a) : def;
}

/** The text of option `--name=TEXT` in `args`, or undefined. */
export function optText(args: string[], name: string): string | undefined {
  return args.find((x) => x.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** Files and bytes under `dir`, hidden names (`.hop`, ...) skipped. */
export async function treeStats(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.isFile()) {
        files++;
        bytes += (await stat(join(d, e.name))).size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}

/** A pyftpdlib server run for a benchmark (stopped by its pid). */
export interface BenchFtpd {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

const PYFTPD = `
import sys, logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
root, user, pw, foreign = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
logging.basicConfig(level=logging.ERROR)
a = DummyAuthorizer()
a.add_user(user, pw, root, perm="elradfmwMT")
class H(FTPHandler):
    permit_foreign_addresses = foreign
    banner = "hop bench pyftpdlib"
H.authorizer = a
s = FTPServer(("127.0.0.1", 0), H)
s.max_cons = 2000
print(s.socket.getsockname()[1], flush=True)
s.serve_forever()
`;

/**
 * Starts pyftpdlib (Debian's /usr/bin/python3) on 127.0.0.1, a kernel-picked
 * port, serving `root` to `user`/`password`; `foreign` allows PORT addresses
 * other than the control connection's (third-party transfers).
 */
export function startFtpd(
  root: string,
  user: string,
  password: string,
  foreign = false,
): Promise<BenchFtpd> {
  const child = spawn(
    "/usr/bin/python3",
    ["-c", PYFTPD, root, user, password, foreign ? "1" : "0"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    if (stderr.length < 20_000) stderr += d;
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async () => {
    try {
      process.kill(child.pid!, "SIGTERM");
    } catch { /* already gone */ }
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve({ port: Number(m[1]), pid: child.pid!, stop });
    });
    child.once("exit", (code) => reject(new Error(`pyftpdlib exited ${code}: ${stderr}`)));
  });
}
