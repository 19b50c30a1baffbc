/**
 * The cluster as an FTP file system (`FtpFileSystem`): directories are the cluster
 * root's own tree, files are link files whose data sits on storage nodes (or, right
 * after an upload, in the staging area).
 *
 * - Listings come from link and info files; `#` names never show. Foreign files (no
 *   link file: not made by the cluster) are listed and readable, never modified.
 * - STOR/APPE stream into `.staging/<id>`; commit = fsync, then the link file (with
 *   `staged <id>`) is written atomically and an upload job queued; only then 226.
 *   REST/APPE keep the first bytes of the existing file.
 * - DELE moves the link file to `.deleted/` and queues a delete job; RNTO onto an
 *   existing file deletes that one the same way first.
 * - Owners (uid in the link/info file) and admins modify; others read. The root
 *   belongs to the admins. Names follow the filename policy, %-encoded at rest.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { setImmediate } from "node:timers";
import { fsyncFd, syncDir } from "../durable.ts";
import { fileReadStream } from "../storage/streams.ts";
import { decodeLink } from "../codec/link.ts";
import { checkName, decodeName, encodeName, type NamePolicy, nameTooLong } from "../codec/names.ts";
import { baseName, parentOf } from "../ftp/path.ts";
import {
  type FtpFileInfo,
  type FtpFileSystem,
  FtpFsError,
  type FtpUpload,
  type FtpUser,
} from "../ftp/types.ts";
import { createDirCache, type DirLinks, MIN_LINKS } from "./dir_cache.ts";
import { deleteJob, type JobSink, type PreparedJob, uploadJob } from "./jobs.ts";
import {
  type ClusterLayout,
  diskPath,
  infoPathOf,
  isHidden,
  LINK_SUFFIX,
  rawDiskPath,
} from "./layout.ts";
import {
  type DirInfo,
  type FileLink,
  moveDurably,
  type PreparedWrite,
  prepareInfo,
  readInfo,
  readInfoSync,
  stagedId,
  withStaged,
  writeInfo,
} from "./links.ts";
import type { StorageNode } from "./nodes.ts";
import type { StagingSpace } from "./space.ts";

/** Everything the cluster's parts share. */
export interface ClusterContext {
  layout: ClusterLayout;
  names: NamePolicy;
  /** Storage nodes by key (the `server` field of link files). */
  nodes: Map<string, StorageNode>;
  jobs: JobSink;
  /** Login name of a uid, for listings. */
  userName(uid: number): string | undefined;
  /** Runs link-changing steps one at a time (one process); refused while `blocked`. */
  serial<T>(f: () => Promise<T>): Promise<T>;
  /** Staging ids of uploads in progress (not yet linked). */
  activeUploads: Set<string>;
  /**
   * When an upload last started or ended (`performance.now()`), set by the file system:
   * the store worker holds off while uploads arrive (`store.ts`). Absent: none yet.
   */
  lastUploadAt?: number;
  log(line: string): void;
  /**
   * Why this process may not change the tree now (its serve lease is not held:
   * `lease.ts`), or null. Absent: always allowed (tools working on their own).
   */
  blocked?(): string | null;
  /** First 8 hex digits of new staging ids (the serve lease's tag, `lease.ts`). */
  stagingTag?: string;
  /** Room in the staging area (`space.ts`); absent: not watched. */
  space?: StagingSpace;
}

/** Throws the 451 of a process that may not change the tree now (see `blocked`). */
export function assertMayChange(ctx: ClusterContext): void {
  const why = ctx.blocked?.();
  if (why) {
    throw new FtpFsError("unavailable", `not done: ${why}.`, {
      hint: "Another hop cluster serve may hold this cluster root now.",
    });
  }
}

/**
 * A serializer: each call runs after the previous one settled. `check` runs first in
 * each turn and may throw to refuse it (serve: {@linkcode assertMayChange}).
 */
export function createSerial(check?: () => void): <T>(f: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(f: () => Promise<T>): Promise<T> => {
    const turn = check
      ? () => {
        check();
        return f();
      }
      : f;
    const run = tail.then(turn, turn);
    tail = run.catch(() => {});
    return run;
  };
}

/**
 * An upload's written bytes are flushed (fdatasync) every this many while it goes on, so
 * its commit does not wait for the whole file to reach the disk.
 */
const SYNC_EVERY = 32 * 1024 * 1024;

/**
 * An upload's first bytes (below this offset) are written with synchronous calls, as its
 * staged file is opened and closed: into the page cache they cost less blocking than the
 * round trips of async calls to the thread pool, which made a good part of the time of a
 * small upload on a busy machine. Further writes are async (a big upload does not block
 * other sessions).
 */
const SYNC_WRITES_BELOW = 1024 * 1024;

/**
 * An upload's later chunks are copied into buffers of this many bytes, each written with one
 * call, and up to `WRITE_AHEAD` bytes of them are written while the socket is read on: each
 * chunk (64 KB) awaiting its own write to the thread pool kept the receiving at half the speed
 * of the disk. (Bun's `writev` of the chunks themselves measured ten times slower than this.)
 */
const WRITE_BATCH = 1024 * 1024;
const WRITE_AHEAD = 8 * 1024 * 1024;
/**
 * Past this many bytes written ahead by all uploads together, each waits for its batch in
 * flight before it takes more: a server of many uploads to a slow disk stays lean.
 */
const WRITE_AHEAD_ALL = 64 * 1024 * 1024;
/** Bytes written ahead by all uploads of this process. */
let aheadAll = 0;

/** All of `buf` written at `position` of `fd` (again for what a short write left). */
async function writeAllAt(fd: number, buf: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    off += await new Promise<number>((resolve, reject) =>
      fs.write(fd, buf, off, buf.length - off, position + off, (e, n) => e ? reject(e) : resolve(n))
    );
  }
}

/** True for a write refused for lack of room (ENOSPC, EDQUOT). */
function isNoSpace(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/** The 452 of an upload that found no room. */
function noRoom(v: string, why: string): FtpFsError {
  return new FtpFsError("no-space", `${v}: not stored, no room on the cluster server: ${why}.`, {
    hint: "Free space on the cluster root, or wait for the store worker to move uploads on.",
  });
}

/** A file or job written and flushed under a temp name, not in place yet. */
interface Prepared {
  discard(): Promise<void>;
}

/**
 * Awaits two flushes together (each `Prepared`, or done); when one failed, the other's
 * temp file is discarded and the failure thrown.
 */
async function settled<A extends Prepared | void, B extends Prepared>(
  a: Promise<A>,
  b: Promise<B>,
): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === "fulfilled" && rb.status === "fulfilled") return [ra.value, rb.value];
  for (const r of [ra, rb]) {
    if (r.status === "fulfilled" && r.value) await r.value.discard().catch(() => {});
  }
  throw ra.status === "rejected" ? ra.reason : (rb as PromiseRejectedResult).reason;
}

/** What is at a virtual path. */
type Entry =
  | { kind: "link"; disk: string; link: FileLink }
  | { kind: "dir"; disk: string; uid: number | null; mtime: number }
  | { kind: "foreign"; disk: string; st: fs.Stats };

const uidOf = (user: FtpUser): number | null => typeof user.id === "number" ? user.id : null;

/** The FtpFileSystem of a cluster. */
export function createClusterFs(ctx: ClusterContext): FtpFileSystem {
  const l = ctx.layout;
  const realRoot = fs.realpathSync(l.root);
  const dirCache = createDirCache();

  // Lookups use synchronous calls: a few stats and a link file of a few dozen bytes,
  // in the page cache, cost less blocking than the round trips of async calls (several
  // lookups per FTP command).
  const lstat = (p: string): fs.Stats | null => {
    try {
      return fs.lstatSync(p);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENOENT" || code === "ENOTDIR") return null;
      throw e;
    }
  };

  /** Disk path of `v`, segment by segment: %-encoded, or the raw name of a foreign entry. */
  const locate = (v: string): string | null => {
    let encoded: string;
    try {
      encoded = diskPath(l, v);
    } catch (e) {
      if (e instanceof FtpFsError) return null; // reserved or impossible: nothing there for clients
      throw e;
    }
    if (lstat(encoded) || lstat(infoPathOf(encoded))) return encoded;
    const raw = rawDiskPath(l, v);
    if (raw !== null && raw !== encoded && lstat(raw)) return raw;
    return encoded;
  };

  const realpath = (p: string): string | null => {
    try {
      return fs.realpathSync(p);
    } catch {
      return null;
    }
  };

  const entryAt = (v: string): Entry | null => {
    if (v === "/") {
      return { kind: "dir", disk: l.root, uid: null, mtime: fs.statSync(l.root).mtimeMs };
    }
    const disk = locate(v);
    if (disk === null) return null;
    // A symlinked directory on the way could lead out of the root: such paths do not exist.
    const parent = realpath(path.dirname(disk));
    if (parent === null || (parent !== realRoot && !parent.startsWith(realRoot + path.sep))) {
      return null;
    }
    let info: FileLink | DirInfo | null = null;
    try {
      info = readInfoSync(infoPathOf(disk));
    } catch (e) {
      ctx.log(`cluster: unreadable info file ${infoPathOf(disk)}: ${(e as Error).message}`);
    }
    const st = lstat(disk);
    if (st?.isDirectory()) {
      return { kind: "dir", disk, uid: info?.kind === "dir" ? info.uid : null, mtime: st.mtimeMs };
    }
    if (info?.kind === "file") return { kind: "link", disk, link: info };
    if (st?.isFile()) return { kind: "foreign", disk, st };
    return null; // symlinks and other specials are invisible
  };

  const ownerName = (uid: number | null) =>
    uid === null ? "root" : ctx.userName(uid) ?? String(uid);
  const mayModify = (uid: number | null, user: FtpUser) =>
    !user.readOnly && (user.admin || (uid !== null && uid === uidOf(user)));
  const readOnlyPerm = (e: Entry, user: FtpUser) => {
    if (e.kind === "foreign") return e.st.isDirectory() ? "el" : "r";
    const uid = e.kind === "link" ? e.link.uid : e.uid;
    if (mayModify(uid, user)) return undefined;
    return e.kind === "dir" ? "el" : "r";
  };

  /** `ownerName` with the names it gave kept: for the many files of one listing. */
  const ownerNames = () => {
    const known = new Map<number | null, string>();
    return (uid: number | null) => {
      let name = known.get(uid);
      if (name === undefined) known.set(uid, name = ownerName(uid));
      return name;
    };
  };
  const linkInfo = (name: string, link: FileLink, user: FtpUser, owner = ownerName) => ({
    name,
    type: "file" as const,
    size: link.size,
    mtime: link.mtime * 1000,
    owner: owner(link.uid),
    group: "cluster",
    mode: 0o644,
    perm: mayModify(link.uid, user) ? undefined : "r",
  });
  const infoOf = (name: string, e: Entry, user: FtpUser, owner = ownerName): FtpFileInfo => {
    if (e.kind === "link") return linkInfo(name, e.link, user, owner);
    if (e.kind === "dir") {
      return {
        name,
        type: "dir",
        size: 0,
        mtime: e.mtime,
        owner: owner(e.uid),
        group: "cluster",
        mode: 0o755,
        perm: readOnlyPerm(e, user),
      };
    }
    return {
      name,
      type: "file",
      size: e.st.size,
      mtime: e.st.mtimeMs,
      owner: "foreign",
      group: "foreign",
      mode: 0o444,
      perm: "r",
    };
  };

  const needDir = (v: string): Entry & { kind: "dir" } => {
    const e = entryAt(v);
    if (!e) throw new FtpFsError("not-found", `${v}: No such directory.`);
    if (e.kind !== "dir") throw new FtpFsError("not-a-directory", `${v}: Not a directory.`);
    return e;
  };
  const needWritableDir = (v: string, user: FtpUser) => {
    const d = needDir(v);
    if (!mayModify(d.uid, user)) {
      throw new FtpFsError(
        "permission",
        `${v}: Permission denied (directory of ${ownerName(d.uid)}).`,
      );
    }
    return d;
  };
  const needName = (v: string): string => {
    const name = baseName(v);
    if (nameTooLong(name)) {
      throw new FtpFsError("too-long", `${name.slice(0, 32)}...: name too long.`);
    }
    const why = checkName(name, ctx.names);
    if (why !== null) throw new FtpFsError("bad-name", `incompatible filename: ${why}`);
    return name;
  };
  const foreignRefusal = (v: string) =>
    new FtpFsError("permission", `${v}: not a cluster file (no link file); it is never modified.`);

  /** Move a link file to `.deleted/` and queue the deletion of its data. */
  const deleteLink = async (disk: string, link: FileLink): Promise<void> => {
    const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
    const entry = `${stamp}-${randomBytes(4).toString("hex")}-${
      encodeName(link.name)
    }${LINK_SUFFIX}`;
    // The job is flushed while the move is; it is queued once the move is durable.
    const [, job] = await settled(
      moveDurably(infoPathOf(disk), path.join(l.deleted, entry)),
      ctx.jobs.prepare(deleteJob(entry)),
    );
    await job.publish();
    ctx.log(`cluster: deleted ${disk} -> .deleted/${entry}`);
  };

  /** Streams of the copies of `link`, first one that yields a first byte. */
  const openLink = async (
    v: string,
    link: FileLink,
    offset: number,
  ): Promise<ReadableStream<Uint8Array>> => {
    const tried: string[] = [];
    const id = stagedId(link);
    if (id !== null) {
      try {
        return fileReadStream(await fsp.open(path.join(l.staging, id), "r"), offset);
      } catch (e) {
        tried.push(`staging: ${(e as Error).message}`);
      }
    }
    const copies = link.copies.map((c) => ({ c, node: ctx.nodes.get(c.node) }));
    copies.sort((a, b) =>
      Number(a.node?.isDown() ?? true) - Number(b.node?.isDown() ?? true) ||
      (a.node?.load ?? 0) - (b.node?.load ?? 0)
    );
    for (const { c, node } of copies) {
      if (!node) {
        tried.push(`${c.node}: not a configured node`);
        continue;
      }
      try {
        return await node.get(c.path, offset);
      } catch (e) {
        tried.push(`${node.label}: ${(e as Error).message}`);
        ctx.log(`cluster: RETR ${v}: copy on ${node.label} failed: ${(e as Error).message}`);
      }
    }
    const msg = link.copies.length === 0 && id === null
      ? `${v}: this file has no copy on any node.`
      : `${v}: no copy of this file can be read now (tried ${tried.length}).`;
    ctx.log(`cluster: AUDIT missing data: ${v}: ${tried.join("; ") || "no copies listed"}`);
    throw new FtpFsError("not-found", msg);
  };

  return {
    stat(v, user) {
      return Promise.resolve(v).then((v) => {
        const e = entryAt(v);
        return e ? infoOf(baseName(v) || "/", e, user) : null;
      });
    },

    async list(v, user) {
      const dir = needDir(v);
      const atRoot = dir.disk === l.root;
      // stamped before reading: a change made meanwhile gives the directory a new stamp
      const stamp = dirCache.stampOf(fs.statSync(dir.disk));
      const kept = dirCache.get(dir.disk, stamp);
      // an unchanged directory has the same link files: what was kept is what is read
      const unchanged = kept?.unchanged === true;
      const read: DirLinks = unchanged ? kept!.links : new Map();
      const under = dir.disk.endsWith(path.sep) ? dir.disk : dir.disk + path.sep;
      const ents = unchanged ? kept!.entries : await fsp.readdir(dir.disk, { withFileTypes: true });
      // Names of the directories and of the other files beside the link files (few), and
      // which of them have a link or info file `name#`.
      const dirs = new Set<string>();
      const plain = new Set<string>();
      let linkCount = 0;
      for (const d of ents) {
        if (isHidden(d.name, atRoot)) continue;
        if (d.isDirectory()) dirs.add(d.name);
        else if (!d.isFile()) continue;
        else if (d.name.endsWith(LINK_SUFFIX)) linkCount++;
        else plain.add(d.name);
      }
      const linked = new Set<string>();
      if (dirs.size > 0 || plain.size > 0) {
        for (const d of ents) {
          const n = d.name;
          if (!n.endsWith(LINK_SUFFIX) || !d.isFile() || isHidden(n, atRoot)) continue;
          const base = n.slice(0, -1);
          if (dirs.has(base) || plain.has(base)) linked.add(base);
        }
      }
      // In a big directory each link file is stamped (before it is read), so that the
      // next listing after a change reads only the files that changed.
      const stamped = linkCount >= MIN_LINKS;
      /** The link or info file `n` of the directory, decoded. */
      const decoded = (n: string) => {
        const had = kept?.links.get(n);
        if (had && unchanged) return had.info;
        const file = under + n;
        const fileStamp = stamped ? dirCache.stampOf(fs.lstatSync(file)) : null;
        if (had && fileStamp !== null && had.stamp === fileStamp) {
          read.set(n, had);
          return had.info;
        }
        const info = decodeLink(fs.readFileSync(file), file);
        read.set(n, { info, stamp: fileStamp });
        return info;
      };
      const owner = ownerNames();
      const out: FtpFileInfo[] = [];
      // Names differ only once decoded (two spellings of one name): the first one shows.
      let decodedAny = false;
      // Small synchronous reads are several times faster than async ones here; slices
      // keep the event loop free for other sessions between them.
      const SLICE = 256;
      for (let i = 0; i < ents.length; i++) {
        if (i > 0 && i % SLICE === 0) await new Promise((r) => setImmediate(r));
        const d = ents[i];
        const n = d.name;
        if (isHidden(n, atRoot)) continue;
        try {
          if (d.isFile() && n.endsWith(LINK_SUFFIX)) {
            const base = n.slice(0, -1);
            if (base === "" || dirs.has(base)) continue; // a directory's info file
            const info = decoded(n);
            if (info.kind !== "file") continue;
            const name = decodeName(base);
            if (name !== base) decodedAny = true;
            out.push(linkInfo(name, info, user, owner));
          } else if (d.isDirectory()) {
            const full = under + n;
            const st = fs.statSync(full);
            const info = linked.has(n) ? decoded(n + LINK_SUFFIX) : null;
            const uid = info?.kind === "dir" ? info.uid : null;
            const name = decodeName(n);
            if (name !== n) decodedAny = true;
            out.push(
              infoOf(name, { kind: "dir", disk: full, uid, mtime: st.mtimeMs }, user, owner),
            );
          } else if (d.isFile() && !linked.has(n)) {
            const full = under + n;
            const name = decodeName(n);
            if (name !== n) decodedAny = true;
            out.push(infoOf(name, { kind: "foreign", disk: full, st: fs.lstatSync(full) }, user));
          }
        } catch (err) {
          ctx.log(`cluster: LIST ${v}: skipped ${n}: ${(err as Error).message}`);
        }
      }
      dirCache.set(dir.disk, stamp, read, ents);
      if (!decodedAny) return out;
      const seen = new Set<string>();
      return out.filter((e) => !seen.has(e.name) && seen.add(e.name));
    },

    mkdir(v, user) {
      return ctx.serial(async () => {
        const name = needName(v);
        needWritableDir(parentOf(v), user);
        if (entryAt(v)) throw new FtpFsError("exists", `${v}: already exists.`);
        const disk = diskPath(l, v);
        const uid = uidOf(user) ?? 0;
        await fsp.mkdir(disk);
        const info: DirInfo = { kind: "dir", uid, mtime: Math.floor(Date.now() / 1000), extra: [] };
        await writeInfo(l.tmp, infoPathOf(disk), info);
        ctx.log(`cluster: MKD ${v} (${name}) by ${user.name}`);
      });
    },

    rmdir(v, user) {
      return ctx.serial(async () => {
        if (v === "/") throw new FtpFsError("permission", "the root cannot be removed.");
        const e = entryAt(v);
        if (!e) throw new FtpFsError("not-found", `${v}: No such directory.`);
        if (e.kind !== "dir") throw new FtpFsError("not-a-directory", `${v}: Not a directory.`);
        if (!mayModify(e.uid, user) || (e.uid === null && !user.admin)) {
          throw new FtpFsError("permission", `${v}: Permission denied.`);
        }
        const left = await fsp.readdir(e.disk);
        if (left.length > 0) throw new FtpFsError("not-empty", `${v}: Directory not empty.`);
        await fsp.rmdir(e.disk);
        await fsp.rm(infoPathOf(e.disk), { force: true });
        await syncDir(path.dirname(e.disk));
      });
    },

    remove(v, user) {
      return ctx.serial(async () => {
        const e = entryAt(v);
        if (!e) throw new FtpFsError("not-found", `${v}: No such file.`);
        if (e.kind === "dir") throw new FtpFsError("is-a-directory", `${v}: Is a directory.`);
        if (e.kind === "foreign") throw foreignRefusal(v);
        if (!mayModify(e.link.uid, user)) {
          throw new FtpFsError("permission", `${v}: Permission denied.`);
        }
        await deleteLink(e.disk, e.link);
      });
    },

    rename(from, to, user) {
      return ctx.serial(async () => {
        const e = entryAt(from);
        if (!e) throw new FtpFsError("not-found", `${from}: No such file or directory.`);
        if (e.kind === "foreign") throw foreignRefusal(from);
        const uid = e.kind === "link" ? e.link.uid : e.uid;
        if (!mayModify(uid, user) || (uid === null && !user.admin)) {
          throw new FtpFsError("permission", `${from}: Permission denied.`);
        }
        needName(to);
        needWritableDir(parentOf(to), user);
        if (e.kind === "dir" && (to === from || to.startsWith(from + "/"))) {
          throw new FtpFsError("permission", `${to}: cannot move a directory into itself.`);
        }
        const target = entryAt(to);
        const toDisk = diskPath(l, to);
        if (target) {
          if (target.kind !== "link" || e.kind !== "link") {
            throw new FtpFsError("exists", `${to}: already exists.`);
          }
          if (target.disk === e.disk) return;
          if (!mayModify(target.link.uid, user)) {
            throw new FtpFsError("permission", `${to}: Permission denied.`);
          }
          await deleteLink(target.disk, target.link);
        }
        if (e.kind === "dir") {
          await fsp.rename(e.disk, toDisk);
          if (lstat(infoPathOf(e.disk))) {
            await fsp.rename(infoPathOf(e.disk), infoPathOf(toDisk));
          }
          await syncDir(path.dirname(toDisk));
          await syncDir(path.dirname(e.disk));
          // Upload jobs name link paths: files still staged below get jobs at their new paths.
          for (const f of await fsp.readdir(toDisk, { recursive: true, withFileTypes: true })) {
            if (!f.isFile() || !f.name.endsWith(LINK_SUFFIX)) continue;
            const file = path.join(f.parentPath, f.name);
            const link = await readInfo(file).catch(() => null);
            if (link?.kind === "file" && stagedId(link) !== null) {
              await ctx.jobs.enqueue(uploadJob(l, file, link.uid, link.size, link.mtime));
            }
          }
        } else {
          if (stagedId(e.link) === null) {
            await moveDurably(infoPathOf(e.disk), infoPathOf(toDisk));
          } else {
            // A staged file's job (it names the link's path) is flushed while the move is.
            const [, job] = await settled(
              moveDurably(infoPathOf(e.disk), infoPathOf(toDisk)),
              ctx.jobs.prepare(
                uploadJob(l, infoPathOf(toDisk), e.link.uid, e.link.size, e.link.mtime),
              ),
            );
            await job.publish();
          }
        }
        ctx.log(`cluster: RNTO ${from} -> ${to} by ${user.name}`);
      });
    },

    setMtime(v, user, ms) {
      return ctx.serial(async () => {
        const e = entryAt(v);
        if (!e) throw new FtpFsError("not-found", `${v}: No such file or directory.`);
        if (e.kind === "foreign") throw foreignRefusal(v);
        const uid = e.kind === "link" ? e.link.uid : e.uid;
        if (!mayModify(uid, user) || (uid === null && !user.admin)) {
          throw new FtpFsError("permission", `${v}: Permission denied.`);
        }
        if (e.kind === "dir") {
          const when = new Date(ms);
          await fsp.utimes(e.disk, when, when);
          return;
        }
        const mtime = Math.floor(ms / 1000);
        if (mtime === e.link.mtime) return;
        // A staged file keeps its upload job: the store worker knows a job's file by its
        // path, size and staged data, not by its mtime (MFMT after each STOR, as mirror
        // tools send, queued a second job per file).
        await writeInfo(l.tmp, infoPathOf(e.disk), { ...e.link, mtime });
      });
    },

    async openRead(v, _user, offset) {
      const e = entryAt(v);
      if (!e) throw new FtpFsError("not-found", `${v}: No such file.`);
      if (e.kind === "dir") throw new FtpFsError("is-a-directory", `${v}: Is a directory.`);
      if (e.kind === "foreign") {
        return fileReadStream(await fsp.open(e.disk, "r"), offset);
      }
      return await openLink(v, e.link, offset);
    },

    async sendDirect(v, _user, offset, target) {
      // Third-party RETR: a node holding the file connects to the client's PORT address.
      const e = entryAt(v);
      if (e?.kind !== "link" || stagedId(e.link) !== null) return false;
      for (const c of e.link.copies) {
        const node = ctx.nodes.get(c.node);
        if (!node?.sendTo || node.isDown() || target.signal.aborted) continue;
        if (await node.sendTo(c.path, offset, target)) {
          ctx.log(
            `cluster: RETR ${v} sent by ${node.label} straight to ${target.host}:${target.port}`,
          );
          return true;
        }
        ctx.log(`cluster: RETR ${v}: ${node.label} refused a third-party send; trying the next`);
      }
      return false; // the engine streams it through openRead
    },

    async openWrite(v, user, options): Promise<FtpUpload> {
      assertMayChange(ctx);
      const name = needName(v);
      diskPath(l, v); // refuses reserved names before any data flows
      const parentV = parentOf(v);
      needWritableDir(parentV, user);
      const existing = entryAt(v);
      if (existing?.kind === "dir") throw new FtpFsError("is-a-directory", `${v}: Is a directory.`);
      if (existing?.kind === "foreign") throw foreignRefusal(v);
      if (existing && !mayModify(existing.link.uid, user)) {
        throw new FtpFsError(
          "permission",
          `${v}: Permission denied (file of ${ownerName(existing.link.uid)}).`,
        );
      }
      const old = existing?.kind === "link" ? existing.link : null;
      const keep = options.append ? (old?.size ?? 0) : (options.offset ?? 0);
      if (keep > 0 && (!old || keep > old.size)) {
        throw new FtpFsError(
          "permission",
          `${v}: cannot resume at byte ${keep}: only ${old?.size ?? 0} stored.`,
        );
      }
      const full = await ctx.space?.refusal();
      if (full) throw noRoom(v, full);
      const id = (ctx.stagingTag ?? "") + randomBytes(16 - (ctx.stagingTag ?? "").length / 2)
        .toString("hex");
      const staged = path.join(l.staging, id);
      ctx.activeUploads.add(id);
      ctx.lastUploadAt = performance.now();
      /** The staged file, open for writing (a descriptor: see `SYNC_WRITES_BELOW`). */
      let fd: number | null = null;
      let written = 0;
      /** The fdatasync under way while the upload goes on (`syncSome`), if any. */
      let syncing: Promise<void> | null = null;
      /** Bytes counted against the staging area's room for this upload. */
      let taken = 0;
      const take = (n: number) => {
        const why = ctx.space?.take(n);
        if (why) throw noRoom(v, why);
        taken += n;
      };
      /** Batches being written (`WRITE_AHEAD`), each settled once its bytes are. */
      const writing = new Set<Promise<void>>();
      const cleanup = async () => {
        await Promise.allSettled([...writing]);
        while (syncing) await syncing;
        if (fd !== null) {
          try {
            fs.closeSync(fd);
          } catch { /* nothing to keep */ }
        }
        fd = null;
        await fsp.rm(staged, { force: true }).catch(() => {});
        ctx.activeUploads.delete(id);
        ctx.lastUploadAt = performance.now();
        ctx.space?.giveBack(taken);
        taken = 0;
      };
      try {
        take(keep);
        if (keep > 0 && old) {
          const oldId = stagedId(old);
          if (oldId !== null && lstat(path.join(l.staging, oldId))) {
            await fsp.copyFile(path.join(l.staging, oldId), staged);
            await fsp.truncate(staged, keep);
          } else {
            const src = await openLink(v, old, 0);
            const out = fs.createWriteStream(staged);
            let n = 0;
            for await (const chunk of src) {
              const part = chunk.subarray(0, Math.max(0, Math.min(chunk.length, keep - n)));
              n += part.length;
              if (!out.write(part)) await new Promise<void>((r) => out.once("drain", () => r()));
              if (n >= keep) break;
            }
            await new Promise<void>((res, rej) =>
              out.end((err?: Error | null) => err ? rej(err) : res())
            );
            if (n < keep) {
              throw new FtpFsError(
                "unavailable",
                `${v}: could not read back the first ${keep} bytes.`,
              );
            }
          }
          fd = fs.openSync(staged, "r+");
        } else {
          fd = fs.openSync(staged, "wx", 0o644);
        }
      } catch (e) {
        await cleanup();
        throw e instanceof FtpFsError
          ? e
          : isNoSpace(e)
          ? noRoom(v, "the disk is full")
          : new FtpFsError(
            "unavailable",
            `${v}: cannot stage the upload: ${(e as Error).message}`,
          );
      }
      /** Bytes accepted: written, being written, or in `batch`. */
      let position = keep;
      /** Every byte below this one is written (to the page cache, at least). */
      let landed = keep;
      // Written ranges are flushed while the upload goes on (one fdatasync at a time,
      // every SYNC_EVERY bytes), so that the commit's fsync has little left to write.
      let synced = keep;
      let syncError: unknown = null;
      const syncSome = () => {
        if (syncing || landed - synced < SYNC_EVERY) return;
        const upTo = landed;
        // On a descriptor of its own: writes on `fd` go on meanwhile (a runtime may queue
        // a file handle's calls one after another).
        const fd = fs.openSync(staged, "r");
        syncing = fsyncFd(fd, true).finally(() => fs.closeSync(fd)).then(
          () => void (synced = upTo),
          (e) => void (syncError ??= e),
        ).finally(() => syncing = null);
      };
      const failed = (e: unknown) =>
        isNoSpace(e) ? noRoom(v, "the disk of the cluster root is full") : e;
      /** Bytes not yet given to a write: the last `batchLen` bytes before `position`. */
      let batch: Uint8Array | null = null;
      let batchLen = 0;
      /** Batch buffers whose write is done, for the next batches. */
      const spare: Uint8Array[] = [];
      /** Batches written or being written, in order: `landed` moves past each in turn. */
      const ahead: { end: number; done: boolean }[] = [];
      let aheadBytes = 0;
      let writeError: unknown = null;
      const writeBatch = () => {
        if (!batch || batchLen === 0) return;
        const buf = batch;
        const len = batchLen;
        const slot = { end: position, done: false };
        batch = null;
        batchLen = 0;
        ahead.push(slot);
        aheadBytes += len;
        aheadAll += len;
        const w = writeAllAt(fd!, buf.subarray(0, len), position - len).then(() => {
          written += len;
          slot.done = true;
          while (ahead.length > 0 && ahead[0].done) landed = ahead.shift()!.end;
          spare.push(buf);
          syncSome();
        }, (e) => void (writeError ??= failed(e))).finally(() => {
          aheadBytes -= len;
          aheadAll -= len;
          writing.delete(w);
        });
        writing.add(w);
      };
      /** Writes what is left and waits for every write: all accepted bytes are written. */
      const drain = async () => {
        writeBatch();
        await Promise.allSettled([...writing]);
        if (writeError) throw writeError;
      };
      const writable = new WritableStream<Uint8Array>({
        async write(chunk) {
          if (syncError) throw syncError;
          if (writeError) throw writeError;
          take(chunk.length);
          if (position + chunk.length <= SYNC_WRITES_BELOW) {
            let off = 0;
            while (off < chunk.length) {
              let n: number;
              try {
                n = fs.writeSync(fd!, chunk, off, chunk.length - off, position);
              } catch (e) {
                throw failed(e);
              }
              off += n;
              position += n;
              written += n;
            }
            landed = position;
            return;
          }
          for (let off = 0; off < chunk.length;) {
            batch ??= spare.pop() ?? new Uint8Array(WRITE_BATCH);
            const n = Math.min(chunk.length - off, WRITE_BATCH - batchLen);
            batch.set(chunk.subarray(off, off + n), batchLen);
            batchLen += n;
            off += n;
            position += n;
            if (batchLen === WRITE_BATCH) writeBatch();
          }
          while (
            writing.size > 0 && (aheadBytes > WRITE_AHEAD || aheadAll > WRITE_AHEAD_ALL)
          ) await Promise.race(writing);
          if (writeError) throw writeError;
        },
        close: drain,
      });
      return {
        writable,
        commit: async () => {
          let linked = false;
          const linkFile = infoPathOf(diskPath(l, v));
          const link = withStaged({
            kind: "file",
            name,
            size: position,
            uid: old?.uid ?? uidOf(user) ?? 0,
            mtime: Math.floor(Date.now() / 1000),
            copies: [],
            extra: [],
          }, id);
          let placed: PreparedWrite | null = null;
          let job: PreparedJob | null = null;
          try {
            // One round of flushes, together: the data, its staging entry, and the link
            // file and the upload job under temp names (not visible yet).
            await drain();
            while (syncing) await syncing;
            if (syncError) throw syncError;
            const flushed = await Promise.allSettled([
              fsyncFd(fd!),
              syncDir(l.staging),
              prepareInfo(l.tmp, linkFile, link),
              ctx.jobs.prepare(uploadJob(l, linkFile, link.uid, link.size, link.mtime)),
            ]);
            if (flushed[2].status === "fulfilled") placed = flushed[2].value;
            if (flushed[3].status === "fulfilled") job = flushed[3].value;
            for (const r of flushed) if (r.status === "rejected") throw r.reason;
            fs.closeSync(fd!);
            fd = null;
            const linkW = placed!;
            await ctx.serial(async () => {
              const now = entryAt(v);
              if (now?.kind === "dir" || now?.kind === "foreign") {
                throw new FtpFsError("exists", `${v}: already exists.`);
              }
              if (now?.kind === "link") {
                if (!mayModify(now.link.uid, user)) {
                  throw new FtpFsError("permission", `${v}: Permission denied.`);
                }
                await deleteLink(now.disk, now.link);
              }
              await linkW.place();
              linked = true;
              ctx.activeUploads.delete(id);
              ctx.lastUploadAt = performance.now();
              ctx.space?.keep(taken);
              taken = 0;
            });
            // Second round, after the serial turn (other uploads place their links
            // meanwhile): the link's folder entry, and the job queued and flushed.
            const queued = job!;
            job = null;
            await Promise.all([syncDir(path.dirname(linkFile)), queued.publish()]);
            ctx.log(
              `cluster: STOR ${v} ${link.size} bytes (${written} new) by ${user.name}, staged ${id}`,
            );
            // Still holding the root right before the engine answers 226: else no 226.
            assertMayChange(ctx);
          } catch (e) {
            // Once the link names the staged data, that data stays (recovery queues its
            // job if the enqueue failed); the client just gets no 226.
            await job?.discard().catch(() => {});
            if (!linked) {
              await placed?.discard().catch(() => {});
              await cleanup();
            }
            if (isNoSpace(e)) throw noRoom(v, "the disk of the cluster root is full");
            throw e instanceof FtpFsError ? e : new FtpFsError(
              "unavailable",
              `${v}: the upload could not be made durable: ${(e as Error).message}`,
            );
          }
        },
        abort: async () => {
          await cleanup();
        },
      };
    },
  };
}
