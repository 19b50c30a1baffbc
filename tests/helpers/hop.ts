/**
 * Runs the `hop` command in tests: the built binary when `HOP_BIN` is set
 * (`npm test` sets it to `dist/hop`: the binary users get), otherwise
 * `deno run -A cli.ts` from the sources. Use these, not in-process calls, in
 * tests that drive hop as a user would.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import process from "node:process";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** argv prefix that starts hop. */
export function hopCommand(bin = process.env.HOP_BIN): string[] {
  if (bin) return [bin];
  const deno = process.versions.deno ? process.execPath : "deno";
  return [deno, "run", "-A", "--quiet", "--no-check", ROOT + "cli.ts"];
}

/** What a finished hop run printed and how it exited. */
export interface HopResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode runHop} and {@linkcode spawnHop}. */
export interface HopRunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Kill it (SIGKILL) after this long; default 60 s for runHop, never for spawnHop. */
  timeoutMs?: number;
  input?: string;
  /** A hop binary to run instead of HOP_BIN. */
  bin?: string;
  /** spawnHop: also append everything it prints to this file (for failure reports). */
  logFile?: string;
  /**
   * spawnHop: run hop through this wrapper command, e.g. `["unshare", "--pid", "--fork",
   * "--kill-child"]` (a PID namespace of its own); `pid` is then the wrapper's
   * ({@linkcode childPid} finds hop's).
   */
  wrap?: string[];
}

/** A hop process started by {@linkcode spawnHop}. */
export interface HopProcess {
  child: ChildProcess;
  pid: number;
  /** What it printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when it exited. */
  done: Promise<HopResult>;
  /** Sends `signal` (default SIGTERM) unless it already exited; then waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<HopResult>;
  /** Resolves with the first stdout/stderr line matching `re` (rejects if hop exits first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

/** Starts hop with `args` and returns at once. */
export function spawnHop(args: string[], opts: HopRunOptions = {}): HopProcess {
  const [cmd, ...pre] = [...(opts.wrap ?? []), ...hopCommand(opts.bin)];
  const child = spawn(cmd, [...pre, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const log = opts.logFile ? createWriteStream(opts.logFile, { flags: "a" }) : null;
  let stdout = "";
  let stderr = "";
  let exited = false;
  const watchers: { re: RegExp; resolve(m: RegExpExecArray): void }[] = [];
  const check = () => {
    for (const w of [...watchers]) {
      const m = w.re.exec(stdout) ?? w.re.exec(stderr);
      if (m) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
    log?.write(d);
    check();
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
    log?.write(d);
    check();
  });
  const timer = opts.timeoutMs
    ? setTimeout(() => process.kill(child.pid!, "SIGKILL"), opts.timeoutMs)
    : null;
  const done = new Promise<HopResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      exited = true;
      if (timer) clearTimeout(timer);
      log?.end();
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
  child.stdin!.end(opts.input ?? "");
  return {
    child,
    pid: child.pid!,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    done,
    stop(signal: NodeJS.Signals = "SIGTERM") {
      // process.kill, not child.kill: after child.kill, Deno's ChildProcess reports that
      // signal as the way the child ended even when the child handled it and exited 0.
      if (!exited) process.kill(child.pid!, signal);
      return done;
    },
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () =>
            reject(new Error(`hop printed no ${re} within ${timeoutMs} ms:\n${stdout}${stderr}`)),
          timeoutMs,
        );
        watchers.push({
          re,
          resolve: (m) => {
            clearTimeout(t);
            resolve(m);
          },
        });
        check();
        done.then((r) => {
          clearTimeout(t);
          reject(
            new Error(`hop exited (${r.code}) before printing ${re}:\n${r.stdout}${r.stderr}`),
          );
        });
      });
    },
  };
}

/** Runs hop with `args` to completion (kills it after `timeoutMs`, default 60 s). */
export function runHop(args: string[], opts: HopRunOptions = {}): Promise<HopResult> {
  return spawnHop(args, { ...opts, timeoutMs: opts.timeoutMs ?? 60_000 }).done;
}

/** The JSON events a `--json` run printed on stdout, in order (each as `JSON.parse` gives it). */
export function jsonEvents(stdout: string): ReturnType<typeof JSON.parse>[] {
  return stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** `--json relay sync LOCAL RELAY --client-name NAME`: hop's one-off form, as arguments. */
export function oneOffSync(local: string, relay: string, name: string): string[] {
  return ["--json", "relay", "sync", local, relay, "--client-name", name];
}

/**
 * One `--once` pass of the one-off form ({@linkcode oneOffSync}, then `extra` arguments):
 * how it exited, what it printed, its events and the closing `pass` event.
 */
export async function relayPass(local: string, relay: string, name: string, extra: string[] = []) {
  const r = await runHop([...oneOffSync(local, relay, name), "--once", ...extra]);
  const events = jsonEvents(r.stdout);
  return { ...r, events, pass: events.find((e) => e.event === "pass") };
}

/** The first child of process `pid` (Linux), e.g. hop under a `wrap` command; waits up to 10 s. */
export async function childPid(pid: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const kids = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => null);
    if (kids === null) break; // the wrapper is gone
    const first = Number(kids.trim().split(/\s+/)[0]);
    if (first > 0) return first;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`process ${pid} has no child`);
}
