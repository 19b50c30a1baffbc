/**
 * Cluster servers for tests. `hop cluster serve` in its own process, run
 * through the `hop` command (the binary under `npm test`): started on a free
 * port, ready once it printed its `cluster-serve` event, stopped by its pid.
 * And the same server in this process (`serveClusterInProcess`), for tests
 * that run the store worker's passes themselves or look at its state.
 * Each gives the admin login that the first start makes (random, printed once).
 *
 * @module
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type ClusterServer,
  serveCluster,
  type ServeClusterOptions,
} from "../../src/cluster/serve.ts";
import { type FtpTarget, localTarget } from "./ftp_clients.ts";
import { type HopProcess, spawnHop } from "./hop.ts";

/** A running `hop cluster serve`. */
export interface ClusterProcess {
  port: number;
  /** The admin password when this start created the admin user. */
  adminPassword?: string;
  /** The admin's login (the password is empty when this start did not create the admin). */
  admin: FtpTarget;
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
  const adminPassword = pw === undefined ? undefined : decodeURIComponent(pw);
  return {
    port: ev.port,
    dashboard: ev.dashboard,
    adminPassword,
    admin: localTarget(ev.port, "admin", adminPassword ?? ""),
    proc,
    async stop(signal: NodeJS.Signals = "SIGKILL") {
      await proc.stop(signal);
    },
  };
}

/** A `hop cluster serve` on one folder node, in a temp folder of its own. */
export interface OneNodeCluster {
  tmp: string;
  root: string;
  node: string;
  srv: ClusterProcess;
  /** The admin on it. */
  admin: FtpTarget;
  /** Stop the server (SIGTERM) and remove the temp folder. */
  close(): Promise<void>;
}

/** Starts `hop cluster serve` with one folder node, one copy per file, and `extra` flags. */
export async function startOneNodeCluster(extra: string[] = []): Promise<OneNodeCluster> {
  const tmp = await mkdtemp(join(tmpdir(), "hop-cluster-"));
  const node = join(tmp, "node");
  await mkdir(node);
  const root = join(tmp, "root");
  const srv = await startClusterServe(
    ["--root", root, "--node", pathToFileURL(node).href, "--replicas", "1", ...extra],
    { cwd: tmp },
  );
  return {
    tmp,
    root,
    node,
    srv,
    admin: srv.admin,
    async close() {
      await srv.stop("SIGTERM");
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** A cluster server in this process and its admin's login. */
export interface InProcessCluster {
  srv: ClusterServer;
  /** The admin (the password is empty when this start did not create the admin). */
  admin: FtpTarget;
}

/**
 * `serveCluster` in this process on a free port of 127.0.0.1, with the store
 * worker off (the test runs `storeOnce` when it chooses) and no failed-login
 * delay; `opts` may change any of that.
 */
export async function serveClusterInProcess(
  opts: ServeClusterOptions & { root: string; nodes: string[] },
): Promise<InProcessCluster> {
  const srv = await serveCluster({
    listen: "127.0.0.1:0",
    storeWorker: false,
    ...opts,
    engine: { loginFailDelayMs: 0, ...opts.engine },
  });
  return {
    srv,
    admin: { host: srv.host, port: srv.port, user: "admin", password: srv.adminPassword ?? "" },
  };
}
