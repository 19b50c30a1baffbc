/**
 * `hop cleanup` for relays: removes what clients left behind on a relay —
 * page locks whose holder has been gone beyond `lock timeout` (a `w` lock's
 * unfinished update rolled back as on restart), updates every registered
 * puller consumed, the leftovers of a cut push, expired client
 * registrations, stale temp files of atomic writes (`.hop-tmp-*`), stale
 * takeover guards and claim folders (`*.excl`) without their file, and bad
 * updates a pull moved aside (quarantined: nothing reads them again). With
 * `dryRun` it only says what it would do.
 *
 * Every removal that touches a page happens under that page's `w` lock, taken
 * the same way sync takes it, so cleanup can run while clients sync.
 *
 * @example
 * ```ts
 * const actions = await cleanupRelay({ configFile: "escale.conf", dryRun: true, reporter });
 * for (const a of actions) console.log(a.kind, a.name, a.detail);
 * ```
 *
 * @module
 */
import type { Reporter } from "../ui/report.ts";
import { CLAIM_SUFFIX, TEMP_PREFIX } from "./backend/types.ts";
import type { FolderSource } from "./command.ts";
import { forEachFolder } from "./command.ts";
import { clientFileName, readClients } from "./hopfiles.ts";
import { acquireLock, readLock } from "./lock.ts";
import { readUpdateIndex, viewRelay } from "./pages.ts";
import { cleanupPlaceholders } from "./placeholder_maint.ts";
import { expectedPullers, repairCutWork, updateComplete, updatePusher } from "./pullers.ts";
import { processHere } from "./local_lock.ts";
import { clearPendingUpdate } from "./push.ts";
import { describeQuarantined, listQuarantined } from "./quarantine.ts";
import type { SyncContext } from "./sync.ts";

/** What a cleanup action is about. */
export type CleanupKind =
  | "stale-lock" // a page lock whose holder is gone beyond the lock timeout
  | "consumed-update" // an update every expected puller consumed
  | "cut-push" // half an update (index or archive alone), no lock, older than the timeout
  | "expired-client" // a registration not refreshed within `client expiry`
  | "temp-file" // `.hop-tmp-*` nobody wrote to for long
  | "takeover-guard" // `.hop-takeover-P` left by a crash
  | "orphan-claim" // `<name>.excl` claim folder without its file
  | "quarantined" // a bad update a pull moved aside (`quarantine.ts`)
  | "consumed-file"; // placeholder scheme: a content `puller count` clients pulled

/** One thing cleanup did (or, in a dry run, would do). */
export interface CleanupAction {
  /** The folder section (`command line` for the one-off form). */
  folder: string;
  kind: CleanupKind;
  /** The relay file concerned. */
  name: string;
  page?: string;
  /** Human detail: owner and age of a lock, pullers of an update, age of a file. */
  detail: string;
  /** True when done; false in a dry run, or when the state changed meanwhile (then `skipped`). */
  done: boolean;
  /** Why it was not done although not a dry run (page busy, changed meanwhile). */
  skipped?: string;
}

/** Options of {@linkcode cleanupRelay}. */
export interface CleanupOptions extends FolderSource {
  /** Only report what would be done. */
  dryRun?: boolean;
  reporter: Reporter;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** Seconds after which a temp file of an atomic write counts as left by a crash. */
export function tempStaleSeconds(lockTimeoutSeconds: number): number {
  return Math.max(2 * lockTimeoutSeconds, 3600);
}

/**
 * Runs `hop cleanup` on every folder of the source and returns the actions,
 * each also reported as one line (event `cleanup`).
 */
export async function cleanupRelay(opts: CleanupOptions): Promise<CleanupAction[]> {
  const { reporter } = opts;
  const out: CleanupAction[] = [];
  await forEachFolder(opts, reporter, async (ctx) => {
    for (const a of await cleanupFolder(ctx, !!opts.dryRun)) {
      out.push(a);
      const verb = a.done ? "removed" : a.skipped ? `left (${a.skipped})` : "would remove";
      reporter.info(`${a.folder}: ${verb} ${a.kind} ${a.name}: ${a.detail}`, {
        event: "cleanup",
        ...a,
      });
    }
  }, { now: opts.now });
  return out;
}

/** Cleanup of one folder's relay (the context is open). */
export async function cleanupFolder(ctx: SyncContext, dryRun: boolean): Promise<CleanupAction[]> {
  const { cfg, io } = ctx;
  const out: CleanupAction[] = [];
  const act = (a: Omit<CleanupAction, "folder" | "done">, done = !dryRun) => {
    const rec = { folder: cfg.name, ...a, done: done && !a.skipped };
    out.push(rec);
    return rec;
  };
  if (ctx.tree) {
    await cleanupPlaceholders(ctx, dryRun, act);
    return out;
  }
  const nowMs = ctx.now();
  const nowS = Math.floor(nowMs / 1000);
  const timeout = cfg.lockTimeoutSeconds;
  let view = viewRelay(await io.list());

  // 1. stale page locks (taken over like sync does; a w lock's cut push rolled back)
  for (const p of view.pages.values()) {
    if (!p.lock) continue;
    const found = await readLock(ctx.lockIo, p.page, ctx.now);
    if (!found || found.ageSeconds <= timeout) continue;
    const { owner, mode } = found.info;
    if (processHere(found.info) === "running") continue;
    const detail = `${mode ?? "legacy"} lock of ${owner || "?"}, ${
      Math.round(found.ageSeconds)
    } s old (timeout ${timeout} s)`;
    if (dryRun) {
      act({ kind: "stale-lock", name: p.lock.name, page: p.page, detail });
      continue;
    }
    const rolled: string[] = [];
    const held = await acquireLock(ctx.lockIo, p.page, {
      owner: cfg.clientName,
      mode: "w",
      timeoutSeconds: timeout,
      now: ctx.now,
      onStale: async (stale) => {
        rolled.push(...(await repairCutWork(io, p.page, stale.mode)));
      },
    });
    if (!held) {
      act({ kind: "stale-lock", name: p.lock.name, page: p.page, detail, skipped: "page busy" });
      continue;
    }
    await held.release();
    act({
      kind: "stale-lock",
      name: p.lock.name,
      page: p.page,
      detail: detail + (rolled.length ? `; ${rolled.join("; ")}` : ""),
    });
  }
  if (!dryRun) view = viewRelay(await io.list());

  // 2. updates every expected puller consumed, and leftovers of cut pushes
  const clients = await readClients(io, view.clients);
  const expected = expectedPullers(clients, nowS, cfg.clientExpirySeconds);
  for (const p of view.pages.values()) {
    if (p.updates.length === 0) continue;
    const complete = p.updates.filter((u) => u.index && u.data);
    if (complete.length > 1) continue; // two updates: `hop audit --repair`
    let kind: CleanupKind;
    let name: string;
    let detail: string;
    if (complete.length === 1) {
      const u = complete[0];
      let idx;
      try {
        idx = await readUpdateIndex(io, p.page, u.time);
      } catch {
        continue; // unreadable: reported by `hop audit`
      }
      const pusher = updatePusher(idx.entries);
      if (p.updates.length > 1) continue; // a complete update and halves: audit
      if (!updateComplete(pusher, idx.pullers, expected, cfg.pullerCount)) continue;
      kind = "consumed-update";
      name = u.index!.name;
      detail = `pushed by ${pusher ?? "?"}, consumed by [${
        idx.pullers.filter((x) => x !== "").join(", ")
      }]`;
    } else {
      const newest = Math.max(...p.updates.map((u) => (u.index ?? u.data)!.mtimeMs));
      if (p.lock || (nowMs - newest) / 1000 <= timeout) continue;
      kind = "cut-push";
      name = p.updates.map((u) => (u.index ?? u.data)!.name).join(", ");
      detail = `half an update, untouched for ${Math.round((nowMs - newest) / 1000)} s`;
    }
    if (dryRun) {
      act({ kind, name, page: p.page, detail });
      continue;
    }
    const freed = await clearPendingUpdate(ctx, p);
    act({ kind, name, page: p.page, detail, skipped: freed ? undefined : "page busy or changed" });
  }

  // 3. expired registrations
  for (const c of clients) {
    const age = nowS - c.seen;
    if (age < cfg.clientExpirySeconds) continue;
    const name = clientFileName(c.name);
    if (!dryRun) {
      // refreshed meanwhile? read it again before removing
      const again = (await readClients(io, [{ name, size: 0, mtimeMs: 0 }]))[0];
      if (again && nowS - again.seen < cfg.clientExpirySeconds) continue;
      await io.delete(name);
    }
    act({
      kind: "expired-client",
      name,
      detail: `${c.name} (${c.mode}, ${c.host}) last seen ${Math.round(age / 86400)} day(s) ago`,
    });
  }

  // 4. temp files, takeover guards, orphan claims
  const tempStale = tempStaleSeconds(timeout);
  const guardStale = Math.max(60, timeout);
  const names = new Set(view.files.map((f) => f.name));
  for (const f of view.files) {
    const age = (nowMs - f.mtimeMs) / 1000;
    let kind: CleanupKind | undefined;
    if (f.name.startsWith(TEMP_PREFIX) && age > tempStale) kind = "temp-file";
    else if (f.name.startsWith(".hop-takeover-") && age > guardStale) kind = "takeover-guard";
    if (!kind) continue;
    if (!dryRun) await ctx.lockIo.delete(f.name);
    act({ kind, name: f.name, detail: `untouched for ${Math.round(age)} s` });
  }
  for (const c of await ctx.lockIo.listClaims()) {
    const target = c.name.slice(0, -CLAIM_SUFFIX.length);
    const age = (nowMs - c.mtimeMs) / 1000;
    // a claim with its file is a held lock; a fresh one is being created right now
    if (names.has(target) || !(age > guardStale)) continue;
    if (!dryRun) {
      if (await ctx.lockIo.stat(target)) continue; // created meanwhile
      await ctx.lockIo.delete(target); // removes the claim (and no file)
    }
    act({
      kind: "orphan-claim",
      name: c.name,
      detail: `claim without ${target}, ${Math.round(age)} s old`,
    });
  }

  // 5. bad updates moved aside: no client reads them (their pushers were told to push again)
  for (const q of await listQuarantined(view.files, io)) {
    if (!dryRun) { for (const f of q.files) await io.delete(f.name); }
    act({
      kind: "quarantined",
      name: q.files.map((f) => f.name).join(", "),
      page: q.page,
      detail: describeQuarantined(q),
    });
  }
  return out;
}
