/**
 * The cluster's maintenance commands as the `hop` command runs them: each
 * opens the cluster without serving it, calls one function of cleanup.ts,
 * audit.ts, replicate.ts or admin.ts, reports what happened (a line per item
 * for people, a JSON event per item with `--json`) and closes it again.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { Buffer } from "node:buffer";
import process from "node:process";
import { HopError } from "../errors.ts";
import type { Reporter } from "../ui/report.ts";
import {
  dequeueAll,
  enqueueLines,
  listQueue,
  loseNode,
  nodeKeyOf,
  openClusterAdmin,
  queueLines,
  removeJobs,
  retireNode,
} from "./admin.ts";
import { applyRepairReport, auditCluster, type AuditKind, writeRepairReport } from "./audit.ts";
import { cleanupCluster } from "./cleanup.ts";
import { replicateCluster } from "./replicate.ts";

/** Where the cluster is: root, nodes and replicas (from flags and the config file). */
export interface ClusterTarget {
  root?: string;
  nodes?: string[];
  replicas?: number;
}

async function withAdmin<T>(
  t: ClusterTarget,
  work: (a: Awaited<ReturnType<typeof openClusterAdmin>>) => Promise<T>,
): Promise<T> {
  const admin = await openClusterAdmin({ root: t.root, nodes: t.nodes });
  try {
    return await work(admin);
  } finally {
    await admin.close();
  }
}

/** `hop cleanup` on a cluster: node data of deleted files, staging leftovers. */
export async function clusterCleanupCommand(
  t: ClusterTarget,
  dryRun: boolean,
  r: Reporter,
): Promise<void> {
  await withAdmin(t, async ({ ctx, queue }) => {
    const rep = await cleanupCluster(ctx, queue, { dryRun });
    const would = dryRun ? "would " : "";
    for (const e of rep.finished) {
      r.info(`${would}finish deletion ${e}`, { event: "cleanup.finished", entry: e });
    }
    for (const p of rep.pending) {
      r.info(`deletion ${p.entry} waits: ${p.reason}`, { event: "cleanup.pending", ...p });
    }
    for (const s of rep.stillLinked) {
      r.info(`kept ${s.node} ${s.path}: a live link still names it`, {
        event: "cleanup.kept",
        ...s,
      });
    }
    for (const s of rep.stagingPurged) {
      r.info(`${would}remove staging leftover ${s}`, { event: "cleanup.staging", name: s });
    }
    r.info(
      `${
        dryRun ? "dry run: " : ""
      }${rep.finished.length} deletion(s) finished, ${rep.pending.length} pending, ` +
        `${rep.stagingPurged.length} staging leftover(s) removed, ${rep.jobsQueued} delete job(s) queued`,
      { event: "cleanup.summary", dryRun, jobsQueued: rep.jobsQueued },
    );
  });
}

/** Exit code of an audit that could not list every node (0 healthy, 1 problems found). */
export const AUDIT_INCOMPLETE = 3;

/** Findings that mean something is wrong (the others are information). */
const PROBLEMS: ReadonlySet<AuditKind> = new Set<AuditKind>([
  "orphan",
  "missing",
  "size-mismatch",
  "under-replicated",
  "lost",
  "unqueued",
  "unreadable",
  "leftover",
]);

/**
 * `hop audit` on a cluster. Without `repair`/`apply`: prints the findings and
 * fails with exit 1 when any is a problem, else with exit 3 when some node could
 * not be listed completely (its copies are `unchecked`). `repair` writes a report
 * to review (exit 3 too when a node could not be listed); `apply` carries a
 * (reviewed) report out.
 */
export async function clusterAuditCommand(
  t: ClusterTarget,
  o: { all?: boolean; repair?: boolean; report?: string; apply?: string; deleteOrphans?: boolean },
  r: Reporter,
): Promise<void> {
  await withAdmin(t, async ({ ctx }) => {
    if (o.apply) {
      const text = await readFile(o.apply, "utf8").catch((e) => {
        throw new HopError(`cannot read the repair report ${o.apply}: ${e.message}`, {
          hint: "Write one first with hop audit --repair.",
        });
      });
      const res = await applyRepairReport(ctx, text, {
        source: o.apply,
        deleteOrphans: o.deleteOrphans,
        replicas: t.replicas,
      });
      for (const f of res.failed) r.warn(`${f.line}: ${f.error}`, { event: "repair.failed", ...f });
      r.info(
        `repaired: ${res.dropped} copies dropped, ${res.unlinked} links removed, ${res.adopted} orphans ` +
          `linked under lost+found/, ${res.queued} replications queued, ${res.deleted} node files deleted, ` +
          `${res.skipped} already done`,
        { event: "repair.applied", ...res },
      );
      if (res.failed.length > 0) {
        throw new HopError(`${res.failed.length} repair action(s) failed`, {
          hint: "See the warnings above; run hop audit --repair again once the cause is fixed.",
        });
      }
      return;
    }
    if (o.repair) {
      const file = o.report ?? "hop-audit-repair.txt";
      const { summary, actions } = await writeRepairReport(ctx, file, {
        replicas: t.replicas,
        deleteOrphans: o.deleteOrphans,
      });
      r.info(
        `wrote ${actions} repair action(s) to ${file} (${summary.links} links, ${summary.nodeFiles} node files). ` +
          `Review it, then: hop audit --apply ${file}${o.deleteOrphans ? " --delete-orphans" : ""}`,
        { event: "repair.report", file, actions },
      );
      incomplete(summary.nodesDown, "the report proposes nothing for their copies");
      return;
    }
    let problems = 0;
    const summary = await auditCluster(ctx, {
      replicas: t.replicas,
      includeOk: o.all,
      onRecord: (rec) => {
        if (PROBLEMS.has(rec.kind)) problems++;
        const where = rec.link ?? "";
        const node = rec.node ? `${rec.node}:${rec.path ?? ""}` : "";
        const line = [rec.kind.padEnd(16), where, node, rec.detail ?? ""].filter((x) => x).join(
          "  ",
        );
        r.info(line, { event: "audit", ...rec });
      },
    });
    const { recordAudit } = await import("./monitor.ts");
    await recordAudit(ctx.layout, {
      time: Date.now(),
      counts: summary.counts,
      links: summary.links,
      nodeFiles: summary.nodeFiles,
      nodesDown: summary.nodesDown,
    });
    const counts = Object.entries(summary.counts).filter(([, n]) => n > 0).map(([k, n]) =>
      `${k} ${n}`
    );
    r.info(
      `audited ${summary.links} links and ${summary.nodeFiles} node files in ${
        (summary.ms / 1000).toFixed(1)
      } s: ` +
        (counts.join(", ") || "nothing found"),
      { event: "audit.summary", ...summary },
    );
    if (problems > 0) {
      throw new HopError(
        `the audit found ${problems} problem(s)` +
          (summary.nodesDown.length > 0
            ? `, and could not list ${summary.nodesDown.join(", ")} (their copies are unchecked)`
            : ""),
        { hint: "hop audit --repair writes a report of fixes to review and apply." },
      );
    }
    incomplete(summary.nodesDown, "nothing is concluded about their copies");
  });
}

/** Exit 3: some node could not be listed completely, so the audit is not a clean bill. */
function incomplete(nodesDown: string[], consequence: string): void {
  if (nodesDown.length === 0) return;
  throw new HopError(
    `the audit is incomplete: ${nodesDown.length} node(s) could not be listed ` +
      `(${nodesDown.join(", ")}); ${consequence}`,
    {
      hint: "Check that those nodes run and that their URLs, users and passwords are right " +
        "(the reason is in .log/cluster.log), then audit again.",
      exitCode: AUDIT_INCOMPLETE,
    },
  );
}

/** `hop cluster replicate`: every file to the replication factor. */
export async function clusterReplicateCommand(
  t: ClusterTarget,
  o: { dryRun?: boolean; from?: string[]; to?: string[] },
  r: Reporter,
): Promise<void> {
  await withAdmin(t, async ({ ctx }) => {
    const sum = await replicateCluster(ctx, {
      replicas: t.replicas,
      dryRun: o.dryRun,
      from: o.from?.map(nodeKeyOf),
      to: o.to?.map(nodeKeyOf),
      onFile: (f) =>
        r.info(
          `${o.dryRun ? "would copy" : "copied"} ${f.link} to ${
            f.made.map((c) => c.node).join(", ") || "-"
          }` +
            (f.short > 0 ? ` (still ${f.short} short)` : ""),
          { event: "replicate.file", ...f },
        ),
    });
    r.info(
      `${sum.files} files checked, ${sum.copied} copies ${
        o.dryRun ? "to make" : "made"
      } (${sum.direct} node to node), ${sum.short} still short`,
      { event: "replicate.summary", ...sum },
    );
    if (sum.short > 0 && !o.dryRun) {
      throw new HopError(`${sum.short} file(s) are still short of copies`, {
        hint: "Check that enough nodes are up (hop audit), then run hop cluster replicate again.",
      });
    }
  });
}

async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of process.stdin) chunks.push(c as Uint8Array);
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** `hop cluster queue`: list, dequeue (print and remove), enqueue (stdin), remove. */
export async function clusterQueueCommand(
  root: string,
  o: { dequeue?: boolean; enqueue?: boolean; remove?: string[]; json?: boolean; quiet?: boolean },
  r: Reporter,
): Promise<void> {
  const out = (s: string) => process.stdout.write(s + "\n");
  // said on stderr: stdout holds job lines only (queue --dequeue | filter | queue --enqueue)
  const empty = () => {
    if (!o.quiet) process.stderr.write(`the queue of ${root} is empty\n`);
  };
  if (o.enqueue) {
    const n = await enqueueLines(root, await readStdin(), "stdin");
    r.info(`queued ${n} job(s)`, { event: "queue.enqueued", count: n });
  } else if (o.dequeue) {
    const lines = await dequeueAll(root);
    for (const line of lines) out(line);
    if (lines.length === 0) empty();
  } else if (o.remove && o.remove.length > 0) {
    await removeJobs(root, o.remove);
    r.info(`removed ${o.remove.length} job(s)`, { event: "queue.removed", ids: o.remove });
  } else if (o.json) {
    for (const e of await listQueue(root)) out(JSON.stringify(e));
  } else {
    const lines = await queueLines(root);
    for (const line of lines) out(line);
    if (lines.length === 0) empty();
  }
}

/** `hop cluster node retire NODE`. */
export async function nodeRetireCommand(
  t: ClusterTarget,
  node: string,
  dryRun: boolean,
  r: Reporter,
): Promise<void> {
  await withAdmin(t, async ({ ctx }) => {
    const res = await retireNode(ctx, node, {
      replicas: t.replicas,
      dryRun,
      onFile: (link, what) => r.info(`${link}: ${what}`, { event: "retire.file", link, what }),
    });
    for (const k of res.kept) {
      r.warn(`kept on the node: ${k.link}: ${k.reason}`, { event: "retire.kept", ...k });
    }
    for (const u of res.undeleted) {
      r.warn(`could not delete ${u.path} on the node: ${u.error}`, {
        event: "retire.undeleted",
        ...u,
      });
    }
    r.info(
      `${
        dryRun ? "dry run: " : ""
      }${res.files} files on the node, ${res.copied} copied elsewhere, ${res.removed} removed`,
      { event: "retire.summary", files: res.files, copied: res.copied, removed: res.removed },
    );
    if (!dryRun && res.kept.length > 0) {
      throw new HopError(`${res.kept.length} file(s) could not leave the node`, {
        hint: "Add or repair another node, then run hop cluster node retire again.",
      });
    }
  });
}

/** `hop cluster node lost NODE`. */
export async function nodeLostCommand(
  t: ClusterTarget,
  node: string,
  dryRun: boolean,
  r: Reporter,
): Promise<void> {
  await withAdmin(t, async ({ ctx }) => {
    const res = await loseNode(ctx, node, { replicas: t.replicas, dryRun });
    for (const l of res.lost) {
      r.warn(`lost (its only copy was on the node): ${l}`, { event: "lost.file", link: l });
    }
    for (const q of res.queued) {
      r.info(`short of copies, replication queued: ${q}`, { event: "lost.queued", link: q });
    }
    r.info(
      `${
        dryRun ? "dry run: " : ""
      }${res.files} files had a copy on the node: ${res.rereplicated} re-replicated, ` +
        `${res.queued.length} queued, ${res.lost.length} lost`,
      { event: "lost.summary", files: res.files, rereplicated: res.rereplicated },
    );
  });
}

/** `hop cluster status`: the running server's view, or one worked out here when none runs. */
export async function clusterStatusCommand(
  o: { root?: string; nodes?: string[]; replicas?: number },
  r: Reporter,
): Promise<void> {
  const { formatStatus, readClusterStatus } = await import("./monitor.ts");
  const adm = await openClusterAdmin({ root: o.root, nodes: o.nodes });
  try {
    const s = await readClusterStatus(adm.ctx, o.replicas ?? 2);
    const lines = formatStatus(s);
    r.info(lines.join("\n"), { event: "cluster-status", status: s });
  } finally {
    await adm.close();
  }
}
