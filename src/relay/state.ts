/**
 * What a client remembers about one relay, in its folder's `.hop/` directory:
 * the checksum of every file at the last moment this client and the relay
 * agreed on it (the base of conflict and deletion detection), and which
 * deletion records it has already applied.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { replaceFile } from "../durable.ts";
import { HopError } from "../errors.ts";
import type { UpdateHead } from "./pullers.ts";
import { stateDir } from "./scan.ts";

/** The remembered state of one (folder, relay, client). */
export interface SyncState {
  v: 1;
  relay: string;
  client: string;
  /** path -> checksum of the version last agreed with the relay. */
  base: Record<string, string>;
  /** relay file name -> mtime (ms) of the version already processed. */
  seen: Record<string, number>;
  /** update index name -> its pusher and pullers as last read (see `readUpdateHead`). */
  heads?: Record<string, UpdateHead>;
  /**
   * page -> relay mtime and size of the `.P.index` that every `base` entry of
   * the page (at that page depth) was found in, with the same checksum. Dropped on any change of
   * `base`, so it always describes the current one.
   */
  agreed?: Record<string, { mtimeMs: number; size: number; pageDepth: number; readAt: number }>;
  /**
   * path -> checksum of a version this client asked the others to send again
   * (see `requests.ts`): it may replace `base` when it arrives.
   */
  wanted?: Record<string, string>;
  /**
   * page -> path -> a version this client pushed on a relay with Escale
   * clients, that no Escale client was seen to have yet (see `requests.ts`).
   */
  unconfirmed?: Record<string, Record<string, Unconfirmed>>;
  /** page -> the index and requests (relay mtime and size) it was last settled against. */
  checked?: Record<string, string>;
}

/** See {@linkcode SyncState.unconfirmed}. */
export interface Unconfirmed {
  checksum: string;
  /** The time (name) of the update that carried it. */
  time: number;
  /** When its entry was taken out of the index for the Escale clients to answer (ms). */
  askedAt?: number;
}

/** States whose `base` changed since they were loaded or last written. */
const baseChanged = new WeakSet<SyncState>();
/** Everything but `base` (small) as JSON, as last loaded or written. */
const savedRest = new WeakMap<SyncState, string>();

function restOf(s: SyncState): string {
  return JSON.stringify({ ...s, base: undefined });
}

function remember(s: SyncState): void {
  baseChanged.delete(s);
  savedRest.set(s, restOf(s));
}

/**
 * Records the agreed checksum of a path. `base` is changed only through
 * this and `dropBase`, so that saving an unchanged state (100,000 entries on
 * a big folder) writes nothing.
 */
export function setBase(s: SyncState, path: string, sum: string): void {
  if (s.base[path] === sum && Object.hasOwn(s.base, path)) return;
  s.base[path] = sum;
  baseChanged.add(s);
  delete s.agreed;
}

/** Forgets the agreed checksum of a path. */
export function dropBase(s: SyncState, path: string): void {
  if (!Object.hasOwn(s.base, path)) return;
  delete s.base[path];
  baseChanged.add(s);
  delete s.agreed;
}

/** True when `s` may differ from what was last loaded or written. */
function changedSinceSaved(s: SyncState): boolean {
  const rest = savedRest.get(s);
  return rest === undefined || baseChanged.has(s) || restOf(s) !== rest;
}

/** The state file of a folder for a relay and client name. */
export function stateFile(root: string, relayUrl: string, client: string): string {
  const id = createHash("sha256").update(`${relayUrl}\n${client}`).digest("hex").slice(0, 16);
  return join(root, ".hop", `relay-${id}.json`);
}

/** Loads the state (a fresh one when absent). A damaged file is an error, not a reset. */
export async function loadState(
  root: string,
  relayUrl: string,
  client: string,
): Promise<SyncState> {
  const file = stateFile(root, relayUrl, client);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return { v: 1, relay: relayUrl, client, base: {}, seen: {} };
  }
  try {
    const s = JSON.parse(text) as SyncState;
    if (s.v === 1 && typeof s.base === "object" && typeof s.seen === "object") {
      remember(s);
      return s;
    }
  } catch {
    // fall through
  }
  throw new HopError(`the sync state ${file} is damaged`, {
    hint: "Remove it: the next pass then treats every differing file as a conflict and " +
      "keeps both versions.",
  });
}

/** When each state was last written (ms), for `saveState`'s `atMostEveryMs`. */
const lastWritten = new WeakMap<SyncState, number>();

/**
 * Writes the state atomically, unless it is unchanged since it was loaded or last written.
 * With `atMostEveryMs` (between the pages of a pass), it also waits until that long has passed
 * since the last write: a big folder's state is megabytes, and a pass over many pages rewrote
 * it after each. Nothing is lost by a crash in between: the files are on disk and on the relay,
 * and a state that lags behind them only makes the next pass compare by content again.
 */
export async function saveState(
  root: string,
  s: SyncState,
  opts: { atMostEveryMs?: number } = {},
): Promise<void> {
  if (!changedSinceSaved(s)) return;
  const last = lastWritten.get(s);
  if (opts.atMostEveryMs && last !== undefined && Date.now() - last < opts.atMostEveryMs) return;
  await stateDir(root);
  const file = stateFile(root, s.relay, s.client);
  // flushed before it replaces the old one: a crash leaves the old state or the new, never an
  // empty file (a damaged state stops the client until it is removed)
  await replaceFile(file, JSON.stringify(s));
  remember(s);
  lastWritten.set(s, Date.now());
}
