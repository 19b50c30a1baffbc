/**
 * The relay storage contract: one flat folder of files, listed with size and
 * mtime, read as a stream or whole, replaced atomically, created exclusively
 * (for locks), deleted, renamed. It is shaped like `../io.ts`'s `RelayIO`, so
 * a backend can be handed to the sync engine as is. Every backend is a storage
 * driver (`../../storage/`) seen through `relay.ts`; errors are the drivers'
 * `StorageError`.
 *
 * @module
 */
import { StorageError } from "../../storage/types.ts";

export {
  StorageError,
  type StorageErrorKind,
  TEMP_PREFIX,
  tempName,
  tempTarget,
} from "../../storage/types.ts";

/** A file on the relay. */
export interface RelayFile {
  name: string;
  size: number;
  /** Modification time in ms since the epoch, by the relay's clock (whole seconds on FTP). */
  mtimeMs: number;
}

/**
 * A relay storage. Names are flat (no `/`). Calls on one backend may be
 * issued concurrently; FTP serialises them on its one connection.
 */
export interface RelayBackend {
  /** The relay's URL without password, for messages (`ftp://bob@host:2121/relay`). */
  readonly label: string;
  /** The regular files of the relay folder (folders are left out). */
  list(): Promise<RelayFile[]>;
  /** The file, or null when absent. */
  stat(name: string): Promise<RelayFile | null>;
  /**
   * Streams a file; throws `StorageError` kind `missing` when absent. On FTP
   * the stream holds the backend's connection until it is read to the end or
   * cancelled: consume it before the next call on the same backend.
   */
  read(name: string): Promise<ReadableStream<Uint8Array>>;
  /** A whole (small) file; throws kind `missing` when absent. */
  readBytes(name: string): Promise<Uint8Array>;
  /**
   * Replaces `name` atomically (temp name, then rename over it, or one PUT):
   * readers see the old content or the whole new one, never a part.
   */
  write(name: string, data: Uint8Array | ReadableStream<Uint8Array>): Promise<void>;
  /**
   * Creates `name` with `data` only if it does not exist: true when this call
   * created it. Of clients racing for the same name, at most one gets true
   * until the name is removed with {@linkcode RelayBackend.delete}. See
   * `relay.ts` for the scheme (a claim folder `<name>.excl` where folders are
   * made atomically, else the driver's own exclusive create).
   */
  createExclusive(name: string, data: Uint8Array): Promise<boolean>;
  /** Removes `name` (and its exclusive claim, if any); no error when already gone. */
  delete(name: string): Promise<void>;
  /** Renames, replacing `to`; throws kind `missing` when `from` is gone. */
  rename(from: string, to: string): Promise<void>;
  /** Sets a file's mtime (whole seconds on FTP); kind `unsupported` if the storage cannot. */
  setMtime(name: string, mtimeMs: number): Promise<void>;
  /**
   * The claim folders (`<name>.excl`) of exclusive creates, with their mtime:
   * for cleanup of claims a crashed client left without their file.
   */
  listClaims(): Promise<RelayFile[]>;
  /** Ends connections; the backend is not used afterwards. */
  close(): Promise<void>;
}

/** Suffix of the claim folders of exclusive creates (`.0.lock` -> `.0.lock.excl`). */
export const CLAIM_SUFFIX = ".excl";

/** Throws kind `name` unless `name` is one plain file name. */
export function checkName(name: string): void {
  // deno-lint-ignore no-control-regex
  if (name === "" || name === "." || name === ".." || /[/\\\x00-\x1f]/.test(name)) {
    throw new StorageError("name", `refused relay file name ${JSON.stringify(name)}`, {
      hint: "Relay files are flat: no slash, no control characters, not `.` or `..`.",
    });
  }
}
