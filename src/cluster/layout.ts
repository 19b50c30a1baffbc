/**
 * The cluster root on the cluster server's disk, and how a client's virtual path
 * maps onto it.
 *
 * ```
 * ROOT/                 the visible tree: directories, link files `name#`,
 *   dir#                directory info file (owner uid) of directory `dir`
 *   dir/name#           link file of file `name` (names %-encoded at rest)
 *   lost+found/         link files of orphaned node data (visible, like any directory)
 *   .passwd             users (hashed passwords)
 *   .queue/             job queue (store and delete jobs)
 *   .deleted/           link files of deleted files, until their node data is removed
 *   .staging/           uploads not yet on the nodes (`.staging/<id>`), temp files
 *   .log/               the server's log
 *   .hop/serve.lease    the serve lease: which server holds the root (`lease.ts`)
 * ```
 *
 * Names ending in `#` never reach a client (encoded names cannot end in `#`). The
 * dot-names above are reserved at the root: hidden from listings and refused to
 * clients. The root itself has no info file: it belongs to the administrators.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { encodeName } from "../codec/names.ts";
import { FtpFsError } from "../ftp/types.ts";

/** Suffix of link and directory info files. */
export const LINK_SUFFIX = "#";
/** Root entries that belong to the server, never to clients. */
export const RESERVED_ROOT_NAMES: ReadonlySet<string> = new Set([
  ".passwd",
  ".passwd.lock",
  ".queue",
  ".queue.lock",
  ".deleted",
  ".staging",
  ".log",
  ".hop",
]);
/** Absolute paths of a cluster root's parts. */
export interface ClusterLayout {
  root: string;
  passwd: string;
  queue: string;
  deleted: string;
  staging: string;
  /** Temp files for atomic writes (same file system as the tree). */
  tmp: string;
  lostFound: string;
  log: string;
}

/** The layout of the cluster rooted at `root` (made absolute). */
export function clusterLayout(root: string): ClusterLayout {
  const r = path.resolve(root);
  return {
    root: r,
    passwd: path.join(r, ".passwd"),
    queue: path.join(r, ".queue"),
    deleted: path.join(r, ".deleted"),
    staging: path.join(r, ".staging"),
    tmp: path.join(r, ".staging", "tmp"),
    lostFound: path.join(r, "lost+found"),
    log: path.join(r, ".log"),
  };
}

/** Create the directories of a layout (idempotent). */
export async function initLayout(l: ClusterLayout): Promise<void> {
  for (const d of [l.root, l.queue, l.deleted, l.staging, l.tmp, l.lostFound, l.log]) {
    await fsp.mkdir(d, { recursive: true });
  }
}

/** Segments of a normalized virtual path ("/" -> []). */
export function segments(vpath: string): string[] {
  return vpath.split("/").filter((s) => s !== "");
}

/**
 * Disk path of virtual directory or entry `vpath`, each segment %-encoded.
 * Throws FtpFsError("permission") for reserved root names and names that would be
 * link or info files, so no client reaches them by name.
 */
export function diskPath(l: ClusterLayout, vpath: string): string {
  const segs = segments(vpath);
  const enc: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    if (s === "." || s === ".." || s.includes("\\") || /[\0\r\n]/.test(s)) {
      throw new FtpFsError("permission", `bad path segment "${s}"`);
    }
    const e = encodeName(s);
    if (i === 0 && RESERVED_ROOT_NAMES.has(e)) {
      throw new FtpFsError("permission", `${s} belongs to the cluster server`);
    }
    enc.push(e);
  }
  const p = path.join(l.root, ...enc);
  if (p !== l.root && !p.startsWith(l.root + path.sep)) {
    throw new FtpFsError("permission", "path leaves the cluster root");
  }
  return p;
}

/** The raw (not %-encoded) disk path, for reading foreign files whose names were never encoded. */
export function rawDiskPath(l: ClusterLayout, vpath: string): string | null {
  const segs = segments(vpath);
  if (segs.some((s) => s.endsWith(LINK_SUFFIX) || s === "." || s === ".." || s.includes("\0"))) {
    return null;
  }
  if (segs.length > 0 && RESERVED_ROOT_NAMES.has(segs[0])) return null;
  const p = path.join(l.root, ...segs);
  return p.startsWith(l.root + path.sep) ? p : null;
}

/** Link (or directory info) file path of the entry at disk path `p`. */
export function infoPathOf(p: string): string {
  return p + LINK_SUFFIX;
}

/** True when a disk entry name is hidden from clients (reserved, or a leftover temp name). */
export function isHidden(diskName: string, atRoot: boolean): boolean {
  return atRoot && RESERVED_ROOT_NAMES.has(diskName);
}
