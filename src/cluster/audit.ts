/**
 * `hop audit` for the cluster: compares what the link files say with what the nodes
 * hold, and `hop audit --repair` (a report a person reviews and edits, then applied).
 *
 * How, in bounded memory: the tree walk writes one line per copy a link names
 * (`node path L link size`), one per copy named by a `.deleted/` entry (`D`), one per
 * node path a staged upload will use (`P`); each node's listing (MLSD, else SIZE and
 * MDTM per file) writes `node path N size mtime`. The lines go through an external
 * sort ({@linkcode createLineSorter}) and are merged as a stream, grouped by node and
 * path (the original's `sort | join`). A second sorted pass groups each link's copies
 * to find under-replicated and lost files.
 *
 * Classes ({@linkcode AuditKind}): `ok`; `orphan` (on a node, no link, named by the
 * node scheme `xx/yy/YYMMDD-HHMMSS-[tag-]name`); `missing` (linked, not on the node);
 * `size-mismatch`; `under-replicated` (fewer good copies than wanted); `lost` (a link
 * with no good copy left); `foreign` (a file in the tree without link file, or a node
 * file outside the scheme: never touched); `pending` (an upload under way or younger
 * than `orphanMinAgeMs`); `deleting` (data of a `.deleted/` entry, for cleanup);
 * `leftover` (a node write's temporary file, `hop-part-…` (`nodes.ts`: `NODE_TEMP`), older
 * than `orphanMinAgeMs`: a write that failed half-way; `pending` while young: repair
 * deletes it, never adopts it);
 * `unchecked` (its node is down or not configured: nothing is concluded);
 * `unqueued` (a staged upload with no upload job); `unreadable` (a link file that does
 * not decode). A staged link whose staged data is gone is `lost` when no node holds a
 * copy (repair removes the link), else `unqueued` (its job records the copies it has).
 *
 * Repair report, one action a line (fields %-escaped like queue jobs; `#` lines are
 * comments; delete a line to skip it):
 * ```
 * drop <link> <node> <path>         drop a missing or bad copy from a link file
 * unlink <link>                     remove a link file that has no copy left
 * adopt <node> <path> <size> <mtime> link orphaned data under lost+found/
 * replicate <link>                  queue a replicate job (under-replicated)
 * requeue <link>                    queue the upload job of a staged file
 * delete <node> <path> <size>       delete orphaned data (only with --delete-orphans)
 * purge <node> <path> <size>        delete a leftover temporary file of a failed write
 * ```
 * A `#` word and what follows it on a line is a comment (the report says why each
 * action is there). Every action checks the state again when applied, so applying a report twice, or a
 * second report after the first was applied, changes nothing.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { decodeName, encodeName } from "../codec/names.ts";
import { escapeField, unescapeField } from "../codec/queue_job.ts";
import { CodecError } from "../codec/errors.ts";
import { HopError } from "../errors.ts";
import type { ClusterContext } from "./fs.ts";
import { jobDiskPath, type QueueJob } from "./jobs.ts";
import { LINK_SUFFIX } from "./layout.ts";
import { type FileLink, readFileLink, stagedId, writeInfo } from "./links.ts";
import * as queueDir from "./queue.ts";
import { NODE_TEMP } from "./nodes.ts";
import { createLineSorter, walkNode, walkTree } from "./scan.ts";
import { nodePathFor } from "./store.ts";

/** The classes of {@linkcode AuditRecord}s (see the module doc). */
export type AuditKind =
  | "ok"
  | "orphan"
  | "missing"
  | "size-mismatch"
  | "under-replicated"
  | "lost"
  | "foreign"
  | "pending"
  | "deleting"
  | "unchecked"
  | "unqueued"
  | "unreadable"
  | "leftover";

/** One finding. Copy-level kinds carry `node` and `path`; link-level ones `link`. */
export interface AuditRecord {
  kind: AuditKind;
  /** Node key (as in link files). */
  node?: string;
  /** Node path. */
  path?: string;
  /** Link file, relative to the cluster root (at-rest form, ends with `#`). */
  link?: string;
  /** Size the link says (or of a foreign file in the tree). */
  size?: number;
  /** Size on the node. */
  nodeSize?: number;
  /** Modification time on the node (ms), when known. */
  mtimeMs?: number | null;
  /** Good copies (under-replicated, lost). */
  copies?: number;
  /** Wanted copies (under-replicated). */
  want?: number;
  /** Why, in words. */
  detail?: string;
}

/** Totals of an audit. */
export interface AuditSummary {
  counts: Record<AuditKind, number>;
  /** File links in the tree. */
  links: number;
  /** Files listed on the nodes. */
  nodeFiles: number;
  /** Nodes listed, and nodes that could not be listed. */
  nodesListed: string[];
  nodesDown: string[];
  ms: number;
}

/** Options of {@linkcode auditCluster}. */
export interface AuditOptions {
  /** Wanted copies per file (default 2, capped by the nodes configured). */
  replicas?: number;
  /** Also report `ok` records (default: only counted). */
  includeOk?: boolean;
  /** Unlinked node files younger than this are `pending`, not `orphan` (default 1 h). */
  orphanMinAgeMs?: number;
  /** Folder for the sort's temp files (default: the system's temp folder). */
  tmpDir?: string;
  /** Lines kept in memory per sort run (default 50000). */
  chunkLines?: number;
  /** Each finding, as it is found (copy-level first, then link-level). */
  onRecord?: (r: AuditRecord) => void | Promise<void>;
}

/** Node file names made by the cluster: two spreading levels, then `YYMMDD-HHMMSS-[tag-]name`. */
export const NODE_SCHEME = /^[0-9A-Za-z]{1,8}\/[0-9A-Za-z]{1,8}\/[0-9]{6}-[0-9]{6}-[^/]+$/;

const KINDS: AuditKind[] = [
  "ok",
  "orphan",
  "missing",
  "size-mismatch",
  "under-replicated",
  "lost",
  "foreign",
  "pending",
  "deleting",
  "unchecked",
  "unqueued",
  "unreadable",
  "leftover",
];

const esc = escapeField;
const unesc = (s: string, what: string, line = 1): string => {
  const v = unescapeField(s);
  if (v === null || v === "") {
    throw new CodecError("audit line", "audit", line, `bad ${what} ${JSON.stringify(s)}`);
  }
  return v;
};

/** Wanted copies: `replicas` (default 2) capped by the configured nodes. */
export function wantedCopies(ctx: ClusterContext, replicas?: number): number {
  return Math.max(1, Math.min(replicas ?? 2, ctx.nodes.size));
}

/** Queued jobs by kind, for "already queued" checks (the queue is small). */
async function queuedJobs(ctx: ClusterContext) {
  const uploads = new Set<string>();
  const replicates = new Set<string>();
  for (const e of await queueDir.list(ctx.layout.queue)) {
    if (e.job.type === "upload") uploads.add(e.job.path);
    if (e.job.type === "replicate") replicates.add(e.job.link);
  }
  return { uploads, replicates };
}

/** Audit the cluster: findings go to `onRecord`; returns the totals. */
export async function auditCluster(
  ctx: ClusterContext,
  opts: AuditOptions = {},
): Promise<AuditSummary> {
  const t0 = Date.now();
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<AuditKind, number>;
  const emit = async (r: AuditRecord) => {
    counts[r.kind]++;
    if (r.kind !== "ok" || opts.includeOk) await opts.onRecord?.(r);
  };
  const tmp = await fsp.mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), "hop-audit-"));
  const want = wantedCopies(ctx, opts.replicas);
  const minAge = opts.orphanMinAgeMs ?? 3_600_000;
  const summary: AuditSummary = {
    counts,
    links: 0,
    nodeFiles: 0,
    nodesListed: [],
    nodesDown: [],
    ms: 0,
  };
  try {
    const bySpot = createLineSorter(tmp, opts.chunkLines);
    const byLink = createLineSorter(tmp, opts.chunkLines);
    const { uploads } = await queuedJobs(ctx);
    // 1. What the link files say.
    for await (const it of walkTree(ctx.layout)) {
      if (it.kind === "foreign") {
        await emit({ kind: "foreign", link: it.rel, size: it.size, detail: "no link file" });
        continue;
      }
      if (it.kind === "unreadable") {
        await emit({ kind: "unreadable", link: it.rel, detail: it.error });
        continue;
      }
      summary.links++;
      const rel = esc(it.rel);
      const id = stagedId(it.link);
      const stagedGone = id !== null &&
        !ctx.activeUploads.has(id) &&
        (await fsp.stat(path.join(ctx.layout.staging, id)).catch(() => null)) === null;
      if (stagedGone && it.link.copies.length === 0) {
        await emit({
          kind: "lost",
          link: it.rel,
          size: it.link.size,
          copies: 0,
          want,
          detail: `its staged data .staging/${id} is gone and no node holds a copy`,
        });
        await byLink.add(`${rel}\tstaged`);
        continue;
      }
      if (id !== null) {
        await byLink.add(`${rel}\tstaged`);
        const p = it.link.copies[0]?.path ?? nodePathFor(id, it.link.name, it.link.mtime * 1000);
        for (const key of ctx.nodes.keys()) await bySpot.add(`${esc(key)}\t${esc(p)}\tP\t${rel}`);
        if (!uploads.has(it.rel)) {
          await emit({
            kind: "unqueued",
            link: it.rel,
            size: it.link.size,
            detail: "no upload job",
          });
        }
      } else if (it.link.copies.length === 0) await byLink.add(`${rel}\tnone`);
      for (const c of it.link.copies) {
        await bySpot.add(`${esc(c.node)}\t${esc(c.path)}\tL\t${rel}\t${it.link.size}`);
      }
    }
    for await (const it of walkTree(ctx.layout, { deleted: true })) {
      if (it.kind !== "link") continue;
      for (const c of it.link.copies) {
        await bySpot.add(`${esc(c.node)}\t${esc(c.path)}\tD\t${esc(it.rel)}`);
      }
    }
    // 2. What the nodes hold (listed in parallel).
    await Promise.all([...ctx.nodes.values()].map(async (node) => {
      const key = esc(node.key);
      try {
        for await (const f of walkNode(node)) {
          summary.nodeFiles++;
          await bySpot.add(`${key}\t${esc(f.path)}\tN\t${f.size}\t${f.mtimeMs ?? "-"}`);
        }
        summary.nodesListed.push(node.key);
      } catch (e) {
        summary.nodesDown.push(node.key);
        ctx.log(`cluster: audit: cannot list ${node.label}: ${(e as Error).message}`);
      }
    }));
    const listed = new Set(summary.nodesListed);
    // 3. Merge, grouped by node and path.
    const now = Date.now();
    let spot = "";
    let group: string[][] = [];
    const settle = async () => {
      if (group.length === 0) return;
      const node = unesc(group[0][0], "node");
      const p = unesc(group[0][1], "path");
      const n = group.find((g) => g[2] === "N");
      const links = group.filter((g) => g[2] === "L");
      const nodeSize = n ? Number(n[3]) : undefined;
      const mtimeMs = n && n[4] !== "-" ? Number(n[4]) : null;
      for (const g of links) {
        const link = unesc(g[3], "link");
        const size = Number(g[4]);
        let kind: AuditKind;
        let detail: string | undefined;
        if (!listed.has(node)) {
          kind = "unchecked";
          detail = ctx.nodes.has(node) ? "node could not be listed" : "node not configured";
        } else if (!n) kind = "missing";
        else if (nodeSize !== size) kind = "size-mismatch";
        else kind = "ok";
        await byLink.add(`${g[3]}\t${kind}\t${group[0][0]}\t${group[0][1]}`);
        await emit({ kind, node, path: p, link, size, nodeSize, mtimeMs, detail });
      }
      if (n && links.length === 0) {
        const base = { node, path: p, nodeSize, mtimeMs };
        if (group.some((g) => g[2] === "D")) {
          await emit({ kind: "deleting", ...base, detail: "named by a .deleted entry" });
        } else if (group.some((g) => g[2] === "P")) {
          await emit({ kind: "pending", ...base, detail: "an upload is being stored here" });
        } else if (NODE_TEMP.test(p)) {
          const young = mtimeMs !== null && now - mtimeMs < minAge;
          await emit({
            kind: young ? "pending" : "leftover",
            ...base,
            detail: young
              ? "temporary file of a write under way"
              : "temporary file of a write that failed half-way",
          });
        } else if (!NODE_SCHEME.test(p)) {
          await emit({ kind: "foreign", ...base, detail: "not named by the cluster" });
        } else if (mtimeMs !== null && now - mtimeMs < minAge) {
          await emit({ kind: "pending", ...base, detail: "recent, not linked yet" });
        } else await emit({ kind: "orphan", ...base });
      }
      group = [];
    };
    for await (const line of bySpot.sorted()) {
      const f = line.split("\t");
      const s = `${f[0]}\t${f[1]}`;
      if (s !== spot) {
        await settle();
        spot = s;
      }
      group.push(f);
    }
    await settle();
    // 4. Per link: good copies against the wanted count.
    let cur = "";
    let lines: string[][] = [];
    const settleLink = async () => {
      if (lines.length === 0) return;
      const link = unesc(cur, "link");
      lines = lines.filter((l) => l[1] !== "none");
      if (lines.some((l) => l[1] === "staged")) {
        lines = [];
        return;
      }
      const good = lines.filter((l) => l[1] === "ok").length;
      const maybe = lines.filter((l) => l[1] === "unchecked").length;
      if (good + maybe === 0) {
        await emit({ kind: "lost", link, copies: 0, want, detail: "no good copy left" });
      } else if (good + maybe < want) {
        await emit({ kind: "under-replicated", link, copies: good + maybe, want });
      }
      lines = [];
    };
    for await (const line of byLink.sorted()) {
      const f = line.split("\t");
      if (f[0] !== cur) {
        await settleLink();
        cur = f[0];
      }
      lines.push(f);
    }
    await settleLink();
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
  summary.ms = Date.now() - t0;
  return summary;
}

// ------------------------------------------------------------------ repair

/** One action of a repair report. */
export type RepairAction =
  | { action: "drop"; link: string; node: string; path: string }
  | { action: "unlink"; link: string }
  | { action: "adopt"; node: string; path: string; size: number; mtime: number }
  | { action: "replicate"; link: string }
  | { action: "requeue"; link: string }
  | { action: "delete"; node: string; path: string; size: number }
  | { action: "purge"; node: string; path: string; size: number };

/** One report line (no `\n`). */
export function encodeRepairAction(a: RepairAction): string {
  switch (a.action) {
    case "drop":
      return `drop ${esc(a.link)} ${esc(a.node)} ${esc(a.path)}`;
    case "unlink":
    case "replicate":
    case "requeue":
      return `${a.action} ${esc(a.link)}`;
    case "adopt":
      return `adopt ${esc(a.node)} ${esc(a.path)} ${a.size} ${a.mtime}`;
    case "delete":
    case "purge":
      return `${a.action} ${esc(a.node)} ${esc(a.path)} ${a.size}`;
  }
}

/** Parse a report (comments `#` and blank lines skipped). Throws CodecError with the line. */
export function decodeRepairReport(text: string, source: string): RepairAction[] {
  const out: RepairAction[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "").trim();
    const n = i + 1;
    if (line === "" || line.startsWith("#")) return;
    const all = line.split(/\s+/);
    const hash = all.findIndex((w) => w.startsWith("#"));
    const f = hash < 0 ? all : all.slice(0, hash); // a trailing `# why` comment
    const fail = (problem: string): never => {
      throw new CodecError("audit repair report", source, n, problem);
    };
    const arity: Record<string, number> = {
      drop: 4,
      unlink: 2,
      adopt: 5,
      replicate: 2,
      requeue: 2,
      delete: 4,
      purge: 4,
    };
    if (!(f[0] in arity)) fail(`unknown action ${JSON.stringify(f[0])}`);
    if (f.length !== arity[f[0]]) fail(`${f[0]} takes ${arity[f[0]] - 1} fields`);
    const s = (k: number, what: string) => {
      const v = unescapeField(f[k]);
      return v === null || v === "" ? fail(`bad ${what} ${JSON.stringify(f[k])}`) : v;
    };
    const num = (k: number, what: string) => {
      const v = Number(f[k]);
      return Number.isSafeInteger(v) ? v : fail(`${what} is not a whole number`);
    };
    switch (f[0]) {
      case "drop":
        out.push({ action: "drop", link: s(1, "link"), node: s(2, "node"), path: s(3, "path") });
        break;
      case "unlink":
      case "replicate":
      case "requeue":
        out.push({ action: f[0], link: s(1, "link") });
        break;
      case "adopt":
        out.push({
          action: "adopt",
          node: s(1, "node"),
          path: s(2, "path"),
          size: num(3, "size"),
          mtime: num(4, "mtime"),
        });
        break;
      case "delete":
      case "purge":
        out.push({
          action: f[0],
          node: s(1, "node"),
          path: s(2, "path"),
          size: num(3, "size"),
        });
        break;
    }
  });
  return out;
}

/** Options of {@linkcode writeRepairReport}. */
export interface RepairReportOptions extends AuditOptions {
  /** Orphans get `delete` lines instead of `adopt` lines. */
  deleteOrphans?: boolean;
}

/**
 * Audit and write the repair report to `file`: the actions that fix what was found
 * (see the module doc). Returns the audit totals and the number of actions written.
 */
export async function writeRepairReport(
  ctx: ClusterContext,
  file: string,
  opts: RepairReportOptions = {},
): Promise<{ summary: AuditSummary; actions: number }> {
  const { replicates } = await queuedJobs(ctx);
  const out = await fsp.open(file, "w");
  let actions = 0;
  const put = async (a: RepairAction, why: string) => {
    actions++;
    await out.write(`${encodeRepairAction(a)}\t# ${why}\n`);
  };
  try {
    await out.write(
      `# hop audit repair report of ${ctx.layout.root}, ${new Date().toISOString()}\n` +
        `# Review it: delete or comment out (#) any line you do not want done, then apply it\n` +
        `# with: hop audit --apply ${file}${opts.deleteOrphans ? " --delete-orphans" : ""}\n`,
    );
    const mtimeOf = (r: AuditRecord) => Math.floor((r.mtimeMs ?? Date.now()) / 1000);
    const summary = await auditCluster(ctx, {
      ...opts,
      onRecord: async (r) => {
        await opts.onRecord?.(r);
        switch (r.kind) {
          case "leftover":
            await put(
              { action: "purge", node: r.node!, path: r.path!, size: r.nodeSize! },
              "temporary file of a failed write: deleted, never adopted",
            );
            break;
          case "orphan":
            if (opts.deleteOrphans) {
              await put(
                { action: "delete", node: r.node!, path: r.path!, size: r.nodeSize! },
                "orphan",
              );
            } else {
              await put(
                {
                  action: "adopt",
                  node: r.node!,
                  path: r.path!,
                  size: r.nodeSize!,
                  mtime: mtimeOf(r),
                },
                "orphan: link it under lost+found/",
              );
            }
            break;
          case "missing":
            await put(
              { action: "drop", link: r.link!, node: r.node!, path: r.path! },
              "missing on the node",
            );
            break;
          case "size-mismatch":
            await put(
              { action: "drop", link: r.link!, node: r.node!, path: r.path! },
              `size ${r.nodeSize} on the node, ${r.size} in the link`,
            );
            await put(
              {
                action: "adopt",
                node: r.node!,
                path: r.path!,
                size: r.nodeSize!,
                mtime: mtimeOf(r),
              },
              "keep the bad copy under lost+found/ for a person to look at",
            );
            break;
          case "lost":
            await put({ action: "unlink", link: r.link! }, "no good copy left: the file is lost");
            break;
          case "under-replicated":
            if (replicates.has(r.link!)) break; // already queued
            await put({ action: "replicate", link: r.link! }, `${r.copies} of ${r.want} copies`);
            break;
          case "unqueued":
            await put({ action: "requeue", link: r.link! }, "staged upload without a job");
            break;
        }
      },
    });
    await out.write(`# ${actions} actions\n`);
    return { summary, actions };
  } finally {
    await out.close();
  }
}

/** What applying a report did. */
export interface RepairResult {
  dropped: number;
  unlinked: number;
  adopted: number;
  queued: number;
  deleted: number;
  /** Actions that found nothing to do (already done, or the state changed). */
  skipped: number;
  /** Actions that failed, with why. */
  failed: { line: string; error: string }[];
}

/**
 * Apply a (reviewed) repair report. Each action checks the current state first, so
 * applying twice changes nothing the second time. `delete` actions are refused unless
 * `deleteOrphans` is set.
 */
export async function applyRepairReport(
  ctx: ClusterContext,
  text: string,
  opts: { source?: string; deleteOrphans?: boolean; replicas?: number } = {},
): Promise<RepairResult> {
  const actions = decodeRepairReport(text, opts.source ?? "repair report");
  if (!opts.deleteOrphans && actions.some((a) => a.action === "delete")) {
    throw new HopError("the repair report deletes node data, but --delete-orphans was not given", {
      hint: "Give --delete-orphans to delete orphaned data, or remove the delete lines.",
      exitCode: 2,
    });
  }
  const l = ctx.layout;
  const res: RepairResult = {
    dropped: 0,
    unlinked: 0,
    adopted: 0,
    queued: 0,
    deleted: 0,
    skipped: 0,
    failed: [],
  };
  const { uploads, replicates } = await queuedJobs(ctx);
  const want = wantedCopies(ctx, opts.replicas);
  const linkFile = (rel: string) => {
    const f = jobDiskPath(l, rel);
    if (!f || !f.endsWith(LINK_SUFFIX) || f.startsWith(l.deleted + path.sep)) {
      throw new HopError(`not a link file of the cluster tree: ${rel}`);
    }
    return f;
  };
  const queueReplicate = async (rel: string, link: FileLink) => {
    if (replicates.has(rel)) return false;
    await ctx.jobs.enqueue({
      type: "replicate",
      link: rel,
      size: link.size,
      mtime: link.mtime,
      nodes: [],
    });
    replicates.add(rel);
    return true;
  };
  for (const a of actions) {
    try {
      const done = await ctx.serial(async (): Promise<boolean> => {
        switch (a.action) {
          case "drop": {
            const f = linkFile(a.link);
            const link = await readFileLink(f);
            if (!link) return false;
            const copies = link.copies.filter((c) => !(c.node === a.node && c.path === a.path));
            if (copies.length === link.copies.length) return false;
            // The report may be old: a copy that is there again (made anew) is kept.
            const node = ctx.nodes.get(a.node);
            if (node && (await node.size(a.path)) === link.size) return false;
            await writeInfo(l.tmp, f, { ...link, copies });
            res.dropped++;
            return true;
          }
          case "unlink": {
            const f = linkFile(a.link);
            const link = await readFileLink(f);
            if (!link || link.copies.length > 0) return false;
            const id = stagedId(link);
            // A staged file is removed only when its staged data is gone for good.
            if (
              id !== null && await fsp.stat(path.join(l.staging, id)).then(() => true, () => false)
            ) {
              return false;
            }
            await fsp.rm(f, { force: true });
            res.unlinked++;
            return true;
          }
          case "replicate": {
            const link = await readFileLink(linkFile(a.link));
            if (!link || link.copies.length === 0 || link.copies.length >= want) return false;
            if (!await queueReplicate(a.link, link)) return false;
            res.queued++;
            return true;
          }
          case "requeue": {
            const link = await readFileLink(linkFile(a.link));
            if (!link || stagedId(link) === null || uploads.has(a.link)) return false;
            const job: QueueJob = {
              type: "upload",
              path: a.link,
              uid: link.uid,
              size: link.size,
              mtime: link.mtime,
              nodes: [],
            };
            await ctx.jobs.enqueue(job);
            uploads.add(a.link);
            res.queued++;
            return true;
          }
          case "adopt":
            return await adopt(ctx, a, want, queueReplicate, res);
          case "delete":
          case "purge": {
            if (a.action === "purge" && !NODE_TEMP.test(a.path)) {
              throw new HopError(`${a.path} is not a temporary file of a node write`, {
                hint: "purge deletes only leftover hop-part-… files; use delete for other data.",
              });
            }
            const node = ctx.nodes.get(a.node);
            if (!node) throw new HopError(`node ${a.node} is not configured`);
            if ((await node.size(a.path)) !== a.size) return false;
            await node.remove(a.path);
            res.deleted++;
            return true;
          }
        }
      });
      if (!done) res.skipped++;
    } catch (e) {
      res.failed.push({ line: encodeRepairAction(a), error: (e as Error).message });
    }
  }
  return res;
}

/** Link orphaned data under `lost+found/<node file name>#` (a copy added when that link exists). */
async function adopt(
  ctx: ClusterContext,
  a: RepairAction & { action: "adopt" },
  want: number,
  queueReplicate: (rel: string, link: FileLink) => Promise<boolean>,
  res: RepairResult,
): Promise<boolean> {
  const l = ctx.layout;
  const node = ctx.nodes.get(a.node);
  if (!node) throw new HopError(`node ${a.node} is not configured`);
  if ((await node.size(a.path)) !== a.size) return false;
  const base = a.path.split("/").pop()!;
  const m = /^[0-9]{6}-[0-9]{6}-(?:[0-9a-f]{8}-)?(.+)$/.exec(base); // stamp, tag, name
  const name = decodeName(m ? m[1] : base);
  await fsp.mkdir(l.lostFound, { recursive: true });
  for (let n = 1;; n++) {
    const stored = n === 1 ? base : `${base}~${n}`;
    const f = path.join(l.lostFound, encodeName(decodeName(stored)) + LINK_SUFFIX);
    const rel = path.relative(l.root, f).split(path.sep).join("/");
    const have = await readFileLink(f).catch(() => null);
    if (have === null && await fsp.stat(f).then(() => true, () => false)) continue;
    if (have) {
      if (have.copies.some((c) => c.node === a.node && c.path === a.path)) return false;
      if (have.size !== a.size || !have.copies.every((c) => c.path === a.path)) continue;
      const next = { ...have, copies: [...have.copies, { node: a.node, path: a.path }] };
      await writeInfo(l.tmp, f, next);
      res.adopted++;
      return true;
    }
    const link: FileLink = {
      kind: "file",
      name,
      size: a.size,
      uid: 0,
      mtime: a.mtime,
      copies: [{ node: a.node, path: a.path }],
      extra: [],
    };
    await writeInfo(l.tmp, f, link);
    res.adopted++;
    if (want > 1 && await queueReplicate(rel, link)) res.queued++;
    return true;
  }
}
