/**
 * Room for uploads on the cluster server's own disk: the staging area holds each
 * upload until the nodes have it, so it must neither fill the disk of the root nor
 * grow without bound while nodes are away.
 *
 * - **Reserve:** an upload starts only while the file system of the root has more
 *   than `minFreeBytes` free, and stops (452) when its bytes would eat into it.
 * - **Quota:** staged bytes (uploads waiting for the nodes, and those arriving) stay
 *   within `quotaBytes`; an upload that would pass it stops (452).
 * - One log line when uploads start being refused for lack of room, one when they are
 *   taken again (once there is room for a good part of an upload: 1 MiB or 5% of the
 *   quota, whichever is more).
 *
 * Staged bytes are counted by reading `.staging/` at start and every `recountMs`
 * (default 10 s); in between, uploads add what they write and the store worker takes
 * off what it moved to the nodes.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { formatBytes } from "../ui/report.ts";
import type { ClusterLayout } from "./layout.ts";

/** Limits of the staging area (absent: the defaults of {@linkcode watchStagingSpace}). */
export interface SpaceLimits {
  /** Free bytes the root's file system always keeps (default 1% of it, 64 MiB to 1 GiB). */
  minFreeBytes?: number;
  /** Most bytes staged at once (default half the root's file system). */
  quotaBytes?: number;
}

/** The staging area's room, as uploads and the store worker use it. */
export interface StagingSpace {
  /** Why a new upload is refused now (no room), or null. */
  refusal(): Promise<string | null>;
  /** Count `n` more bytes arriving; a reason (nothing counted) when there is no room. */
  take(n: number): string | null;
  /** Bytes counted by `take` that are gone again (an upload dropped). */
  giveBack(n: number): void;
  /** Bytes counted by `take` that are now staged (an upload kept). */
  keep(n: number): void;
  /** Staged bytes that left (moved to the nodes, or deleted). */
  freed(n: number): void;
  /** The limits in force. */
  readonly minFreeBytes: number;
  readonly quotaBytes: number;
  /** Stop the periodic recount. */
  stop(): void;
}

/** Bytes free and in all on the file system of `dir`. */
async function diskOf(dir: string): Promise<{ free: number; total: number }> {
  const s = await fsp.statfs(dir);
  return { free: Number(s.bavail) * Number(s.bsize), total: Number(s.blocks) * Number(s.bsize) };
}

/** Bytes in `.staging/` files, uploads under way (`active` ids) left out. */
async function stagedBytes(l: ClusterLayout, active: ReadonlySet<string>): Promise<number> {
  let n = 0;
  for (const e of await fsp.readdir(l.staging, { withFileTypes: true }).catch(() => [])) {
    if (!e.isFile() || active.has(e.name)) continue;
    n += (await fsp.stat(path.join(l.staging, e.name)).catch(() => null))?.size ?? 0;
  }
  return n;
}

/**
 * Watch the room of the staging area of `l` (see the module doc). `active` holds the
 * staging ids of uploads under way (their bytes are counted by `take`).
 */
export async function watchStagingSpace(
  l: ClusterLayout,
  active: ReadonlySet<string>,
  o: SpaceLimits & { log(line: string): void; recountMs?: number },
): Promise<StagingSpace> {
  const { total } = await diskOf(l.staging);
  const minFree = o.minFreeBytes ??
    Math.min(1024 ** 3, Math.max(64 * 1024 ** 2, Math.floor(total / 100)));
  const quota = o.quotaBytes ?? Math.floor(total / 2);
  let staged = await stagedBytes(l, active);
  let arriving = 0;
  let free = Infinity;
  let freeAt = 0;
  let full: string | null = null;
  const note = (why: string | null) => {
    if (why !== null && full === null) {
      o.log(`cluster: DISK FULL: refusing uploads (452): ${why}`);
    } else if (why === null && full !== null) {
      o.log("cluster: room again on the cluster server's disk: uploads are taken");
    }
    full = why;
    return why;
  };
  // Once full, uploads are taken again only when there is room for a good part of one
  // (not for a byte at a time: no refusal, acceptance, refusal... on each new upload).
  const margin = Math.max(1024 ** 2, Math.floor(quota / 20));
  const reasonFor = (more: number): string | null => {
    if (full !== null && more < margin) more = margin;
    if (staged + arriving + more > quota) {
      return `staging holds ${formatBytes(staged + arriving)}, its quota is ${formatBytes(quota)}`;
    }
    if (free - more < minFree) {
      return `the disk of the cluster root has ${formatBytes(Math.max(0, free))} free ` +
        `and keeps ${formatBytes(minFree)} in reserve`;
    }
    return null;
  };
  const refreshFree = async () => {
    if (Date.now() - freeAt < 1000) return;
    free = (await diskOf(l.staging).catch(() => ({ free: Infinity }))).free;
    freeAt = Date.now();
  };
  let counting = false;
  const timer = setInterval(async () => {
    if (counting) return;
    counting = true;
    try {
      staged = await stagedBytes(l, active);
      await refreshFree();
      if (full !== null) note(reasonFor(0));
    } finally {
      counting = false;
    }
  }, o.recountMs ?? 10_000);
  return {
    minFreeBytes: minFree,
    quotaBytes: quota,
    async refusal() {
      await refreshFree();
      return note(reasonFor(1));
    },
    take(n) {
      // `free` is at most a second old; the bytes taken since are counted off it.
      const why = reasonFor(n);
      if (why !== null) return note(why);
      arriving += n;
      free -= n;
      return null;
    },
    giveBack(n) {
      arriving = Math.max(0, arriving - n);
      free += n;
    },
    keep(n) {
      arriving = Math.max(0, arriving - n);
      staged += n;
    },
    freed(n) {
      staged = Math.max(0, staged - n);
      free += n;
    },
    stop: () => clearInterval(timer),
  };
}
