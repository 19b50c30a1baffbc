/**
 * Errors hop reports to its user. Every error says what failed and what to do,
 * and carries a stable `code` for scripts (`--json` error events). System
 * errors a user can fix (permissions, read-only storage, a full disk, a
 * missing folder) are turned into such errors by {@linkcode explainError};
 * anything else that escapes is a bug in hop.
 *
 * @example
 * ```ts
 * try { await work(); } catch (e) {
 *   const err = explainError(e); // HopError, or undefined for a real bug
 * }
 * ```
 *
 * @module
 */

/** An error meant for the user: `message` says what failed, `hint` what to do. */
export class HopError extends Error {
  /** What the user can do about it, shown on its own line. */
  readonly hint?: string;
  /** Process exit code when this error ends the command (1 failure, 2 usage). */
  readonly exitCode: number;
  /** Stable identifier for scripts (`--json`); see {@linkcode errorCode}. */
  readonly code?: string;

  constructor(
    message: string,
    options: { hint?: string; exitCode?: number; cause?: unknown; code?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "HopError";
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
    this.code = options.code;
  }
}

/** A command line that does not make sense: exit code 2. */
export class UsageError extends HopError {
  constructor(message: string, hint?: string) {
    super(message, { hint, exitCode: 2, code: "usage" });
    this.name = "UsageError";
  }
}

/**
 * The stable code of an error, for scripts: the error's own `code`, else one
 * derived from its kind (`relay-connect`, `malformed`, ...), else `failed` for
 * a HopError and `bug` for anything else.
 */
export function errorCode(e: unknown): string {
  if (e instanceof HopError) {
    if (e.code) return e.code;
    const kind = (e as { kind?: unknown }).kind;
    // a storage driver's error (`src/storage/`), as relays report it
    if (e.name === "StorageError" && typeof kind === "string") return `relay-${kind}`;
    if (e.name === "FtpFsError" && typeof kind === "string") return `storage-${kind}`;
    if (e.name === "CodecError") return "malformed";
    if (e.name === "EncodeError") return "unwritable-value";
    if (e.name === "UnsafeEntryError") return "unsafe-archive";
    return "failed";
  }
  return "bug";
}

/** What a user does about each system error code hop can explain. */
const SYSTEM: Record<string, { code: string; says: string; hint: string }> = {
  EACCES: {
    code: "permission-denied",
    says: "permission denied",
    hint: "Give the user running hop the right to read and write there (chmod/chown), " +
      "or run hop as the user who owns it.",
  },
  EPERM: {
    code: "permission-denied",
    says: "operation not permitted",
    hint: "Give the user running hop the right to change it, or run hop as its owner.",
  },
  EROFS: {
    code: "read-only",
    says: "the file system is read-only",
    hint: "Mount it read-write, or choose a writable folder (a folder that is only read " +
      "can be synced with `mode = upload`, which still needs its .hop/ state folder writable).",
  },
  ENOSPC: {
    code: "disk-full",
    says: "no space left on the device",
    hint: "Free some space (df -h shows where), then run again; nothing half-written is kept.",
  },
  EDQUOT: {
    code: "disk-full",
    says: "disk quota exceeded",
    hint: "Free some space within your quota, or ask for a larger one, then run again.",
  },
  ENOENT: {
    code: "not-found",
    says: "no such file or folder",
    hint: "Check the path (a typo, or a disk that is not mounted), or create it.",
  },
  ENOTDIR: {
    code: "not-found",
    says: "a part of the path is not a folder",
    hint: "Check the path: one of its folders is a file.",
  },
  EISDIR: {
    code: "is-a-folder",
    says: "it is a folder",
    hint: "Give the path of a file, not of a folder.",
  },
  EMFILE: {
    code: "too-many-files-open",
    says: "too many open files",
    hint: "Raise the limit of open files (ulimit -n 4096), then run again.",
  },
  ENFILE: {
    code: "too-many-files-open",
    says: "too many open files on the system",
    hint: "Close other programs or raise the system's limit (fs.file-max), then run again.",
  },
  EIO: {
    code: "io-error",
    says: "input/output error",
    hint: "The disk or the network file system failed: check it (dmesg), then run again.",
  },
};

/**
 * The error as one hop can report to its user: a HopError as it is; a system
 * error a user can fix (EACCES, EROFS, ENOSPC, ENOENT, ...) as a HopError that
 * says what to do, found in `e` or its causes; undefined for a real bug.
 */
export function explainError(e: unknown): HopError | undefined {
  if (e instanceof HopError) return e;
  for (let c: unknown = e, depth = 0; c && depth < 5; c = (c as Error).cause, depth++) {
    const errno = (c as { code?: unknown }).code;
    if (typeof errno !== "string" || !(errno in SYSTEM)) continue;
    const s = SYSTEM[errno];
    const path = (c as { path?: unknown }).path;
    const syscall = (c as { syscall?: unknown }).syscall;
    const message = typeof path === "string"
      ? `cannot ${typeof syscall === "string" ? syscall + " " : "use "}${path}: ${s.says}`
      : `${(e as Error).message ?? String(e)} (${s.says})`;
    return new HopError(message, { hint: s.hint, code: s.code, cause: e });
  }
  return undefined;
}
