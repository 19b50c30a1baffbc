/**
 * A relay sync in the background, as `escalectl` runs Escale: `hop relay
 * start` starts `hop relay sync` detached (its messages go to a log file),
 * `hop relay stop` stops it (SIGTERM: the step in progress is undone) and
 * `hop relay status` says whether it runs and what its last passes did. The
 * pid, command and log file are kept in `~/.local/state/hop/relay-sync.json`
 * (`$XDG_STATE_HOME`). For a service that starts at login, see the systemd
 * user unit in `contrib/systemd/`.
 *
 * @example
 * ```ts
 * const bg = await startBackground(["-c", "/home/me/.config/hop/relay.conf"]);
 * console.log(bg.pid, bg.log);
 * await stopBackground();
 * ```
 *
 * @module
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { HopError } from "../errors.ts";
import { processAlive } from "./local_lock.ts";

/** What the state file says of the background sync. */
export interface BackgroundInfo {
  pid: number;
  /** The `hop relay sync` arguments it runs with. */
  args: string[];
  log: string;
  /** ISO time it started. */
  started: string;
}

/** hop's state folder: `$XDG_STATE_HOME/hop` or `~/.local/state/hop`. */
export function stateHome(): string {
  const xdg = process.env.XDG_STATE_HOME;
  return join(xdg && xdg.startsWith("/") ? xdg : join(homedir(), ".local", "state"), "hop");
}

function stateFile(): string {
  return join(stateHome(), "relay-sync.json");
}

/** The argv that runs this very hop (the binary, or deno/bun on the sources). */
export function selfCommand(): string[] {
  const v = process.versions as Record<string, string | undefined>;
  const script = process.argv[1];
  if (v.deno) return [process.execPath, "run", "-A", "--quiet", script];
  // a bun-compiled binary runs from a virtual folder: the binary itself is enough
  if (v.bun && script && !script.startsWith("/$bunfs") && !script.includes("~BUN")) {
    return [process.execPath, script];
  }
  return [process.execPath];
}

/** The background sync when it runs, else null (a state left by one that died is dropped). */
export async function backgroundInfo(): Promise<BackgroundInfo | null> {
  let info: BackgroundInfo;
  try {
    info = JSON.parse(await readFile(stateFile(), "utf8"));
  } catch {
    return null;
  }
  if (typeof info?.pid === "number" && processAlive(info.pid)) return info;
  await rm(stateFile(), { force: true });
  return null;
}

/** Starts `hop relay sync ARGS` in the background; refuses when one runs already. */
export async function startBackground(args: string[], log?: string): Promise<BackgroundInfo> {
  const running = await backgroundInfo();
  if (running) {
    throw new HopError(`a background relay sync runs already (pid ${running.pid})`, {
      code: "already-running",
      hint: "hop relay status says what it does; hop relay stop stops it.",
    });
  }
  await mkdir(stateHome(), { recursive: true });
  const logFile = log ?? join(stateHome(), "relay-sync.log");
  const fd = openSync(logFile, "a");
  const [cmd, ...pre] = selfCommand();
  let child;
  try {
    // --quiet: the log file gets every line (with its time) from --log-file already
    child = spawn(cmd, [...pre, "--quiet", "--log-file", logFile, "relay", "sync", ...args], {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: process.env,
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    throw new HopError("cannot start the background relay sync", {
      hint: `Run hop relay sync ${args.join(" ")} in a terminal to see why.`,
    });
  }
  child.unref();
  const info: BackgroundInfo = { pid, args, log: logFile, started: new Date().toISOString() };
  await writeFile(stateFile(), JSON.stringify(info) + "\n");
  return info;
}

/** Stops the background sync (SIGTERM, then waits up to `waitMs`); null when none ran. */
export async function stopBackground(waitMs = 60_000): Promise<BackgroundInfo | null> {
  const info = await backgroundInfo();
  if (!info) return null;
  process.kill(info.pid, "SIGTERM");
  const until = Date.now() + waitMs;
  while (processAlive(info.pid)) {
    if (Date.now() > until) {
      throw new HopError(`the background relay sync (pid ${info.pid}) did not stop`, {
        hint: `It may be finishing a long step; wait, or kill -9 ${info.pid} ` +
          "(the next run undoes what was cut).",
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await rm(stateFile(), { force: true });
  return info;
}

/** The last `lines` lines of the background sync's log (what its passes did, its problems). */
export async function lastPasses(info: BackgroundInfo, lines = 5): Promise<string[]> {
  const text = await readFile(info.log, "utf8").catch(() => "");
  return text.split("\n").filter((l) => / (info|warn|error) /.test(l) && !/ next pass in /.test(l))
    .slice(-lines);
}
