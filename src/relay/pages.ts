/**
 * The relay seen page by page: which persistent indexes, updates, locks and
 * deletion records a listing holds, and reading/writing the index files
 * (`.P.index` is bzip2-compressed text, `.P.T.index` plain text).
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import {
  compressBytes,
  compressStream,
  decompressBytes,
  decompressStream,
} from "../archive/bzip2.ts";
import {
  decodePersistentIndex,
  decodeUpdateHead,
  decodeUpdateIndex,
  encodePersistentIndexBytes,
  encodeUpdateIndexBytes,
  type IndexEntry,
  indexName,
  parseRelayName,
  type UpdateIndex,
  type UpdateIndexHead,
  updateIndexName,
  withUpdatePullers,
} from "../codec/escale_index.ts";
import {
  DELETED_PREFIX,
  parseClientFileName,
  parseSendName,
  REQUESTS_PREFIX,
  type SendFiles,
} from "./hopfiles.ts";
import type { RelayFile, RelayIO } from "./io.ts";
import type { SyncContext } from "./sync.ts";

/** One update of a page: its two files (either may be missing while being written). */
export interface UpdateFiles {
  time: number;
  index?: RelayFile;
  data?: RelayFile;
}

/** What a listing shows about one page. */
export interface PageView {
  page: string;
  index?: RelayFile;
  /** Updates by time, oldest first. Escale and hop keep at most one. */
  updates: UpdateFiles[];
  lock?: RelayFile;
  deleted?: RelayFile;
  /** `.hop-requests-P`: versions clients asked to be sent again. */
  requests?: RelayFile;
  /** `.hop-send-P-T.*`: versions sent to the hop clients that asked, oldest first. */
  sends?: SendFiles[];
}

/** A relay listing, by page. */
export interface RelayView {
  pages: Map<string, PageView>;
  /** Registration files of hop clients. */
  clients: RelayFile[];
  /** Every file listed. */
  files: RelayFile[];
}

/** Sorts a listing into pages. */
export function viewRelay(files: RelayFile[]): RelayView {
  const pages = new Map<string, PageView>();
  const page = (p: string) => {
    let v = pages.get(p);
    if (!v) pages.set(p, v = { page: p, updates: [] });
    return v;
  };
  const clients: RelayFile[] = [];
  for (const f of files) {
    if (parseClientFileName(f.name) !== null) {
      clients.push(f);
      continue;
    }
    if (f.name.startsWith(DELETED_PREFIX)) {
      const p = f.name.slice(DELETED_PREFIX.length);
      if (/^[^./]+$/.test(p)) page(p).deleted = f;
      continue;
    }
    const send = parseSendName(f.name);
    if (send) {
      const v = page(send.page);
      let s = (v.sends ??= []).find((x) => x.time === send.time);
      if (!s) v.sends.push(s = { time: send.time });
      if (send.kind === "list") s.list = f;
      else s.data = f;
      continue;
    }
    if (f.name.startsWith(REQUESTS_PREFIX)) {
      const p = f.name.slice(REQUESTS_PREFIX.length);
      if (/^[^./]+$/.test(p)) page(p).requests = f;
      continue;
    }
    const n = parseRelayName(f.name);
    if (!n) continue;
    const v = page(n.page);
    if (n.kind === "index") v.index = f;
    else if (n.kind === "lock") v.lock = f;
    else {
      let u = v.updates.find((x) => x.time === n.time);
      if (!u) v.updates.push(u = { time: n.time });
      if (n.kind === "update-index") u.index = f;
      else u.data = f;
    }
  }
  for (const v of pages.values()) {
    v.updates.sort((a, b) => a.time - b.time);
    v.sends?.sort((a, b) => a.time - b.time);
  }
  return { pages, clients, files };
}

/**
 * Above this many bytes, `.P.index` is compressed and decompressed by the worker pool, its
 * blocks in parallel, rather than on the main thread (a page of 100,000 files has an index
 * of 20 MB, 4 MB compressed). The bytes are the same either way.
 */
const POOL_INDEX_BYTES = 1 << 20;

/** Reads and decodes `.P.index` ([] when absent). */
export async function readPersistentIndex(io: RelayIO, page: string): Promise<IndexEntry[]> {
  const name = indexName(page);
  const file = await io.stat(name);
  if (!file) return [];
  const text = file.size > POOL_INDEX_BYTES
    ? new Uint8Array(
      await new Response((await io.read(name)).pipeThrough(decompressStream({ source: name })))
        .arrayBuffer(),
    )
    : decompressBytes(await io.readBytes(name), name);
  return decodePersistentIndex(text, name);
}

/**
 * Encodes, compresses and writes `.P.index` atomically. A page left with no
 * entry loses its index file instead: Escale 0.7.13 crashes on an empty
 * persistent index (`UnboundLocalError` in `read_index`, leaving its `r`
 * lock), and reads a missing one as a page to fill again.
 */
export async function writePersistentIndex(
  io: RelayIO,
  page: string,
  entries: IndexEntry[],
): Promise<void> {
  if (entries.length === 0) {
    await io.delete(indexName(page));
    return;
  }
  const chunks = encodePersistentIndexBytes(entries);
  const size = chunks.reduce((n, c) => n + c.length, 0);
  await io.write(
    indexName(page),
    size > POOL_INDEX_BYTES
      // the compressor cuts its blocks from the chunks as they come
      ? chunkStream(chunks).pipeThrough(compressStream())
      : compressBytes(concatBytes(chunks)),
  );
}

/** Reads and decodes `.P.T.index`. */
export async function readUpdateIndex(
  io: RelayIO,
  page: string,
  time: number,
): Promise<UpdateIndex> {
  const name = updateIndexName(page, time);
  return decodeUpdateIndex(await io.readBytes(name), name);
}

/** Reads `.P.T.index` for its pusher and pullers only (its entries are walked, not built). */
export async function readUpdateIndexHead(
  io: RelayIO,
  page: string,
  time: number,
): Promise<UpdateIndexHead> {
  const name = updateIndexName(page, time);
  return decodeUpdateHead(await io.readBytes(name), name);
}

/**
 * Adds `client` to the pullers of `.P.T.index` (read again now: other pullers may have
 * registered; a name is never dropped) and writes it back atomically, its entries
 * unchanged. Returns the pullers written.
 */
export async function addUpdatePuller(
  io: RelayIO,
  page: string,
  time: number,
  client: string,
): Promise<string[]> {
  const name = updateIndexName(page, time);
  const bytes = await io.readBytes(name);
  const pullers = [...decodeUpdateHead(bytes, name).pullers, client];
  await io.write(name, new TextEncoder().encode(withUpdatePullers(bytes, pullers, name)));
  return pullers;
}

/** Writes `.P.T.index` atomically. */
export async function writeUpdateIndex(
  io: RelayIO,
  page: string,
  time: number,
  idx: UpdateIndex,
): Promise<void> {
  // one buffer, so that a driver can retry it or give its length (joined from the encoder's
  // chunks: no string of the whole text is built)
  await io.write(updateIndexName(page, time), concatBytes(encodeUpdateIndexBytes(idx)));
}

/** A stream of `chunks`, each given up once it is read (an index of 100,000 files is 20 MB). */
function chunkStream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (next === chunks.length) return c.close();
      c.enqueue(chunks[next]);
      chunks[next++] = EMPTY;
    },
  });
}

const EMPTY = new Uint8Array(0);

/** Entries by path (the last one wins if a path repeats). */
export function byPath(entries: IndexEntry[]): Map<string, IndexEntry> {
  return new Map(entries.map((e) => [e.path, e]));
}

/** The `base:` extra line of a hop-pushed entry: checksum the pusher changed from, `-` for none. */
export function entryBase(e: IndexEntry): string | null | undefined {
  const b = e.meta?.extra.find(([k]) => k === "base")?.[1];
  if (b === undefined) return undefined; // not hop-pushed
  return b === "-" ? null : b;
}

/** `.P.index` of a page, read again only when its relay mtime or size changed. */
export async function readIndexCached(
  ctx: Pick<SyncContext, "io" | "indexCache" | "now">,
  page: string,
  file: RelayFile,
): Promise<IndexEntry[]> {
  const c = ctx.indexCache.get(page);
  if (c && c.mtimeMs === file.mtimeMs && c.size === file.size) return c.entries;
  const readAt = ctx.now();
  const entries = await readPersistentIndex(ctx.io, page);
  ctx.indexCache.set(page, { mtimeMs: file.mtimeMs, size: file.size, readAt, entries });
  return entries;
}
