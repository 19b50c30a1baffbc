/**
 * The contracts of hop's FTP engine: what a storage backend (`FtpFileSystem`), an
 * authorizer (`FtpAuthorizer`) and a SITE hook must provide, and the typed error
 * (`FtpFsError`) a backend throws so the protocol handler can pick the reply code.
 *
 * Paths handed to a backend are virtual: normalized, '/'-rooted, no `.`/`..`
 * segments, no NUL/CR/LF. The user's home is already joined in.
 *
 * @module
 */

import { HopError } from "../errors.ts";

/** A logged-in user, as the authorizer returns it. */
export interface FtpUser {
  /** Login name (shown in logs and, by backends, as owner). */
  name: string;
  /** Virtual directory the session is jailed to ("/" for the whole tree). */
  home: string;
  /** No STOR/APPE/DELE/MKD/RMD/RNFR/RNTO when true. */
  readOnly: boolean;
  /** Administrator (SITE hooks may allow more). */
  admin: boolean;
  /** Backend-specific id (e.g. the cluster uid). */
  id?: string | number;
}

/** Checks credentials. Returns the user, or null when they are wrong. */
export interface FtpAuthorizer {
  authenticate(name: string, password: string, remoteAddress: string): Promise<FtpUser | null>;
  /** True when USER should be answered as anonymous ("send your email as password"). */
  isAnonymous?(name: string): boolean;
}

/** One directory entry or the result of a stat. */
export interface FtpFileInfo {
  /** Base name (no slash). */
  name: string;
  type: "file" | "dir";
  /** Bytes; 0 for directories if unknown. */
  size: number;
  /** Modification time, ms since the epoch. */
  mtime: number;
  /** Owner shown in LIST (name or number as text). */
  owner?: string;
  /** Group shown in LIST. */
  group?: string;
  /** Unix permission bits (e.g. 0o644), shown in LIST. */
  mode?: number;
  /** MLSx `unique` fact (stable id of the object), when known. */
  unique?: string;
  /** MLSx `perm` fact override (RFC 3659 letters); derived from `readOnly` when absent. */
  perm?: string;
}

/** An upload in progress. Nothing is visible under the target name until `commit()` resolves. */
export interface FtpUpload {
  /** Where the engine writes the data (it awaits each write: backpressure). */
  writable: WritableStream<Uint8Array>;
  /** Make the data durable (fsync) and visible; the engine replies 226 only after this resolves. */
  commit(): Promise<void>;
  /** Drop the upload (data connection failed or ABOR); must not throw. */
  abort(reason?: unknown): Promise<void>;
}

/** Where a third-party sender should connect (the client's PORT/EPRT address). */
export interface FtpDirectTarget {
  host: string;
  port: number;
  family: 4 | 6;
  /** Aborted on ABOR or when the control connection closes. */
  signal: AbortSignal;
}

/** Storage behind the engine (a plain folder, or the cluster's link tree). */
export interface FtpFileSystem {
  /** The entry at `path`, or null when nothing is there. */
  stat(path: string, user: FtpUser): Promise<FtpFileInfo | null>;
  /** Entries of directory `path` (without `.` and `..`). */
  list(path: string, user: FtpUser): Promise<FtpFileInfo[]>;
  mkdir(path: string, user: FtpUser): Promise<void>;
  rmdir(path: string, user: FtpUser): Promise<void>;
  remove(path: string, user: FtpUser): Promise<void>;
  rename(from: string, to: string, user: FtpUser): Promise<void>;
  /** File content from byte `offset`; the engine reads it chunk by chunk (backpressure). */
  openRead(path: string, user: FtpUser, offset: number): Promise<ReadableStream<Uint8Array>>;
  /** Start an upload: `offset` (REST) keeps that many existing bytes, `append` (APPE) keeps all. */
  openWrite(
    path: string,
    user: FtpUser,
    options: { offset?: number; append?: boolean },
  ): Promise<FtpUpload>;
  /** Optional: set the modification time of `path` (ms since the epoch): MFMT, SITE UTIME. */
  setMtime?(path: string, user: FtpUser, mtimeMs: number): Promise<void>;
  /**
   * Optional third-party RETR in active mode: send the file straight to `target`.
   * Resolve true when done (engine replies 226), false to let the engine stream it
   * through `openRead` (must not have touched the target then); throw on failure (426).
   */
  sendDirect?(
    path: string,
    user: FtpUser,
    offset: number,
    target: FtpDirectTarget,
  ): Promise<boolean>;
}

/** A reply the SITE hook returns: code and one text line, or several (multi-line reply). */
export interface FtpReply {
  code: number;
  text: string | string[];
}

/** What a SITE hook sees besides the arguments. */
export interface FtpSiteContext {
  user: FtpUser;
  remoteAddress: string;
  /** Resolve a client path (relative to the session's cwd) to a backend path. */
  resolve(path: string): string;
}

/** SITE commands (SITE HELP is answered by the engine from `help`). */
export interface FtpSiteHandler {
  /** One line per command, shown by SITE HELP, e.g. "CHOWN <user> <path>". */
  help: string[];
  /** Run `SITE <args>`; return null for an unknown SITE command (engine replies 500). */
  run(args: string, ctx: FtpSiteContext): Promise<FtpReply | null>;
}

/** Kinds of backend failure; the handler maps each to a reply code. */
export type FtpFsErrorKind =
  | "not-found" // 550
  | "permission" // 550 (553 for store/rename/mkdir)
  | "exists" // 550
  | "not-empty" // 550
  | "not-a-directory" // 550
  | "is-a-directory" // 550
  | "bad-name" // 503 (the cluster's "incompatible filename")
  | "no-space" // 452
  | "too-long" // 550 (553 for store/rename/mkdir): a name or path longer than the storage takes
  | "unavailable"; // 451

/** A failure a backend reports; `message` is shown to the client after the code. */
export class FtpFsError extends HopError {
  readonly kind: FtpFsErrorKind;
  constructor(
    kind: FtpFsErrorKind,
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = "FtpFsError";
    this.kind = kind;
  }
}

/** One log line per event; the engine is quiet when none is given. */
export type FtpLogger = (line: string) => void;

/** A file transfer under way (listings are not transfers). */
export interface FtpTransferInfo {
  /** Unique within the server's life. */
  id: number;
  /** The session's id (`ip:port`). */
  session: string;
  user: string;
  ip: string;
  /** The file as the client names it (virtual path). */
  path: string;
  direction: "upload" | "download";
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** Bytes moved so far. */
  bytes(): number;
}

/** What happened in the server, for a live view (sessions, transfers) and counters. */
export interface FtpEvents {
  login?(e: { session: string; user: string; ip: string }): void;
  loginFailed?(e: { session: string; user: string; ip: string }): void;
  /** A session ended (`user` when it was logged in). */
  disconnect?(e: { session: string; user?: string; ip: string }): void;
  transferStart?(t: FtpTransferInfo): void;
  transferEnd?(t: FtpTransferInfo, result: { ok: boolean; bytes: number; error?: string }): void;
  /** A command failed in a way the server did not expect (logged as `error in VERB`). */
  error?(e: { session: string; user?: string; what: string; message: string }): void;
}
