/**
 * Safe extraction of an update archive (tar.bz2) into a target folder.
 *
 * Policy (a refusal stops the extraction with an {@link UnsafeEntryError} naming the entry):
 * - only regular files and directories are extracted; symbolic links, hard links, devices,
 *   FIFOs and GNU sparse files are refused (Escale archives never hold them);
 * - paths must be relative and stay inside the target: absolute paths, `..`, backslashes,
 *   NUL, drive letters and empty components are refused (a leading `./` is accepted);
 * - nothing is written through a symbolic link already in the target: a parent that is a
 *   symlink (or a file) is refused, and a file replaces a link instead of following it;
 * - `maxBytes` caps the file bytes (checked from each header, before anything is written);
 *   `maxRatio` caps decompressed bytes / compressed bytes as they flow (decompression bombs);
 * - without `overwrite`, an entry whose path already exists as a file is refused.
 *
 * Atomicity is per entry: each file is written to `.hop-tmp-<random>` in its destination
 * folder, given its mode and mtime, then renamed into place. A failure (refusal, corrupt or
 * truncated archive, I/O error) removes the temporary file of the entry in progress; entries
 * already extracted stay. For all-or-nothing, extract into an empty staging folder and move
 * its contents afterwards (what the relay layer does; `fresh` then writes files in place).
 * Durability is per archive, not per file: once every entry is written, the file system is
 * flushed once (`../durable.ts`); an fsync per file cost a journal commit each. Only a file
 * that replaces an existing one is fsynced before its rename (the old content is gone after).
 * Not covered: another process swapping folders of the target for symlinks while the
 * extraction runs (there is no openat() in node:fs).
 *
 * File system calls are synchronous: a small file costs a handful of system calls and no
 * round trip through the runtime's thread pool (the bzip2 workers keep decompressing
 * meanwhile).
 *
 * @module
 */
import {
  closeSync,
  constants as fsConstants,
  fchmodSync,
  fsyncSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  writeSync,
} from "node:fs";
import { chmod, mkdir, realpath, unlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { createHash, type Hash, randomBytes } from "node:crypto";
import process from "node:process";
import { syncFolder } from "../durable.ts";
import { HopError } from "../errors.ts";
import {
  asArchiveError,
  type CodecOptions,
  decompressor,
  eachEntry,
  pathProblem,
  printable,
  type TarEntryHeader,
} from "./tar.ts";

/** Options of {@link extractArchive}. */
export interface ExtractOptions extends Pick<CodecOptions, "decompress"> {
  /** Most file bytes the archive may hold in total (default: no limit). */
  maxBytes?: number;
  /**
   * Most decompressed bytes per compressed byte (default {@link DEFAULT_MAX_RATIO}). Checked
   * as bytes flow, against `compressedSize` when given, else against the compressed bytes
   * read so far; the first {@link RATIO_GRACE_BYTES} are always allowed.
   */
  maxRatio?: number;
  /** Size of the compressed archive, when known (makes the ratio check exact). */
  compressedSize?: number;
  /** Return false to skip an entry (its path is still checked). */
  filter?: (path: string) => boolean;
  /** Called after each entry is in place. */
  onEntry?: (entry: ExtractedEntry) => void;
  /** Replace files already in the target (default false: refuse them). */
  overwrite?: boolean;
  /**
   * The target is a new, empty folder of the caller's (a staging folder): nothing in it can
   * be a link or an existing file, so nothing is looked up and files are written under
   * their own name (a failure removes the one in progress).
   */
  fresh?: boolean;
  /** Hash each file as it is written with this node:crypto algorithm (`ExtractedEntry.checksum`). */
  checksum?: string;
  /** The mtime (Unix seconds) to give a file instead of the archive's, when it returns one. */
  mtimeOf?: (path: string) => number | undefined;
  /**
   * Flush the extracted files to disk once all are written (default true). False when the
   * caller flushes itself (a relay pull flushes before and after moving them into place).
   */
  sync?: boolean;
}

/** An entry put in place. */
export interface ExtractedEntry {
  /** Relative `/`-separated path (leading `./` removed). */
  path: string;
  type: "file" | "directory";
  /** File size in bytes (0 for directories). */
  size: number;
  /** Permission bits from the archive (applied to files, and to folders this run created). */
  mode: number;
  /** Modification time from the archive (or `mtimeOf`), Unix seconds (applied likewise). */
  mtime: number;
  /** Hex digest of the file's content, with the `checksum` option. */
  checksum?: string;
}

/** What {@link extractArchive} did. */
export interface ExtractResult {
  /** Entries put in place, in archive order. */
  entries: ExtractedEntry[];
  /** Paths the filter skipped. */
  skipped: string[];
  files: number;
  directories: number;
  /** File bytes written. */
  bytes: number;
  /** Compressed bytes read from the source. */
  compressedBytes: number;
}

/** An archive entry refused by the extraction policy. */
export class UnsafeEntryError extends HopError {
  /** The entry's name as stored in the archive. */
  readonly entry: string;
  /** Why it was refused. */
  readonly reason: string;
  constructor(entry: string, reason: string, hint?: string) {
    super(`archive entry '${printable(entry)}' refused: ${reason}`, {
      hint: hint ??
        "the archive is unsafe or does not fit the target; it was not extracted further",
    });
    this.name = "UnsafeEntryError";
    this.entry = entry;
    this.reason = reason;
  }
}

/** Default {@link ExtractOptions.maxRatio}: far above real data, far below a bomb. */
export const DEFAULT_MAX_RATIO = 1000;
/** Decompressed bytes always allowed before the ratio check applies. */
export const RATIO_GRACE_BYTES = 1024 * 1024;

/** Decompressed bytes beyond the ratio allowance tolerated in flight (see extractArchive). */
const STREAM_SLACK_BYTES = 8 * 1024 * 1024;
/** Largest piece handed to the tar decoder, so that it never holds much ahead. */
const PIECE_BYTES = 256 * 1024;

/**
 * Re-chunks `input` into pieces of at most {@link PIECE_BYTES}, handed on one per pull, and
 * calls `check` with the running total before each.
 */
function limitStream(
  input: ReadableStream<Uint8Array>,
  check: (total: number) => void,
): ReadableStream<Uint8Array> {
  const reader = input.getReader();
  let rest: Uint8Array | undefined;
  let total = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (!rest?.length) {
        const r = await reader.read();
        if (r.done) return c.close();
        rest = r.value;
      }
      const piece = rest.subarray(0, PIECE_BYTES);
      rest = rest.subarray(piece.length);
      total += piece.length;
      check(total);
      c.enqueue(piece);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** Raised inside the stream pipeline; re-thrown as an UnsafeEntryError naming the entry. */
class LimitError extends HopError {
  constructor(readonly reason: string) {
    super(`archive refused: ${reason}`);
  }
}

/**
 * Extracts a tar.bz2 stream into `target` (created if missing) under the policy above.
 *
 * @example
 * ```ts
 * const res = await extractArchive(file.readable, "/tmp/staging", { maxRatio: 200 });
 * console.log(res.files, res.bytes);
 * ```
 */
export async function extractArchive(
  source: ReadableStream<Uint8Array>,
  target: string,
  opts: ExtractOptions = {},
): Promise<ExtractResult> {
  const maxBytes = opts.maxBytes ?? Infinity;
  const maxRatio = opts.maxRatio ?? DEFAULT_MAX_RATIO;
  for (const [k, v] of [["maxBytes", maxBytes], ["maxRatio", maxRatio]] as const) {
    if (!(v > 0)) throw new HopError(`extraction option ${k} must be a positive number, not ${v}`);
  }
  const root = await mkdir(target, { recursive: true }).then(() => realpath(target)).catch(
    (e) => {
      throw new HopError(`cannot use the folder '${target}' to extract: ${e.message}`, {
        cause: e,
      });
    },
  );

  let compressed = 0;
  const countIn = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, c) {
      compressed += chunk.length;
      c.enqueue(chunk);
    },
  });
  /** Throws once `expanded` bytes exceed the ratio allowance plus `slack`. */
  const checkRatio = (expanded: number, slack: number) => {
    const base = Math.max(compressed, opts.compressedSize ?? 0);
    if (expanded > Math.max(RATIO_GRACE_BYTES, base * maxRatio) + slack) {
      throw new LimitError(
        `the archive expands more than ${maxRatio} times its compressed size (${base} bytes)` +
          " - a decompression bomb?",
      );
    }
  };
  // File bytes are checked exactly as they are written (naming the right entry); the whole
  // decompressed stream (headers, skipped entries, padding) is checked with some slack for
  // what the tar decoder holds ahead.
  const tar = limitStream(
    source.pipeThrough(countIn).pipeThrough(decompressor(opts)),
    (n) => checkRatio(n, STREAM_SLACK_BYTES),
  );

  const result: ExtractResult = {
    entries: [],
    skipped: [],
    files: 0,
    directories: 0,
    bytes: 0,
    compressedBytes: 0,
  };
  const state: State = {
    root,
    overwrite: opts.overwrite ?? false,
    knownDirs: new Set([""]),
    createdDirs: new Set(opts.fresh ? [""] : []),
    seen: new Map(),
    tmp: undefined,
    checksum: opts.checksum,
    mtimeOf: opts.mtimeOf,
  };
  const dirAttrs: { parts: string[]; mode: number; mtime: number }[] = [];
  let current: string | undefined;
  /** The file being written, between its header and the end of its body. */
  let file: OpenFile | undefined;
  try {
    // Entries are handled as the parser meets them, synchronously: a small file is one
    // header, one write call and no stream or promise of its own.
    await eachEntry(tar, {
      entry(entry) {
        current = entry.path;
        const parts = checkEntry(entry, state);
        if (!parts) return; // the archive's root folder itself
        const path = parts.join("/");
        if (opts.filter && !opts.filter(path)) {
          result.skipped.push(path);
          return;
        }
        if (entry.type === "directory") {
          ensureDir(state, entry.path, parts, true);
          if (state.createdDirs.has(path)) {
            dirAttrs.push({ parts, mode: entry.mode & 0o777, mtime: entry.mtime });
          }
          const done: ExtractedEntry = {
            path,
            type: "directory",
            size: 0,
            mode: entry.mode & 0o777,
            mtime: entry.mtime,
          };
          result.entries.push(done);
          result.directories++;
          opts.onEntry?.(done);
          return;
        }
        if (result.bytes + entry.size > maxBytes) {
          throw new UnsafeEntryError(
            entry.path,
            `the archive holds more than the ${maxBytes} bytes allowed`,
            "raise the size limit if this archive is expected",
          );
        }
        file = openFile(state, entry, parts);
      },
      data(bytes) {
        if (!file) return; // a skipped entry
        checkRatio(result.bytes + file.size + bytes.length, 0);
        writeAll(file.fd, bytes);
        file.hash?.update(bytes);
        file.size += bytes.length;
      },
      end() {
        if (!file) return;
        const f = file;
        file = undefined; // closed by closeFile, even when it throws
        const done = closeFile(state, f);
        result.entries.push(done);
        result.files++;
        result.bytes += done.size;
        opts.onEntry?.(done);
      },
    });
    // Folder attributes last (deepest first): writing into a folder changes its mtime, and a
    // read-only mode would block its contents.
    for (const d of dirAttrs.sort((a, b) => b.parts.length - a.parts.length)) {
      const abs = join(root, ...d.parts);
      await chmod(abs, d.mode);
      await utimes(abs, d.mtime, d.mtime);
    }
    if (opts.sync !== false) {
      await syncFolder(root, result.entries.filter((e) => e.type === "file").map((e) => e.path));
    }
  } catch (e) {
    if (file) {
      try {
        closeSync(file.fd);
      } catch { /* reported below: the extraction failed anyway */ }
    }
    if (state.tmp) await unlink(state.tmp).catch(() => {});
    if (e instanceof LimitError) {
      throw current === undefined
        ? new HopError(e.message, { hint: "raise the ratio limit if this archive is expected" })
        : new UnsafeEntryError(
          current,
          e.reason,
          "raise the ratio limit if this archive is expected",
        );
    }
    if (e instanceof UnsafeEntryError || current === undefined) throw e;
    if (e instanceof HopError) {
      throw new HopError(`${e.message} (while extracting '${printable(current)}')`, {
        hint: e.hint,
        cause: e,
      });
    }
    throw new HopError(
      `extracting archive entry '${printable(current ?? "")}' failed: ${(e as Error).message}`,
      { cause: e },
    );
  }
  result.compressedBytes = compressed;
  return result;
}

interface State {
  root: string;
  overwrite: boolean;
  /** Relative folders verified (or created) as real folders during this run. */
  knownDirs: Set<string>;
  /** Relative folders this run created. */
  createdDirs: Set<string>;
  /** Paths already met in this archive, with their type. */
  seen: Map<string, "file" | "directory">;
  /** The file being written (a temporary name unless the folder is fresh), removed on failure. */
  tmp: string | undefined;
  checksum: string | undefined;
  mtimeOf: ((path: string) => number | undefined) | undefined;
}

/** Validates an entry's type and path; returns its components, or undefined for `./`. */
function checkEntry(entry: TarEntryHeader, state: State): string[] | undefined {
  const name = entry.path;
  let rel = name;
  while (rel.startsWith("./")) rel = rel.slice(2);
  if (entry.type === "directory") rel = rel.replace(/\/+$/, "");
  if ((rel === "" || rel === ".") && entry.type === "directory") return undefined;
  const refused: Record<string, string> = {
    symlink: "symbolic links are not extracted",
    link: "hard links are not extracted",
    "character-device": "device files are not extracted",
    "block-device": "device files are not extracted",
    fifo: "FIFOs are not extracted",
  };
  if (refused[entry.type]) throw new UnsafeEntryError(name, refused[entry.type]);
  if (entry.pax && Object.keys(entry.pax).some((k) => k.startsWith("GNU.sparse."))) {
    throw new UnsafeEntryError(name, "sparse files are not supported");
  }
  const why = pathProblem(rel);
  if (why) throw new UnsafeEntryError(name, why);
  const before = state.seen.get(rel);
  if (before && (before !== "directory" || entry.type !== "directory")) {
    throw new UnsafeEntryError(name, "the path appears twice in the archive");
  }
  state.seen.set(rel, entry.type === "directory" ? "directory" : "file");
  return rel.split("/");
}

/**
 * Makes sure `parts[0..n]` are real folders inside the target (creating missing ones),
 * never following a symlink. With `self`, the last component is a folder too.
 */
function ensureDir(state: State, name: string, parts: string[], self: boolean) {
  const n = self ? parts.length : parts.length - 1;
  for (let i = 1; i <= n; i++) {
    const rel = parts.slice(0, i).join("/");
    if (state.knownDirs.has(rel)) continue;
    const abs = join(state.root, ...parts.slice(0, i));
    // in a folder this run created, nothing else can be there yet
    const parentMade = state.createdDirs.has(parts.slice(0, i - 1).join("/"));
    let st = parentMade ? undefined : lstatSync(abs, { throwIfNoEntry: false });
    if (!st) {
      try {
        mkdirSync(abs);
        state.createdDirs.add(rel);
        state.knownDirs.add(rel);
        continue;
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw e;
        st = lstatSync(abs);
      }
    }
    if (st.isSymbolicLink()) {
      throw new UnsafeEntryError(name, `'${printable(rel)}' in the target is a symbolic link`);
    }
    if (!st.isDirectory()) {
      throw new UnsafeEntryError(name, `'${printable(rel)}' in the target is not a folder`);
    }
    state.knownDirs.add(rel);
  }
}

/** The process's umask (read once): bits a new file's mode loses. */
let umask: number | undefined;

/** A file being extracted: open, its body written as the parser hands it on. */
interface OpenFile {
  entry: TarEntryHeader;
  /** Relative `/`-separated path. */
  path: string;
  /** Where it goes, and the name it is written under (the same in a fresh folder). */
  dest: string;
  file: string;
  fd: number;
  mode: number;
  mtime: number;
  /** An existing file is being replaced. */
  replacing: boolean;
  hash: Hash | undefined;
  /** Body bytes written so far. */
  size: number;
}

/**
 * Opens a file entry for writing: in a folder this run created, under its own name;
 * elsewhere under a temporary name, renamed into place by {@link closeFile}.
 */
function openFile(state: State, entry: TarEntryHeader, parts: string[]): OpenFile {
  ensureDir(state, entry.path, parts, false);
  const dest = join(state.root, ...parts);
  const dirRel = parts.slice(0, -1).join("/");
  const inPlace = state.createdDirs.has(dirRel);
  let replacing = false;
  if (!inPlace) {
    const existing = lstatSync(dest, { throwIfNoEntry: false });
    replacing = existing !== undefined;
    if (existing?.isDirectory()) {
      throw new UnsafeEntryError(entry.path, "a folder of that name is in the target");
    }
    if (existing && !state.overwrite) {
      throw new UnsafeEntryError(
        entry.path,
        "the file already exists in the target",
        "extract into an empty folder, or allow overwriting",
      );
    }
  }
  const path = parts.join("/");
  const file = inPlace
    ? dest
    : join(state.root, ...parts.slice(0, -1), `.hop-tmp-${randomBytes(8).toString("hex")}`);
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL |
    fsConstants.O_NOFOLLOW;
  const mode = entry.mode & 0o777;
  const fd = openSync(file, flags, mode);
  state.tmp = file;
  return {
    entry,
    path,
    dest,
    file,
    fd,
    mode,
    mtime: state.mtimeOf?.(path) ?? entry.mtime,
    replacing,
    hash: state.checksum ? createHash(state.checksum) : undefined,
    size: 0,
  };
}

/** Writes all of `bytes` to `fd`. */
function writeAll(fd: number, bytes: Uint8Array) {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Finishes a file whose body is written: mode, mtime, close, rename into place. */
function closeFile(state: State, f: OpenFile): ExtractedEntry {
  try {
    if (f.size !== f.entry.size) {
      throw asArchiveError(
        new Error(`entry '${f.entry.path}' is ${f.size} bytes, not ${f.entry.size}`),
      );
    }
    // open() applied the umask: the exact mode needs a chmod only when it took bits away
    umask ??= process.umask();
    if (f.mode & umask) fchmodSync(f.fd, f.mode);
    futimesSync(f.fd, f.mtime, f.mtime);
    // the rename drops the old file: its replacement is on disk first, so that a crash
    // before the final flush cannot leave an empty file in its place
    if (f.replacing) fsyncSync(f.fd);
  } finally {
    closeSync(f.fd);
  }
  if (f.file !== f.dest) renameSync(f.file, f.dest);
  state.tmp = undefined;
  return {
    path: f.path,
    type: "file",
    size: f.size,
    mode: f.mode,
    mtime: f.mtime,
    ...(f.hash ? { checksum: f.hash.digest("hex") } : {}),
  };
}
