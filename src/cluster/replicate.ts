/**
 * `hop cluster replicate` and the `replicate` queue jobs: bring files to the wanted
 * number of copies. A new copy keeps the node path of the copy it was made from; the
 * data is streamed from a node holding it, through this process, to the new node
 * (`get` piped into `put`), its size is checked on the new node, and only then is the
 * copy added to the link file (re-read under `ctx.serial`: when the file changed
 * meanwhile, the new copy is removed again).
 *
 * Between two FTP nodes a copy is first tried node to node (a third-party transfer,
 * FXP: the target node gets PASV + STOR, the source node PORT + RETR, see
 * `StorageNode.receiveFrom`); where a node refuses (or one side is a folder), the data
 * goes through the process running this.
 *
 * @example
 * ```ts
 * const r = await replicateCluster(ctx, { replicas: 2, to: ["127.0.0.1:2122"] });
 * console.log(r.copied, r.short);
 * ```
 *
 * @module
 */

import { Readable } from "node:stream";
import type { ClusterContext } from "./fs.ts";
import { jobDiskPath, type QueueJob, STALE } from "./jobs.ts";
import { LINK_SUFFIX } from "./layout.ts";
import { type FileLink, type NodeCopy, readFileLink, stagedId, writeInfo } from "./links.ts";
import { chooseNodes, type StorageNode } from "./nodes.ts";
import { walkTree } from "./scan.ts";
import { noteLeftover } from "./store.ts";

/** Which nodes replication may read from and write to. */
export interface NodeSelection {
  /** Copy only from these node keys (default: any node holding the file). */
  from?: string[];
  /** Copy only to these node keys (default: any node, chosen by load and free space). */
  to?: string[];
  /** Copies on these nodes do not count and get no new copy (a node being retired). */
  exclude?: string[];
}

/** What happened to one file. */
export interface ReplicateOutcome {
  link: string;
  /** Copies counted before (on configured nodes, not excluded). */
  had: number;
  /** New copies made (or that would be made, in a dry run: node keys). */
  made: NodeCopy[];
  /** Of `made`, copies sent node to node (third-party transfer), not through this process. */
  direct?: number;
  /** Copies still missing after this (0: the file is at the wanted count). */
  short: number;
  /** Why it is short, when it is. */
  reason?: string;
}

/**
 * Bring the file of link file `linkFile` (disk path) to `want` copies. With `dryRun`,
 * only chooses the target nodes.
 */
export async function replicateLink(
  ctx: ClusterContext,
  linkFile: string,
  want: number,
  sel: NodeSelection & { dryRun?: boolean } = {},
): Promise<ReplicateOutcome> {
  const rel = linkFile.slice(ctx.layout.root.length + 1).split("\\").join("/");
  const link = await readFileLink(linkFile);
  if (!link) return { link: rel, had: 0, made: [], short: 0, reason: "gone" };
  if (stagedId(link) !== null) {
    return {
      link: rel,
      had: 0,
      made: [],
      short: 0,
      reason: "still staged (the store worker copies it)",
    };
  }
  const excluded = new Set(sel.exclude ?? []);
  const counted = link.copies.filter((c) => ctx.nodes.has(c.node) && !excluded.has(c.node));
  const need = want - counted.length;
  if (need <= 0) return { link: rel, had: counted.length, made: [], short: 0 };
  const sources = link.copies.filter((c) => {
    const n = ctx.nodes.get(c.node);
    return n && !n.isDown() && (!sel.from || sel.from.includes(c.node));
  });
  if (sources.length === 0) {
    return { link: rel, had: counted.length, made: [], short: need, reason: "no readable copy" };
  }
  const candidates = [...ctx.nodes.values()].filter((n) => !sel.to || sel.to.includes(n.key));
  const skip = new Set([...link.copies.map((c) => c.node), ...excluded]);
  const made: NodeCopy[] = [];
  let direct = 0;
  let reason: string | undefined;
  while (made.length < need) {
    const [target] = await chooseNodes(candidates, 1, link.size, skip);
    if (!target) {
      reason ??= "no other node available";
      break;
    }
    skip.add(target.key);
    if (sel.dryRun) {
      made.push({ node: target.key, path: sources[0].path });
      continue;
    }
    const copy = await copyTo(ctx, link, sources, target).catch((e) => {
      reason = (e as Error).message;
      ctx.log(`cluster: replicate ${rel} to ${target.label} failed: ${reason}`);
      return null;
    });
    if (copy) {
      made.push({ node: copy.node, path: copy.path });
      if (copy.direct) direct++;
    }
  }
  if (!sel.dryRun && made.length > 0) {
    const kept = await ctx.serial(async () => {
      const now = await readFileLink(linkFile);
      if (!now || now.size !== link.size || now.mtime !== link.mtime || stagedId(now) !== null) {
        return false;
      }
      const fresh = made.filter((m) => !now.copies.some((c) => c.node === m.node));
      await writeInfo(ctx.layout.tmp, linkFile, { ...now, copies: [...now.copies, ...fresh] });
      return true;
    });
    if (!kept) {
      for (const c of made) await ctx.nodes.get(c.node)?.remove(c.path).catch(() => false);
      return {
        link: rel,
        had: counted.length,
        made: [],
        short: need,
        reason: "file changed meanwhile",
      };
    }
    ctx.log(`cluster: replicated ${rel} to ${made.map((c) => c.node).join(", ")}`);
  }
  return { link: rel, had: counted.length, made, direct, short: need - made.length, reason };
}

/** Copy the data from the first source that works to `target` (atomically, size checked). */
async function copyTo(
  ctx: ClusterContext,
  link: FileLink,
  sources: NodeCopy[],
  target: StorageNode,
): Promise<NodeCopy & { direct: boolean }> {
  let last: unknown = null;
  for (const src of sources) {
    const from = ctx.nodes.get(src.node)!;
    if (from.sendTo && target.receiveFrom) {
      // Node to node first (FXP); where a node refuses, through this process.
      try {
        const ok = await target.receiveFrom(
          src.path,
          link.size,
          (addr) => from.sendTo!(src.path, 0, addr),
        );
        if (ok) return { node: target.key, path: src.path, direct: true };
      } catch (e) {
        await noteLeftover(ctx, target.key, e);
        ctx.log(
          `cluster: node-to-node copy ${src.path} ${from.label} -> ${target.label}: ${
            (e as Error).message
          }`,
        );
      }
    }
    try {
      const stream = await from.get(src.path, 0);
      // Atomic on the target: a temporary name, its size checked, then renamed.
      // deno-lint-ignore no-explicit-any
      await target.put(src.path, Readable.fromWeb(stream as any), link.size);
      return { node: target.key, path: src.path, direct: false };
    } catch (e) {
      await noteLeftover(ctx, target.key, e);
      last = e;
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

/** Options of {@linkcode replicateCluster}. */
export interface ReplicateOptions extends NodeSelection {
  /** Wanted copies (default 2, capped by the configured nodes). */
  replicas?: number;
  /** Show what would be copied where; copy nothing. */
  dryRun?: boolean;
  /** Each file that needed copies, as it is handled. */
  onFile?: (o: ReplicateOutcome) => void;
}

/** Totals of {@linkcode replicateCluster}. */
export interface ReplicateSummary {
  files: number;
  copied: number;
  /** Of `copied`, copies sent node to node. */
  direct: number;
  /** Files still short of copies. */
  short: number;
}

/** Bring every file of the tree to the wanted copy count (one file at a time). */
export async function replicateCluster(
  ctx: ClusterContext,
  opts: ReplicateOptions = {},
): Promise<ReplicateSummary> {
  const want = Math.max(
    1,
    Math.min(opts.replicas ?? 2, ctx.nodes.size - (opts.exclude?.length ?? 0)),
  );
  const sum: ReplicateSummary = { files: 0, copied: 0, direct: 0, short: 0 };
  for await (const it of walkTree(ctx.layout)) {
    if (it.kind !== "link") continue;
    sum.files++;
    const o = await replicateLink(ctx, it.file, want, opts);
    if (o.made.length === 0 && o.short === 0) continue;
    sum.copied += o.made.length;
    sum.direct += o.direct ?? 0;
    if (o.short > 0) sum.short++;
    opts.onFile?.(o);
  }
  return sum;
}

/**
 * Run one `replicate` job (the store worker's hook): drops a stale job (file gone or
 * changed), retries when copies are still short.
 */
export async function runReplicateJob(
  ctx: ClusterContext,
  job: QueueJob & { type: "replicate" },
  replicas: number,
): Promise<{ result: "done" | "dropped" | "retry"; reason?: string }> {
  const file = jobDiskPath(ctx.layout, job.link);
  if (!file || !file.endsWith(LINK_SUFFIX)) return { result: "dropped", reason: "bad link path" };
  const link = await readFileLink(file);
  if (!link || link.size !== job.size || link.mtime !== job.mtime) {
    return { result: "dropped", reason: STALE };
  }
  const want = Math.max(1, Math.min(replicas, ctx.nodes.size));
  const o = await replicateLink(ctx, file, want, { to: job.nodes.length ? job.nodes : undefined });
  if (o.short > 0 && o.reason !== "gone") {
    return { result: "retry", reason: `${o.short} copies short: ${o.reason}` };
  }
  return { result: "done" };
}
