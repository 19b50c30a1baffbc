/**
 * Page locks (`.P.lock`), taken atomically: exclusive create, never
 * read-then-overwrite. A lock nobody refreshed for `lock timeout` seconds is
 * taken over safely (renamed aside under a unique name, checked to be the very
 * lock judged stale, then removed); a holder refreshes its lock during long
 * transfers and checks it still holds it.
 *
 * The text is Escale's (`lock%1.0`, `owner:`, `mode:`) plus hop's lines
 * (`acquired:`, `host:`, `pid:`, `token:`), which Escale ignores.
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
import { HopError } from "../errors.ts";
import type { RelayFile, RelayIO } from "./io.ts";

/** What a lock file says. */
export interface LockInfo {
  owner: string;
  /** `w` while pushing, `r` while pulling; undefined for a legacy (name-only) lock. */
  mode?: "r" | "w";
  /** Unix seconds when taken or last refreshed (hop locks only). */
  acquired?: number;
  host?: string;
  pid?: number;
  /** Random id of one holding (hop locks only). */
  token?: string;
}

/** Encodes a lock the way Escale writes it (no trailing newline), plus hop's lines. */
export function encodeLock(l: LockInfo): string {
  const lines = ["lock%1.0", `owner: ${l.owner}`];
  if (l.mode) lines.push(`mode: ${l.mode}`);
  if (l.acquired !== undefined) lines.push(`acquired: ${l.acquired}`);
  if (l.host !== undefined) lines.push(`host: ${l.host}`);
  if (l.pid !== undefined) lines.push(`pid: ${l.pid}`);
  if (l.token !== undefined) lines.push(`token: ${l.token}`);
  return lines.join("\n");
}

/** Decodes a lock; a legacy lock is just the owner's name. Unknown lines are ignored. */
export function decodeLock(text: string): LockInfo {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  if (lines.length === 0) return { owner: "" };
  if (!lines[0].startsWith("lock%")) return { owner: lines[0] };
  const info: LockInfo = { owner: "" };
  for (const l of lines.slice(1)) {
    const m = /^([a-z]+):\s*(.*)$/.exec(l);
    if (!m) continue;
    const [, k, v] = m;
    if (k === "owner") info.owner = v;
    else if (k === "mode" && (v === "r" || v === "w")) info.mode = v;
    else if (k === "acquired" && /^\d+$/.test(v)) info.acquired = Number(v);
    else if (k === "host") info.host = v;
    else if (k === "pid" && /^\d+$/.test(v)) info.pid = Number(v);
    else if (k === "token") info.token = v;
  }
  return info;
}

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
  /** Called with a stale lock just taken over (to roll back an interrupted push). */
  onStale?: (stale: LockInfo) => Promise<void>;
}

/** A lock found on the relay, with its age. */
export interface FoundLock {
  info: LockInfo;
  text: string;
  file: RelayFile;
  /** Seconds since taken or refreshed. */
  ageSeconds: number;
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
  const info = decodeLock(text);
  const since = info.acquired !== undefined ? info.acquired * 1000 : file.mtimeMs;
  return { info, text, file, ageSeconds: Math.max(0, (now() - since) / 1000) };
}

/**
 * Takes the lock of `page`, or returns null when another client holds a live
 * lock. A lock older than `timeoutSeconds` is taken over: at most one of
 * several racing takers wins.
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
      acquired,
      host: hostname(),
      pid: process.pid,
      token,
    };
    if (await io.createExclusive(name, new TextEncoder().encode(encodeLock(info)))) {
      const held = makeHeld(io, page, info, token, acquired, now);
      await held.verify();
      return held;
    }
    const found = await readLock(io, page, now);
    if (!found) continue; // released meanwhile: try again
    if (found.ageSeconds <= opts.timeoutSeconds) return null;
    // Stale: move it aside under a name only we use, then check it is the one we judged.
    const aside = `.hop-stale-${page}-${token}`;
    try {
      await io.rename(name, aside);
    } catch {
      continue; // someone else moved it first
    }
    const moved = new TextDecoder().decode(await io.readBytes(aside));
    if (moved !== found.text) {
      // a fresh lock replaced the stale one between our read and rename: give it back
      if (await io.createExclusive(name, new TextEncoder().encode(moved))) await io.delete(aside);
      else await io.delete(aside);
      return null;
    }
    await io.delete(aside);
    if (opts.onStale) await opts.onStale(found.info);
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
    mode: info.mode!,
    token,
    acquired,
    verify,
    async refresh() {
      await verify();
      const fresh = { ...info, acquired: Math.floor(now() / 1000) };
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
