/**
 * `hop cleanup` for the cluster, and its background worker inside `cluster serve`.
 *
 * One pass:
 * 0. puts jobs claimed by dead workers back in the queue;
 * 1. walks the live tree once, collecting the copies live links name (only those a
 *    `.deleted/` entry also names: memory bounded by the deletions waiting) and the
 *    staging ids links (live or deleted) still use;
 * 2. for each `.deleted/` entry: copies that a live link still names are taken out of
 *    the entry, never deleted (nothing still linked is ever deleted); the rest is
 *    deleted on its nodes by the store worker's own delete step (`runDelete` in
 *    `store.ts`, one code path for both). A node down: the entry keeps the copies not
 *    deleted and gets a queued delete job (retried by the store worker, and by the next
 *    pass); done: the entry leaves `.deleted/`. Doing it again does nothing more.
 * 3. purges staging leftovers: `.staging/<id>` files no link names and `.staging/tmp/`
 *    files, both only when older than `stagingMinAgeMs` (so uploads under way, even in
 *    another process, are never touched).
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import * as path from "node:path";
import type { ClusterContext } from "./fs.ts";
import type { JobQueue } from "./jobs.ts";
import { LINK_SUFFIX } from "./layout.ts";
import { type NodeCopy, readFileLink, stagedId, writeInfo } from "./links.ts";
import * as queueDir from "./queue.ts";
import { walkTree } from "./scan.ts";
import { runDelete } from "./store.ts";

/** Options of {@linkcode cleanupCluster}. */
export interface CleanupOptions {
  /** Say what would be done; change nothing. */
  dryRun?: boolean;
  /** Staging leftovers younger than this stay (ms, default 1 hour). */
  stagingMinAgeMs?: number;
}

/** A `.deleted/` entry not finished. */
export interface PendingDeletion {
  /** `.deleted/<entry>`. */
  entry: string;
  copies: NodeCopy[];
  reason: string;
}

/** What a pass did (or, in a dry run, would do). */
export interface CleanupReport {
  dryRun: boolean;
  /** `.deleted/` entries whose data is all gone now (the entry removed). */
  finished: string[];
  /** Entries left for a later pass (a node down or not configured). */
  pending: PendingDeletion[];
  /** Copies kept because a live link still names them (taken out of the entry). */
  stillLinked: { entry: string; node: string; path: string }[];
  /** Delete jobs queued for entries that had none. */
  jobsQueued: number;
  /** Jobs claimed by dead workers, put back in the queue. */
  jobsRecovered: number;
  /** Staging leftovers removed (names under `.staging/`). */
  stagingPurged: string[];
}

/** One cleanup pass over the cluster (see the module doc). */
export async function cleanupCluster(
  ctx: ClusterContext,
  queue: JobQueue,
  opts: CleanupOptions = {},
): Promise<CleanupReport> {
  const l = ctx.layout;
  const dry = opts.dryRun ?? false;
  const minAge = opts.stagingMinAgeMs ?? 3_600_000;
  const report: CleanupReport = {
    dryRun: dry,
    finished: [],
    pending: [],
    stillLinked: [],
    jobsQueued: 0,
    jobsRecovered: 0,
    stagingPurged: [],
  };
  // Claims of dead workers go back to the queue (the original's stale `.queue.lock`).
  if (!dry) report.jobsRecovered = (await queueDir.recover(l.queue)).requeued.length;
  // The .deleted entries and what they name.
  const entries: string[] = [];
  const doomed = new Set<string>();
  const referenced = new Set<string>();
  for await (const it of walkTree(l, { deleted: true })) {
    if (it.kind !== "link") continue;
    entries.push(it.rel);
    for (const c of it.link.copies) doomed.add(`${c.node}\t${c.path}`);
    const id = stagedId(it.link);
    if (id !== null) referenced.add(id);
  }
  // The live tree: which doomed copies are still linked, which staging ids are used.
  const linked = new Set<string>();
  for await (const it of walkTree(l)) {
    if (it.kind !== "link") continue;
    const id = stagedId(it.link);
    if (id !== null) referenced.add(id);
    for (const c of it.link.copies) {
      const k = `${c.node}\t${c.path}`;
      if (doomed.has(k)) linked.add(k);
    }
  }
  const queued = new Set(
    (await queueDir.list(l.queue)).flatMap((e) => e.job.type === "delete" ? [e.job.link] : []),
  );
  for (const rel of entries) {
    const file = path.join(l.root, ...rel.split("/"));
    await ctx.serial(async () => {
      const link = await readFileLink(file);
      if (!link) return;
      const keep = link.copies.filter((c) => linked.has(`${c.node}\t${c.path}`));
      for (const c of keep) report.stillLinked.push({ entry: rel, node: c.node, path: c.path });
      if (keep.length > 0 && !dry) {
        ctx.log(`cluster: cleanup: ${rel} names data still linked elsewhere; not deleted`);
        await writeInfo(l.tmp, file, {
          ...link,
          copies: link.copies.filter((c) => !keep.includes(c)),
        });
      }
    });
    const link = await readFileLink(file);
    if (!link) continue;
    if (dry) {
      report.pending.push({ entry: rel, copies: link.copies, reason: "would be deleted" });
      continue;
    }
    const job = { type: "delete" as const, link: rel, nodes: [] };
    const r = await runDelete(ctx, job).catch((e) => ({
      result: "retry" as const,
      reason: (e as Error).message,
    }));
    const left = await readFileLink(file);
    if (!left) {
      report.finished.push(rel);
      continue;
    }
    report.pending.push({ entry: rel, copies: left.copies, reason: r.reason ?? r.result });
    if (!queued.has(rel) && r.result === "retry") {
      await queue.enqueue(job);
      queued.add(rel);
      report.jobsQueued++;
    }
  }
  // Staging leftovers.
  const now = Date.now();
  const old = async (p: string) => {
    const st = await fsp.stat(p).catch(() => null);
    return st !== null && st.isFile() && now - st.mtimeMs >= minAge;
  };
  for (const name of await fsp.readdir(l.staging).catch(() => [] as string[])) {
    const p = path.join(l.staging, name);
    if (name === "tmp" || referenced.has(name) || ctx.activeUploads.has(name)) continue;
    if (name.endsWith(LINK_SUFFIX) || !await old(p)) continue;
    report.stagingPurged.push(name);
    if (!dry) await fsp.rm(p, { force: true });
  }
  for (const name of await fsp.readdir(l.tmp).catch(() => [] as string[])) {
    const p = path.join(l.tmp, name);
    if (!await old(p)) continue;
    report.stagingPurged.push(`tmp/${name}`);
    if (!dry) await fsp.rm(p, { force: true });
  }
  if (!dry && (report.finished.length || report.stagingPurged.length)) {
    ctx.log(
      `cluster: cleanup: ${report.finished.length} deletions finished, ${report.pending.length} pending, ` +
        `${report.stagingPurged.length} staging leftovers removed`,
    );
  }
  return report;
}

/** A running background cleanup. */
export interface CleanupWorker {
  /** Stop after the pass under way. */
  stop(): Promise<void>;
}

/** Run {@linkcode cleanupCluster} every `everyMs` (the first pass after `everyMs`). */
export function startCleanupWorker(
  ctx: ClusterContext,
  queue: JobQueue,
  opts: CleanupOptions & { everyMs: number },
): CleanupWorker {
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const timer = setInterval(() => {
    if (running || stopped) return;
    running = cleanupCluster(ctx, queue, opts)
      .catch((e) => ctx.log(`cluster: cleanup worker: ${(e as Error).message}`))
      .finally(() => running = null);
  }, opts.everyMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
