/**
 * `hop relay status`, `hop audit` and `hop cleanup` on relays of Escale's
 * default scheme (no `index` line; the relay is a tree of files, each beside
 * its `.name.placeholder` and, in a transfer, its `.name.lock`: see
 * `placeholder.ts`).
 *
 * - status: per path, what waits on the relay (a content with its pusher,
 *   mtime and pullers; whether this client would pull it) and who holds
 *   which lock, for how long;
 * - audit: a content without placeholder (sync skips it, an Escale puller
 *   crashes on it), a placeholder nobody pulled whose content is gone, locks
 *   (a warning beyond `lock timeout`), malformed placeholders and locks;
 * - cleanup, as Escale's own repair at start-up does (`sanityChecks`): this
 *   client's locks whose process is gone and any lock older than `lock
 *   timeout` are removed, a `w` lock's cut push rolled back (its content and
 *   placeholder removed, so its pusher sends it again); contents `puller
 *   count` clients pulled and a lock did not keep; hop's temp files nobody
 *   wrote to for long.
 *
 * @module
 */
import process from "node:process";
import { lockFileName, placeholderFileName } from "../codec/escale_placeholder.ts";
import { explainError } from "../errors.ts";
import { TEMP_PREFIX } from "../storage/types.ts";
import type { Entry } from "../storage/types.ts";
import type { AuditFinding } from "./audit.ts";
import type { CleanupAction } from "./cleanup.ts";
import { tempStaleSeconds } from "./cleanup.ts";
import { processHere } from "./local_lock.ts";
import { pathSelected } from "./config.ts";
import {
  type HeldLock,
  listTree,
  lockPath,
  readPathLock,
  readPlaceholder,
  type RelayPath,
  sidePath,
  unlockPath,
} from "./placeholder.ts";
import { isHiddenPath } from "./scan.ts";
import type { SyncContext } from "./sync.ts";
import type { Placeholder } from "../codec/escale_placeholder.ts";

/** One path of a placeholder relay with something pending, as `hop relay status` shows it. */
export interface PendingPath {
  path: string;
  /** A content waiting on the relay: its size and what its placeholder says. */
  content?: {
    size: number;
    pusher?: string;
    timestamp?: number;
    pullers: string[];
    /** This client would pull it on its next pass. */
    wouldPull: boolean;
    /** Why its placeholder could not be used (missing or malformed). */
    problem?: string;
  };
  lock?: HeldLock & { unreadable?: true };
}

/** A placeholder, or why there is none to use. */
async function placeholderOf(
  ctx: SyncContext,
  r: RelayPath,
): Promise<{ p?: Placeholder; problem?: string }> {
  if (!r.placeholder) return { problem: "no placeholder" };
  try {
    const p = await readPlaceholder(ctx, r.path);
    return p ? { p } : { problem: "no placeholder" };
  } catch (e) {
    const err = explainError(e);
    if (!err) throw e;
    return { problem: err.message };
  }
}

async function lockOf(ctx: SyncContext, r: RelayPath): Promise<PendingPath["lock"]> {
  if (!r.lock) return undefined;
  const ageSeconds = r.lock.mtimeMs ? Math.round((ctx.now() - r.lock.mtimeMs) / 1000) : undefined;
  return (await readPathLock(ctx, r)) ?? { owner: "?", mode: null, ageSeconds, unreadable: true };
}

/** What waits on a placeholder relay: every path with a content or a lock. Changes nothing. */
export async function placeholderPending(ctx: SyncContext): Promise<PendingPath[]> {
  const { cfg } = ctx;
  const out: PendingPath[] = [];
  const tree = await listTree(ctx.tree!);
  for (const r of [...tree.values()].sort((a, b) => a.path < b.path ? -1 : 1)) {
    if (!r.file && !r.lock) continue;
    const item: PendingPath = { path: r.path, lock: await lockOf(ctx, r) };
    if (r.file) {
      const { p, problem } = await placeholderOf(ctx, r);
      const me = cfg.clientName;
      item.content = {
        size: r.file.size,
        pusher: p?.meta.pusher,
        timestamp: p?.meta.timestamp,
        pullers: p?.pullers ?? [],
        wouldPull: !!p && cfg.mode !== "upload" && p.meta.pusher !== me &&
          !p.pullers.includes(me) && !isHiddenPath(r.path) && pathSelected(r.path, cfg),
        problem,
      };
    }
    out.push(item);
  }
  return out;
}

/** One line of `hop relay status` for a pending path. */
export function describePending(x: PendingPath): string {
  const parts = [`  ${x.path}:`];
  const c = x.content;
  if (c) {
    parts.push(
      c.problem
        ? `${c.size} byte(s) waiting, ${c.problem}`
        : `${c.size} byte(s) pushed by ${
          c.pusher || "an Escale older than 0.5"
        } (mtime ${c.timestamp}), pulled by [${c.pullers.join(", ")}]${
          c.wouldPull ? ", this client would pull it" : ""
        }`,
    );
  }
  if (x.lock) {
    const age = x.lock.ageSeconds !== undefined ? ` ${x.lock.ageSeconds} s ago` : "";
    parts.push(
      x.lock.unreadable
        ? `locked${age} (unreadable lock)`
        : `locked (${x.lock.mode ?? "legacy"}) by ${x.lock.owner}${age}`,
    );
  }
  return parts.join(" ");
}

/** `hop audit` of a placeholder relay (see the module doc); changes nothing. */
export async function auditPlaceholders(
  ctx: SyncContext,
  add: (f: Omit<AuditFinding, "folder">) => void,
): Promise<void> {
  const { cfg } = ctx;
  const tree = await listTree(ctx.tree!);
  for (const r of [...tree.values()].sort((a, b) => a.path < b.path ? -1 : 1)) {
    const lock = await lockOf(ctx, r);
    if (lock) {
      const stale = lock.ageSeconds !== undefined && lock.ageSeconds > cfg.lockTimeoutSeconds;
      const age = lock.ageSeconds !== undefined ? `, ${lock.ageSeconds} s old` : "";
      add({
        kind: lock.unreadable ? "unreadable" : "lock",
        severity: stale || lock.unreadable ? "warning" : "info",
        name: sidePath(r.path, lockFileName),
        owner: lock.owner,
        ageSeconds: lock.ageSeconds,
        detail: lock.unreadable
          ? `the lock of ${r.path} cannot be read${age}`
          : `${lock.mode ?? "legacy"} lock of ${r.path} held by ${lock.owner}${
            lock.host ? ` on ${lock.host}` : ""
          }${age}` +
            (stale
              ? `: beyond lock timeout (${cfg.lockTimeoutSeconds} s); ` +
                (lock.mode === "r" && !r.file
                  ? "its holder stopped in a pull that took the content away; "
                  : "") +
                "`hop cleanup` removes it"
              : ""),
      });
    }
    if (!r.placeholder) {
      if (r.file && !r.lock) {
        add({
          kind: "data-without-placeholder",
          severity: "error",
          name: r.path,
          detail: `${r.path} (${r.file.size} bytes) has no placeholder: sync skips it and an ` +
            "Escale client pulling it crashes (ValueError in updatePlaceholder); its pusher " +
            "did not finish or is an Escale older than 0.5: push it again from a client that has it",
        });
      }
      continue;
    }
    const { p, problem } = await placeholderOf(ctx, r);
    if (!p) {
      add({
        kind: "unreadable",
        severity: "error",
        name: sidePath(r.path, placeholderFileName),
        detail: `placeholder of ${r.path}: ${problem}; no client can pull or update that file`,
      });
      continue;
    }
    if (!r.file && !r.lock && p.pullers.every((n) => n === p.meta.pusher)) {
      add({
        kind: "placeholder-without-data",
        severity: "warning",
        name: sidePath(r.path, placeholderFileName),
        detail: `${r.path}: the version ${p.meta.pusher} pushed (mtime ${p.meta.timestamp}) ` +
          "was pulled by nobody and its content is gone (a puller stopped in a transfer, or it " +
          "was removed by hand); clients lacking it ask for it again",
      });
    }
  }
}

/** `hop cleanup` of a placeholder relay (see the module doc). */
export async function cleanupPlaceholders(
  ctx: SyncContext,
  dryRun: boolean,
  act: (a: Omit<CleanupAction, "folder" | "done">) => void,
): Promise<void> {
  const { cfg } = ctx;
  const tree = ctx.tree!;
  const timeout = cfg.lockTimeoutSeconds;
  const others: { path: string; e: Entry }[] = [];
  const paths = await listTree(tree, (path, e) => others.push({ path, e }));
  const sorted = [...paths.values()].sort((a, b) => a.path < b.path ? -1 : 1);

  // 1. locks: this client's whose process is gone; any beyond lock timeout
  for (const r of sorted) {
    if (!r.lock) continue;
    const lock = await lockOf(ctx, r);
    if (!lock) continue;
    const ours = lock.owner === cfg.clientName;
    const running = processHere(lock) === "running";
    const stale = lock.ageSeconds !== undefined && lock.ageSeconds > timeout;
    if (running || !(stale || (ours && lock.pid !== process.pid))) continue;
    const name = sidePath(r.path, lockFileName);
    let detail = `${lock.mode ?? "legacy"} lock of ${lock.owner}` +
      (lock.ageSeconds !== undefined ? `, ${lock.ageSeconds} s old` : "") +
      (stale ? ` (timeout ${timeout} s)` : " (this client's, its process is gone)");
    // a cut push is rolled back as Escale's repair does: its pusher sends it again
    const cut = lock.mode !== "r" && (r.file || r.placeholder);
    if (cut) detail += "; its cut push rolled back (content and placeholder removed)";
    if (!dryRun) {
      if (cut) {
        if (r.file) await tree.delete(r.path);
        if (r.placeholder) await tree.delete(sidePath(r.path, placeholderFileName));
        r.file = r.placeholder = undefined;
      }
      await tree.delete(name);
      r.lock = undefined;
    }
    act({ kind: "stale-lock", name, detail });
  }

  // 2. contents `puller count` clients pulled, which nothing removed
  for (const r of sorted) {
    if (!r.file || !r.placeholder || r.lock) continue;
    const { p } = await placeholderOf(ctx, r);
    if (!p) continue; // reported by `hop audit`
    const pulled = new Set(p.pullers.filter((n) => n !== p.meta.pusher));
    if (pulled.size < (cfg.pullerCount ?? 1)) continue;
    const detail = `pushed by ${p.meta.pusher}, pulled by [${[...pulled].join(", ")}]`;
    if (dryRun) {
      act({ kind: "consumed-file", name: r.path, detail });
      continue;
    }
    if (!(await lockPath(ctx, r.path, "w"))) {
      act({ kind: "consumed-file", name: r.path, detail, skipped: "locked meanwhile" });
      continue;
    }
    try {
      const again = await readPlaceholder(ctx, r.path);
      if (again?.meta.checksum !== p.meta.checksum) {
        act({ kind: "consumed-file", name: r.path, detail, skipped: "pushed again meanwhile" });
        continue;
      }
      await tree.delete(r.path);
      act({ kind: "consumed-file", name: r.path, detail });
    } finally {
      await unlockPath(ctx, r.path);
    }
  }

  // 3. hop's temp files (atomic writes, exclusive-create claims) nobody wrote to for long
  const tempStale = tempStaleSeconds(timeout);
  for (const { path, e } of others) {
    if (!e.name.startsWith(TEMP_PREFIX) || !e.mtimeMs) continue;
    const age = (ctx.now() - e.mtimeMs) / 1000;
    if (!(age > tempStale)) continue;
    if (!dryRun) await tree.delete(path);
    act({ kind: "temp-file", name: path, detail: `untouched for ${Math.round(age)} s` });
  }
}
