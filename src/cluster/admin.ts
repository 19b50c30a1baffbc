/**
 * Cluster administration without serving: opening a cluster root with its nodes
 * ({@linkcode openClusterAdmin}), the queue as lines (`hop cluster queue`: list, dequeue,
 * enqueue, remove, pipe-friendly like the original's `queue -d | filter | queue -e`),
 * and `hop cluster node retire|lost`.
 *
 * These run next to a live `cluster serve` on the same root: queue operations use the
 * queue's own claims; link rewrites re-read the link file first. (Link changes are
 * serialized within one process only; run node retire/lost when the cluster is quiet.)
 *
 * @example
 * ```ts
 * const adm = await openClusterAdmin({ root: "/srv/cluster", nodes });
 * try { console.log((await retireNode(adm.ctx, "10.0.0.3:21")).moved); }
 * finally { await adm.close(); }
 * ```
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { isNodeKey } from "../codec/link.ts";
import { decodeJob, encodeJob, type QueueJob } from "../codec/queue_job.ts";
import { HopError, UsageError } from "../errors.ts";
import { type ClusterContext, createSerial } from "./fs.ts";
import { type JobQueue, openJobQueue } from "./jobs.ts";
import { clusterLayout, initLayout } from "./layout.ts";
import { openClusterLog } from "./log.ts";
import { readFileLink, stagedId, useNodeAliases, writeInfo } from "./links.ts";
import { nodeAliases, openNode, redactUrl, type StorageNode } from "./nodes.ts";
import * as queueDir from "./queue.ts";
import { replicateLink } from "./replicate.ts";
import { walkTree } from "./scan.ts";

/** Where the cluster is (the same settings as `cluster serve`). */
export interface AdminOptions {
  /** Cluster root (default `./hop-cluster`). */
  root?: string;
  /** Node URLs (default: the embedded `./hop-cluster-nodes/a` and `b`). */
  nodes?: string[];
  /** Log lines (default: appended to the cluster's `.log/cluster.log`, like `serve`'s). */
  log?: (line: string) => void;
}

/** An opened cluster for administration. */
export interface ClusterAdmin {
  ctx: ClusterContext;
  /** The queue (takes replicate jobs too). */
  queue: JobQueue;
  close(): Promise<void>;
}

/** Open the cluster at `o.root` with its nodes, without serving it. */
export async function openClusterAdmin(o: AdminOptions = {}): Promise<ClusterAdmin> {
  const l = clusterLayout(o.root ?? "hop-cluster");
  await initLayout(l);
  let urls = o.nodes ?? [];
  if (urls.length === 0) {
    urls = ["a", "b"].map((n) => pathToFileURL(path.resolve("hop-cluster-nodes", n)).href);
  }
  const nodes = new Map<string, StorageNode>();
  for (const url of urls) {
    const node = openNode(url);
    if (nodes.has(node.key)) {
      throw new UsageError(`node ${redactUrl(url)} is given twice`, "Give each node once.");
    }
    nodes.set(node.key, node);
  }
  useNodeAliases(nodeAliases(nodes.values()));
  const out = o.log ? null : openClusterLog(l);
  const log = o.log ?? ((line: string) => out!.line(line));
  const queue = openJobQueue(l.queue, undefined, { replicate: true });
  const ctx: ClusterContext = {
    layout: l,
    names: "any",
    nodes,
    jobs: queue,
    userName: () => undefined,
    serial: createSerial(),
    activeUploads: new Set(),
    log,
  };
  return {
    ctx,
    queue,
    close: async () => {
      for (const n of nodes.values()) n.close();
      await out?.close();
    },
  };
}

// ------------------------------------------------------------------ queue

/** The queue's jobs: `{id, job, claimedBy}` in queue order (for `--json`). */
export function listQueue(root: string): Promise<queueDir.QueueEntry[]> {
  return queueDir.list(clusterLayout(root).queue);
}

/** The queue's jobs as lines, one job each (no `\n`), in queue order. */
export async function queueLines(root: string): Promise<string[]> {
  return (await listQueue(root)).map((e) => encodeJob(e.job));
}

/**
 * Take every job that is queued (not claimed by a live worker) out of the queue and
 * return it as lines: `hop cluster queue --dequeue`. Put them back (edited or not)
 * with {@linkcode enqueueLines}.
 */
export async function dequeueAll(root: string): Promise<string[]> {
  const dir = clusterLayout(root).queue;
  const out: string[] = [];
  for (;;) {
    const got = await queueDir.take(dir);
    if (!got) return out;
    out.push(encodeJob(got.job));
    await queueDir.complete(dir, got.id);
  }
}

/**
 * Add the jobs of `text` (one a line; empty lines and `#` lines skipped). Every line
 * is checked before any is queued: a bad line throws CodecError naming it (`source`,
 * line number) and queues nothing. Returns the number queued.
 */
export async function enqueueLines(root: string, text: string, source = "stdin"): Promise<number> {
  const jobs: QueueJob[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.startsWith("#")) return;
    jobs.push(decodeJob(line, source, i + 1));
  });
  const dir = clusterLayout(root).queue;
  for (const j of jobs) await queueDir.enqueue(dir, j);
  return jobs.length;
}

/** Remove queued jobs by id (not claimed ones). Throws when an id is not queued. */
export async function removeJobs(root: string, ids: string[]): Promise<void> {
  const dir = clusterLayout(root).queue;
  for (const id of ids) {
    if (!/^[0-9]{14}-[0-9]{6}-[0-9a-f]{8}$/.test(id)) {
      throw new UsageError(
        `not a queue job id: ${JSON.stringify(id)}`,
        "Ids are listed by `hop cluster queue --json`.",
      );
    }
    try {
      await fsp.unlink(path.join(dir, `${id}.job`));
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw e;
      throw new HopError(`queue job ${id} is not queued (done, claimed by a worker, or unknown)`, {
        hint: "List the queue with `hop cluster queue --json`.",
      });
    }
  }
}

// ------------------------------------------------------------------ nodes

/** A node given as a key (`host:port`, `file:///dir`) or as a node URL. */
export function nodeKeyOf(spec: string): string {
  if (isNodeKey(spec) && !/^ftp:\/\//.test(spec)) return spec;
  try {
    const n = openNode(spec);
    n.close();
    return n.key;
  } catch (e) {
    throw new UsageError(
      `bad node ${JSON.stringify(redactUrl(spec))}: ${(e as Error).message}`,
      "Give the node as in link files (host:port or file:///dir) or as its URL.",
    );
  }
}

/** What {@linkcode retireNode} did. */
export interface RetireResult {
  /** Files that had a copy on the node. */
  files: number;
  /** New copies made elsewhere. */
  copied: number;
  /** Copies on the node dropped from links and deleted. */
  removed: number;
  /** Files kept on the node: no copy could be made elsewhere (link file, why). */
  kept: { link: string; reason: string }[];
  /** Copies dropped from their links whose data the node refused to delete (orphans now). */
  undeleted: { path: string; error: string }[];
}

/**
 * Retire a healthy node: for each file with a copy there, make sure the file has its
 * wanted copies on other nodes (copying from any copy, this node's included), then
 * drop the node's entry from the link file and delete its data there. A file that
 * cannot get another copy keeps its entry (listed in `kept`). The node must be
 * configured (it is read from).
 */
export async function retireNode(
  ctx: ClusterContext,
  node: string,
  opts: { replicas?: number; dryRun?: boolean; onFile?: (link: string, what: string) => void } = {},
): Promise<RetireResult> {
  const key = nodeKeyOf(node);
  const n = ctx.nodes.get(key);
  if (!n) {
    throw new UsageError(
      `node ${key} is not among the configured nodes`,
      "Give every node with --node, the one to retire included.",
    );
  }
  const want = Math.max(1, Math.min(opts.replicas ?? 2, ctx.nodes.size - 1));
  const res: RetireResult = { files: 0, copied: 0, removed: 0, kept: [], undeleted: [] };
  for await (const it of walkTree(ctx.layout)) {
    if (it.kind !== "link" || !it.link.copies.some((c) => c.node === key)) continue;
    res.files++;
    const o = await replicateLink(ctx, it.file, want, { exclude: [key], dryRun: opts.dryRun });
    res.copied += o.made.length;
    const elsewhere = o.had + o.made.length;
    if (elsewhere === 0) {
      res.kept.push({ link: it.rel, reason: o.reason ?? "no other copy" });
      opts.onFile?.(it.rel, `kept: ${o.reason ?? "no other copy"}`);
      continue;
    }
    opts.onFile?.(it.rel, `${o.made.length} copied, copy on ${key} removed`);
    if (opts.dryRun) {
      res.removed++;
      continue;
    }
    const dropped = await ctx.serial(async () => {
      const now = await readFileLink(it.file);
      if (!now) return [];
      const mine = now.copies.filter((c) => c.node === key);
      const rest = now.copies.filter((c) => c.node !== key);
      if (mine.length === 0 || rest.length === 0) return [];
      await writeInfo(ctx.layout.tmp, it.file, { ...now, copies: rest });
      return mine;
    });
    for (const c of dropped) {
      try {
        await n.remove(c.path);
        res.removed++;
      } catch (e) {
        // The entry is gone already: the data is an orphan now (audit finds it).
        res.undeleted.push({ path: c.path, error: (e as Error).message });
        ctx.log(
          `cluster: retire: deleting ${c.path} on ${n.label} failed: ${(e as Error).message}`,
        );
      }
    }
  }
  return res;
}

/** What {@linkcode loseNode} did. */
export interface LostResult {
  /** Files that had a copy on the node (their entries dropped). */
  files: number;
  /** Files brought back to the wanted copies from their other copies. */
  rereplicated: number;
  /** Files short of copies still; a replicate job is queued for each. */
  queued: string[];
  /** Files whose only copy was on the node: their link files are removed. */
  lost: string[];
  /** `.deleted/` entries that named the node (its entries dropped there too). */
  deletions: number;
}

/**
 * A node is gone for good: drop its entries from every link (and `.deleted/` entry),
 * bring the files back to the wanted copies from their other copies (a replicate job
 * when that fails now), and remove the link files of files whose only copy was there,
 * listing them in `lost`. With `dryRun`, changes nothing and reports what would be.
 */
export async function loseNode(
  ctx: ClusterContext,
  node: string,
  opts: { replicas?: number; dryRun?: boolean } = {},
): Promise<LostResult> {
  const key = nodeKeyOf(node);
  const others = [...ctx.nodes.keys()].filter((k) => k !== key).length;
  const want = Math.max(1, Math.min(opts.replicas ?? 2, others));
  const res: LostResult = { files: 0, rereplicated: 0, queued: [], lost: [], deletions: 0 };
  const dropFrom = (file: string) =>
    ctx.serial(async () => {
      const now = await readFileLink(file);
      if (!now || !now.copies.some((c) => c.node === key)) return null;
      const rest = now.copies.filter((c) => c.node !== key);
      if (opts.dryRun) return { ...now, copies: rest };
      if (rest.length === 0 && stagedId(now) === null) await fsp.rm(file, { force: true });
      else await writeInfo(ctx.layout.tmp, file, { ...now, copies: rest });
      return { ...now, copies: rest };
    });
  for await (const it of walkTree(ctx.layout, { deleted: true })) {
    if (it.kind === "link" && await dropFrom(it.file)) res.deletions++;
  }
  for await (const it of walkTree(ctx.layout)) {
    if (it.kind !== "link" || !it.link.copies.some((c) => c.node === key)) continue;
    res.files++;
    const after = await dropFrom(it.file);
    if (!after) continue;
    if (after.copies.length === 0 && stagedId(after) === null) {
      res.lost.push(it.rel);
      continue;
    }
    if (opts.dryRun || after.copies.length >= want) continue;
    const o = await replicateLink(ctx, it.file, want, { exclude: [key] });
    if (o.short === 0) res.rereplicated++;
    else {
      await ctx.jobs.enqueue({
        type: "replicate",
        link: it.rel,
        size: after.size,
        mtime: after.mtime,
        nodes: [],
      });
      res.queued.push(it.rel);
    }
  }
  return res;
}
