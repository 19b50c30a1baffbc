/**
 * The local side of relay sync: walking the synchronized folder (hidden names
 * skipped, include/exclude rules applied, symbolic links not followed) and
 * streaming checksums with a persistent cache in the folder's `.hop/` state
 * directory, keyed by path + size + mtime, so an unchanged file is never read
 * again.
 *
 * @example
 * ```ts
 * const files = await scanFolder("/home/me/docs", { include: [], exclude: [] });
 * const cache = await openChecksumCache("/home/me/docs", "sha512");
 * for (const f of files.values()) console.log(f.path, await cache.checksum(f));
 * await cache.save();
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { createReadStream, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { setImmediate } from "node:timers";
import { HopError } from "../errors.ts";
import { type PathFilter, pathSelected } from "./config.ts";

/** Name of hop's state directory inside a synchronized folder. */
export const STATE_DIR = ".hop";

/** Files up to this size are hashed from one read. */
const SMALL_FILE = 1 << 20;

/** A regular file found in the local folder. */
export interface LocalFile {
  /** Relative, `/`-separated path. */
  path: string;
  size: number;
  /** Modification time in whole milliseconds ({@linkcode wholeMs}). */
  mtimeMs: number;
}

/**
 * A file time in whole milliseconds: the checksum cache and the sync state compare times
 * across runs, and runtimes disagree below the millisecond (Deno truncates, Bun keeps a
 * fraction), so a run of the binary after one on Deno would read every file again.
 */
export function wholeMs(mtimeMs: number): number {
  return Math.floor(mtimeMs);
}

/** Absolute path of the state directory of a local folder (created on demand). */
export async function stateDir(root: string): Promise<string> {
  const dir = join(root, STATE_DIR);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** True when a relative path has a hidden component (`.x`), which sync never touches. */
export function isHiddenPath(path: string): boolean {
  return path.split("/").some((s) => s.startsWith("."));
}

/**
 * Lists the regular files of `root` that sync considers: no hidden name at any
 * level, selected by the filters, symbolic links skipped. Sorted by path.
 */
export async function scanFolder(
  root: string,
  filters: { include: PathFilter[]; exclude: PathFilter[] },
  onProgress?: (files: number) => void,
): Promise<Map<string, LocalFile>> {
  const found: LocalFile[] = [];
  const walk = async (dir: string, prefix: string) => {
    let entries;
    try {
      // one call per folder: an async iterator costs an operation per name
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      throw new HopError(`cannot read the folder ${dir}: ${(e as Error).message}`, {
        hint: "Check that the local folder exists and is readable.",
        cause: e,
      });
    }
    const subdirs: string[] = [];
    const regular: string[] = [];
    for (const d of entries) {
      if (d.name.startsWith(".")) continue;
      if (d.isDirectory()) subdirs.push(d.name);
      else if (d.isFile() && pathSelected(prefix + d.name, filters)) regular.push(d.name);
    }
    // synchronous stats: far cheaper per call than promises, and a scan has nothing else to do
    for (let i = 0; i < regular.length; i++) {
      let st;
      try {
        st = statSync(join(dir, regular[i]));
      } catch {
        continue; // vanished between listing and stat: not there for this pass
      }
      found.push({ path: prefix + regular[i], size: st.size, mtimeMs: wholeMs(st.mtimeMs) });
      if (onProgress && found.length % 1000 === 0) onProgress(found.length);
    }
    await new Promise((r) => setImmediate(r)); // let I/O and signals run between folders (setTimeout(0) would be clamped to 4 ms)
    for (const s of subdirs) await walk(join(dir, s), prefix + s + "/");
  };
  await walk(root, "");
  found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const byPath = new Map<string, LocalFile>();
  for (const f of found) byPath.set(f.path, f);
  return byPath;
}

/** Streams a file through a hash; never holds it whole in memory. */
export async function fileChecksum(absPath: string, algorithm = "sha512"): Promise<string> {
  const h = createHash(algorithm);
  const s = createReadStream(absPath, { highWaterMark: 1 << 20 });
  for await (const chunk of s) h.update(chunk as Uint8Array);
  return h.digest("hex");
}

/** Checksums remembered across runs, keyed by path + size + mtime. */
export interface ChecksumCache {
  /** The cached sum when path, size and mtime all match, else undefined. */
  lookup(f: LocalFile): string | undefined;
  /** Records a sum computed elsewhere (e.g. a file just pulled). */
  remember(f: LocalFile, sum: string): void;
  /** The file's sum: from the cache, else read and hashed (then cached). */
  checksum(f: LocalFile): Promise<string>;
  /**
   * Makes each cached sum equal to `sums[path]` the very same string, so that
   * the sync state and the cache hold one copy of a checksum between them
   * (128 characters each for sha512: 13 MB on 100,000 files).
   */
  share(sums: Record<string, string>): void;
  /** Number of files actually read since the cache was opened. */
  readonly filesRead: number;
  /**
   * Writes the cache (atomically) if it changed. With `present` (the paths of
   * the last scan), entries of files no longer there are dropped.
   */
  save(present?: { has(path: string): boolean }): Promise<void>;
}

interface CacheFile {
  v: 1;
  algorithm: string;
  files: Record<string, [number, number, string]>;
}

/** Opens the cache of `root` for one hash algorithm (a damaged cache starts empty). */
export async function openChecksumCache(root: string, algorithm: string): Promise<ChecksumCache> {
  const file = join(root, STATE_DIR, `checksums-${algorithm}.json`);
  let entries: Record<string, [number, number, string]> = {};
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as CacheFile;
    if (parsed.v === 1 && parsed.algorithm === algorithm && typeof parsed.files === "object") {
      entries = parsed.files;
    }
  } catch {
    // absent or damaged: a cache is only an optimisation, start over
  }
  let dirty = false;
  let filesRead = 0;
  const cache: ChecksumCache = {
    lookup(f) {
      const e = Object.hasOwn(entries, f.path) ? entries[f.path] : undefined;
      // wholeMs: caches written before times were whole milliseconds still match
      if (e && e[0] === f.size && wholeMs(e[1]) === f.mtimeMs) {
        return e[2];
      }
      return undefined;
    },
    remember(f, sum) {
      entries[f.path] = [f.size, f.mtimeMs, sum];
      dirty = true;
    },
    async checksum(f) {
      const hit = cache.lookup(f);
      if (hit !== undefined) return hit;
      const abs = join(root, f.path);
      // small files in one synchronous read (a stream, or even a promise, per file costs more
      // than the file: a first push of 100,000 small files reads each); big ones streamed
      const sum = f.size <= SMALL_FILE
        ? createHash(algorithm).update(readFileSync(abs)).digest("hex")
        : await fileChecksum(abs, algorithm);
      filesRead++;
      cache.remember(f, sum);
      return sum;
    },
    share(sums) {
      for (const k in sums) {
        const e = Object.hasOwn(entries, k) ? entries[k] : undefined;
        if (e && e[2] === sums[k]) e[2] = sums[k];
      }
    },
    get filesRead() {
      return filesRead;
    },
    async save(present) {
      let dropped = false;
      if (present) {
        for (const k in entries) {
          if (!present.has(k)) {
            dropped = true;
            break;
          }
        }
      }
      if (!dirty && !dropped) return; // the usual rescan: no copy, no write
      if (dropped) {
        const keep: Record<string, [number, number, string]> = {};
        for (const k in entries) if (present!.has(k)) keep[k] = entries[k];
        entries = keep;
      }
      const keep = entries;
      await stateDir(root);
      const tmp = `${file}.${process.pid}.tmp`;
      const body: CacheFile = { v: 1, algorithm, files: keep };
      await writeFile(tmp, JSON.stringify(body));
      await rename(tmp, file);
      dirty = false;
    },
  };
  return cache;
}
