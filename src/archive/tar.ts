/**
 * The tar layer of Escale update archives (`.P.T.data`): a tar.bz2 of relative paths with a
 * directory entry before the contents of each folder, file mode and mtime kept (hop-only
 * relays may use zstd or no compression instead: `codecs.ts`).
 *
 * Writing streams files from disk in chunks through modern-tar's packer and the bzip2 engine
 * (or the compressor given); nothing is held whole in memory. Reading takes bzip2, zstd or a
 * plain tar, whichever the archive's first bytes show. Reading yields entries whose bodies must be read (or
 * skipped) in order; underneath, a synchronous parser (`createTarParser`, modern-tar's
 * unpacker) hands a visitor each header and body as views of the buffers it is fed, which
 * extraction uses directly. Only regular files and directories are written: a symbolic link or any
 * other special file among the files to archive is refused (Escale's peers only exchange
 * regular files, and hop's extractor refuses links anyway).
 *
 * Safe extraction to disk lives in `extract.ts`.
 *
 * @module
 */
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
} from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import "./web_compat.ts";
import type { TarHeader } from "modern-tar";
// modern-tar's synchronous packer and unpacker (see writeTar and createTarParser), not among
// the package's exports
import * as modernTarBuild from "../../node_modules/modern-tar/dist/packer-By1HVV7Z.js";
import { compressStream } from "./bzip2.ts";
import { decompressAny } from "./codecs.ts";
import { HopError } from "../errors.ts";
import { concatBytes } from "../bytes.ts";

/** A stream pair transforming bytes, such as a `TransformStream`. */
export interface BytePair {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

/** Makes a fresh transform (one per archive): a bzip2 compressor or decompressor. */
export type StreamFactory = () => BytePair;

/** Codec override (`codecs.ts` has hop's), for tests or other engines. */
export interface CodecOptions {
  /** Compressor factory used by writers (default: bzip2.ts `compressStream()`). */
  compress?: StreamFactory;
  /** Decompressor factory used by readers (default: codecs.ts `decompressAny()`). */
  decompress?: StreamFactory;
}

/** Progress of an archive being written: files and file bytes packed so far. */
export interface WriteProgress {
  files: number;
  bytes: number;
}

/** What to put in an archive. */
export interface WriteArchiveOptions extends CodecOptions {
  /** Folder the relative paths are read from. */
  root: string;
  /**
   * Relative, `/`-separated paths under `root`, archived in this order: regular files, or
   * folders (just their directory entry, for empty folders; parents get theirs anyway).
   */
  files: string[];
  /** Called after each file is packed, with running totals. */
  onProgress?: (p: WriteProgress) => void;
  /**
   * Stops packing (open files are closed; the stream is left unfinished) when it aborts:
   * for a consumer that failed while holding the stream (an upload cut), and so cannot
   * cancel it.
   */
  signal?: AbortSignal;
}

/** Kinds of tar entries (as modern-tar names them). */
export type EntryType =
  | "file"
  | "directory"
  | "symlink"
  | "link"
  | "character-device"
  | "block-device"
  | "fifo";

/** One entry read from an archive. */
export interface ArchiveEntry {
  /** Name as stored, without the trailing `/` of directories. Not validated: see extract.ts. */
  path: string;
  type: EntryType;
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  /** Modification time in Unix seconds (may carry a fraction when a pax header gave one). */
  mtime: number;
  /** Body size in bytes (0 for anything but files). */
  size: number;
  /** Link target, for symlinks and hard links. */
  linkname?: string;
  /** pax records of the entry, when present. */
  pax?: Record<string, string>;
  /** The content. Read it before advancing, or it is skipped and this stream errors. */
  body: ReadableStream<Uint8Array>;
}

/** Size of each read from a file being archived. */
const CHUNK = 256 * 1024;

/**
 * Why a relative archive path is unsafe, or `undefined` when it is fine: it must be relative,
 * `/`-separated, without `.`, `..` or empty components, backslashes, NUL, or a drive letter.
 *
 * @example
 * ```ts
 * pathProblem("a/../../x"); // "path leaves the target folder"
 * pathProblem("sub/file with space.txt"); // undefined
 * ```
 */
export function pathProblem(path: string): string | undefined {
  if (path === "") return "empty path";
  if (path.includes("\0")) return "path contains a NUL character";
  if (path.includes("\\")) return "path contains a backslash";
  if (path.startsWith("/")) return "absolute path";
  if (/^[A-Za-z]:/.test(path)) return "path starts with a drive letter";
  for (const p of path.split("/")) {
    if (p === "..") return "path leaves the target folder";
    if (p === "" || p === ".") return "path has an empty or '.' component";
  }
  return undefined;
}

function splitRelativePath(path: string): string[] {
  const why = pathProblem(path);
  if (why) {
    throw new HopError(`file '${printable(path)}' refused for the archive: ${why}`, {
      hint: "list files by their path relative to the root, '/'-separated",
    });
  }
  return path.split("/");
}

/** The path with control characters escaped, for messages. */
export function printable(path: string): string {
  // deno-lint-ignore no-control-regex
  const control = /[\x00-\x1f\x7f]/g;
  return path.replace(control, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** A new compressor: `opts.compress`, else the bzip2 engine's. */
export function compressor(opts: CodecOptions = {}): BytePair {
  return opts.compress ? opts.compress() : compressStream();
}

/** A new decompressor: `opts.decompress`, else one for whatever the archive's first bytes show. */
export function decompressor(opts: CodecOptions = {}): BytePair {
  return opts.decompress ? opts.decompress() : decompressAny();
}

/**
 * A streaming tar.bz2 of `files` read from `root`, in Escale's shape: each parent folder gets
 * a directory entry (once, before its contents), mode (permission bits, without
 * setuid/setgid/sticky) and mtime (whole seconds) are kept, owner is 0/0 with no names.
 * Errors (a missing file, a symlink, a file that changes size while read) error the stream.
 *
 * @example
 * ```ts
 * const archive = writeArchive({ root: "/data", files: ["a.txt", "sub/b.bin"] });
 * await archive.pipeTo(Writable.toWeb(createWriteStream("/tmp/x.tar.bz2")));
 * ```
 */
export function writeArchive(opts: WriteArchiveOptions): ReadableStream<Uint8Array> {
  let packError: unknown;
  const tar = writeTar(opts, (e) => (packError = e));
  const reader = tar.pipeThrough(compressor(opts)).getReader();
  // The packing error (a missing file...) is the one to report, whatever the codec makes of
  // the aborted input.
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const r = await reader.read();
        if (r.done) c.close();
        else c.enqueue(r.value);
      } catch (e) {
        throw packError ?? e;
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** The uncompressed tar stream of {@link writeArchive}; `onError` sees a packing failure. */
export function writeTar(
  opts: WriteArchiveOptions,
  onError?: (e: unknown) => void,
): ReadableStream<Uint8Array> {
  // Each pull packs synchronously (modern-tar's packer, the file system's synchronous calls)
  // until at least CHUNK bytes wait: a small file costs a handful of system calls and no
  // promise, and downstream (a relay write, a zstd step) gets few big pieces, not a header, a
  // body and a padding per file (bzip2's workers keep compressing meanwhile).
  let out: Uint8Array[] = [];
  let outBytes = 0;
  const packer = createSyncPacker((b) => {
    out.push(b);
    outBytes += b.length;
  });
  const seenDirs = new Set<string>();
  const seenFiles = new Set<string>();
  let next = 0;
  let files = 0;
  let bytes = 0;
  let ended = false;
  /** The file being packed, when its body spans pulls. */
  let body: { fd: number; rel: string; size: number; done: number } | undefined;
  const closeBody = () => {
    if (body) closeSync(body.fd);
    body = undefined;
  };
  const fileDone = () => {
    const b = body!;
    if (readSync(b.fd, new Uint8Array(1), 0, 1, b.done) !== 0) throw changedSize(b.rel);
    packer.endEntry();
    closeBody();
    bytes += b.size;
    files++;
    opts.onProgress?.({ files, bytes });
  };
  /** Packs the next piece: a chunk of the open file's body, else the next listed path. */
  const step = () => {
    if (body) {
      // a body not yet whole: body.done < body.size
      const buf = new Uint8Array(Math.min(CHUNK, body.size - body.done));
      const n = readSync(body.fd, buf, 0, buf.length, body.done);
      if (n === 0) throw changedSize(body.rel);
      packer.write(n === buf.length ? buf : buf.subarray(0, n));
      body.done += n;
      if (body.done === body.size) fileDone();
      return;
    }
    if (next === opts.files.length) {
      packer.finalize();
      ended = true;
      return;
    }
    const rel = opts.files[next++];
    const parts = splitRelativePath(rel);
    if (seenFiles.has(rel)) {
      throw new HopError(`file '${printable(rel)}' is listed twice for the archive`);
    }
    seenFiles.add(rel);
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (seenDirs.has(dir)) continue;
      seenDirs.add(dir);
      let st;
      try {
        st = lstatSync(join(opts.root, ...parts.slice(0, i)));
      } catch (e) {
        throw new HopError(
          `cannot read folder '${printable(dir)}' to archive: ${(e as Error).message}`,
          { cause: e },
        );
      }
      if (!st.isDirectory()) {
        throw new HopError(
          `cannot archive '${printable(rel)}': '${printable(dir)}' is not a folder`,
          { hint: "symbolic links to folders are not archived; list the real paths" },
        );
      }
      packer.add(header(`${dir}/`, "directory", 0, st.mode, st.mtimeMs));
      packer.endEntry();
    }
    const fd = openListed(opts.root, rel, parts);
    let st;
    try {
      st = fstatSync(fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    if (st.isDirectory()) {
      closeSync(fd);
      if (!seenDirs.has(rel)) {
        seenDirs.add(rel);
        packer.add(header(`${rel}/`, "directory", 0, st.mode, st.mtimeMs));
        packer.endEntry();
      }
      return;
    }
    if (!st.isFile()) {
      closeSync(fd);
      throw new HopError(`cannot archive '${printable(rel)}': not a regular file`, {
        hint: "hop archives regular files only; exclude it",
      });
    }
    body = { fd, rel, size: st.size, done: 0 };
    packer.add(header(rel, "file", st.size, st.mode, st.mtimeMs));
    if (st.size === 0) fileDone();
  };
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const stop = () => {
    ended = true;
    closeBody();
    opts.signal?.removeEventListener("abort", onAbort);
  };
  // A consumer that failed while holding the stream (an upload cut) aborts it: the open file
  // is closed now, not when the stream is collected (Bun then fails). Its reason is the
  // consumer's own failure, not a packing one: onError is not told.
  const onAbort = () => {
    if (ended) return;
    stop();
    controller?.error(opts.signal!.reason);
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    pull(c) {
      try {
        opts.signal?.throwIfAborted();
        while (outBytes < CHUNK && !ended) step();
      } catch (e) {
        stop();
        if (!opts.signal?.aborted) onError?.(e);
        throw e;
      }
      // a big body chunk goes as it is; small pieces are joined into a buffer of the stream's
      // own (the packer's end-of-archive blocks are a buffer it shares)
      if (out.length > 0) {
        c.enqueue(out.length === 1 && out[0].length >= CHUNK ? out[0] : concatBytes(out));
      }
      out = [];
      outBytes = 0;
      if (ended) {
        stop();
        c.close();
      }
    },
    cancel: stop,
  }, { highWaterMark: 0 });
}

function header(
  name: string,
  type: "file" | "directory",
  size: number,
  mode: number,
  mtimeMs: number,
): TarHeader {
  const h: TarHeader = {
    name,
    type,
    size,
    mode: mode & 0o777,
    mtime: new Date(Math.floor(mtimeMs / 1000) * 1000),
    uid: 0,
    gid: 0,
  };
  // Names beyond printable ASCII also go into a pax `path` record (UTF-8), as Python does.
  if (/[^ -~]/.test(name)) h.pax = { path: name };
  return h;
}

function changedSize(rel: string): HopError {
  return new HopError(`file '${printable(rel)}' changed size while being archived`, {
    hint: "run again once the file is no longer being written",
  });
}

/** Opens a listed path to archive (not following a last symbolic link); errors say which. */
function openListed(root: string, rel: string, parts: string[]): number {
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused after fstat).
    const flags = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
    return openSync(join(root, ...parts), flags);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === "ELOOP") {
      throw new HopError(`cannot archive '${printable(rel)}': it is a symbolic link`, {
        hint: "hop archives regular files only; exclude the link or copy the file in its place",
      });
    }
    throw new HopError(`cannot open '${printable(rel)}' to archive: ${err.message}`, { cause: e });
  }
}

/** What {@link writeArchiveFile} wrote. */
export interface WriteArchiveResult {
  files: number;
  /** File bytes packed (uncompressed contents). */
  bytes: number;
  /** Size of the archive written. */
  compressedBytes: number;
}

/**
 * Writes {@link writeArchive}'s stream to `dest` through a temporary name in the same folder
 * (`.<name>.hop-tmp-<random>`), fsyncs it, then renames it into place. On failure the
 * temporary file is removed and `dest` is untouched.
 */
export async function writeArchiveFile(
  dest: string,
  opts: WriteArchiveOptions,
): Promise<WriteArchiveResult> {
  const tmp = join(dirname(dest), `.${basename(dest)}.hop-tmp-${randomBytes(6).toString("hex")}`);
  let files = 0;
  let bytes = 0;
  let compressedBytes = 0;
  const fh = await open(tmp, "wx", 0o644).catch((e) => {
    throw new HopError(`cannot create the archive '${dest}': ${e.message}`, { cause: e });
  });
  try {
    const reader = writeArchive({
      ...opts,
      onProgress: (p) => {
        files = p.files;
        bytes = p.bytes;
        opts.onProgress?.(p);
      },
    }).getReader();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        let off = 0;
        while (off < value.length) {
          const { bytesWritten } = await fh.write(value, off, value.length - off);
          off += bytesWritten;
        }
        compressedBytes += value.length;
      }
    } catch (e) {
      await reader.cancel(e).catch(() => {});
      throw e;
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, dest);
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (e instanceof HopError) throw e;
    throw new HopError(`cannot write the archive '${dest}': ${(e as Error).message}`, { cause: e });
  }
  return { files, bytes, compressedBytes };
}

/** Options of {@link readArchive}. */
export type ReadArchiveOptions = Pick<CodecOptions, "decompress">;

/**
 * Reads a tar.bz2 (or tar.zst, or tar) stream entry by entry. Each entry's body must be read before asking for
 * the next one; an unread body is skipped (and errors if read later). A corrupt or truncated
 * archive makes the iteration throw a HopError.
 *
 * @example
 * ```ts
 * for await (const e of readArchive(stream)) {
 *   if (e.type === "file") console.log(e.path, (await new Response(e.body).bytes()).length);
 * }
 * ```
 */
export function readArchive(
  stream: ReadableStream<Uint8Array>,
  opts: ReadArchiveOptions = {},
): AsyncIterable<ArchiveEntry> {
  return readTar(stream.pipeThrough(decompressor(opts)));
}

/** An entry's header fields, as {@link TarVisitor.entry} gets them. */
export type TarEntryHeader = Omit<ArchiveEntry, "body">;

/**
 * What {@link createTarParser} calls, synchronously, while it parses a buffer: `entry` for
 * each entry, then `data` for the pieces of its body (none for an empty body), then `end`.
 * A visitor that throws stops the parse; the error comes out of `push` or `end` as is.
 */
export interface TarVisitor {
  /** A new entry begins. */
  entry(header: TarEntryHeader): void;
  /**
   * The next bytes of the current entry's body: a view into a buffer given to `push`, no
   * copy (one call for a body that lies in one buffer; more when it spans buffers).
   */
  data(bytes: Uint8Array): void;
  /** The current entry's body is complete. */
  end(): void;
}

/** A tar parser fed buffer by buffer (see {@link createTarParser}). */
export interface TarParser {
  /** Parses `chunk` (the next bytes of the tar), calling the visitor for what it completes. */
  push(chunk: Uint8Array): void;
  /** The tar has ended: throws a HopError if it is truncated (no end-of-archive blocks). */
  end(): void;
}

/**
 * The shape of modern-tar's synchronous unpacker, the engine under its stream decoder. The
 * package exports only the stream (an entry, a body stream and a few promises per entry); the
 * unpacker is reached in its (pinned) build. After a modern-tar upgrade, point this import to
 * the file of `dist/` that exports `createUnpacker` (it is re-exported under a short name).
 */
interface Unpacker {
  write(chunk: Uint8Array): void;
  end(): void;
  /** A header; `null` when more bytes are needed; `undefined` at the end of the archive. */
  readHeader(): TarHeader | null | undefined;
  isEntryActive(): boolean;
  isBodyComplete(): boolean;
  /** Feeds the available body bytes to `cb` (views, no copy); returns how many. */
  streamBody(cb: (bytes: Uint8Array) => boolean): number;
  /** Skips the padding after a complete body; false when more bytes are needed. */
  skipPadding(): boolean;
  /** Throws unless the end-of-archive blocks were seen (strict mode). */
  finish(): void;
}
const createUnpacker = (modernTarBuild as unknown as {
  n: (opts: { strict: boolean }) => Unpacker;
}).n;
if (typeof createUnpacker !== "function") {
  throw new HopError("hop's modern-tar build has no tar unpacker where tar.ts expects it", {
    hint: "the modern-tar package changed: update the import of its unpacker in tar.ts",
  });
}

/** modern-tar's synchronous packer: each call hands its blocks to `onData` at once. */
interface SyncPacker {
  /** Starts an entry: its header blocks (pax first, when needed). */
  add(header: TarHeader): void;
  /** Body bytes of the entry (the header's size in all). */
  write(chunk: Uint8Array): void;
  /** Ends the entry: its padding to 512 bytes. */
  endEntry(): void;
  /** The end-of-archive blocks. */
  finalize(): void;
}
const createSyncPacker = (modernTarBuild as unknown as {
  t: (onData: (b: Uint8Array) => void) => SyncPacker;
}).t;
if (typeof createSyncPacker !== "function") {
  throw new HopError("hop's modern-tar build has no tar packer where tar.ts expects it", {
    hint: "the modern-tar package changed: update the import of its packer in tar.ts",
  });
}

/**
 * A synchronous tar parser: each `push` parses what the buffer completes and calls `visit`
 * for it, with no stream or promise per entry. Pax and GNU long names are applied, header
 * checksums checked; a corrupt or truncated tar throws a HopError from `push` or `end`.
 * Entries of a type hop does not know are refused.
 *
 * @example
 * ```ts
 * const parser = createTarParser({
 *   entry: (h) => console.log(h.path, h.size),
 *   data: (bytes) => hash.update(bytes),
 *   end: () => {},
 * });
 * for await (const chunk of tar) parser.push(chunk);
 * parser.end();
 * ```
 */
export function createTarParser(visit: TarVisitor): TarParser {
  const unpacker = createUnpacker({ strict: true });
  /** An entry's body is being passed on (its `end` not called yet). */
  let inBody = false;
  const feed = (bytes: Uint8Array) => (visit.data(bytes), true);
  /** Parses what is buffered; false when more bytes are needed. */
  const step = (): boolean => {
    if (inBody) {
      unpacker.streamBody(feed);
      if (!unpacker.isBodyComplete()) return false;
      inBody = false;
      visit.end();
    }
    let header;
    try {
      if (unpacker.isEntryActive() && !unpacker.skipPadding()) return false;
      header = unpacker.readHeader();
    } catch (e) {
      throw asArchiveError(e);
    }
    if (!header) return false; // more bytes needed, or the end of the archive
    visit.entry(entryHeader(header));
    inBody = true;
    return true;
  };
  return {
    push(chunk) {
      try {
        unpacker.write(chunk);
      } catch (e) {
        throw asArchiveError(e);
      }
      while (step());
    },
    end() {
      try {
        unpacker.end();
      } catch (e) {
        throw asArchiveError(e);
      }
      while (step());
      try {
        if (inBody || unpacker.isEntryActive()) throw new Error("Tar archive is truncated.");
        unpacker.finish();
      } catch (e) {
        throw asArchiveError(e);
      }
    },
  };
}

/** Parses the tar `stream` with {@link createTarParser}: one promise per buffer read. */
export async function eachEntry(
  stream: ReadableStream<Uint8Array>,
  visit: TarVisitor,
): Promise<void> {
  const parser = createTarParser(visit);
  const reader = stream.getReader();
  let ok = false;
  try {
    while (true) {
      let next;
      try {
        next = await reader.read();
      } catch (e) {
        throw asArchiveError(e);
      }
      if (next.done) break;
      parser.push(next.value);
    }
    parser.end();
    ok = true;
  } finally {
    if (!ok) await reader.cancel().catch(() => {});
  }
}

/** An entry read by {@link readTar}: its body's pieces as parsed, until it is read. */
interface Pending {
  header: TarEntryHeader;
  pieces: Uint8Array[];
  /** All of the body was parsed. */
  ended: boolean;
  /** The iteration moved past it: its body is dropped. */
  passed: boolean;
}

/**
 * Reads an uncompressed tar stream entry by entry (same rules as {@link readArchive}), on
 * {@link createTarParser}: a body is handed on as parsed, and a body that spans buffers
 * reads the next ones as its stream is read.
 */
export async function* readTar(tar: ReadableStream<Uint8Array>): AsyncIterable<ArchiveEntry> {
  const reader = tar.getReader();
  const ready: Pending[] = [];
  let current: Pending | undefined;
  const parser = createTarParser({
    entry(header) {
      current = { header, pieces: [], ended: false, passed: false };
      ready.push(current);
    },
    data(bytes) {
      if (!current!.passed) current!.pieces.push(bytes);
    },
    end() {
      current!.ended = true;
      current = undefined;
    },
  });
  let finished = false;
  let reading: Promise<boolean> | undefined;
  /** Parses one more buffer; false once the tar has ended. Shared by concurrent callers. */
  const more = (): Promise<boolean> =>
    reading ??= (async () => {
      if (finished) return false;
      let next;
      try {
        next = await reader.read();
      } catch (e) {
        throw asArchiveError(e);
      }
      if (next.done) {
        finished = true;
        parser.end();
      } else parser.push(next.value);
      return true;
    })().finally(() => (reading = undefined));
  const body = (p: Pending) =>
    new ReadableStream<Uint8Array>({
      async pull(c) {
        while (true) {
          if (p.passed) {
            throw new HopError("archive entry body read after moving to the next entry");
          }
          const piece = p.pieces.shift();
          if (piece) return c.enqueue(piece);
          if (p.ended) return c.close();
          if (!(await more())) throw asArchiveError(new Error("Tar archive is truncated."));
        }
      },
      cancel() {
        p.passed = true;
        p.pieces = [];
      },
    }, { highWaterMark: 0 });
  let previous: Pending | undefined;
  let ok = false;
  try {
    while (true) {
      if (previous) {
        previous.passed = true;
        previous.pieces = [];
        while (!previous.ended && await more());
      }
      while (ready.length === 0 && await more());
      previous = ready.shift();
      if (!previous) break;
      yield { ...previous.header, body: body(previous) };
    }
    ok = true;
  } finally {
    if (!ok) await reader.cancel().catch(() => {});
  }
}

/** modern-tar's header as hop's entry header. */
function entryHeader(header: TarHeader): TarEntryHeader {
  const type = header.type ?? "file";
  if (!isEntryType(type)) {
    throw new HopError(`archive entry '${printable(header.name)}' has an unknown type`);
  }
  const entry: TarEntryHeader = {
    path: type === "directory" ? header.name.replace(/\/+$/, "") : header.name,
    type,
    mode: (header.mode ?? 0) & 0o7777,
    mtime: (header.mtime?.getTime() ?? 0) / 1000,
    size: header.size,
  };
  if (header.linkname) entry.linkname = header.linkname;
  if (header.pax) entry.pax = header.pax;
  return entry;
}

function isEntryType(t: string): t is EntryType {
  return ["file", "directory", "symlink", "link", "character-device", "block-device", "fifo"]
    .includes(t);
}

/** Turns modern-tar's and the codec's plain errors into a HopError about the archive. */
export function asArchiveError(e: unknown): HopError {
  if (e instanceof HopError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new HopError(`the archive is corrupt or truncated: ${msg}`, {
    hint: "the update archive is damaged; ask its pusher to send it again",
    cause: e,
  });
}
