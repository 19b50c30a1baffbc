/**
 * The folder relay backend: a local or mounted folder, on `node:fs`.
 * Atomic writes go to a temp file that is fsynced, then renamed over the
 * target; exclusive creates use the claim-folder scheme of `exclusive.ts`
 * (mkdir is atomic), the same as on FTP.
 *
 * @example
 * ```ts
 * const relay = await folderBackend("/mnt/relay");
 * await relay.write(".0.index", bytes);
 * ```
 *
 * @module
 */
import { mkdir, open, readdir, rename, rmdir, stat, unlink, utimes } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type ClaimOps, claimState, createExclusive, deleteWithClaim } from "./exclusive.ts";
import {
  checkName,
  CLAIM_SUFFIX,
  type RelayBackend,
  RelayError,
  type RelayFile,
  tempName,
} from "./types.ts";

/** Options of {@linkcode folderBackend}. */
export interface FolderOptions {
  /** Create the folder (and parents) when missing; default false, so an unmounted relay is never taken for an empty one. */
  create?: boolean;
  /** How long a claim without its file is tolerated (ms, default 60 s). */
  claimGraceMs?: number;
}

const CHUNK = 256 * 1024;

function code(e: unknown): string | undefined {
  return (e as { code?: string })?.code;
}

/** Maps a node:fs error to a RelayError. */
function fsError(label: string, what: string, name: string, e: unknown): RelayError {
  const c = code(e);
  const msg = `relay ${label}: cannot ${what} ${name}: ${(e as Error)?.message ?? e}`;
  if (c === "ENOENT") {
    return new RelayError("missing", msg, { cause: e, hint: "The file is not on the relay." });
  }
  if (c === "EACCES" || c === "EPERM" || c === "EROFS") {
    return new RelayError("denied", msg, {
      cause: e,
      hint: "Check that the relay folder is writable by this user and not mounted read-only.",
    });
  }
  if (c === "ENOSPC" || c === "EDQUOT") {
    return new RelayError("full", msg, {
      cause: e,
      hint: "The relay is full: free space on it, or lower `maxpagesize`.",
    });
  }
  return new RelayError("other", msg, { cause: e });
}

/** Opens a folder relay at `dir`; throws kind `missing` when it does not exist (unless `create`). */
export async function folderBackend(dir: string, opts: FolderOptions = {}): Promise<RelayBackend> {
  const root = resolve(dir);
  const label = pathToFileURL(root).href;
  try {
    if (opts.create) await mkdir(root, { recursive: true });
    const st = await stat(root);
    if (!st.isDirectory()) throw Object.assign(new Error("not a folder"), { code: "ENOTDIR" });
  } catch (e) {
    throw new RelayError(
      code(e) === "ENOENT" ? "missing" : "other",
      `relay folder ${root} is not usable: ${(e as Error).message}`,
      {
        cause: e,
        hint: "Create the relay folder (or mount it) first; hop does not create it unless asked, " +
          "so an unmounted relay is never mistaken for an empty one.",
      },
    );
  }
  const path = (name: string) => {
    checkName(name);
    return join(root, name);
  };
  const fail = (what: string, name: string, e: unknown): never => {
    if (e instanceof RelayError) throw e;
    throw fsError(label, what, name, e);
  };

  async function writeAtomic(name: string, data: Uint8Array | ReadableStream<Uint8Array>) {
    const final = path(name);
    const tmp = join(root, tempName(name));
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, "wx", 0o644);
      if (data instanceof Uint8Array) {
        await fh.writeFile(data);
      } else {
        const reader = data.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          let off = 0;
          while (off < value.length) {
            off += (await fh.write(value, off, value.length - off)).bytesWritten;
          }
        }
      }
      await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(tmp, final);
    } catch (e) {
      await fh?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      fail("write", name, e);
    }
    await syncDir(root);
  }

  const ops: ClaimOps = {
    async mkdir(name) {
      try {
        await mkdir(path(name));
        return true;
      } catch (e) {
        if (code(e) === "EEXIST") return false;
        return fail("create", name, e);
      }
    },
    async rmdir(name) {
      try {
        await rmdir(path(name));
      } catch (e) {
        if (code(e) !== "ENOENT" && code(e) !== "ENOTDIR") fail("remove", name, e);
      }
    },
    async exists(name) {
      return (await backend.stat(name)) !== null;
    },
    writeAtomic,
    async unlink(name) {
      try {
        await unlink(path(name));
      } catch (e) {
        if (code(e) !== "ENOENT") fail("delete", name, e);
      }
    },
  };
  const claims = claimState(opts.claimGraceMs);

  const backend: RelayBackend = {
    label,
    async list() {
      let entries;
      try {
        entries = await readdir(root, { withFileTypes: true });
      } catch (e) {
        return fail("list", "the folder", e);
      }
      const out: RelayFile[] = [];
      for (const ent of entries) {
        if (ent.isDirectory()) continue;
        try {
          const st = await stat(join(root, ent.name));
          if (st.isFile()) out.push({ name: ent.name, size: st.size, mtimeMs: st.mtimeMs });
        } catch {
          // removed since the listing
        }
      }
      return out;
    },
    async listClaims() {
      let entries;
      try {
        entries = await readdir(root, { withFileTypes: true });
      } catch (e) {
        return fail("list", "the folder", e);
      }
      const out: RelayFile[] = [];
      for (const ent of entries) {
        if (!ent.isDirectory() || !ent.name.endsWith(CLAIM_SUFFIX)) continue;
        const st = await stat(join(root, ent.name)).catch(() => null);
        if (st) out.push({ name: ent.name, size: 0, mtimeMs: st.mtimeMs });
      }
      return out;
    },
    async stat(name) {
      try {
        const st = await stat(path(name));
        return st.isFile() ? { name, size: st.size, mtimeMs: st.mtimeMs } : null;
      } catch (e) {
        if (code(e) === "ENOENT" || code(e) === "ENOTDIR") return null;
        return fail("stat", name, e);
      }
    },
    async read(name) {
      let fh: FileHandle;
      try {
        fh = await open(path(name), "r");
      } catch (e) {
        return fail("read", name, e);
      }
      return fileStream(fh, (e) => fsError(label, "read", name, e));
    },
    async readBytes(name) {
      let fh: FileHandle | undefined;
      try {
        fh = await open(path(name), "r");
        return new Uint8Array(await fh.readFile());
      } catch (e) {
        return fail("read", name, e);
      } finally {
        await fh?.close().catch(() => {});
      }
    },
    write: writeAtomic,
    async createExclusive(name, data) {
      checkName(name);
      return await createExclusive(ops, claims, name, data);
    },
    async delete(name) {
      checkName(name);
      return await deleteWithClaim(ops, name);
    },
    async rename(from, to) {
      try {
        await rename(path(from), path(to));
      } catch (e) {
        fail("rename", from, e);
      }
    },
    async setMtime(name, mtimeMs) {
      try {
        const t = mtimeMs / 1000;
        await utimes(path(name), t, t);
      } catch (e) {
        fail("set the mtime of", name, e);
      }
    },
    async close() {},
  };
  return backend;
}

/** A pull-driven stream over an open file: one chunk read per pull, closed at the end or on cancel. */
function fileStream(fh: FileHandle, mapError: (e: unknown) => Error): ReadableStream<Uint8Array> {
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await fh.close().catch(() => {});
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const buf = new Uint8Array(CHUNK);
        const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) {
          await close();
          controller.close();
        } else {
          controller.enqueue(buf.subarray(0, bytesRead));
        }
      } catch (e) {
        await close();
        controller.error(mapError(e));
      }
    },
    cancel: close,
  }, { highWaterMark: 0 });
}

/** fsync the folder so a rename survives a crash; ignored where unsupported. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch {
    // not supported on this platform or file system
  } finally {
    await fh?.close().catch(() => {});
  }
}
