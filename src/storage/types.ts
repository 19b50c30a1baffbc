/**
 * The storage driver contract, in the spirit of rclone's backends: one
 * interface that every kind of storage hop reaches implements (a folder, FTP
 * and FTPS, SFTP, WebDAV, S3-compatible object storage, any rclone remote), and
 * on which both relays (`../relay/backend/`) and cluster nodes
 * (`../cluster/nodes.ts`) are built. Also the typed error every driver throws.
 *
 * Paths are relative to the driver's root and may be nested (`dir/sub/name`,
 * `/`-separated); "" is the root itself (for `list`). What a storage cannot do
 * is an optional member ({@linkcode Driver.rename}, `setMtime`, `freeSpace`,
 * `sendTo`, `receiveFrom`) or told by {@linkcode Capabilities}.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { HopError } from "../errors.ts";

/** A file or folder of a storage. */
export interface Entry {
  /** The last path segment. */
  name: string;
  isDir: boolean;
  /** Bytes (0 for folders). */
  size: number;
  /** Modification time in ms since the epoch, by the storage's clock; null when it cannot tell. */
  mtimeMs: number | null;
}

/** What a driver guarantees beyond the required calls. */
export interface Capabilities {
  /**
   * `mkdir` of an existing folder fails (reports false) atomically: of racing
   * clients exactly one makes it (mkdir(2) on folders, FTP MKD, SFTP mkdir,
   * WebDAV MKCOL on servers that refuse an existing collection). Relays use it
   * for their claim folders, so that every kind of client sharing one storage
   * excludes the others.
   */
  atomicMkdir: boolean;
  /**
   * How {@linkcode Driver.createExclusive} decides: `native` (O_EXCL, link(2),
   * SFTP's EXCL flag, `If-None-Match: *` that the server honours) or `listing`
   * (the fallback of `exclusive.ts`: a claim object of one's own, then a
   * listing; correct where listings are consistent, see there).
   */
  exclusive: "native" | "listing";
  /** `read` from an offset costs nothing for the bytes before it. */
  rangedRead: boolean;
  /** Folders exist of their own (false on object storage: a folder is a name prefix). */
  folders: boolean;
  /**
   * A `write` is whole or nothing by itself, with no temporary name (object
   * storage: a PUT): callers that would write to a temporary name and rename
   * it write the target itself.
   */
  atomicPut: boolean;
}

/** Where a third-party transfer goes (FTP PORT/EPRT). */
export interface TransferTarget {
  host: string;
  port: number;
  family: 4 | 6;
  signal: AbortSignal;
}

/** What `write` accepts: bytes, a web stream or a node stream. */
export type WriteData = Uint8Array | ReadableStream<Uint8Array> | Readable;

/** Options of {@linkcode Driver.write}. */
export interface WriteOptions {
  /** Write in place where the storage allows (see `write`). */
  direct?: boolean;
}

/** A storage. Calls may be issued concurrently; a driver queues them as its connections allow. */
export interface Driver {
  /** The address without secrets, for messages (`sftp://bob@host:22/relay`). */
  readonly label: string;
  readonly caps: Capabilities;
  /** The entries of folder `dir` ("" the root); throws kind `missing` when there is no such folder. */
  list(dir: string): Promise<Entry[]>;
  /** The file or folder at `path`, or null when there is none. */
  stat(path: string): Promise<Entry | null>;
  /**
   * Streams a file from byte `offset` (default 0), with backpressure: bytes are
   * fetched as the reader pulls. Throws kind `missing` when absent. A transfer
   * that ends short or fails errors the stream; cancelling it frees the driver.
   */
  read(path: string, offset?: number): Promise<ReadableStream<Uint8Array>>;
  /**
   * Replaces `path` atomically (a temporary name then a rename, or one PUT):
   * readers see the old content or the whole new one. Parent folders are made.
   * Streams are sent as they are produced, in bounded memory. Resolves to the
   * bytes written. With `direct`, a driver that can writes in place instead
   * (no temporary name; a failed write leaves a partial file): for callers
   * that check the size afterwards, such as the cluster's store worker.
   */
  write(path: string, data: WriteData, opts?: WriteOptions): Promise<number>;
  /**
   * Creates `path` with `data` only if nothing is there: true when this call
   * created it. Of clients racing for one name at most one gets true (see
   * {@linkcode Capabilities.exclusive}). Parent folders must exist.
   */
  createExclusive(path: string, data: Uint8Array): Promise<boolean>;
  /** Removes a file; false when it was not there. */
  delete(path: string): Promise<boolean>;
  /**
   * Makes folder `path` (its parents too): true when this call made the last
   * one, false when it existed. Object storage has no folders (a folder is a
   * name prefix): there it does nothing and resolves true.
   */
  mkdir(path: string): Promise<boolean>;
  /** Removes an empty folder; no error when absent. */
  rmdir(path: string): Promise<void>;
  /** Renames a file, replacing `to`; kind `missing` when `from` is gone. */
  rename?(from: string, to: string): Promise<void>;
  /** Sets a file's modification time (whole seconds on FTP). */
  setMtime?(path: string, mtimeMs: number): Promise<void>;
  /** Free bytes, or null when the storage cannot tell. */
  freeSpace?(): Promise<number | null>;
  /** Throws (kinds `connect`, `auth`, ...) unless the storage answers and its root is usable. */
  check(): Promise<void>;
  /**
   * Third-party send (FTP): the server connects to `target` and sends `path`
   * from `offset`. True when it reported success, false when it refused or
   * failed before sending anything; throws when it failed while sending.
   */
  sendTo?(path: string, offset: number, target: TransferTarget): Promise<boolean>;
  /**
   * Third-party receive (FTP, FXP): the server opens a passive port, starts
   * storing `path`, and `send` makes another server send there. True when both
   * reported success, false when either refused before data moved.
   */
  receiveFrom?(
    path: string,
    send: (target: TransferTarget) => Promise<boolean>,
  ): Promise<boolean>;
  /** Ends connections and processes; the driver is not used afterwards. */
  close(): Promise<void>;
}

/** What went wrong, for callers that react differently (e.g. `missing`). */
export type StorageErrorKind =
  | "connect" // server unreachable, connection dropped
  | "auth" // login refused
  | "tls" // TLS negotiation, certificate or host key
  | "missing" // no such file or folder
  | "denied" // permission, read-only storage
  | "full" // disk or quota full
  | "unsupported" // the server lacks a needed command
  | "name" // a path hop refuses (`..`, control characters)
  | "other";

/** An error from a storage driver: `kind` says what went wrong, `hint` what to do. */
export class StorageError extends HopError {
  readonly kind: StorageErrorKind;
  constructor(
    kind: StorageErrorKind,
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = "StorageError";
    this.kind = kind;
  }
}

/** Prefix of the temporary files of atomic writes; left-overs can be removed by cleanup. */
export const TEMP_PREFIX = ".hop-tmp-";

/**
 * The temporary name of an atomic write of file name `name` (the last path
 * segment): `.hop-tmp-NAME~RANDOM`, in the same folder. It names its target, so
 * the roll-back of a cut relay push removes the temporary files of its own page
 * (under the page's lock) instead of waiting for them to age.
 */
export function tempName(name: string): string {
  return `${TEMP_PREFIX}${name}~${randomBytes(6).toString("hex")}`;
}

/** The target of a temporary name of {@linkcode tempName}, or null for any other name. */
export function tempTarget(temp: string): string | null {
  if (!temp.startsWith(TEMP_PREFIX)) return null;
  const cut = temp.lastIndexOf("~");
  return cut > TEMP_PREFIX.length ? temp.slice(TEMP_PREFIX.length, cut) : null;
}

/** The temporary path of an atomic write of `path`: {@linkcode tempName} in its folder. */
export function tempPathFor(path: string): string {
  return joinPath(parentOf(path), tempName(path.slice(path.lastIndexOf("/") + 1)));
}

/**
 * Throws kind `name` unless `path` is a relative path hop accepts: segments
 * separated by single `/`, none empty, `.` or `..`, no backslash or control
 * character. "" (the root) only where `root` is allowed.
 */
export function checkPath(path: string, root = false): string {
  if (path === "" && root) return path;
  // deno-lint-ignore no-control-regex
  const bad = path === "" || /[\\\x00-\x1f]/.test(path) ||
    path.split("/").some((s) => s === "" || s === "." || s === "..");
  if (bad) {
    throw new StorageError("name", `refused storage path ${JSON.stringify(path)}`, {
      hint:
        "Paths are relative, `/`-separated, without `.`, `..`, empty parts or control characters.",
    });
  }
  return path;
}

/** The folder part of `path` ("" at the root). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** `dir` joined with `name` ("" is the root). */
export function joinPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}
