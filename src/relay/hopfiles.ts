/**
 * hop's own files on a relay, which an Escale client never looks at (none of
 * their names ends in `.index`, `.data` or `.lock`):
 * - `.hop-client-<name>`: one per registered puller (JSON: name, mode, host,
 *   registered, seen). Each client writes only its own file, so racing
 *   registrations can never erase each other.
 * - `.hop-deleted-<page>`: the deletions of a page (JSON: path -> checksum of
 *   the deleted version, time, client), written under the page's `w` lock.
 * - `.hop-send-<page>-<time>.data` / `.json`: versions sent to the hop clients
 *   that asked for them, out of Escale's sight (see `sends.ts`).
 * - `.hop-requests-<page>`: the entries of a page's index that a client took
 *   out so that the clients holding a version send it again (`resend`), or so
 *   that the Escale clients send back what they have (`echo`); written under
 *   the page's `w` lock. See `requests.ts`.
 * - `.hop-format`: how a hop-only relay's archives are compressed (zstd or
 *   none; codec `../codec/compression.ts`), written once by the relay's first
 *   client. No record: bzip2, Escale's.
 *
 * Client names are percent-encoded in file names (no `.`), so no name can
 * make a file that Escale would take for a page index.
 *
 * @module
 */
import {
  decodeRelayFormat,
  encodeRelayFormat,
  FORMAT_FILE,
  type RelayFormat,
} from "../codec/compression.ts";
import { HopError } from "../errors.ts";
import type { RelayFile, RelayIO } from "./io.ts";

/** File name prefix of client registrations. */
export const CLIENT_PREFIX = ".hop-client-";
/** File name prefix of deletion records. */
export const DELETED_PREFIX = ".hop-deleted-";
/** File name prefix of re-send requests. */
export const REQUESTS_PREFIX = ".hop-requests-";

/** Relay file name of a client's registration. */
export function clientFileName(name: string): string {
  return CLIENT_PREFIX + name.replace(
    /[^A-Za-z0-9_-]/gu,
    (c) =>
      [...new TextEncoder().encode(c)].map((b) =>
        "%" + b.toString(16).toUpperCase().padStart(2, "0")
      ).join(""),
  );
}

/** The client name of a registration file name, or null for any other name. */
export function parseClientFileName(file: string): string | null {
  if (!file.startsWith(CLIENT_PREFIX)) return null;
  const enc = file.slice(CLIENT_PREFIX.length);
  if (!/^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/.test(enc)) return null;
  try {
    return decodeURIComponent(enc);
  } catch {
    return null;
  }
}

/** A registered client. Times are Unix seconds by the client's clock. */
export interface ClientRecord {
  name: string;
  /** Its mode: `upload` clients are never waited for. */
  mode: string;
  host: string;
  registered: number;
  seen: number;
  /** The local folder it syncs (absolute), so a name is never used by two folders. */
  folder?: string;
}

/** Reads every registration listed in `files` (unreadable ones are skipped). */
export async function readClients(io: RelayIO, files: RelayFile[]): Promise<ClientRecord[]> {
  const out: ClientRecord[] = [];
  for (const f of files) {
    const name = parseClientFileName(f.name);
    if (name === null) continue;
    try {
      const rec = JSON.parse(new TextDecoder().decode(await io.readBytes(f.name)));
      if (rec && rec.name === name && typeof rec.seen === "number") out.push(rec as ClientRecord);
    } catch {
      // damaged or vanished: not registered
    }
  }
  return out;
}

/** Writes (or refreshes) this client's registration. */
export async function registerClient(io: RelayIO, rec: ClientRecord): Promise<void> {
  await io.write(clientFileName(rec.name), new TextEncoder().encode(JSON.stringify(rec)));
}

/** Forgets a client: its registration is removed, updates no longer wait for it. */
export async function forgetClient(io: RelayIO, name: string): Promise<boolean> {
  const file = clientFileName(name);
  if (!(await io.stat(file))) return false;
  await io.delete(file);
  return true;
}

/** One deleted file. */
export interface Tombstone {
  /** Checksum of the version that was deleted. */
  checksum: string;
  /** Unix seconds. */
  time: number;
  /** Client that deleted it. */
  by: string;
}

/** Relay file name of a page's deletion records. */
export function deletedFileName(page: string): string {
  return DELETED_PREFIX + page;
}

/** Reads a page's deletion records ({} when there are none). */
export function readTombstones(io: RelayIO, page: string): Promise<Record<string, Tombstone>> {
  return readRecords<Tombstone>(
    io,
    deletedFileName(page),
    "deleted",
    () => true,
    "Remove it; deletions recorded in it will then not reach other hop clients.",
  );
}

/**
 * Reads a page's JSON records (`{v: 1, [key]: records}`; {} when the file is
 * absent), keeping those `valid` accepts; a file that does not parse is a
 * HopError with `hint`.
 */
async function readRecords<T>(
  io: RelayIO,
  name: string,
  key: string,
  valid: (t: T) => boolean,
  hint: string,
): Promise<Record<string, T>> {
  if (!(await io.stat(name))) return {};
  const text = new TextDecoder().decode(await io.readBytes(name));
  try {
    const parsed = JSON.parse(text);
    if (parsed && parsed.v === 1 && parsed[key] && typeof parsed[key] === "object") {
      const out: Record<string, T> = {};
      for (const [p, t] of Object.entries(parsed[key] as Record<string, T>)) {
        if (t && valid(t)) out[p] = t;
      }
      return out;
    }
  } catch {
    // fall through
  }
  throw new HopError(`relay file ${name} on ${io.label} is damaged`, { hint });
}

/** Days a deletion record is kept. */
export const TOMBSTONE_DAYS = 180;

/** Writes a page's deletion records, dropping those older than {@linkcode TOMBSTONE_DAYS}. */
export async function writeTombstones(
  io: RelayIO,
  page: string,
  deleted: Record<string, Tombstone>,
  nowSeconds: number,
): Promise<void> {
  await writeRecords(
    io,
    deletedFileName(page),
    "deleted",
    deleted,
    (t) => nowSeconds - t.time < TOMBSTONE_DAYS * 86400,
  );
}

/**
 * Writes a page's JSON records (`{v: 1, [key]: records}`) keeping those
 * `fresh` says to keep; with none left, the file goes.
 */
async function writeRecords<T>(
  io: RelayIO,
  name: string,
  key: string,
  records: Record<string, T>,
  fresh: (t: T) => boolean,
): Promise<void> {
  const keep: Record<string, T> = {};
  for (const [p, t] of Object.entries(records)) if (fresh(t)) keep[p] = t;
  if (Object.keys(keep).length === 0) {
    await io.delete(name);
    return;
  }
  await io.write(name, new TextEncoder().encode(JSON.stringify({ v: 1, [key]: keep })));
}

/**
 * A version clients asked for. `resend`: hop clients holding it send it
 * (`sends.ts`); when only an Escale client may have it, its entry is also
 * taken out of the page index, since Escale pushes every file missing from
 * the index. `echo`: the entry was taken out so that the Escale clients send
 * back what they have; hop clients wait.
 */
export interface SendRequest {
  kind: "resend" | "echo";
  checksum: string;
  /** The version's mtime (whole seconds), pusher and `base:` line, as the index had them. */
  timestamp: number;
  pusher: string;
  base?: string | null;
  /** The clients waiting for it. */
  by: string[];
  /** When it was first asked for (Unix seconds). */
  since: number;
}

/** Relay file name of a page's requests. */
export function requestsFileName(page: string): string {
  return REQUESTS_PREFIX + page;
}

/** Reads a page's requests ({} when there are none). */
export function readRequests(io: RelayIO, page: string): Promise<Record<string, SendRequest>> {
  return readRecords<SendRequest>(
    io,
    requestsFileName(page),
    "requests",
    (q) => typeof q.checksum === "string" && Array.isArray(q.by),
    "Remove it; the files it asked for are then asked for again by the clients that need them.",
  );
}

/** Days a request nobody answered is kept. */
export const REQUEST_DAYS = 30;

/** Writes a page's requests (removing the file when none is left, or too old). */
export async function writeRequests(
  io: RelayIO,
  page: string,
  requests: Record<string, SendRequest>,
  nowSeconds: number,
): Promise<void> {
  await writeRecords(
    io,
    requestsFileName(page),
    "requests",
    requests,
    (r) => nowSeconds - r.since < REQUEST_DAYS * 86400,
  );
}

/** File name prefix of sends. */
export const SEND_PREFIX = ".hop-send-";

/** The two files of a send. */
export interface SendFiles {
  time: number;
  list?: RelayFile;
  data?: RelayFile;
}

/** `.hop-send-P-T.json` / `.data`. */
export function sendName(page: string, time: number, kind: "list" | "data"): string {
  return `${SEND_PREFIX}${page}-${time}.${kind === "list" ? "json" : "data"}`;
}

/** Page, time and kind of a send's file name, or null for any other name. */
export function parseSendName(
  name: string,
): { page: string; time: number; kind: "list" | "data" } | null {
  const m = /^\.hop-send-([^./]+)-([0-9]{1,15})\.(json|data)$/.exec(name);
  if (!m) return null;
  return { page: m[1], time: Number(m[2]), kind: m[3] === "json" ? "list" : "data" };
}

/**
 * The relay's record of its compression, or undefined when `listing` has none (bzip2).
 * A record this build cannot read is a HopError saying to update hop.
 */
export async function readRelayFormat(
  io: RelayIO,
  listing: RelayFile[],
): Promise<RelayFormat | undefined> {
  if (!listing.some((f) => f.name === FORMAT_FILE)) return undefined;
  return decodeRelayFormat(await io.readBytes(FORMAT_FILE), `${FORMAT_FILE} on ${io.label}`);
}

/** Writes the relay's record unless one is there already (then false: read it). */
export function recordRelayFormat(io: RelayIO, f: RelayFormat): Promise<boolean> {
  return io.createExclusive(FORMAT_FILE, new TextEncoder().encode(encodeRelayFormat(f)));
}
