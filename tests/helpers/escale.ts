/**
 * The real Escale 0.7.13 client as a test peer (../shared/peers): where it
 * is, running it on a configuration for a while (`escale.sh CONFIG SECONDS`:
 * it loops until killed; exit 124 then is normal), or for exactly one pass
 * ({@linkcode escalePass}). `npm test` installs what it needs (Debian's
 * python3-requests and python3-cryptography).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { inNetns } from "./netns.ts";

/** The peers folder beside the repository's parent. */
export const PEERS = fileURLToPath(new URL("../../../shared/peers/", import.meta.url));
/** Escale's source folder (importable with Python: `sys.path.insert(0, ESCALE_DIR)`). */
export const ESCALE_DIR = PEERS + "escale-0.7.13";

/** What an Escale run printed and how it ended. */
export interface EscaleRun {
  code: number;
  /** stdout and stderr together (Escale logs to stderr). */
  output: string;
}

/**
 * Runs Escale on `configFile` for `seconds`, then stops it (exit 124 is the
 * stop); `home` becomes its HOME, where it keeps its caches and pid file.
 */
export function runEscale(
  configFile: string,
  seconds: number,
  opts: { home: string; cwd?: string },
): Promise<EscaleRun> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [PEERS + "escale.sh", configFile, String(seconds)], {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: opts.home, LANG: "C.UTF-8" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

/** Options of {@linkcode escalePass}. */
export interface EscalePassOptions {
  /** Its HOME (license acceptance, caches). */
  home: string;
  /** Run it inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Give up (and fail) after this long; default 180 s. */
  timeoutMs?: number;
}

/** What one Escale pass wrote to its log, and whether it failed. */
export interface EscalePass {
  log: string;
  /** A traceback or a CRITICAL line: Escale crashed or gave up during the pass. */
  crashed: boolean;
}

/**
 * Runs exactly one Escale pass on `configFile` and stops it: Escale logs, at
 * debug level, to `<config without extension>.log`; the pass is over when it
 * logs `reset adaptive timer` (something moved) or `repository is up to date`
 * (its first pass moved nothing), after which it only sleeps `refresh`
 * seconds (give it a long one), or when it logs a crash. Tests that must
 * order Escale's passes against other clients' use this instead of letting
 * it loop (and Escale's FTP index mode crashes on a second pass anyway).
 */
export async function escalePass(configFile: string, opts: EscalePassOptions): Promise<EscalePass> {
  const logFile = configFile.replace(/\.[^./]*$/, "") + ".log";
  let start = await stat(logFile).then((s) => s.size, () => 0);
  const argv = inNetns(opts.netns, ["bash", PEERS + "escale.sh", configFile, "900"]);
  const child = spawn(argv[0], argv.slice(1), {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: opts.home, LANG: "C.UTF-8" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (output += d));
  const exited = new Promise<number>((resolve) => child.once("close", (c) => resolve(c ?? 1)));
  let ended = false;
  exited.then(() => ended = true);
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  let log = "";
  try {
    for (;;) {
      const bytes = await readFile(logFile).catch(() => new Uint8Array());
      if (bytes.length < start) start = 0; // Escale rotated its log (1 MB)
      log = new TextDecoder().decode(bytes.subarray(start));
      if (/reset adaptive timer|repository is up to date|\[CRITICAL\]/.test(log)) break;
      if (ended) break;
      if (Date.now() > deadline) {
        throw new Error(`Escale's pass did not end in time:\n${log}\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    if (!ended) process.kill(child.pid!, "SIGTERM");
    await exited;
  }
  const all = log + output;
  return { log: all, crashed: /Traceback|\[CRITICAL\]/.test(all) };
}
