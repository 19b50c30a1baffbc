/**
 * What a cluster is doing, for people (`hop cluster status`, the dashboard of
 * `serve --http`, one terminal line per login, transfer, node state change and
 * error) and for scripts (`--json`, `/status`, Prometheus `/metrics`):
 * each node up or down with its free space, load and last error; copies per
 * file (how many have fewer than `--replicas`); the queue's depth and oldest
 * job; staging use; live sessions and transfers with their rates; totals.
 *
 * A running server keeps a {@linkcode ClusterMonitor}, fed by the FTP engine's
 * events, and writes its status to `ROOT/.hop/status.json` every few seconds;
 * `hop cluster status` reads that file when a server runs, and works the
 * status out itself (nodes checked, tree walked) when none does.
 *
 * @example
 * ```ts
 * const mon = createMonitor(ctx, { replicas: 2, reporter });
 * await startFtpServer({ ...opts, events: mon.ftpEvents });
 * console.log(await mon.status());
 * ```
 *
 * @module
 */
import * as fsp from "node:fs/promises";
import { hostname } from "node:os";
import * as path from "node:path";
import process from "node:process";
import type { FtpEvents, FtpTransferInfo } from "../ftp/types.ts";
import { formatBytes, type Reporter } from "../ui/report.ts";
import type { ClusterContext } from "./fs.ts";
import type { ClusterLayout } from "./layout.ts";
import { stagedId } from "./links.ts";
import { stats as queueStats } from "./queue.ts";
import { walkTree } from "./scan.ts";

/** One storage node as a status shows it. */
export interface NodeStatus {
  key: string;
  label: string;
  up: boolean;
  /** Transfers and operations under way on it. */
  load: number;
  /** Free bytes, or null when the node cannot tell (most FTP servers). */
  freeBytes: number | null;
  lastError: { message: string; at: number } | null;
}

/** Copies per file, from a walk of the link files. */
export interface ReplicationStatus {
  /** When the walk ended (ms since the epoch). */
  scannedAt: number;
  replicas: number;
  files: number;
  bytes: number;
  /** Number of copies -> files with that many ("0", "1", ...). */
  byCopies: Record<string, number>;
  /** Stored files with fewer copies than `replicas` (at least one). */
  underReplicated: number;
  /** Stored files with no copy left (and no staged data). */
  lost: number;
  /** Uploads acknowledged but not yet stored on nodes. */
  pending: number;
  /** Link files that do not decode. */
  unreadable: number;
}

/** What the last `hop audit` of the cluster found (it records it in `.hop/audit.json`). */
export interface LastAudit {
  /** When it ended (ms since the epoch). */
  time: number;
  /** Findings by kind (`orphan`, `missing`, `size-mismatch`, `under-replicated`, `lost`...). */
  counts: Record<string, number>;
  links: number;
  nodeFiles: number;
  /** Nodes it could not list (their copies were not checked). */
  nodesDown: string[];
}

/** A session as a status shows it. */
export interface SessionStatus {
  id: string;
  ip: string;
  user?: string;
  /** ms since the epoch. */
  since: number;
}

/** A transfer under way. */
export interface TransferStatus {
  id: number;
  session: string;
  user: string;
  ip: string;
  path: string;
  direction: "upload" | "download";
  bytes: number;
  startedAt: number;
  /** Bytes per second since it started. */
  rate: number;
}

/** Counters since the server started. */
export interface Totals {
  logins: number;
  loginFailures: number;
  uploads: number;
  downloads: number;
  transfersFailed: number;
  bytesIn: number;
  bytesOut: number;
  errors: number;
}

/** Everything `hop cluster status`, `/status` and `/metrics` show. */
export interface ClusterStatus {
  root: string;
  /** The server that wrote this status, or null when worked out without one. */
  server: { pid: number; host: string; startedAt: number; listen: string } | null;
  /** When this status was made (ms since the epoch). */
  time: number;
  nodes: NodeStatus[];
  replication: ReplicationStatus | null;
  /** The last `hop audit`, or null when none ran on this root. */
  audit: LastAudit | null;
  queue: { depth: number; claimed: number; oldestAgeSeconds: number | null };
  staging: { files: number; bytes: number };
  sessions: SessionStatus[];
  transfers: TransferStatus[];
  totals: Totals;
  /** The last events, newest last (one line each). */
  recent: string[];
}

/** Where `hop audit` records what it found, for status pages and metrics. */
export function auditFile(l: ClusterLayout): string {
  return path.join(l.root, ".hop", "audit.json");
}

/** Records what an audit found (written whole: a reader sees the old record or the new). */
export async function recordAudit(l: ClusterLayout, a: LastAudit): Promise<void> {
  const file = auditFile(l);
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(tmp, JSON.stringify(a));
  await fsp.rename(tmp, file);
}

/** The last audit's record, or null. */
export async function lastAudit(l: ClusterLayout): Promise<LastAudit | null> {
  try {
    return JSON.parse(await fsp.readFile(auditFile(l), "utf8")) as LastAudit;
  } catch {
    return null;
  }
}

/** The status file a running server keeps up to date. */
export function statusFile(l: ClusterLayout): string {
  return path.join(l.root, ".hop", "status.json");
}

/** Node statuses; `checked` gives known health (a server's), else each node is asked now. */
export async function nodeStatuses(
  ctx: ClusterContext,
  checked?: Map<string, boolean>,
): Promise<NodeStatus[]> {
  return await Promise.all([...ctx.nodes.values()].map(async (n) => {
    const up = checked?.get(n.key) ?? await n.health();
    return {
      key: n.key,
      label: n.label,
      up: up && !n.isDown(),
      load: n.load,
      freeBytes: up ? await n.freeSpace().catch(() => null) : null,
      lastError: n.lastError?.() ?? null,
    };
  }));
}

/** Files and bytes waiting in staging. */
export async function stagingStatus(l: ClusterLayout): Promise<{ files: number; bytes: number }> {
  const out = { files: 0, bytes: 0 };
  for (const f of await fsp.readdir(l.staging, { withFileTypes: true }).catch(() => [])) {
    if (!f.isFile()) continue;
    const st = await fsp.stat(path.join(l.staging, f.name)).catch(() => null);
    if (!st) continue;
    out.files++;
    out.bytes += st.size;
  }
  return out;
}

/** Copies per file, from a walk of every link file (bounded memory). */
export async function replicationStatus(
  l: ClusterLayout,
  replicas: number,
): Promise<ReplicationStatus> {
  const out: ReplicationStatus = {
    scannedAt: 0,
    replicas,
    files: 0,
    bytes: 0,
    byCopies: {},
    underReplicated: 0,
    lost: 0,
    pending: 0,
    unreadable: 0,
  };
  for await (const it of walkTree(l)) {
    if (it.kind === "unreadable") out.unreadable++;
    if (it.kind !== "link") continue;
    out.files++;
    out.bytes += it.link.size;
    const n = new Set(it.link.copies.map((c) => c.node)).size;
    out.byCopies[String(n)] = (out.byCopies[String(n)] ?? 0) + 1;
    if (stagedId(it.link) !== null) out.pending++;
    else if (n === 0 && it.link.size > 0) out.lost++;
    else if (n < replicas && it.link.size > 0) out.underReplicated++;
  }
  out.scannedAt = Date.now();
  return out;
}

/** The queue's depth and oldest job. */
export async function queueStatus(l: ClusterLayout): Promise<ClusterStatus["queue"]> {
  const q = await queueStats(l.queue);
  return {
    depth: q.depth,
    claimed: q.claimed,
    oldestAgeSeconds: q.oldestMs === null ? null : Math.max(0, (Date.now() - q.oldestMs) / 1000),
  };
}

/** Options of {@linkcode createMonitor}. */
export interface MonitorOptions {
  replicas: number;
  /** Terminal lines (one per login, transfer, node state change and error). */
  reporter?: Reporter;
  /**
   * Walk the link files again after this long (ms; default: ten times as long
   * as the last walk took, at least 5 s, so a big tree is not walked all the time).
   */
  replicationEveryMs?: number;
}

/** The live view a running server keeps. */
export interface ClusterMonitor {
  /** Hooks for the FTP engine. */
  ftpEvents: FtpEvents;
  /** A node answered a health check (or not); says so when that changed. */
  nodeChecked(key: string, label: string, up: boolean): void;
  /** Something failed outside a session (store worker, cleanup...). */
  error(message: string): void;
  /** Where this server listens (for the status). */
  listening(listen: string): void;
  /** The status now (the link walk is redone in the background when old). */
  status(): Promise<ClusterStatus>;
  /** Starts writing `.hop/status.json` every `everyMs` (default 2000). */
  startStatusFile(everyMs?: number): void;
  /**
   * Watches the nodes every second: a node the cluster found failing (a
   * transfer, a listing) is said down at once, and asked again every few
   * seconds until it answers, then said back.
   */
  watchNodes(retryMs?: number): void;
  /** Stops the status file (and removes it). */
  stop(): Promise<void>;
}

/** A monitor of the cluster `ctx`, for a server. */
export function createMonitor(ctx: ClusterContext, o: MonitorOptions): ClusterMonitor {
  const startedAt = Date.now();
  const r = o.reporter;
  const sessions = new Map<string, SessionStatus>();
  const transfers = new Map<number, FtpTransferInfo>();
  const health = new Map<string, boolean>();
  const totals: Totals = {
    logins: 0,
    loginFailures: 0,
    uploads: 0,
    downloads: 0,
    transfersFailed: 0,
    bytesIn: 0,
    bytesOut: 0,
    errors: 0,
  };
  const recent: string[] = [];
  let listen = "";
  let replication: ReplicationStatus | null = null;
  let walking: Promise<void> | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;
  let watcher: ReturnType<typeof setInterval> | undefined;
  const asked = new Map<string, number>();
  let writing: Promise<void> = Promise.resolve();

  const said = (line: string, warn = false, event?: Record<string, unknown>) => {
    recent.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
    if (recent.length > 50) recent.shift();
    if (warn) r?.warn(line, event);
    else r?.info(line, event);
  };
  let walkMs = 0;
  const walk = () => {
    const t0 = Date.now();
    walking ??= replicationStatus(ctx.layout, o.replicas)
      .then((s) => {
        replication = s;
        walkMs = Date.now() - t0;
      })
      .catch((e) => ctx.log(`cluster: status: cannot walk the link files: ${(e as Error).message}`))
      .finally(() => walking = null);
    return walking;
  };

  const ftpEvents: FtpEvents = {
    login(e) {
      totals.logins++;
      sessions.set(e.session, { id: e.session, ip: e.ip, user: e.user, since: Date.now() });
      said(`login ${e.user} from ${e.ip}`, false, { event: "login", user: e.user, ip: e.ip });
    },
    loginFailed(e) {
      totals.loginFailures++;
      said(`failed login as ${JSON.stringify(e.user)} from ${e.ip}`, true, {
        event: "login-failed",
        user: e.user,
        ip: e.ip,
      });
    },
    disconnect(e) {
      sessions.delete(e.session);
    },
    transferStart(t) {
      if (!sessions.has(t.session)) {
        sessions.set(t.session, { id: t.session, ip: t.ip, user: t.user, since: t.startedAt });
      }
      transfers.set(t.id, t);
    },
    transferEnd(t, res) {
      transfers.delete(t.id);
      const secs = Math.max((Date.now() - t.startedAt) / 1000, 0.001);
      if (t.direction === "upload") totals.bytesIn += res.bytes;
      else totals.bytesOut += res.bytes;
      const event = {
        event: "transfer",
        user: t.user,
        path: t.path,
        direction: t.direction,
        bytes: res.bytes,
        seconds: Math.round(secs * 1000) / 1000,
        ok: res.ok,
      };
      if (!res.ok) {
        totals.transfersFailed++;
        return said(
          `${t.user}: ${t.direction} of ${t.path} failed after ${formatBytes(res.bytes)}: ${
            res.error ?? "failed"
          }`,
          true,
          event,
        );
      }
      if (t.direction === "upload") totals.uploads++;
      else totals.downloads++;
      said(
        `${t.user} ${t.direction === "upload" ? "stored" : "fetched"} ${t.path} (${
          formatBytes(res.bytes)
        }, ${formatBytes(res.bytes / secs)}/s)`,
        false,
        event,
      );
    },
    error(e) {
      totals.errors++;
      said(`error in ${e.what}${e.user ? ` (${e.user})` : ""}: ${e.message}`, true, {
        event: "error",
        user: e.user,
        what: e.what,
      });
    },
  };

  const status = async (): Promise<ClusterStatus> => {
    const every = o.replicationEveryMs ?? Math.max(5000, 10 * walkMs);
    if (!replication || Date.now() - replication.scannedAt > every) {
      const w = walk();
      if (!replication) await w;
    }
    const now = Date.now();
    return {
      root: ctx.layout.root,
      server: { pid: process.pid, host: hostname(), startedAt, listen },
      time: now,
      nodes: await nodeStatuses(ctx, health),
      replication,
      audit: await lastAudit(ctx.layout),
      queue: await queueStatus(ctx.layout),
      staging: await stagingStatus(ctx.layout),
      sessions: [...sessions.values()],
      transfers: [...transfers.values()].map((t) => {
        const bytes = t.bytes();
        return {
          id: t.id,
          session: t.session,
          user: t.user,
          ip: t.ip,
          path: t.path,
          direction: t.direction,
          bytes,
          startedAt: t.startedAt,
          rate: Math.round(bytes / Math.max((now - t.startedAt) / 1000, 0.001)),
        };
      }),
      totals: { ...totals },
      recent: [...recent],
    };
  };

  const nodeChecked = (key: string, label: string, up: boolean) => {
    const was = health.get(key);
    health.set(key, up);
    if (was === up) return;
    ctx.log(`cluster: node ${label} is ${up ? "up" : "DOWN"}`);
    if (!up) {
      const why = ctx.nodes.get(key)?.lastError?.()?.message;
      said(`node ${label} is down${why ? `: ${why}` : ""}; it is retried`, true, {
        event: "node-down",
        node: label,
      });
    } else if (was === false) {
      said(`node ${label} is back`, false, { event: "node-up", node: label });
    }
  };

  const writeStatus = async () => {
    const file = statusFile(ctx.layout);
    const tmp = `${file}.${process.pid}.tmp`;
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(tmp, JSON.stringify(await status()));
    await fsp.rename(tmp, file);
  };

  return {
    ftpEvents,
    nodeChecked,
    error(message) {
      totals.errors++;
      said(message, true, { event: "error" });
    },
    listening(l) {
      listen = l;
    },
    status,
    watchNodes(retryMs = 5000) {
      watcher = setInterval(() => {
        for (const n of ctx.nodes.values()) {
          if (n.isDown() && health.get(n.key) !== false) nodeChecked(n.key, n.label, false);
          const since = Date.now() - (asked.get(n.key) ?? 0);
          if (health.get(n.key) === false && !n.isDown() && since > retryMs) {
            asked.set(n.key, Date.now());
            void n.health().then((ok) => nodeChecked(n.key, n.label, ok), () => {});
          }
        }
      }, 1000);
    },
    startStatusFile(everyMs = 2000) {
      const tick = () => {
        writing = writing.then(writeStatus).catch((e) =>
          ctx.log(`cluster: cannot write the status file: ${(e as Error).message}`)
        );
      };
      tick();
      timer = setInterval(tick, everyMs);
    },
    async stop() {
      clearInterval(timer);
      clearInterval(watcher);
      await writing;
      await walking;
      await fsp.rm(statusFile(ctx.layout), { force: true });
    },
  };
}

/**
 * The status of a cluster from another process: the running server's status
 * file when it is fresh, else worked out here (nodes asked, tree walked).
 */
export async function readClusterStatus(
  ctx: ClusterContext,
  replicas: number,
): Promise<ClusterStatus> {
  const file = statusFile(ctx.layout);
  try {
    const s = JSON.parse(await fsp.readFile(file, "utf8")) as ClusterStatus;
    // written every 2 s by a live server; an old one was left by a server that is gone
    if (Date.now() - s.time < 15_000) return s;
  } catch {
    // no server (or none that writes a status)
  }
  return {
    root: ctx.layout.root,
    server: null,
    time: Date.now(),
    nodes: await nodeStatuses(ctx),
    replication: await replicationStatus(ctx.layout, replicas),
    audit: await lastAudit(ctx.layout),
    queue: await queueStatus(ctx.layout),
    staging: await stagingStatus(ctx.layout),
    sessions: [],
    transfers: [],
    totals: {
      logins: 0,
      loginFailures: 0,
      uploads: 0,
      downloads: 0,
      transfersFailed: 0,
      bytesIn: 0,
      bytesOut: 0,
      errors: 0,
    },
    recent: [],
  };
}

/** `hop cluster status` for people: one line per fact. */
export function formatStatus(s: ClusterStatus): string[] {
  const out: string[] = [];
  const ago = (ms: number) => `${Math.round((s.time - ms) / 1000)} s ago`;
  out.push(
    s.server
      ? `cluster ${s.root}: served by pid ${s.server.pid} on ${s.server.host} (${s.server.listen}), up since ${
        new Date(s.server.startedAt).toISOString()
      }`
      : `cluster ${s.root}: no server running (status worked out now)`,
  );
  for (const n of s.nodes) {
    const parts = [`node ${n.label}: ${n.up ? "up" : "DOWN"}`];
    parts.push(`free ${n.freeBytes === null ? "unknown" : formatBytes(n.freeBytes)}`);
    parts.push(`load ${n.load}`);
    if (n.lastError) parts.push(`last error ${ago(n.lastError.at)}: ${n.lastError.message}`);
    out.push(parts.join(", "));
  }
  const rep = s.replication;
  if (rep) {
    const copies = Object.entries(rep.byCopies).sort(([a], [b]) => Number(a) - Number(b))
      .map(([c, n]) => `${n} with ${c}`).join(", ");
    out.push(
      `files: ${rep.files} (${formatBytes(rep.bytes)}); copies: ${copies || "none"}; ` +
        `${rep.underReplicated} under ${rep.replicas} copies, ${rep.lost} lost, ` +
        `${rep.pending} waiting to be stored` +
        (rep.unreadable ? `, ${rep.unreadable} unreadable link file(s)` : "") +
        ` (counted ${ago(rep.scannedAt)})`,
    );
  }
  const a = s.audit;
  if (a) {
    const found = Object.entries(a.counts).filter(([k, n]) => n > 0 && k !== "ok")
      .map(([k, n]) => `${n} ${k}`).join(", ");
    out.push(
      `last audit ${ago(a.time)}: ${found || "nothing found"} (${a.links} links, ${a.nodeFiles} ` +
        `node files${a.nodesDown.length ? `; not listed: ${a.nodesDown.join(", ")}` : ""})`,
    );
  } else out.push("last audit: none (hop audit checks the nodes against the link files)");
  out.push(
    `queue: ${s.queue.depth} job(s)${s.queue.claimed ? ` (${s.queue.claimed} in progress)` : ""}` +
      (s.queue.oldestAgeSeconds !== null
        ? `, oldest queued ${Math.round(s.queue.oldestAgeSeconds)} s ago`
        : ""),
  );
  out.push(`staging: ${s.staging.files} file(s), ${formatBytes(s.staging.bytes)}`);
  if (s.server) {
    out.push(`sessions: ${s.sessions.length}; transfers: ${s.transfers.length}`);
    for (const t of s.transfers) {
      out.push(
        `  ${t.user} ${t.direction} ${t.path}: ${formatBytes(t.bytes)} at ${formatBytes(t.rate)}/s`,
      );
    }
    const tt = s.totals;
    out.push(
      `since start: ${tt.logins} login(s), ${tt.loginFailures} failed; ${tt.uploads} upload(s) ` +
        `(${formatBytes(tt.bytesIn)}), ${tt.downloads} download(s) (${
          formatBytes(tt.bytesOut)
        }), ${tt.transfersFailed} failed transfer(s), ${tt.errors} error(s)`,
    );
  }
  return out;
}
