/**
 * `hop cluster serve` in its own process for tests, run through the `hop`
 * command (the binary under `npm test`): started on a free port, ready once it
 * printed its `cluster-serve` event, stopped by its pid.
 *
 * @module
 */
import { type HopProcess, spawnHop } from "./hop.ts";

/** A running `hop cluster serve`. */
export interface ClusterProcess {
  port: number;
  /** The admin password when this start created the admin user. */
  adminPassword?: string;
  /** The dashboard's URL, with `--http`. */
  dashboard?: string;
  proc: HopProcess;
  /** SIGKILL (a crash) unless told otherwise; waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `hop --json cluster serve --listen 127.0.0.1:0` with `args` (for
 * example `--root DIR --node URL`), in `cwd`.
 */
export async function startClusterServe(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<ClusterProcess> {
  const proc = spawnHop(["--json", "cluster", "serve", "--listen", "127.0.0.1:0", ...args], opts);
  const [line] = await proc.waitFor(/^\{.*"event":"cluster-serve".*\}$/m, 60_000);
  const ev = JSON.parse(line) as { port: number; message: string; dashboard?: string };
  const pw = /connect as ftp:\/\/admin:([^@]+)@/.exec(ev.message)?.[1];
  return {
    port: ev.port,
    dashboard: ev.dashboard,
    adminPassword: pw === undefined ? undefined : decodeURIComponent(pw),
    proc,
    async stop(signal: NodeJS.Signals = "SIGKILL") {
      await proc.stop(signal);
    },
  };
}
