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
import { type ClusterContext, createClusterFs, createSerial } from "./fs.ts";
import { type JobQueue, openJobQueue } from "./jobs.ts";
import { type ClusterLayout, clusterLayout, initLayout } from "./layout.ts";
import { openNode, redactUrl, type StorageNode } from "./nodes.ts";
import { recover as recoverQueue } from "./queue.ts";
import {
  recoverCluster,
  startStoreWorker,
  storeOnce,
  type StoreStats,
  type StoreWorker,
} from "./store.ts";
import { addUser, clusterSiteHandler, openUserDirectory, readPasswd } from "./users.ts";

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
  /** Filename policy (default strict). */
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
  /** Node health check interval (ms, default 30000). */
  healthEveryMs?: number;
  /** Pooled control connections per FTP node (default 16; also the transfers at once). */
  nodeConnections?: number;
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
  /** Stop serving, stop the worker, close node connections. */
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

/** A logger writing `.log/cluster.log` (one line per event, ISO time first). */
function openLog(l: ClusterLayout): { log(line: string): void; close(): Promise<void> } {
  const out = fs.createWriteStream(path.join(l.log, "cluster.log"), { flags: "a" });
  out.on("error", () => {});
  return {
    log: (line) => void out.write(`${new Date().toISOString()} ${line.replace(/[\r\n]/g, " ")}\n`),
    close: () => new Promise<void>((r) => out.end(() => r())),
  };
}

/** Hold `ROOT/.hop/serve.pid` so two processes never serve one root. */
async function lockRoot(l: ClusterLayout): Promise<() => Promise<void>> {
  const dir = path.join(l.root, ".hop");
  await fsp.mkdir(dir, { recursive: true });
  const file = path.join(dir, "serve.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fsp.open(file, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => fsp.rm(file, { force: true });
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      const pid = Number((await fsp.readFile(file, "utf8").catch(() => "")).trim());
      let alive = false;
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (err) {
          alive = (err as { code?: string }).code === "EPERM";
        }
      }
      if (alive) {
        throw new HopError(`the cluster at ${l.root} is already served by process ${pid}`, {
          hint: "Stop that server first, or serve another --root.",
        });
      }
      await fsp.rm(file, { force: true }); // left by a dead server
    }
  }
  throw new HopError(`cannot lock ${file}`, {
    hint: "Remove it if no hop cluster serve runs on this root.",
  });
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
  const users = await openUserDirectory(l, { anonymous: o.anonymous, log: logLine });
  const queue = openJobQueue(l.queue, kick, { replicate: true });
  const ctx: ClusterContext = {
    layout: l,
    names: o.names ?? "strict",
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
 * Serve a cluster until `close()`. Creates the root layout, recovers from a crash
 * (queue claims, unacknowledged staged files, missing upload jobs), creates the admin
 * user on first start, checks the nodes, starts the store worker and the FTP server.
 */
export async function serveCluster(o: ServeClusterOptions = {}): Promise<ClusterServer> {
  checkOptions(o);
  const { host, port } = parseListen(o.listen ?? DEFAULT_LISTEN);
  const l0 = clusterLayout(o.root ?? DEFAULT_ROOT);
  await initLayout(l0);
  const unlock = await lockRoot(l0);
  const logFile = openLog(l0);
  let worker: StoreWorker | null = null;
  let cleaner: CleanupWorker | null = null;
  let healthTimer: ReturnType<typeof setInterval> | undefined;
  const logLine = (line: string) => logFile.log(line);
  try {
    const { l, ctx, users, queue } = await openCluster(o, logLine, () => worker?.kick());
    await recoverQueue(l.queue);
    await recoverCluster(ctx, queue);
    let adminPassword: string | undefined;
    if ((await readPasswd(l)).users.length === 0) {
      adminPassword = (await addUser(l.root, "admin", { admin: true })).password;
      await users.reload();
    }
    const up = new Map<string, boolean>();
    const checkNodes = async () => {
      for (const node of ctx.nodes.values()) {
        const ok = await node.health();
        const was = up.get(node.key);
        if (was === ok) continue;
        up.set(node.key, ok);
        logLine(`cluster: node ${node.label} is ${ok ? "up" : "DOWN"}`);
        if (!ok) o.reporter?.warn(`node ${node.label} does not answer; it is retried`);
        else if (was === false) o.reporter?.info(`node ${node.label} is back`);
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
    const srv = await startFtpServer({
      ...o.engine,
      fs: createClusterFs(ctx),
      authorizer: users.authorizer,
      site: clusterSiteHandler(l, users),
      host,
      port,
      tls,
      greeting: "hop FTP cluster ready.",
      log: o.engine?.log ?? logLine,
    });
    const urlHost = srv.address.includes(":") ? `[${srv.address}]` : srv.address;
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
      },
    );
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
      async close() {
        clearInterval(healthTimer);
        await srv.close();
        await cleaner?.stop();
        await worker?.stop();
        for (const n of ctx.nodes.values()) n.close();
        await logFile.close();
        await unlock();
      },
    };
  } catch (e) {
    clearInterval(healthTimer);
    await cleaner?.stop();
    await worker?.stop();
    await logFile.close();
    await unlock();
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
 * `hop cluster serve`: serve until SIGINT/SIGTERM, then shut down cleanly.
 */
export async function runClusterServe(o: ServeClusterOptions = {}): Promise<void> {
  const srv = await serveCluster(o);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
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
  const logFile = openLog(l0);
  const { ctx, queue, l } = await openCluster(o, (line) => logFile.log(line));
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
