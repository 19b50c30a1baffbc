/**
 * The decoded link and info files of cluster directories, kept between listings: a
 * LIST of 10,000 files otherwise reads and decodes 10,000 link files every time, and
 * 200 sessions listing one folder of 50 files read 10,000 link files between them
 * (issue 13).
 *
 * Every change hop makes to a link or info file renames a file into or out of its
 * directory (`links.ts`: writeAtomic, moveDurably), which sets the directory's mtime
 * and ctime, and gives the link file a new inode and ctime. A listing whose directory
 * still has the stamp (device, inode, mtime, ctime, size) it had when the links were
 * read reuses them all, and its entries too (same names): it reads no file and no
 * directory. In a big directory ({@linkcode MIN_LINKS} link files or more) a listing
 * whose directory changed reuses each link file whose own stamp (an lstat, a third of
 * the cost of reading it) is still the one it had when it was read, and reads the
 * others; a smaller changed directory is read whole. A stamp is trusted only once it
 * is {@linkcode STABLE_MS} old: timestamps are coarse (a clock tick), so a change made
 * right after a stamp was taken could leave a young stamp as it was; an old one
 * cannot stay the same (the change's time is later). Links read under a young stamp
 * are read again next time. A link file edited in place by something else shows in
 * listings once its directory changes; RETR, STAT and every change read the link file
 * itself.
 *
 * @module
 */

import type * as fs from "node:fs";
import type { DirInfo, FileLink } from "./links.ts";

/** Age a directory or link file stamp must have to be trusted (ms). */
export const STABLE_MS = 2000;
/** Directories with this many link files or more have each link file stamped. */
export const MIN_LINKS = 1000;
/**
 * Most link files (or entries, where a folder has more) kept for all directories together
 * (least recently listed go first).
 */
const MAX_LINKS = 50_000;

/** A decoded link or info file and the stamp its file had before it was read (null: young). */
export interface KnownLink {
  info: FileLink | DirInfo;
  stamp: string | null;
}

/** Decoded link and info files by file name. */
export type DirLinks = Map<string, KnownLink>;

/** What is kept of a directory: its links, and whether they are all still valid. */
export interface KeptDir {
  links: DirLinks;
  /** The directory's entries when its links were kept (its entries now if `unchanged`). */
  entries: readonly fs.Dirent[];
  /** True when the directory's stamp is the one it had (trusted): no link changed. */
  unchanged: boolean;
}

/** A cache of the links of big directories (see the module doc). */
export interface DirCache {
  /** The stamp of a directory or file from its stat, or null while it is too young to trust. */
  stampOf(st: fs.Stats): string | null;
  /** The links kept of `dir`, which has the stamp `stamp` now. */
  get(dir: string, stamp: string | null): KeptDir | undefined;
  /** Keep the links and entries read from `dir` under `stamp` (if it has links). */
  set(dir: string, stamp: string | null, links: DirLinks, entries: readonly fs.Dirent[]): void;
}

/** An empty {@linkcode DirCache}. */
export function createDirCache(now: () => number = Date.now): DirCache {
  // `size`: what is counted in `total` (a kept map a listing reuses may grow later)
  const dirs = new Map<
    string,
    { stamp: string | null; links: DirLinks; entries: readonly fs.Dirent[]; size: number }
  >();
  let total = 0;
  const drop = (dir: string) => {
    const had = dirs.get(dir);
    if (!had) return;
    total -= had.size;
    dirs.delete(dir);
  };
  return {
    stampOf(st) {
      if (now() - Math.max(st.mtimeMs, st.ctimeMs) < STABLE_MS) return null;
      return `${st.dev}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}:${st.size}`;
    },
    get(dir, stamp) {
      const had = dirs.get(dir);
      if (!had) return undefined;
      dirs.delete(dir); // most recently listed last
      dirs.set(dir, had);
      return {
        links: had.links,
        entries: had.entries,
        unchanged: stamp !== null && had.stamp === stamp,
      };
    },
    set(dir, stamp, links, entries) {
      drop(dir);
      // a folder counts its links, or its entries when it has more (foreign files)
      const size = Math.max(links.size, entries.length);
      if (links.size === 0 || size > MAX_LINKS) return;
      for (const first of dirs.keys()) {
        if (total + size <= MAX_LINKS) break;
        drop(first);
      }
      dirs.set(dir, { stamp, links, entries, size });
      total += size;
    },
  };
}
