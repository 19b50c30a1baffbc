/**
 * The real Escale 0.7.13 client as a test peer (../shared/peers): where it
 * is, running it on a configuration for a while (`escale.sh CONFIG SECONDS`:
 * it loops until killed; exit 124 then is normal), or for exactly one pass
 * ({@linkcode escalePass}), or looping until the test stops it
 * ({@linkcode startEscale}). `npm test` installs what it needs (Debian's
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
  const run = await launch(configFile, opts);
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  let log = "";
  try {
    for (;;) {
      log = await run.log();
      if (/reset adaptive timer|repository is up to date|\[CRITICAL\]/.test(log)) break;
      if (run.ended()) break;
      if (Date.now() > deadline) {
        throw new Error(`Escale's pass did not end in time:\n${log}\n${run.output()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await run.stop();
  }
  const all = log + run.output();
  return { log: all, crashed: /Traceback|\[CRITICAL\]/.test(all) };
}

/**
 * Escale started on `configFile` (it loops until `stop()`), and what it
 * logged since: Escale logs, at debug level, to `<config without
 * extension>.log`, and rotates it at 1 MB.
 */
async function launch(configFile: string, opts: { home: string; netns?: string }) {
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
  let ended = false;
  const exited = new Promise<void>((resolve) =>
    child.once("close", () => {
      ended = true;
      resolve();
    })
  );
  return {
    async log(): Promise<string> {
      const bytes = await readFile(logFile).catch(() => new Uint8Array());
      if (bytes.length < start) start = 0; // Escale rotated its log
      return new TextDecoder().decode(bytes.subarray(start));
    },
    output: () => output,
    ended: () => ended,
    async stop(): Promise<void> {
      if (!ended) process.kill(child.pid!, "SIGTERM");
      await exited;
    },
  };
}

/** A looping Escale process started by {@linkcode startEscale}. */
export interface EscaleLoop {
  /** What it logged since it started. */
  log(): Promise<string>;
  /**
   * Resolves with its log once the log matches `re` (or `re(log)` is true); rejects after
   * `timeoutMs`, or at a crash unless `crashOk` (Escale goes on after most of them).
   */
  waitFor(
    re: RegExp | ((log: string) => boolean),
    timeoutMs?: number,
    crashOk?: boolean,
  ): Promise<string>;
  /** Stops it (SIGTERM) and waits for it to end; its log. */
  stop(): Promise<string>;
}

/**
 * Starts Escale on `configFile` and lets it loop (a pass every `refresh`
 * seconds, from its configuration) until `stop()`: for what Escale does only
 * from its second pass in a process (over FTP it learns in its first push
 * whether the server answers SIZE, and needs that to pull files in folders).
 */
export async function startEscale(
  configFile: string,
  opts: { home: string; netns?: string },
): Promise<EscaleLoop> {
  const run = await launch(configFile, opts);
  const log = async () => (await run.log()) + run.output();
  return {
    log,
    async waitFor(re, timeoutMs = 120_000, crashOk = false) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = await log();
        if (typeof re === "function" ? re(text) : re.test(text)) return text;
        if (!crashOk && /Traceback|\[CRITICAL\]/.test(text)) {
          throw new Error(`Escale crashed:\n${text}`);
        }
        if (run.ended()) throw new Error(`Escale ended before logging ${re}:\n${text}`);
        if (Date.now() > deadline) throw new Error(`Escale logged no ${re} in time:\n${text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      await run.stop();
      return await log();
    },
  };
}
