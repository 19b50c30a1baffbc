/**
 * The store worker: takes jobs from the queue and moves data.
 *
 * - upload: copies a staged file to `replicas` nodes chosen by load and free space,
 *   at node path `<spread>/<YYMMDD-HHMMSS>-<tag>-<name>` (spread: two levels from a hash
 *   of the staging id, tag: 8 more hex digits of it, so that files of one name and one
 *   second never share a node path; the time is the link's mtime, UTC),
 *   checks the size on each node, rewrites the link file atomically, and removes the
 *   staged copy only once every copy is confirmed. A node that fails is skipped for
 *   another; a job short of copies is retried with backoff, nothing is lost meanwhile
 *   (the staged data stays and is served).
 * - delete: removes every copy named by a `.deleted/` link file, then the link file.
 * - replicate (when the queue hands them out, see `openJobQueue`): `replicate.ts`.
 *
 * Runs inside `serve` ({@linkcode startStoreWorker}) and once (`hop cluster store
 * --once`, {@linkcode storeOnce}). {@linkcode recoverCluster} repairs what a crash left:
 * staged files nobody links (never acknowledged) are removed, staged links without a
 * job get one.
 *
 * @module
 */

import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { encodeName } from "../codec/names.ts";
import type { ClusterContext } from "./fs.ts";
import {
  deleteJob,
  jobDiskPath,
  type JobQueue,
  type QueueJob,
  relPath,
  STALE,
  type TakenJob,
  uploadJob,
} from "./jobs.ts";
import { LINK_SUFFIX, RESERVED_ROOT_NAMES } from "./layout.ts";
import {
  type FileLink,
  type NodeCopy,
  readFileLink,
  readInfo,
  stagedId,
  withStaged,
  writeInfo,
} from "./links.ts";
import { chooseNodes, NodeLeftoverError } from "./nodes.ts";
import { runReplicateJob } from "./replicate.ts";

/** Options of the store worker. */
export interface StoreOptions {
  /** Copies of each file (default 2; capped by the number of nodes). */
  replicas?: number;
  /** First retry delay of a job short of copies (ms, default 2000; doubles up to 5 min). */
  retryBaseMs?: number;
  /** Jobs run at once (default 4). */
  jobsAtOnce?: number;
}

/** What one pass did. */
export interface StoreStats {
  stored: number;
  deleted: number;
  retried: number;
  dropped: number;
  /** Replicate jobs done (only when the queue hands them out). */
  replicated?: number;
}

/** `YYMMDD-HHMMSS` (UTC) of `ms`. */
export function nodeStamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/**
 * Node path of a new file: spreading directory (2 levels from a hash of `seed`, the
 * staging id), stamp, 8 more hex digits of that hash, name. Without those digits two
 * files of one name and one mtime second (a tree uploaded by a mirror tool) met at the
 * same node path one time in 65,536 per pair, and the second store replaced the first's
 * data under its link.
 */
export function nodePathFor(seed: string, name: string, ms: number): string {
  const h = createHash("sha256").update(seed).digest("hex");
  return `${h.slice(0, 2)}/${h.slice(2, 4)}/${nodeStamp(ms)}-${h.slice(4, 12)}-${encodeName(name)}`;
}

const attempts = new Map<string, number>();

/**
 * Upload jobs under way, by link path: a second job for the same link (queued by a new
 * STOR or RNTO meanwhile) waits for the first, so that two never store the same staged
 * file at the same node path at once (the one that finds the link changed removes its
 * copies).
 */
const uploading = new Map<string, Promise<unknown>>();

function backoff(key: string, base: number): number {
  const n = (attempts.get(key) ?? 0) + 1;
  attempts.set(key, n);
  return Math.min(base * 2 ** (n - 1), 300_000);
}

/** Run one upload job. Returns "done", "retry" (with reason) or "dropped". */
async function runUpload(
  ctx: ClusterContext,
  job: QueueJob & { type: "upload" },
  replicas: number,
): Promise<{ result: "done" | "dropped" | "retry"; reason?: string }> {
  const l = ctx.layout;
  const linkFile = jobDiskPath(l, job.path);
  if (!linkFile || !linkFile.endsWith(LINK_SUFFIX)) {
    return { result: "dropped", reason: "bad link path" };
  }
  // The job's file: its link at the job's path, of the job's size. Not its mtime: MFMT
  // changes no byte and queues no job (`fs.ts`), so a staged link's job may name an older
  // mtime. A link replaced since (a new STOR) is staged anew with a job of its own; this
  // one may store it first, that one then finds nothing staged.
  const same = (x: FileLink | null) => x !== null && x.size === job.size;
  const link = await readFileLink(linkFile);
  const id = link ? stagedId(link) : null;
  if (!link || !same(link) || id === null) {
    return { result: "dropped", reason: STALE };
  }
  const staged = path.join(l.staging, id);
  const st = await fsp.stat(staged).catch(() => null);
  if (!st) {
    ctx.log(`cluster: AUDIT staged data .staging/${id} of ${job.path} is missing`);
    if (link.copies.length === 0) {
      return { result: "dropped", reason: "staged data missing, no copy on a node (lost)" };
    }
    // Copies were made before the staged data went: the link keeps them, and only them.
    const fixed = await ctx.serial(async () => {
      const now = await readFileLink(linkFile);
      if (!same(now) || stagedId(now!) !== id) return false;
      await writeInfo(l.tmp, linkFile, withStaged(now!, null));
      if (now!.copies.length < Math.min(replicas, ctx.nodes.size)) {
        await ctx.jobs.enqueue({
          type: "replicate",
          link: job.path,
          size: now!.size,
          mtime: now!.mtime,
          nodes: [],
        });
      }
      return true;
    });
    return fixed
      ? { result: "done" }
      : { result: "dropped", reason: "link changed while recording its copies" };
  }
  const want = Math.min(replicas, ctx.nodes.size);
  const copies: NodeCopy[] = link.copies.filter((c) => ctx.nodes.has(c.node));
  // Deterministic per staged file: a retry after a crash mid-copy overwrites its own
  // partial copy instead of leaving an orphan. The stamp is the upload time.
  const nodePath = link.copies[0]?.path ?? nodePathFor(id, link.name, link.mtime * 1000);
  const exclude = new Set(copies.map((c) => c.node));
  const made: NodeCopy[] = [];
  while (copies.length + made.length < want) {
    const chosen = await chooseNodes(
      [...ctx.nodes.values()],
      want - copies.length - made.length,
      st.size,
      exclude,
    );
    if (chosen.length === 0) break;
    const results = await Promise.allSettled(chosen.map(async (node) => {
      exclude.add(node.key);
      // Atomic on the node: a temporary name, its size checked, then renamed.
      await node.put(
        nodePath,
        fs.createReadStream(staged, { highWaterMark: 256 * 1024 }),
        st.size,
      );
      return { node: node.key, path: nodePath };
    }));
    for (const [i, r] of results.entries()) {
      if (r.status === "fulfilled") made.push(r.value);
      else {
        ctx.log(
          `cluster: store ${job.path} on ${chosen[i].label} failed: ${(r.reason as Error).message}`,
        );
        await noteLeftover(ctx, chosen[i].key, r.reason);
      }
    }
  }
  const all = [...copies, ...made];
  const complete = all.length >= want && want > 0;
  const outcome = await ctx.serial(async () => {
    const now = await readFileLink(linkFile);
    // The same staged data (a new mtime alone, MFMT after STOR, changes no byte): the
    // copies are its copies. The job queued for the new mtime then finds nothing staged.
    if (now === null || now.size !== job.size || stagedId(now) !== id) return "changed" as const;
    const next: FileLink = withStaged({ ...now!, copies: all }, complete ? null : id);
    if (made.length > 0 || complete) await writeInfo(l.tmp, linkFile, next);
    return "written" as const;
  });
  if (outcome === "changed") {
    // Renamed, replaced or deleted meanwhile: what we just stored is nobody's.
    for (const c of made) await ctx.nodes.get(c.node)?.remove(c.path).catch(() => false);
    return { result: "dropped", reason: "link changed while storing" };
  }
  if (!complete) return { result: "retry", reason: `${all.length} of ${want} copies stored` };
  await fsp.rm(staged, { force: true });
  ctx.space?.freed(st.size);
  ctx.log(`cluster: stored ${job.path} (${st.size} bytes) on ${all.map((c) => c.node).join(", ")}`);
  return { result: "done" };
}

/**
 * A node write failed and left its temporary file on the node (`NodeLeftoverError`):
 * a `.deleted/` entry names it and a delete job is queued, so the store worker and
 * `hop cleanup` delete it once the node answers again. Other errors: nothing to do.
 */
export async function noteLeftover(
  ctx: ClusterContext,
  node: string,
  error: unknown,
): Promise<void> {
  if (!(error instanceof NodeLeftoverError)) return;
  const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const name = error.leftover.split("/").pop()!;
  const entry = `${stamp}-${randomBytes(4).toString("hex")}-${name}${LINK_SUFFIX}`;
  try {
    await writeInfo(ctx.layout.tmp, path.join(ctx.layout.deleted, entry), {
      kind: "file",
      name,
      size: 0,
      uid: 0,
      mtime: Math.floor(Date.now() / 1000),
      copies: [{ node, path: error.leftover }],
      extra: [],
    });
    await ctx.jobs.enqueue(deleteJob(entry));
  } catch (e) {
    ctx.log(`cluster: cannot note leftover ${error.leftover} on ${node}: ${(e as Error).message}`);
  }
}

/** Run one delete job (also used by `hop cleanup`, `cleanup.ts`). */
export async function runDelete(
  ctx: ClusterContext,
  job: QueueJob & { type: "delete" },
): Promise<{ result: "done" | "dropped" | "retry"; reason?: string }> {
  const l = ctx.layout;
  const file = jobDiskPath(l, job.link);
  if (!file || !file.startsWith(l.deleted + path.sep)) {
    return { result: "dropped", reason: "not a .deleted entry" };
  }
  const link = await readFileLink(file);
  if (!link) return { result: "done" };
  const left: NodeCopy[] = [];
  let failed = 0;
  let unconfigured = 0;
  for (const c of link.copies) {
    if (job.nodes.length > 0 && !job.nodes.includes(c.node)) {
      left.push(c);
      continue;
    }
    const node = ctx.nodes.get(c.node);
    if (!node) {
      left.push(c);
      unconfigured++;
      continue;
    }
    try {
      await node.remove(c.path);
    } catch (e) {
      ctx.log(`cluster: delete ${c.path} on ${node.label} failed: ${(e as Error).message}`);
      left.push(c);
      failed++;
    }
  }
  const gone = await ctx.serial(async () => {
    const id = stagedId(link);
    if (id !== null) await fsp.rm(path.join(l.staging, id), { force: true });
    if (left.length === 0) {
      await fsp.rm(file, { force: true });
      return true;
    }
    await writeInfo(l.tmp, file, withStaged({ ...link, copies: left }, null));
    return false;
  });
  if (gone) return { result: "done" };
  if (failed > 0) return { result: "retry", reason: `${failed} copies not deleted yet` };
  return {
    result: "dropped",
    reason: `${unconfigured} copies on nodes not configured stay listed in ${job.link}`,
  };
}

async function runJob(
  ctx: ClusterContext,
  t: TakenJob,
  opts: StoreOptions,
  stats: StoreStats,
): Promise<void> {
  const job = t.job;
  const key = job.type === "upload"
    ? `u:${job.path}:${job.mtime}`
    : job.type === "delete"
    ? `d:${job.link}`
    : `r:${job.link}:${job.mtime}`;
  let r: { result: "done" | "dropped" | "retry"; reason?: string };
  try {
    if (job.type === "upload") {
      const at = `${ctx.layout.root}\0${job.path}`;
      for (let p = uploading.get(at); p; p = uploading.get(at)) await p.catch(() => {});
      const run = runUpload(ctx, job, opts.replicas ?? 2);
      uploading.set(at, run);
      try {
        r = await run;
      } finally {
        if (uploading.get(at) === run) uploading.delete(at);
      }
    } else if (job.type === "delete") r = await runDelete(ctx, job);
    else r = await runReplicateJob(ctx, job, opts.replicas ?? 2);
  } catch (e) {
    r = { result: "retry", reason: (e as Error).message };
  }
  if (r.result === "retry") {
    const delay = backoff(key, opts.retryBaseMs ?? 2000);
    ctx.log(`cluster: job ${job.type} retried in ${delay} ms: ${r.reason}`);
    stats.retried++;
    await t.retry(delay, r.reason ?? "");
    return;
  }
  attempts.delete(key);
  if (r.result === "dropped") {
    // A job made stale by a later change (RNTO, a new STOR...) is routine: that
    // change queued its own job; no error then.
    ctx.log(
      r.reason === STALE
        ? `cluster: job ${job.type} not needed any more: ${r.reason}`
        : `cluster: job ${job.type} dropped: ${r.reason}`,
    );
    stats.dropped++;
  } else if (job.type === "upload") stats.stored++;
  else if (job.type === "delete") stats.deleted++;
  else stats.replicated = (stats.replicated ?? 0) + 1;
  await t.complete();
}

/**
 * Take and run jobs until none is ready (or this process may not change the tree).
 * Errors of one job are its own (retried); an error taking a job ends the lane.
 */
async function lane(
  ctx: ClusterContext,
  queue: JobQueue,
  opts: StoreOptions,
  stats: StoreStats,
  stop: () => boolean = () => false,
): Promise<void> {
  for (;;) {
    // stopped, or holding off for uploads; or not holding the root: its next holder does it
    if (stop() || ctx.blocked?.()) return;
    const t = await queue.take();
    if (!t) return;
    await runJob(ctx, t, opts, stats);
  }
}

/**
 * Process every job that is ready now, `jobsAtOnce` at a time (default 4: a job stuck
 * on a sick node does not hold the others); returns what was done.
 */
export async function storeOnce(
  ctx: ClusterContext,
  queue: JobQueue,
  opts: StoreOptions = {},
): Promise<StoreStats> {
  const stats: StoreStats = { stored: 0, deleted: 0, retried: 0, dropped: 0 };
  const n = Math.max(1, opts.jobsAtOnce ?? 4);
  await Promise.all(Array.from({ length: n }, () => lane(ctx, queue, opts, stats)));
  return stats;
}

/** A running store worker. */
export interface StoreWorker {
  /** Look at the queue now (after an enqueue). */
  kick(): void;
  /** Stop after the jobs under way; resolves when stopped. */
  stop(): Promise<void>;
}

/** Options of the store worker of a server ({@linkcode startStoreWorker}). */
export interface StoreWorkerOptions extends StoreOptions {
  /** How often the queue is looked at without a kick (ms, default 1000). */
  pollMs?: number;
  /**
   * Uploads first: while uploads arrive (one under way, or one started or ended less
   * than `quietMs` ago, default 300), the worker takes no job, for at most `maxMs`
   * (default 10,000) in a row; after that it works alongside them until they pause.
   * Each job is a conversation with a node, a link rewrite and flushes: run during a
   * burst of small uploads (a mirror tool's), they slowed each of its files several
   * times over on a small machine. `{ maxMs: 0 }`: never hold off.
   */
  holdOff?: { quietMs?: number; maxMs?: number };
}

/**
 * Run the store worker until `stop()`: on every kick and every `pollMs` (default 1000),
 * lanes (up to `jobsAtOnce`, default 4) take jobs until none is ready, unless uploads
 * are arriving (`holdOff`). A lane held by a slow job holds only itself: the others go
 * on taking jobs.
 */
export function startStoreWorker(
  ctx: ClusterContext,
  queue: JobQueue,
  opts: StoreWorkerOptions = {},
): StoreWorker {
  let stopped = false;
  const running = new Set<Promise<void>>();
  const stats: StoreStats = { stored: 0, deleted: 0, retried: 0, dropped: 0 };
  const n = Math.max(1, opts.jobsAtOnce ?? 4);
  const quietMs = opts.holdOff?.quietMs ?? 300;
  const maxMs = opts.holdOff?.maxMs ?? 10_000;
  /** Since when the worker holds off for uploads (null: it does not). */
  let holdingSince: number | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether to take no job now, uploads arriving (then `fill` runs again once quiet). */
  const holding = (): boolean => {
    const now = performance.now();
    const last = ctx.lastUploadAt;
    const busy = ctx.activeUploads.size > 0 || (last !== undefined && now - last < quietMs);
    if (!busy || maxMs <= 0) {
      holdingSince = null;
      return false;
    }
    holdingSince ??= now;
    if (now - holdingSince >= maxMs) return false; // held long enough: alongside them now
    retryTimer ??= setTimeout(() => {
      retryTimer = undefined;
      fill();
    }, quietMs);
    return true;
  };
  const fill = () => {
    while (!stopped && running.size < n && !holding()) {
      const p: Promise<void> = lane(ctx, queue, opts, stats, () => stopped || holding())
        .catch((e) => ctx.log(`cluster: store worker: ${(e as Error).message}`))
        .finally(() => running.delete(p));
      running.add(p);
    }
  };
  const timer = setInterval(fill, opts.pollMs ?? 1000);
  fill();
  return {
    kick: fill,
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(retryTimer);
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}

/**
 * Repair after a crash, before serving: staged files that no link (nor `.deleted`
 * entry) names and that the server gone before this one made (staging ids starting
 * with `goneTag`, its lease's tag) are removed: that server can acknowledge nothing
 * any more. Other unlinked staging and temp files are left to cleanup's age rule
 * (`cleanup.ts`), so nothing another process may still be writing is touched. Staged
 * links without a queued upload job get one. Returns counts.
 */
export async function recoverCluster(
  ctx: ClusterContext,
  queue: JobQueue,
  opts: { goneTag?: string | null } = {},
): Promise<{ requeued: number; orphansRemoved: number }> {
  const l = ctx.layout;
  const referenced = new Set<string>();
  const staged: { file: string; link: FileLink }[] = [];
  const walk = async (dir: string, atRoot: boolean) => {
    for (const ent of await fsp.readdir(dir, { withFileTypes: true })) {
      if (atRoot && RESERVED_ROOT_NAMES.has(ent.name) && ent.name !== ".deleted") continue;
      const full = path.join(dir, ent.name);
      if (ent.isDirectory()) await walk(full, false);
      else if (ent.isFile() && ent.name.endsWith(LINK_SUFFIX)) {
        const info = await readInfo(full).catch(() => null);
        if (info?.kind !== "file") continue;
        const id = stagedId(info);
        if (id === null) continue;
        referenced.add(id);
        if (!full.startsWith(l.deleted + path.sep)) staged.push({ file: full, link: info });
      }
    }
  };
  await walk(l.root, true);
  let orphansRemoved = 0;
  for (const f of await fsp.readdir(l.staging, { withFileTypes: true })) {
    if (!f.isFile() || referenced.has(f.name) || ctx.activeUploads.has(f.name)) continue;
    if (!opts.goneTag || !f.name.startsWith(opts.goneTag)) continue;
    await fsp.rm(path.join(l.staging, f.name), { force: true });
    orphansRemoved++;
  }
  const queued = new Set(
    (await queue.list()).filter((j) => j.type === "upload").map((j) =>
      (j as { path: string }).path
    ),
  );
  let requeued = 0;
  for (const s of staged) {
    if (queued.has(relPath(l, s.file))) continue;
    await queue.enqueue(uploadJob(l, s.file, s.link.uid, s.link.size, s.link.mtime));
    requeued++;
  }
  if (requeued || orphansRemoved) {
    ctx.log(
      `cluster: recovery: ${requeued} upload jobs requeued, ${orphansRemoved} unacknowledged staged files removed`,
    );
  }
  return { requeued, orphansRemoved };
}
