/**
 * The cluster's link files and directory info files on disk (their text is the codec's,
 * `src/codec/link.ts`): reading, and writing atomically and durably (temp file, fsync,
 * rename, fsync of the directory).
 *
 * Where they sit: the link file of file `d/name` is `d/name#`; the info file of
 * directory `d/sub` is `d/sub#` (the two kinds differ by their first line). A link
 * whose data is still in the staging area has no copy yet and an extra line
 * `staged <id>` naming its staging file `.staging/<id>`.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { constants } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { decodeLink, type DirInfo, encodeLink, type FileLink } from "../codec/link.ts";
import { fsyncFd, syncDir } from "../durable.ts";

export type { DirInfo, FileLink, NodeCopy } from "../codec/link.ts";

const STAGED = /^staged ([0-9a-f]{8,64})$/;

/** Staging id of a link's data still on the cluster server, or null. */
export function stagedId(link: FileLink): string | null {
  for (const l of link.extra) {
    const m = STAGED.exec(l);
    if (m) return m[1];
  }
  return null;
}

/** `link` with its staging id set (`id`) or removed (null). */
export function withStaged(link: FileLink, id: string | null): FileLink {
  const extra = link.extra.filter((l) => !STAGED.test(l));
  if (id !== null) extra.push(`staged ${id}`);
  return { ...link, extra };
}

/** Old node keys and the keys they stand for now (`nodes.ts`: `nodeAliases`). */
const aliases = new Map<string, string>();

/**
 * Read links naming the node keys of `map` (older ones) as their new keys, in this
 * process from now on (the cluster it serves or works on sets it once).
 */
export function useNodeAliases(map: ReadonlyMap<string, string>): void {
  aliases.clear();
  for (const [k, v] of map) aliases.set(k, v);
}

/** Errors of opening a link file that mean there is none. */
const ABSENT = new Set(["ENOENT", "ENOTDIR", "EISDIR", "ELOOP"]);
/** O_NOFOLLOW: a symlink planted as a link file is not one (and reads nothing outside). */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);

/** Read the link or info file at `file`, or null when it does not exist (or is a symlink). */
export async function readInfo(file: string): Promise<FileLink | DirInfo | null> {
  let text: Uint8Array;
  try {
    const fh = await fsp.open(file, READ_FLAGS);
    try {
      text = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (ABSENT.has((e as { code?: string }).code ?? "")) return null;
    throw e;
  }
  return decodeInfo(text, file);
}

/**
 * {@linkcode readInfo} with synchronous calls: a link file is a few dozen bytes in the
 * page cache, and one blocking read costs less than the three round trips of async ones
 * (the FTP side reads several per command).
 */
export function readInfoSync(file: string): FileLink | DirInfo | null {
  let text: Uint8Array;
  try {
    const fd = fs.openSync(file, READ_FLAGS);
    try {
      text = fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if (ABSENT.has((e as { code?: string }).code ?? "")) return null;
    throw e;
  }
  return decodeInfo(text, file);
}

function decodeInfo(text: Uint8Array, file: string): FileLink | DirInfo {
  const info = decodeLink(text, file);
  if (info.kind === "file" && aliases.size > 0) {
    info.copies = info.copies.map((c) => ({ node: aliases.get(c.node) ?? c.node, path: c.path }));
  }
  return info;
}

/** Read the link file of a file at `file`; null when absent or when it is a directory's info. */
export async function readFileLink(file: string): Promise<FileLink | null> {
  const info = await readInfo(file);
  return info?.kind === "file" ? info : null;
}

/** Write a link or info file atomically (temp in `tmpDir`, on the same file system). */
export async function writeInfo(
  tmpDir: string,
  file: string,
  info: FileLink | DirInfo,
): Promise<void> {
  await writeAtomic(tmpDir, file, encodeLink(info));
}

/**
 * Write `text` to `file` atomically and durably: a temp file in `tmpDir` (same file
 * system), fsync, rename over `file`, fsync of `file`'s directory.
 */
export async function writeAtomic(tmpDir: string, file: string, text: string): Promise<void> {
  const w = await prepareAtomic(tmpDir, file, text);
  await w.place();
  await syncDir(path.dirname(file));
}

/** A file written and flushed under a temporary name ({@linkcode prepareAtomic}), not in place yet. */
export interface PreparedWrite {
  /**
   * Renames it over its file (atomic). Durable once its folder is synced (`syncDir`):
   * callers overlap that with their other flushes.
   */
  place(): Promise<void>;
  /** Removes the temporary file (when it will not be placed). */
  discard(): Promise<void>;
}

/**
 * The first half of {@linkcode writeAtomic}: `text` written to a temp file in `tmpDir`
 * and fsynced, so that this flush can run alongside others (an upload's data) and the
 * file be placed later.
 */
export async function prepareAtomic(
  tmpDir: string,
  file: string,
  text: string,
): Promise<PreparedWrite> {
  const tmp = path.join(tmpDir, `w-${Date.now()}-${randomBytes(6).toString("hex")}`);
  // A few dozen bytes: open, write and close are synchronous, the flush is not
  // (`fsyncFd`): one round trip to the thread pool.
  try {
    const fd = fs.openSync(tmp, "w", 0o644);
    try {
      fs.writeFileSync(fd, text);
      await fsyncFd(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return {
    place() {
      try {
        fs.renameSync(tmp, file);
        return Promise.resolve();
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        return Promise.reject(e);
      }
    },
    discard() {
      fs.rmSync(tmp, { force: true });
      return Promise.resolve();
    },
  };
}

/** {@linkcode prepareAtomic} of a link or info file. */
export function prepareInfo(
  tmpDir: string,
  file: string,
  info: FileLink | DirInfo,
): Promise<PreparedWrite> {
  return prepareAtomic(tmpDir, file, encodeLink(info));
}

/** Move `from` to `to` and make both directories durable (flushed together). */
export async function moveDurably(from: string, to: string): Promise<void> {
  await fsp.rename(from, to);
  const dirs = new Set([path.dirname(to), path.dirname(from)]);
  await Promise.all([...dirs].map((d) => syncDir(d)));
}
