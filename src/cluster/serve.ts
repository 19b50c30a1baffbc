/**
 * `hop cluster serve` and `hop cluster store --once`: put the cluster together (root
 * layout, users, nodes, queue, store worker, the FTP engine over the cluster file
 * system) and run it.
 *
 * With no options it serves `./hop-cluster` on 127.0.0.1:2121 with two local folder
 * nodes (`./hop-cluster-nodes/a`, `b`); on first start (no user yet) it creates user
 * `admin` with a random password and reports `ftp://admin:PASSWORD@127.0.0.1:2121/`.
 *
 * @example
 * ```ts
 * const srv = await serveCluster({ root: "/srv/cluster", listen: "127.0.0.1:0",
 *   nodes: ["ftp://node:pw@10.0.0.2:21/data", "file:///srv/node-b"] });
 * console.log(srv.url);
 * await srv.close();
 * ```
 *
 * @module
 */

import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { NAME_POLICIES, type NamePolicy } from "../codec/names.ts";
import { HopError, UsageError } from "../errors.ts";
import { type FtpServerOptions, startFtpServer } from "../ftp/server.ts";
import type { Reporter } from "../ui/report.ts";
import { type CleanupWorker, startCleanupWorker } from "./cleanup.ts";
import { assertMayChange, type ClusterContext, createClusterFs, createSerial } from "./fs.ts";
import { type JobQueue, openJobQueue } from "./jobs.ts";
import { openClusterLog } from "./log.ts";
import { watchStagingSpace } from "./space.ts";
import { clusterLayout, initLayout } from "./layout.ts";
import { useNodeAliases } from "./links.ts";
import { nodeAliases, openNode, redactUrl, type StorageNode } from "./nodes.ts";
import { acquireServeLease, type HeldLease, leaseTag, processIdentity } from "./lease.ts";
import { forgetInstance, recover as recoverQueue } from "./queue.ts";
import { type Dashboard, startDashboard } from "./dashboard.ts";
import { type ClusterMonitor, createMonitor } from "./monitor.ts";
import {
  recoverCluster,
  startStoreWorker,
  storeOnce,
  type StoreStats,
  type StoreWorker,
} from "./store.ts";
import {
  addUser,
  clusterSiteHandler,
  makeHome,
  openUserDirectory,
  PUBLIC_HOME,
  readPasswd,
} from "./users.ts";

/** Default root of the embedded default. */
export const DEFAULT_ROOT = "hop-cluster";
/** Default listen address. */
export const DEFAULT_LISTEN = "127.0.0.1:2121";
/** Folder holding the embedded default's two local nodes. */
export const DEFAULT_NODES_DIR = "hop-cluster-nodes";

/** Options of {@linkcode serveCluster}; all optional (the embedded default). */
export interface ServeClusterOptions {
  /** Cluster root folder (default `./hop-cluster`). */
  root?: string;
  /** `host:port` or `[v6]:port` (default 127.0.0.1:2121; port 0 picks one). */
  listen?: string;
  /** Node URLs (default: two folders `./hop-cluster-nodes/a` and `b`). */
  nodes?: string[];
  /** Copies of each file (default 2). */
  replicas?: number;
  /** Filename policy (default any; names are %-encoded at rest whatever it is). */
  names?: NamePolicy;
  /** PEM text or file paths: enables explicit FTPS. */
  tls?: { cert: string; key: string; required?: boolean };
  /** Allow read-only anonymous logins. */
  anonymous?: boolean;
  reporter?: Reporter;
  /** Run the store worker (default true). */
  storeWorker?: boolean;
  /** Store worker poll interval (ms, default 1000). */
  pollMs?: number;
  /** First retry delay of a failed job (ms, default 2000). */
  retryBaseMs?: number;
  /** How long a failed node is skipped before it is tried again (ms, default 5000). */
  nodeDownMs?: number;
  /** Background cleanup pass interval (ms, default 600000; 0: none). See `cleanup.ts`. */
  cleanupEveryMs?: number;
  /** A connection not logged in after this long is closed (ms, default 60000). */
  loginTimeoutMs?: number;
  /** A session that sent no complete command for this long is closed (ms, default 300000). */
  idleTimeoutMs?: number;
  /** Free bytes the root's disk keeps: uploads stop short of them (default 1%, 64 MiB-1 GiB). */
  minFreeBytes?: number;
  /** Most bytes staged (waiting for the nodes) at once (default half the root's disk). */
  stagingQuotaBytes?: number;
  /** How long the serve lease outlives a server that stopped renewing it (ms, default 30000). */
  leaseTtlMs?: number;
  /** Node health check interval (ms, default 30000). */
  healthEveryMs?: number;
  /** Pooled control connections per FTP node (default 16; also the transfers at once). */
  nodeConnections?: number;
  /** `host:port` of the dashboard, `/status` and `/metrics` (off when absent). */
  http?: string;
  /** Engine tuning (timeouts, passive ports, login delays...). */
  engine?: Partial<Omit<FtpServerOptions, "fs" | "authorizer" | "site" | "host" | "port" | "tls">>;
}

/** A running cluster server. */
export interface ClusterServer {
  host: string;
  port: number;
  /** `ftp://host:port/` (with the admin's credentials when they were just created). */
  url: string;
  /** The admin password when this start created the admin user. */
  adminPassword?: string;
  root: string;
  ctx: ClusterContext;
  queue: JobQueue;
  worker: StoreWorker | null;
  /** The serve lease this server holds. */
  lease: HeldLease;
  /** Resolves (with why) if another server takes the root over; the server has stopped then. */
  lost: Promise<string>;
  /** The live view of what the cluster does. */
  monitor: ClusterMonitor;
  /** The dashboard's URL, when `http` was given. */
  dashboardUrl?: string;
  /** Stop serving, stop the worker, close node connections, give the lease back. */
  close(): Promise<void>;
}

/** Parse `host:port` / `[v6]:port`. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(listen) ?? /^([^:]+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(
      `bad listen address "${listen}"`,
      "Give host:port, e.g. 127.0.0.1:2121 or [::1]:2121.",
    );
  }
  return { host: m[1], port };
}

function checkOptions(o: ServeClusterOptions): void {
  if (
    o.replicas !== undefined &&
    !(Number.isInteger(o.replicas) && o.replicas >= 1 && o.replicas <= 16)
  ) {
    throw new UsageError(
      `bad replica count ${o.replicas}`,
      "Give --replicas a whole number from 1 to 16.",
    );
  }
  if (o.names !== undefined && !NAME_POLICIES.includes(o.names)) {
    throw new UsageError(`bad filename policy ${o.names}`, "Use strict, blanks or any.");
  }
}

/** Build the shared context (nodes opened, users loaded). */
async function openCluster(
  o: ServeClusterOptions,
  logLine: (s: string) => void,
  kick?: () => void,
) {
  const l = clusterLayout(o.root ?? DEFAULT_ROOT);
  await initLayout(l);
  const nodeUrls = o.nodes && o.nodes.length > 0 ? o.nodes : await defaultNodes();
  const nodes = new Map<string, StorageNode>();
  for (const url of nodeUrls) {
    const node = openNode(url, { downForMs: o.nodeDownMs, maxConnections: o.nodeConnections });
    if (nodes.has(node.key)) {
      throw new UsageError(`node ${redactUrl(url)} is given twice`, "Give each node once.");
    }
    nodes.set(node.key, node);
  }
  useNodeAliases(nodeAliases(nodes.values()));
  const users = await openUserDirectory(l, { anonymous: o.anonymous, log: logLine });
  const queue = openJobQueue(l.queue, kick, { replicate: true });
  const ctx: ClusterContext = {
    layout: l,
    names: o.names ?? "any",
    nodes,
    jobs: queue,
    userName: users.nameOf,
    serial: createSerial(),
    activeUploads: new Set(),
    log: logLine,
  };
  return { l, ctx, users, queue };
}

async function defaultNodes(): Promise<string[]> {
  const out: string[] = [];
  for (const n of ["a", "b"]) {
    const dir = path.resolve(DEFAULT_NODES_DIR, n);
    await fsp.mkdir(dir, { recursive: true });
    out.push(pathToFileURL(dir).href);
  }
  return out;
}

/**
 * Serve a cluster until `close()`. Takes the root's serve lease (refused while another
 * server holds it, on any host), recovers from a crash (queue claims, unacknowledged
 * staged files of a server that is gone, missing upload jobs), checks the nodes, starts
 * the store worker and the FTP server, and only once it listens creates the admin user
 * of a new cluster.
 */
export async function serveCluster(o: ServeClusterOptions = {}): Promise<ClusterServer> {
  checkOptions(o);
  const { host, port } = parseListen(o.listen ?? DEFAULT_LISTEN);
  const l0 = clusterLayout(o.root ?? DEFAULT_ROOT);
  await initLayout(l0);
  const logFile = openClusterLog(l0);
  let monitor: ClusterMonitor | null = null;
  const logLine = (line: string) => {
    logFile.line(line);
    // the cluster's own failures (store worker, cleanup, repairs) are errors on the terminal
    if (/^cluster: .*\b(failed|AUDIT|dropped|cannot)\b/.test(line)) monitor?.error(line.slice(9));
  };
  let lease: HeldLease;
  try {
    lease = await acquireServeLease(l0, { ttlMs: o.leaseTtlMs, log: logLine });
  } catch (e) {
    await logFile.close();
    throw e;
  }
  let worker: StoreWorker | null = null;
  let cleaner: CleanupWorker | null = null;
  let healthTimer: ReturnType<typeof setInterval> | undefined;
  let srv: Awaited<ReturnType<typeof startFtpServer>> | null = null;
  let ctx: ClusterContext | null = null;
  let dashboard: Dashboard | null = null;
  let stopping: Promise<void> | null = null;
  const stop = () =>
    stopping ??= (async () => {
      clearInterval(healthTimer);
      await dashboard?.close();
      await monitor?.stop();
      await srv?.close();
      await cleaner?.stop();
      await worker?.stop();
      for (const n of ctx?.nodes.values() ?? []) n.close();
      ctx?.space?.stop();
      await lease.release();
      await logFile.close();
    })();
  let reportLost: (why: string) => void = () => {};
  const lost = new Promise<string>((r) => reportLost = r);
  try {
    const opened = await openCluster(o, logLine, () => worker?.kick());
    const { l, users, queue } = opened;
    ctx = opened.ctx;
    monitor = createMonitor(ctx, { replicas: o.replicas ?? 2, reporter: o.reporter });
    const mon = monitor;
    ctx.blocked = () => lease.refusal();
    const guarded = ctx;
    ctx.serial = createSerial(() => assertMayChange(guarded));
    ctx.stagingTag = leaseTag(lease.lease);
    ctx.space = await watchStagingSpace(l, ctx.activeUploads, {
      minFreeBytes: o.minFreeBytes,
      quotaBytes: o.stagingQuotaBytes,
      log: logLine,
    });
    lease.start((why) => {
      o.reporter?.warn(`stopping: this server lost the cluster root's lease: ${why}`);
      void stop().then(() => reportLost(why));
    });
    const gone = lease.previous;
    if (gone && gone.instance !== processIdentity().instance) forgetInstance(gone.instance);
    await recoverQueue(l.queue);
    await recoverCluster(ctx, queue, { goneTag: gone ? leaseTag(gone) : null });
    // Anonymous users see the public folder only (made for them, owned by the admins).
    if (o.anonymous) await makeHome(l, PUBLIC_HOME, 0);
    const c = ctx;
    const checkNodes = async () => {
      for (const node of c.nodes.values()) {
        mon.nodeChecked(node.key, node.label, await node.health());
      }
    };
    await checkNodes();
    healthTimer = setInterval(() => void checkNodes().catch(() => {}), o.healthEveryMs ?? 30_000);
    if (o.storeWorker ?? true) {
      worker = startStoreWorker(ctx, queue, {
        replicas: o.replicas,
        pollMs: o.pollMs,
        retryBaseMs: o.retryBaseMs,
      });
    }
    if ((o.cleanupEveryMs ?? 600_000) > 0) {
      cleaner = startCleanupWorker(ctx, queue, { everyMs: o.cleanupEveryMs ?? 600_000 });
    }
    const tls = o.tls
      ? {
        cert: pem(o.tls.cert, "certificate"),
        key: pem(o.tls.key, "key"),
        required: o.tls.required,
      }
      : undefined;
    srv = await startFtpServer({
      loginTimeoutMs: o.loginTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs,
      ...o.engine,
      fs: createClusterFs(ctx),
      authorizer: users.authorizer,
      site: clusterSiteHandler(l, users, ctx.names),
      host,
      port,
      tls,
      greeting: "hop FTP cluster ready.",
      log: o.engine?.log ?? logLine,
      events: mon.ftpEvents,
    });
    // Only now, listening: a start that failed created no user whose password nobody saw.
    let adminPassword: string | undefined;
    if ((await readPasswd(l)).users.length === 0) {
      adminPassword = (await addUser(l.root, "admin", { admin: true })).password;
      await users.reload();
    }
    const urlHost = srv.address.includes(":") ? `[${srv.address}]` : srv.address;
    mon.listening(`${urlHost}:${srv.port}`);
    mon.startStatusFile();
    mon.watchNodes();
    if (o.http) dashboard = await startDashboard({ ...parseListen(o.http), status: mon.status });
    const url = adminPassword
      ? `ftp://admin:${encodeURIComponent(adminPassword)}@${urlHost}:${srv.port}/`
      : `ftp://${urlHost}:${srv.port}/`;
    o.reporter?.info(
      adminPassword
        ? `cluster ${l.root} created; connect as ${url}`
        : `serving cluster ${l.root} on ${url}`,
      {
        event: "cluster-serve",
        root: l.root,
        host: srv.address,
        port: srv.port,
        nodes: [...ctx.nodes.keys()],
        dashboard: dashboard?.url,
      },
    );
    if (dashboard) {
      o.reporter?.info(`dashboard on ${dashboard.url} (also /status and /metrics)`, {
        event: "dashboard",
        url: dashboard.url,
      });
    }
    logLine(
      `cluster: serving ${l.root} on ${srv.address}:${srv.port}, nodes ${
        [...ctx.nodes.keys()].join(", ")
      }`,
    );
    return {
      host: srv.address,
      port: srv.port,
      url,
      adminPassword,
      root: l.root,
      ctx,
      queue,
      worker,
      lease,
      lost,
      monitor: mon,
      dashboardUrl: dashboard?.url,
      close: stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

function pem(value: string, what: string): string {
  if (value.includes("-----BEGIN")) return value;
  try {
    return fs.readFileSync(value, "utf8");
  } catch (e) {
    throw new HopError(`cannot read the TLS ${what} file ${value}`, {
      hint: "Give the path of a PEM file.",
      cause: e,
    });
  }
}

/**
 * `hop cluster serve`: serve until SIGINT/SIGTERM, then shut down cleanly. Fails
 * (exit 1) when another server took the root over.
 */
export async function runClusterServe(o: ServeClusterOptions = {}): Promise<void> {
  const srv = await serveCluster(o);
  let stop = () => {};
  const signalled = new Promise<null>((resolve) => {
    stop = () => resolve(null);
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  const why = await Promise.race([signalled, srv.lost]);
  process.off("SIGINT", stop);
  process.off("SIGTERM", stop);
  if (why !== null) {
    throw new HopError(`stopped serving ${srv.root}: this server lost its lease (${why})`, {
      hint: "Another hop cluster serve holds the root now; run one server per cluster root.",
    });
  }
  o.reporter?.info("stopping the cluster server");
  await srv.close();
}

/**
 * `hop cluster store --once`: process the jobs ready now (uploads to nodes, deletions)
 * and return what was done. Safe next to a running `serve` (jobs are claimed).
 */
export async function storeClusterOnce(
  o: { root?: string; nodes?: string[]; replicas?: number; reporter?: Reporter } = {},
): Promise<StoreStats> {
  checkOptions(o);
  const l0 = clusterLayout(o.root ?? DEFAULT_ROOT);
  await initLayout(l0);
  const logFile = openClusterLog(l0);
  const { ctx, queue, l } = await openCluster(o, (line) => logFile.line(line));
  try {
    await recoverQueue(l.queue);
    const stats = await storeOnce(ctx, queue, { replicas: o.replicas });
    o.reporter?.info(
      `stored ${stats.stored}, deleted ${stats.deleted}, retried ${stats.retried}, dropped ${stats.dropped}`,
      { event: "cluster-store", ...stats },
    );
    return stats;
  } finally {
    for (const n of ctx.nodes.values()) n.close();
    await logFile.close();
  }
}
