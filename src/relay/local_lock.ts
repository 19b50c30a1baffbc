/**
 * The local lock of a synced folder, `.hop/sync.lock`: one `hop relay sync` at
 * a time per folder. Taken by exclusive create; a lock whose process is gone
 * (same host, pid not alive) is taken over; one held by a live process, or
 * written on another host (a folder on a shared disk), is respected. The lock
 * says who holds it, so a second sync can say so.
 *
 * @example
 * ```ts
 * const held = await lockFolder("/home/me/docs");
 * if ("holder" in held) console.log(`held by pid ${held.holder.pid}`);
 * else try { ... } finally { await held.release(); }
 * ```
 *
 * @module
 */
import { hostname } from "node:os";
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { explainError, HopError } from "../errors.ts";
import { STATE_DIR } from "./scan.ts";

/** What `.hop/sync.lock` says. */
export interface FolderLockInfo {
  pid: number;
  host: string;
  /** ISO time the sync started. */
  started: string;
}

/** A folder lock this process holds. */
export interface HeldFolderLock {
  release(): Promise<void>;
}

/** The lock file of a folder. */
export function folderLockFile(folder: string): string {
  return join(folder, STATE_DIR, "sync.lock");
}

/** True when process `pid` of this host is alive. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/**
 * Whether a lock's `host` and `pid` name another process of this host, and if so whether it
 * still runs: `"running"`, `"gone"`, or undefined (another host, no pid, or this process).
 */
export function processHere(l: { host?: string; pid?: number }): "running" | "gone" | undefined {
  if (l.host !== hostname() || typeof l.pid !== "number" || l.pid === process.pid) return undefined;
  return processAlive(l.pid) ? "running" : "gone";
}

/** Who holds the folder's lock, or null when nobody alive does. */
export async function folderLockHolder(folder: string): Promise<FolderLockInfo | null> {
  let info: FolderLockInfo;
  try {
    info = JSON.parse(await readFile(folderLockFile(folder), "utf8"));
  } catch {
    return null;
  }
  if (typeof info?.pid !== "number") return null;
  if (info.host === hostname() && !processAlive(info.pid)) return null;
  return info;
}

/**
 * Takes the folder's lock, or returns who holds it. Throws (with what to do)
 * when the folder's `.hop/` cannot be written.
 */
export async function lockFolder(
  folder: string,
): Promise<HeldFolderLock | { holder: FolderLockInfo }> {
  const file = folderLockFile(folder);
  const mine: FolderLockInfo = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
  };
  try {
    await mkdir(join(folder, STATE_DIR), { recursive: true });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(file, "wx");
        try {
          await fh.writeFile(JSON.stringify(mine) + "\n");
        } finally {
          await fh.close();
        }
        return {
          release: async () => {
            // only ours: a lock taken over after we were thought gone stays
            const now = await readFile(file, "utf8").catch(() => "");
            if (now.includes(`"pid":${mine.pid},`) && now.includes(`"started":"${mine.started}"`)) {
              await rm(file, { force: true });
            }
          },
        };
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw e;
      }
      const holder = await folderLockHolder(folder);
      if (holder) return { holder };
      await rm(file, { force: true }); // left by a process that is gone
    }
  } catch (e) {
    const known = explainError(e);
    throw new HopError(
      `cannot lock ${folder} for syncing: ${known?.message ?? (e as Error).message}`,
      {
        hint: known?.hint ??
          `hop keeps its state in ${join(folder, STATE_DIR)}: the folder must be writable.`,
        code: known?.code,
        cause: e,
      },
    );
  }
  throw new HopError(`cannot take the lock ${file}`, {
    hint: "Remove it if no hop relay sync runs on this folder.",
  });
}
