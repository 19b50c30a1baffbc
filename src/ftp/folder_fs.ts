/**
 * A plain folder as FTP storage (what `hop cluster node serve` offers): virtual
 * paths map below the root, symlinks that lead outside the root are invisible and
 * refused, and uploads go to a hidden temp file that is fsynced and renamed into
 * place on commit (so an aborted upload leaves nothing behind).
 *
 * @module
 */

import { constants as fsc, promises as fsp, readFileSync, realpathSync } from "node:fs";
import nodePath from "node:path";
import { randomBytes } from "node:crypto";
import { syncDir } from "../durable.ts";
import { HopError } from "../errors.ts";
import { fileReadStream } from "../storage/streams.ts";
import { type FtpFileInfo, type FtpFileSystem, FtpFsError, type FtpUpload } from "./types.ts";

/** Prefix of in-progress upload files (hidden from listings). */
export const UPLOAD_TEMP_PREFIX = ".hop-upload-";

/**
 * Serve the directory `root` as an FTP file system.
 *
 * @example
 * const fs = createFolderFs("/srv/node1");
 * await startFtpServer({ fs, authorizer });
 */
export function createFolderFs(root: string): FtpFileSystem {
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch (err) {
    throw new HopError(`cannot serve folder ${root}: it does not exist or is not readable`, {
      hint: "create the folder first or fix the --root path",
      cause: err,
    });
  }
  const names = ownerNames();
  const inside = (real: string) => real === realRoot || real.startsWith(realRoot + nodePath.sep);
  const local = (v: string) => nodePath.join(realRoot, ...v.split("/").filter((s) => s !== ""));

  /** Real path of an existing entry inside the root, or null (missing or escaping). */
  const realOf = async (v: string): Promise<string | null> => {
    try {
      const real = await fsp.realpath(local(v));
      return inside(real) ? real : null;
    } catch (err) {
      if (isErrno(err, "ENOENT") || isErrno(err, "ENOTDIR") || isErrno(err, "ELOOP")) return null;
      throw mapError(err, v);
    }
  };
  /** Real path for creating `v`: its parent must exist inside the root. */
  const creatable = async (v: string): Promise<string> => {
    const parentV = v.slice(0, v.lastIndexOf("/")) || "/";
    const parent = await realOf(parentV);
    if (parent === null) throw new FtpFsError("not-found", `${parentV}: No such directory.`);
    return nodePath.join(parent, v.slice(v.lastIndexOf("/") + 1));
  };
  /** Local path of an entry to change (the entry itself, not what a symlink points to). */
  const ownPath = async (v: string): Promise<string> => {
    const p = await creatable(v);
    try {
      await fsp.lstat(p);
    } catch (err) {
      throw mapError(err, v);
    }
    return p;
  };
  const infoOf = (name: string, st: import("node:fs").Stats): FtpFileInfo => ({
    name,
    type: st.isDirectory() ? "dir" : "file",
    size: st.isDirectory() ? 0 : st.size,
    mtime: st.mtimeMs,
    owner: names.user(st.uid),
    group: names.group(st.gid),
    mode: st.mode & 0o777,
    unique: `${st.dev.toString(16)}.${st.ino.toString(16)}`,
  });

  return {
    async stat(v) {
      const real = await realOf(v);
      if (real === null) return null;
      try {
        const st = await fsp.stat(real);
        if (!st.isFile() && !st.isDirectory()) return null;
        return infoOf(v === "/" ? "/" : nodePath.basename(v), st);
      } catch (err) {
        if (isErrno(err, "ENOENT")) return null;
        throw mapError(err, v);
      }
    },

    async list(v) {
      const real = await realOf(v);
      if (real === null) throw new FtpFsError("not-found", `${v}: No such directory.`);
      let dirents: import("node:fs").Dirent[];
      try {
        dirents = await fsp.readdir(real, { withFileTypes: true });
      } catch (err) {
        throw mapError(err, v);
      }
      const out: FtpFileInfo[] = [];
      for (const d of dirents) {
        if (d.name.startsWith(UPLOAD_TEMP_PREFIX)) continue;
        let p = nodePath.join(real, d.name);
        try {
          if (d.isSymbolicLink()) {
            p = await fsp.realpath(p);
            if (!inside(p)) continue;
          }
          const st = await fsp.stat(p);
          if (st.isFile() || st.isDirectory()) out.push(infoOf(d.name, st));
        } catch {
          // vanished, dangling or unreadable: not listed
        }
      }
      return out;
    },

    async mkdir(v) {
      const p = await creatable(v);
      await fsp.mkdir(p).catch((err) => {
        throw mapError(err, v);
      });
    },

    async rmdir(v) {
      const p = await ownPath(v);
      await fsp.rmdir(p).catch((err) => {
        throw mapError(err, v);
      });
    },

    async remove(v) {
      const p = await ownPath(v);
      await fsp.unlink(p).catch((err) => {
        throw mapError(err, v);
      });
    },

    async setMtime(v, _user, ms) {
      const real = await realOf(v);
      if (real === null) throw new FtpFsError("not-found", `${v}: No such file.`);
      const when = new Date(ms);
      await fsp.utimes(real, when, when).catch((err) => {
        throw mapError(err, v);
      });
    },

    async rename(from, to) {
      const a = await ownPath(from);
      const b = await creatable(to);
      await fsp.rename(a, b).catch((err) => {
        throw mapError(err, to);
      });
    },

    async openRead(v, _user, offset) {
      const real = await realOf(v);
      if (real === null) throw new FtpFsError("not-found", `${v}: No such file.`);
      const fh = await fsp.open(real, "r").catch((err) => {
        throw mapError(err, v);
      });
      return fileReadStream(fh, offset, (err) => mapError(err, v));
    },

    async openWrite(v, _user, options) {
      const target = await creatable(v);
      const dir = nodePath.dirname(target);
      const temp = nodePath.join(
        dir,
        `${UPLOAD_TEMP_PREFIX}${randomBytes(8).toString("hex")}.part`,
      );
      const keep = options.append || (options.offset ?? 0) > 0;
      let pos = 0;
      let fh: import("node:fs/promises").FileHandle;
      try {
        if (keep) {
          const existing = await realOf(v);
          if (existing !== null) {
            await fsp.copyFile(existing, temp, fsc.COPYFILE_FICLONE);
            const size = (await fsp.stat(temp)).size;
            pos = options.append ? size : Math.min(options.offset ?? 0, size);
            await fsp.truncate(temp, pos);
          }
          fh = await fsp.open(temp, existing !== null ? "r+" : "wx");
        } else fh = await fsp.open(temp, "wx");
      } catch (err) {
        await fsp.unlink(temp).catch(() => {});
        throw mapError(err, v);
      }
      let closed = false;
      const closeFh = async () => {
        if (closed) return;
        closed = true;
        await fh.close();
      };
      const upload: FtpUpload = {
        writable: new WritableStream<Uint8Array>({
          async write(chunk) {
            let off = 0;
            while (off < chunk.byteLength) {
              const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off, pos);
              off += bytesWritten;
              pos += bytesWritten;
            }
          },
        }),
        async commit() {
          try {
            await fh.sync();
            await closeFh();
            await fsp.rename(temp, target);
            await syncDir(dir);
          } catch (err) {
            await closeFh().catch(() => {});
            await fsp.unlink(temp).catch(() => {});
            throw mapError(err, v);
          }
        },
        async abort() {
          await closeFh().catch(() => {});
          await fsp.unlink(temp).catch(() => {});
        },
      };
      return upload;
    },
  };
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: string }).code === code;
}

/** Turn a node:fs error into the engine's typed error. */
export function mapError(err: unknown, v: string): FtpFsError {
  if (err instanceof FtpFsError) return err;
  const code = typeof err === "object" && err !== null
    ? (err as { code?: string }).code
    : undefined;
  switch (code) {
    case "ENOENT":
      return new FtpFsError("not-found", `${v}: No such file or directory.`, { cause: err });
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return new FtpFsError("permission", `${v}: Permission denied.`, { cause: err });
    case "EEXIST":
      return new FtpFsError("exists", `${v}: File exists.`, { cause: err });
    case "ENOTEMPTY":
      return new FtpFsError("not-empty", `${v}: Directory not empty.`, { cause: err });
    case "ENOTDIR":
      return new FtpFsError("not-a-directory", `${v}: Not a directory.`, { cause: err });
    case "EISDIR":
      return new FtpFsError("is-a-directory", `${v}: Is a directory.`, { cause: err });
    case "ENOSPC":
    case "EDQUOT":
      return new FtpFsError("no-space", `${v}: No space left on storage.`, { cause: err });
    case "ENAMETOOLONG":
    case "EINVAL":
    case "EILSEQ":
      return new FtpFsError("bad-name", `${v}: File name not allowed.`, { cause: err });
    default:
      return new FtpFsError("unavailable", `${v}: Storage error (${code ?? "unknown"}).`, {
        cause: err,
      });
  }
}

/** uid/gid to names from /etc/passwd and /etc/group (numbers when unknown). */
function ownerNames(): { user(uid: number): string; group(gid: number): string } {
  const read = (file: string) => {
    const map = new Map<number, string>();
    try {
      for (const line of readFileSync(file, "utf8").split("\n")) {
        const f = line.split(":");
        if (f.length >= 3 && /^\d+$/.test(f[2])) map.set(Number(f[2]), f[0]);
      }
    } catch {
      // no such database here: numeric ids are shown
    }
    return map;
  };
  const users = read("/etc/passwd");
  const groups = read("/etc/group");
  return {
    user: (uid) => users.get(uid) ?? String(uid),
    group: (gid) => groups.get(gid) ?? String(gid),
  };
}
