/**
 * Quarantine of bad updates: an update whose content every client would
 * refuse (an unsafe or hidden path, an entry without metadata, a malformed
 * update index, a corrupt or truncated archive, an archive that does not
 * match its index, a sealed file that fails authentication) is moved aside
 * under the page's `w` lock, so that the page takes a new update again
 * (Escale's protocol keeps one pending update per page). Its files are
 * renamed, never deleted: `.hop-quarantine-P-T-N-index` and `-data`, with a
 * record `-record` (JSON: why, who moved it, when). Escale 0.7.13 ignores
 * these names (hidden, and neither a page index, an update, a lock nor a
 * placeholder by its patterns). `hop audit` and `hop relay status` name
 * them, `hop cleanup` removes them.
 *
 * Faults that depend on the client or the moment (network, timeouts, the
 * local disk, an interruption) never quarantine: a fault counts as content
 * only when it came from the update's bytes, and the files read back whole,
 * at their listed size, before anything is moved.
 *
 * @module
 */
import { updateDataName, updateIndexName } from "../codec/escale_index.ts";
import { HopError } from "../errors.ts";
import type { RelayFile, RelayIO } from "./io.ts";
import { lockPage, withLock } from "./lock.ts";
import type { UpdateFiles } from "./pages.ts";
import type { SyncContext } from "./sync.ts";

/** Prefix of every quarantine file on a relay. */
export const QUARANTINE_PREFIX = ".hop-quarantine-";

/** The three files of a quarantined update. */
export type QuarantinePart = "index" | "data" | "record";

/** Name of a part of the `n`-th quarantined update of page `page` pushed at `time`. */
export function quarantineName(
  page: string,
  time: number,
  n: number,
  part: QuarantinePart,
): string {
  return `${QUARANTINE_PREFIX}${page}-${time}-${n}-${part}`;
}

/** Parses a quarantine file name; null for any other name. */
export function parseQuarantineName(
  name: string,
): { page: string; time: number; n: number; part: QuarantinePart } | null {
  const m = /^\.hop-quarantine-([^./]+)-([0-9]{1,15})-([0-9]{1,6})-(index|data|record)$/.exec(name);
  if (!m) return null;
  return { page: m[1], time: Number(m[2]), n: Number(m[3]), part: m[4] as QuarantinePart };
}

/** Why and by whom an update was moved aside (the `-record` file). */
export interface QuarantineRecord {
  v: 1;
  page: string;
  /** The update's time (its names were `.P.T.index` and `.P.T.data`). */
  time: number;
  /** Its pusher, when its index said. */
  pusher?: string;
  /** What was wrong with it. */
  reason: string;
  /** The client that moved it aside, and when (seconds). */
  by: string;
  at: number;
  /** Bytes of its index and archive. */
  size: number;
}

/** Encodes a record. */
export function encodeRecord(r: QuarantineRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(r));
}

/** Decodes a record; undefined when damaged. */
export function decodeRecord(bytes: Uint8Array): QuarantineRecord | undefined {
  try {
    const r = JSON.parse(new TextDecoder().decode(bytes));
    if (
      r && r.v === 1 && typeof r.page === "string" && Number.isSafeInteger(r.time) &&
      typeof r.reason === "string" && typeof r.by === "string" && typeof r.at === "number" &&
      typeof r.size === "number" && (r.pusher === undefined || typeof r.pusher === "string")
    ) return r as QuarantineRecord;
  } catch {
    // damaged
  }
  return undefined;
}

/** One quarantined update as a listing shows it. */
export interface Quarantined {
  page: string;
  time: number;
  n: number;
  /** Its files on the relay (index, data, record: whichever are there). */
  files: RelayFile[];
  /** Bytes of its index and archive. */
  size: number;
  /** Its record, when readable. */
  record?: QuarantineRecord;
}

/** The quarantined updates of a listing, oldest first; records are read when `io` is given. */
export async function listQuarantined(files: RelayFile[], io?: RelayIO): Promise<Quarantined[]> {
  const by = new Map<string, Quarantined>();
  for (const f of files) {
    const q = parseQuarantineName(f.name);
    if (!q) continue;
    const key = `${q.page}-${q.time}-${q.n}`;
    let e = by.get(key);
    if (!e) by.set(key, e = { page: q.page, time: q.time, n: q.n, files: [], size: 0 });
    e.files.push(f);
    if (q.part !== "record") e.size += f.size;
  }
  const out = [...by.values()].sort((a, b) => a.time - b.time || a.n - b.n);
  if (io) {
    for (const q of out) {
      const rec = q.files.find((f) => f.name.endsWith("-record"));
      if (!rec) continue;
      q.record = await io.readBytes(rec.name).then(decodeRecord, () => undefined);
    }
  }
  return out;
}

/** One line about a quarantined update: page, time, pusher, reason, size. */
export function describeQuarantined(q: Quarantined): string {
  const r = q.record;
  const when = new Date((r?.at ?? q.time) * 1000).toISOString().replace(/\.000Z$/, "Z");
  return `update ${q.time} of page ${q.page} pushed by ${r?.pusher ?? "?"} (${q.size} bytes), ` +
    (r ? `moved aside by ${r.by} at ${when}: ${r.reason}` : "its record is missing or damaged");
}

/** A fault in an update's own bytes: every client would refuse it the same way. */
export class BadUpdateError extends HopError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...options, code: "bad-update" });
    this.name = "BadUpdateError";
  }
}

/** True when `e` (or what caused it) is a network, storage, local disk or interruption fault. */
export function isTransient(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c && depth < 10; depth++) {
    const err = c as { name?: unknown; code?: unknown; cause?: unknown };
    if (["StorageError", "FtpFsError", "AbortError", "TimeoutError"].includes(String(err.name))) {
      return true;
    }
    // system errors (ECONNRESET, EACCES, ENOSPC, ...) and hop's own disk-full
    if (
      typeof err.code === "string" && (/^E[A-Z0-9_]+$/.test(err.code) || err.code === "disk-full")
    ) {
      return true;
    }
    c = err.cause;
  }
  return false;
}

/**
 * True when a pull failed on the update's content: a {@linkcode BadUpdateError},
 * a malformed index (`CodecError`), an unsafe archive entry, or a sealed file
 * that failed authentication under a verified key (code `sealed-damaged`);
 * never for a transient fault.
 */
export function isContentFault(e: unknown): boolean {
  if (isTransient(e)) return false;
  const err = e as { name?: unknown; code?: unknown };
  return e instanceof BadUpdateError || err.name === "CodecError" ||
    err.name === "UnsafeEntryError" || err.code === "sealed-damaged";
}

/** Reads a relay file whole on the raw relay; true when it gives exactly its listed size. */
async function readsWhole(io: RelayIO, name: string): Promise<boolean> {
  try {
    const st = await io.stat(name);
    if (!st) return false;
    let n = 0;
    for await (const chunk of await io.read(name)) n += chunk.length;
    return n === st.size;
  } catch {
    return false;
  }
}

/**
 * Moves the update `upd` of `page` aside because of `why` (a content fault
 * found by a pull): first reads its files back whole (a transfer cut short
 * is not their content), then takes the page's `w` lock, checks the update
 * is still the one listed, renames its index and archive and writes the
 * record. Returns the record, or undefined (with the reason) when it did
 * not: the update then stays and the pull's error is reported as it is.
 */
export async function quarantineUpdate(
  ctx: SyncContext,
  page: string,
  upd: UpdateFiles,
  why: Error,
  pusher: string | undefined,
): Promise<{ record?: QuarantineRecord; name?: string; notDone?: string }> {
  const { cfg, io } = ctx;
  const index = upd.index!;
  const data = upd.data!;
  // the raw relay (ctx.io may decrypt): the bytes as stored, against the listed size
  for (const f of [index, data]) {
    if (!(await readsWhole(ctx.lockIo, f.name))) {
      return { notDone: `${f.name} could not be read back whole` };
    }
  }
  const held = await lockPage(ctx, page, "w");
  if (!held) return { notDone: "the page is locked by another client" };
  return await withLock(held, cfg.lockTimeoutSeconds, async () => {
    const listing = await io.list();
    const same = (f: RelayFile) =>
      listing.some((g) => g.name === f.name && g.size === f.size && g.mtimeMs === f.mtimeMs);
    // both files as the pass listed them, before they were read: a file still being written
    // then (by a client that does not write atomically) or changed since is judged again on
    // the next pass, never moved on what was read of it
    if (!same(data) || !same(index)) {
      return { notDone: "the update changed or was removed since it was listed" };
    }
    let n = 1;
    const taken = new Set(listing.map((f) => f.name));
    while (
      (["index", "data", "record"] as const).some((p) =>
        taken.has(quarantineName(page, upd.time, n, p))
      )
    ) n++;
    const record: QuarantineRecord = {
      v: 1,
      page,
      time: upd.time,
      pusher,
      reason: why.message,
      by: cfg.clientName,
      at: Math.floor(ctx.now() / 1000),
      size: index.size + data.size,
    };
    // the archive first: what is left after a cut is an index without archive (a cut push)
    await io.rename(updateDataName(page, upd.time), quarantineName(page, upd.time, n, "data"));
    await io.rename(updateIndexName(page, upd.time), quarantineName(page, upd.time, n, "index"));
    await io.write(quarantineName(page, upd.time, n, "record"), encodeRecord(record));
    return { record, name: `${QUARANTINE_PREFIX}${page}-${upd.time}-${n}-*` };
  });
}
