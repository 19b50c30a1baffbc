/**
 * Page locks (`.P.lock`), taken atomically: exclusive create, never
 * read-then-overwrite. A lock nobody refreshed for `lock timeout` seconds is
 * taken over safely (under a takeover guard `.hop-takeover-P`, created
 * exclusively, the lock is checked to be the very one judged stale, then
 * removed); so is, at once, a lock of this client whose process on this host
 * is gone (killed mid-push). A holder refreshes its lock during long
 * transfers and checks it still holds it.
 *
 * The text is Escale's (`lock%1.0`, `owner:`, `mode:`) plus hop's lines
 * (`acquired:`, `host:`, `pid:`, `token:`), which Escale ignores; see
 * `../codec/lock.ts`. A lock that cannot be read counts as held by an unknown
 * client (`?`) until it times out: Escale writes its locks in place, so a
 * half-written one may be seen.
 *
 * A suspend lock (owner `<client>-suspend`, written by `hop relay suspend` or
 * Escale's `escalectl suspend`) never times out: the pages stay suspended
 * until `hop relay resume` (or `escalectl resume`) releases them, as Escale
 * clients (which never take over a lock with an owner) already behave.
 *
 * @example
 * ```ts
 * const held = await acquireLock(io, "0", { owner: "bob", mode: "r", timeoutSeconds: 600 });
 * if (held) try { ... } finally { await held.release(); }
 * ```
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import process from "node:process";
import { lockName } from "../codec/escale_index.ts";
import { decodeLock, encodeLock, type Lock } from "../codec/lock.ts";
import { HopError } from "../errors.ts";
import type { Reporter } from "../ui/report.ts";
import type { RelayFile, RelayIO } from "./io.ts";
import { processHere } from "./local_lock.ts";
import { repairCutWork } from "./pullers.ts";

/** What a lock file says (the codec's {@linkcode Lock}). */
export type LockInfo = Lock;

/** A lock this process holds. */
export interface HeldLock {
  page: string;
  mode: "r" | "w";
  token: string;
  /** Unix seconds when taken (also the `T` of an update pushed under it). */
  acquired: number;
  /** Rewrites the lock with a fresh time; throws if it is no longer ours. */
  refresh(): Promise<void>;
  /** Throws if the lock is no longer ours (taken over after a timeout). */
  verify(): Promise<void>;
  /** Removes the lock if still ours. */
  release(): Promise<void>;
}

/** Options of {@linkcode acquireLock}. */
export interface AcquireOptions {
  owner: string;
  mode: "r" | "w";
  timeoutSeconds: number;
  /** Clock, for tests. */
  now?: () => number;
  /**
   * Called with a stale lock just taken over, while the new lock is held and the takeover
   * guard too (to roll back an interrupted push); if it throws, the new lock is released.
   */
  onStale?: (stale: LockInfo) => Promise<void>;
  /** True for a lock whose holder is known to be gone: taken over at once, as a stale one. */
  holderGone?: (info: LockInfo) => boolean;
}

/** A lock found on the relay, with its age. */
export interface FoundLock {
  info: LockInfo;
  text: string;
  file: RelayFile;
  /** Seconds since taken or refreshed. */
  ageSeconds: number;
}

/** What `hop relay suspend` appends to a client's name for its locks (as Escale does). */
export const SUSPEND_SUFFIX = "-suspend";

/** True for a suspend lock, which is never taken over (see the module doc). */
export function isSuspendLock(info: LockInfo): boolean {
  return info.owner.endsWith(SUSPEND_SUFFIX);
}

/**
 * True when `acquireLock` with `opts` takes `found` over: older than the timeout, or its
 * holder gone; a suspend lock never.
 */
export function takenOver(
  found: { info: LockInfo; ageSeconds: number },
  opts: Pick<AcquireOptions, "timeoutSeconds" | "holderGone">,
): boolean {
  if (isSuspendLock(found.info)) return false;
  return found.ageSeconds > opts.timeoutSeconds || !!opts.holderGone?.(found.info);
}

/** Reads a page's lock, or null when there is none. */
export async function readLock(
  io: RelayIO,
  page: string,
  now: () => number = Date.now,
): Promise<FoundLock | null> {
  const name = lockName(page);
  const file = await io.stat(name);
  if (!file) return null;
  let text: string;
  try {
    text = new TextDecoder().decode(await io.readBytes(name));
  } catch {
    return null; // released between stat and read
  }
  let info: LockInfo;
  try {
    info = decodeLock(text, name);
  } catch {
    info = { owner: "?", mode: null };
  }
  const since = info.acquired ?? file.mtimeMs;
  return { info, text, file, ageSeconds: Math.max(0, (now() - since) / 1000) };
}

/**
 * Takes the lock of `page`, or returns null when another client holds a live
 * lock. A lock older than `timeoutSeconds` (or whose holder `holderGone`
 * says is gone) is taken over, a suspend lock never: at most one of several
 * racing takers wins, and it holds the new lock before `onStale` runs.
 */
export async function acquireLock(
  io: RelayIO,
  page: string,
  opts: AcquireOptions,
): Promise<HeldLock | null> {
  const now = opts.now ?? Date.now;
  const name = lockName(page);
  for (let attempt = 0; attempt < 3; attempt++) {
    const token = randomBytes(8).toString("hex");
    const acquired = Math.floor(now() / 1000);
    const info: LockInfo = {
      owner: opts.owner,
      mode: opts.mode,
      acquired: Math.floor(now()),
      host: hostname(),
      pid: process.pid,
      token,
    };
    const take = async () => {
      if (!(await io.createExclusive(name, new TextEncoder().encode(encodeLock(info))))) {
        return null;
      }
      const held = makeHeld(io, page, info, token, acquired, now);
      try {
        await held.verify();
      } catch {
        return null;
      }
      return held;
    };
    const got = await take();
    if (got) return got;
    const found = await readLock(io, page, now);
    if (!found) continue; // released meanwhile: try again
    if (!takenOver(found, opts)) return null;
    // Stale. Only the holder of the page's takeover guard may remove it, after
    // checking under the guard that it is still the very lock judged stale.
    const guard = `.hop-takeover-${page}`;
    if (!(await io.createExclusive(guard, new TextEncoder().encode(token)))) {
      const g = await io.stat(guard);
      // a guard is held for a moment; one older than the timeout is left by a crash
      if (g && (now() - g.mtimeMs) / 1000 > Math.max(60, opts.timeoutSeconds)) {
        await io.delete(guard);
      }
      return null;
    }
    try {
      const again = await readLock(io, page, now);
      if (again && again.text !== found.text) return null;
      if (again) await io.delete(name);
      // taken at once, and the holder's work repaired under it: nobody starts on the page
      // in between
      const held = await take();
      if (!held) return null;
      try {
        await opts.onStale?.(found.info);
      } catch (e) {
        await held.release().catch(() => {});
        throw e;
      }
      return held;
    } finally {
      await io.delete(guard);
    }
  }
  return null;
}

function makeHeld(
  io: RelayIO,
  page: string,
  info: LockInfo,
  token: string,
  acquired: number,
  now: () => number,
): HeldLock {
  const name = lockName(page);
  let released = false;
  const verify = async () => {
    const found = await readLock(io, page, now);
    if (!found || found.info.token !== token) {
      throw new HopError(`lost the lock of page ${page} on ${io.label}`, {
        hint: "Another client took it over after the lock timeout; raise `lock timeout` if " +
          "transfers take that long. The step is retried on the next pass.",
      });
    }
  };
  return {
    page,
    mode: info.mode as "r" | "w",
    token,
    acquired,
    verify,
    async refresh() {
      await verify();
      const fresh = { ...info, acquired: Math.floor(now()) };
      await io.write(name, new TextEncoder().encode(encodeLock(fresh)));
    },
    async release() {
      if (released) return;
      released = true;
      const found = await readLock(io, page, now);
      if (found && found.info.token === token) await io.delete(name);
    },
  };
}

/**
 * Keeps a held lock fresh while `work` runs (every third of the timeout) and
 * releases it afterwards, whatever happens.
 */
export async function withLock<T>(
  held: HeldLock,
  timeoutSeconds: number,
  work: () => Promise<T>,
): Promise<T> {
  const every = Math.max(1000, (timeoutSeconds * 1000) / 3);
  let failure: unknown;
  const timer = setInterval(() => {
    held.refresh().catch((e) => failure ??= e);
  }, every);
  try {
    const out = await work();
    if (failure) throw failure;
    await held.verify();
    return out;
  } finally {
    clearInterval(timer);
    await held.release().catch(() => {});
  }
}

/** What {@linkcode lockPage} needs of a sync context. */
export interface LockContext {
  /** Where a gone holder's cut work is repaired. */
  io: RelayIO;
  lockIo: RelayIO;
  cfg: { name: string; clientName: string; lockTimeoutSeconds: number };
  now: () => number;
  reporter: Pick<Reporter, "warn">;
}

/**
 * True when `info` is a lock of client `clientName` taken by a process of
 * this host that is gone (killed, crashed): nobody can still be working
 * under it, so it need not wait for the lock timeout. Another host's lock, or
 * one without a pid (Escale's), is judged by its age only.
 */
export function leftByGoneProcess(info: LockInfo, clientName: string): boolean {
  return info.owner === clientName && processHere(info) === "gone";
}

/** The takeover rule of {@linkcode lockPage}: does it take `found` over for this client? */
export function pageLockTakenOver(
  ctx: LockContext,
  found: { info: LockInfo; ageSeconds: number },
): boolean {
  return takenOver(found, pageLockRule(ctx));
}

function pageLockRule(ctx: LockContext): Pick<AcquireOptions, "timeoutSeconds" | "holderGone"> {
  return {
    timeoutSeconds: ctx.cfg.lockTimeoutSeconds,
    holderGone: (info) => leftByGoneProcess(info, ctx.cfg.clientName),
  };
}

/**
 * Takes a page's lock as this client (`acquireLock` with the folder's name
 * and lock timeout). A lock taken over (stale, or this client's own left by
 * a gone process) has its holder's cut work repaired first
 * ({@linkcode repairCutWork}); what was done is reported.
 */
export function lockPage(
  ctx: LockContext,
  page: string,
  mode: "r" | "w",
): Promise<HeldLock | null> {
  const owner = ctx.cfg.clientName;
  return acquireLock(ctx.lockIo, page, {
    owner,
    mode,
    now: ctx.now,
    ...pageLockRule(ctx),
    onStale: async (stale) => {
      const why = leftByGoneProcess(stale, owner)
        ? `its process ${stale.pid} on this host is gone`
        : `older than the ${ctx.cfg.lockTimeoutSeconds} s lock timeout`;
      const done = await repairCutWork(ctx.io, page, stale.mode);
      ctx.reporter.warn(
        `${ctx.cfg.name}: page ${page}: took over the ${stale.mode ?? "legacy"} lock of ${
          stale.owner || "?"
        } (${why})` +
          (done.length ? `: ${done.join("; ")}` : ""),
        { event: "lock-taken-over", page, owner: stale.owner, repaired: done },
      );
    },
  });
}
