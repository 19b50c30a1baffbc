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
import { constants } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { decodeLink, type DirInfo, encodeLink, type FileLink } from "../codec/link.ts";
import { syncDir } from "../durable.ts";

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

/** Read the link or info file at `file`, or null when it does not exist (or is a symlink). */
export async function readInfo(file: string): Promise<FileLink | DirInfo | null> {
  let text: Uint8Array;
  try {
    // O_NOFOLLOW: a symlink planted as a link file is not one (and reads nothing outside).
    const fh = await fsp.open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      text = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR" || code === "ELOOP") {
      return null;
    }
    throw e;
  }
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
  const tmp = path.join(tmpDir, `w-${Date.now()}-${randomBytes(6).toString("hex")}`);
  const fh = await fsp.open(tmp, "w", 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await syncDir(path.dirname(file));
}

/** Move `from` to `to` and make both directories durable. */
export async function moveDurably(from: string, to: string): Promise<void> {
  await fsp.rename(from, to);
  await syncDir(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) await syncDir(path.dirname(from));
}
