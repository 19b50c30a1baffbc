/**
 * Who must consume an update before it goes: the registered hop clients that
 * pull (not expired, not `upload`-only), except the pusher, and at least
 * `puller count` pullers (1 when unset, as in Escale) other than the pusher.
 * Also the removal of an update and the roll-back of an interrupted push.
 *
 * @module
 */
import {
  type IndexEntry,
  parseRelayName,
  updateDataName,
  updateIndexName,
} from "../codec/escale_index.ts";
import { tempTarget } from "./backend/types.ts";
import { type ClientRecord, readClients } from "./hopfiles.ts";
import type { RelayFile, RelayIO } from "./io.ts";
import {
  byPath,
  readPersistentIndex,
  readUpdateIndex,
  readUpdateIndexHead,
  type UpdateFiles,
  viewRelay,
  writePersistentIndex,
} from "./pages.ts";

/** The registered clients an update waits for (names), given the registrations. */
export function expectedPullers(
  clients: ClientRecord[],
  nowSeconds: number,
  expirySeconds: number,
): Set<string> {
  return new Set(
    clients.filter((c) => c.mode !== "upload" && nowSeconds - c.seen < expirySeconds).map((c) =>
      c.name
    ),
  );
}

/**
 * True when an update pushed by `pusher` and consumed by `pullers` may be
 * removed: every expected client but the pusher consumed it, and at least
 * `pullerCount` (default 1) pullers other than the pusher did.
 */
export function updateComplete(
  pusher: string | undefined,
  pullers: string[],
  expected: Set<string>,
  pullerCount?: number,
): boolean {
  const consumed = new Set(pullers.filter((p) => p !== "" && p !== pusher));
  for (const e of expected) if (e !== pusher && !consumed.has(e)) return false;
  return consumed.size >= (pullerCount ?? 1);
}

/** The pusher of an update (its first entry's), if any. */
export function updatePusher(entries: IndexEntry[]): string | undefined {
  return entries.find((e) => e.meta)?.meta?.pusher;
}

/** Reads registrations from a listing and returns the expected pullers. */
export async function expectedFromListing(
  io: RelayIO,
  clientFiles: RelayFile[],
  nowSeconds: number,
  expirySeconds: number,
): Promise<Set<string>> {
  return expectedPullers(await readClients(io, clientFiles), nowSeconds, expirySeconds);
}

/**
 * Removes an update: its index first, then its archive, as Escale does, so that a reader never
 * sees an index without data. A removal cut between the two leaves an archive alone, which
 * the next pusher clears ({@linkcode rollBackPush}, `clearPendingUpdate`).
 */
export async function removeUpdate(io: RelayIO, page: string, time: number): Promise<void> {
  await io.delete(updateIndexName(page, time));
  await io.delete(updateDataName(page, time));
}

/**
 * Repairs a page after a push was cut (caller holds the page's `w` lock):
 * an archive without its index is deleted; an index without its archive is
 * deleted; a complete update stays and its entries are merged into `.P.index`
 * (hop writes the persistent index last). Returns what it did, for messages.
 */
export async function rollBackPush(io: RelayIO, page: string): Promise<string[]> {
  const listing = await io.list();
  const done = await removePageTemps(io, page, listing);
  const view = viewRelay(listing).pages.get(page);
  for (const u of view?.updates ?? []) {
    if (u.data && !u.index) {
      await io.delete(u.data.name);
      done.push(`removed the unfinished ${u.data.name}`);
    } else if (u.index && !u.data) {
      await io.delete(u.index.name);
      done.push(`removed ${u.index.name}, whose archive is missing`);
    } else if (u.index && u.data) {
      if (await mergeUpdateIntoIndex(io, page, u)) {
        done.push(`completed .${page}.index with ${u.index.name}`);
      }
    }
  }
  return done;
}

/**
 * Repairs what the gone holder of a page lock left (caller now holds the
 * lock): after a `w` or legacy lock, its cut push is rolled back
 * ({@linkcode rollBackPush}); after an `r` lock, its temp files are removed.
 */
export async function repairCutWork(
  io: RelayIO,
  page: string,
  mode: "r" | "w" | null,
): Promise<string[]> {
  if (mode !== "r") return await rollBackPush(io, page);
  return await removePageTemps(io, page, await io.list());
}

/**
 * Removes the temp files of cut writes to `page`'s files (caller holds the
 * page's lock: only a lock holder writes them). Returns what it did.
 */
export async function removePageTemps(
  io: RelayIO,
  page: string,
  listing: RelayFile[],
): Promise<string[]> {
  const done: string[] = [];
  for (const f of listing) {
    const target = tempTarget(f.name);
    if (target !== null && parseRelayName(target)?.page === page) {
      await io.delete(f.name);
      done.push(`removed the temporary file ${f.name} of a cut write`);
    }
  }
  return done;
}

async function mergeUpdateIntoIndex(io: RelayIO, page: string, u: UpdateFiles): Promise<boolean> {
  const upd = await readUpdateIndex(io, page, u.time);
  const entries = await readPersistentIndex(io, page);
  const map = byPath(entries);
  let changed = false;
  for (const e of upd.entries) {
    const cur = map.get(e.path);
    if (!e.meta || cur?.meta?.checksum === e.meta.checksum) continue;
    map.set(e.path, e);
    changed = true;
  }
  if (changed) await writePersistentIndex(io, page, [...map.values()]);
  return changed;
}

/**
 * How long after the second an update is named by (its pusher's lock time)
 * a read of its index must come for the read to be remembered: till then,
 * the update may be consumed, removed and replaced by another of the same
 * name, possibly of the same size and (on FTP) relay mtime second. Also
 * covers clock differences between clients.
 */
export const HEAD_SETTLE_MS = 10_000;

/** Pusher and pullers of an update index, remembered with the relay mtime and size read at. */
export interface UpdateHead {
  mtimeMs: number;
  size: number;
  /** When it was read (or written), by this client's clock (ms). */
  readAt: number;
  pusher?: string;
  pullers: string[];
}

/**
 * The pusher and pullers of an update, read from its index only when the
 * index's relay mtime or size changed since `heads` (kept in the sync state
 * across passes) last saw it: a pending update of 100,000 entries costs a
 * second to decode, and a client meets its own on every pass. Adding a puller
 * always grows the file, so a rewrite never goes unnoticed; a read made
 * before the update's name could be reused (`HEAD_SETTLE_MS`) is not trusted.
 */
export async function readUpdateHead(
  io: RelayIO,
  page: string,
  time: number,
  file: RelayFile,
  heads: Record<string, UpdateHead>,
  nowMs: number,
): Promise<{ pusher?: string; pullers: string[] }> {
  const known = Object.hasOwn(heads, file.name) ? heads[file.name] : undefined;
  if (
    known && known.mtimeMs === file.mtimeMs && known.size === file.size &&
    known.readAt >= (time + 1) * 1000 + HEAD_SETTLE_MS
  ) {
    return known;
  }
  const idx = await readUpdateIndexHead(io, page, time);
  const head: UpdateHead = {
    mtimeMs: file.mtimeMs,
    size: file.size,
    readAt: nowMs,
    pusher: idx.pusher,
    pullers: idx.pullers,
  };
  heads[file.name] = head;
  return head;
}

/** Drops remembered heads of update indexes no longer on the relay. */
export function pruneUpdateHeads(heads: Record<string, UpdateHead>, listed: RelayFile[]): void {
  const names = new Set(listed.map((f) => f.name));
  for (const n of Object.keys(heads)) if (!names.has(n)) delete heads[n];
}
