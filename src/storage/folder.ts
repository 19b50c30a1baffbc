/**
 * The folder driver: a local or mounted folder, on `node:fs`. Atomic writes
 * go to a temporary file that is fsynced, then renamed over the target (and
 * the folder fsynced); exclusive creates write a temporary file and link(2)
 * it to the name, which fails when the name exists, so the file appears whole
 * or not at all.
 *
 * @example
 * ```ts
 * const d = await folderDriver("/mnt/relay");
 * await d.write("pages/.0.index", bytes);
 * ```
 *
 * @module
 */
import {
  link,
  mkdir,
  open,
  readdir,
  rename,
  rmdir,
  stat,
  statfs,
  unlink,
  utimes,
} from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  checkPath,
  type Driver,
  type Entry,
  parentOf,
  StorageError,
  tempName,
  type WriteData,
} from "./types.ts";
import { syncDir } from "../durable.ts";
import { fileReadStream, toReadable } from "./streams.ts";

/** Options of {@linkcode folderDriver}. */
export interface FolderOptions {
  /** Create the folder (and parents) when missing; default false, so an unmounted storage is never taken for an empty one. */
  create?: boolean;
}

function code(e: unknown): string | undefined {
  return (e as { code?: string })?.code;
}

/** Maps a node:fs error to a StorageError. */
function fsError(label: string, what: string, name: string, e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  const c = code(e);
  const msg = `${label}: cannot ${what} ${name}: ${(e as Error)?.message ?? e}`;
  if (c === "ENOENT" || c === "ENOTDIR") {
    return new StorageError("missing", msg, { cause: e, hint: "The file is not there." });
  }
  if (c === "EACCES" || c === "EPERM" || c === "EROFS") {
    return new StorageError("denied", msg, {
      cause: e,
      hint: "Check that the folder is writable by this user and not mounted read-only.",
    });
  }
  if (c === "ENOSPC" || c === "EDQUOT") {
    return new StorageError("full", msg, {
      cause: e,
      hint: "The storage is full: free space on it, or lower `maxpagesize`.",
    });
  }
  return new StorageError("other", msg, { cause: e });
}

/** Opens the folder `dir`; throws kind `missing` when it does not exist (unless `create`). */
export async function folderDriver(dir: string, opts: FolderOptions = {}): Promise<Driver> {
  const root = resolve(dir);
  const label = pathToFileURL(root).href;
  try {
    if (opts.create) await mkdir(root, { recursive: true });
    const st = await stat(root);
    if (!st.isDirectory()) throw Object.assign(new Error("not a folder"), { code: "ENOTDIR" });
  } catch (e) {
    throw new StorageError(
      code(e) === "ENOENT" ? "missing" : "other",
      `folder ${root} is not usable: ${(e as Error).message}`,
      {
        cause: e,
        hint: "Create the folder (or mount it) first; hop does not create it unless asked, " +
          "so an unmounted storage is never mistaken for an empty one.",
      },
    );
  }
  const full = (p: string, rootOk = false) => join(root, checkPath(p, rootOk));
  const fail = (what: string, name: string, e: unknown): never => {
    throw fsError(label, what, name, e);
  };

  /** Writes `data` to file `file` opened with `flags`, fsynced; returns the bytes written. */
  async function writeFile(file: string, flags: string, data: WriteData): Promise<number> {
    let fh: FileHandle | undefined;
    let n = 0;
    try {
      fh = await open(file, flags, 0o644);
      if (data instanceof Uint8Array) {
        await fh.writeFile(data);
        n = data.length;
      } else {
        for await (const chunk of toReadable(data)) {
          const b = chunk as Uint8Array;
          let off = 0;
          while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
          n += b.length;
        }
      }
      await fh.sync();
      await fh.close();
      fh = undefined;
      return n;
    } finally {
      await fh?.close().catch(() => {});
    }
  }

  async function statAt(p: string): Promise<Entry | null> {
    const name = p.slice(p.lastIndexOf("/") + 1);
    try {
      const st = await stat(full(p));
      if (!st.isFile() && !st.isDirectory()) return null;
      const isDir = st.isDirectory();
      return { name, isDir, size: isDir ? 0 : st.size, mtimeMs: st.mtimeMs };
    } catch (e) {
      if (code(e) === "ENOENT" || code(e) === "ENOTDIR") return null;
      return fail("stat", p, e);
    }
  }

  return {
    label,
    caps: {
      atomicMkdir: true,
      exclusive: "native",
      rangedRead: true,
      folders: true,
      atomicPut: false,
    },
    async list(d) {
      const at = full(d, true);
      let ents;
      try {
        ents = await readdir(at, { withFileTypes: true });
      } catch (e) {
        return fail("list", d || "the folder", e);
      }
      ents = ents.filter((e) => e.isFile() || e.isDirectory());
      const out: Entry[] = [];
      for (let i = 0; i < ents.length; i += 64) {
        const stats = await Promise.all(
          ents.slice(i, i + 64).map((e) => stat(join(at, e.name)).catch(() => null)),
        );
        stats.forEach((s, k) => {
          if (!s) return; // removed since the listing
          const isDir = s.isDirectory();
          out.push({ name: ents[i + k].name, isDir, size: isDir ? 0 : s.size, mtimeMs: s.mtimeMs });
        });
      }
      return out;
    },
    stat: statAt,
    async read(p, offset = 0) {
      let fh: FileHandle;
      try {
        fh = await open(full(p), "r");
        if ((await fh.stat()).isDirectory()) {
          await fh.close();
          throw Object.assign(new Error("is a folder"), { code: "ENOENT" });
        }
      } catch (e) {
        return fail("read", p, e);
      }
      return fileReadStream(fh, offset, (e) => fsError(label, "read", p, e));
    },
    async write(p, data, wo) {
      const final = full(p);
      try {
        await mkdir(dirname(final), { recursive: true });
        if (wo?.direct) {
          const n = await writeFile(final, "w", data);
          await syncDir(dirname(final));
          return n;
        }
        const tmp = join(dirname(final), tempName(basename(final)));
        const n = await writeFile(tmp, "wx", data).catch(async (e) => {
          await unlink(tmp).catch(() => {});
          throw e;
        });
        try {
          await rename(tmp, final);
        } catch (e) {
          await unlink(tmp).catch(() => {});
          throw e;
        }
        await syncDir(dirname(final));
        return n;
      } catch (e) {
        return fail("write", p, e);
      }
    },
    async createExclusive(p, data) {
      const final = full(p);
      try {
        const tmp = join(dirname(final), tempName(basename(final)));
        try {
          await writeFile(tmp, "wx", data);
          await link(tmp, final);
        } catch (e) {
          if (code(e) === "EEXIST") return false;
          throw e;
        } finally {
          await unlink(tmp).catch(() => {});
        }
        await syncDir(dirname(final));
        return true;
      } catch (e) {
        return fail("create", p, e);
      }
    },
    async delete(p) {
      try {
        await unlink(full(p));
        return true;
      } catch (e) {
        if (code(e) === "ENOENT") return false;
        return fail("delete", p, e);
      }
    },
    async mkdir(p) {
      try {
        const parent = parentOf(p);
        if (parent) await mkdir(full(parent), { recursive: true });
        await mkdir(full(p));
        return true;
      } catch (e) {
        if (code(e) === "EEXIST") return false;
        return fail("create", p, e);
      }
    },
    async rmdir(p) {
      try {
        await rmdir(full(p));
      } catch (e) {
        if (code(e) !== "ENOENT" && code(e) !== "ENOTDIR") fail("remove", p, e);
      }
    },
    async rename(from, to) {
      try {
        const target = full(to);
        await mkdir(dirname(target), { recursive: true });
        await rename(full(from), target);
        await syncDir(dirname(target));
      } catch (e) {
        fail("rename", from, e);
      }
    },
    async setMtime(p, mtimeMs) {
      try {
        const t = mtimeMs / 1000;
        await utimes(full(p), t, t);
      } catch (e) {
        fail("set the mtime of", p, e);
      }
    },
    async freeSpace() {
      try {
        const s = await statfs(root);
        return Number(s.bavail) * Number(s.bsize);
      } catch {
        return null;
      }
    },
    async check() {
      const st = await stat(root).catch((e) => fail("reach", root, e));
      if (!st.isDirectory()) throw fsError(label, "use", root, { code: "ENOTDIR" });
    },
    async close() {},
  };
}
