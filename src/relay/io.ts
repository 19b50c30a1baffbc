/**
 * What relay sync needs from a relay storage: flat files in one directory,
 * listed with their size and mtime, read as a stream or whole, written
 * atomically, created exclusively (for locks), deleted and renamed.
 *
 * `RelayIO` is the narrow view the sync engine uses; {@linkcode folderIO} is
 * a local-folder implementation used until (and beside) the backends of
 * `./backend/` — an adapter from them is the only thing to add here.
 *
 * @module
 */
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { HopError } from "../errors.ts";

/** A file on the relay. */
export interface RelayFile {
  name: string;
  size: number;
  /** Modification time in ms since the epoch, by the relay's clock. */
  mtimeMs: number;
}

/** The relay operations sync uses. Names are flat (no `/`). */
export interface RelayIO {
  /** A label for messages (`file:///mnt/relay`). */
  readonly label: string;
  list(): Promise<RelayFile[]>;
  /** Null when absent. */
  stat(name: string): Promise<RelayFile | null>;
  read(name: string): Promise<ReadableStream<Uint8Array>>;
  readBytes(name: string): Promise<Uint8Array>;
  /** Replaces `name` atomically: readers see the old or the whole new content. */
  write(name: string, data: Uint8Array | ReadableStream<Uint8Array>): Promise<void>;
  /** Creates `name` only if it does not exist; false when it does. */
  createExclusive(name: string, data: Uint8Array): Promise<boolean>;
  /** Removes `name`; no error when it is already gone. */
  delete(name: string): Promise<void>;
  /** Renames; throws when `from` is gone. */
  rename(from: string, to: string): Promise<void>;
  close(): Promise<void>;
}

function checkName(name: string): void {
  if (name === "" || name.includes("/") || name.includes("\\") || name === "." || name === "..") {
    throw new HopError(`refused relay file name ${JSON.stringify(name)}`);
  }
}

function isCode(e: unknown, code: string): boolean {
  return (e as { code?: string })?.code === code;
}

/** A relay in a local (or mounted) folder. The folder must exist. */
export function folderIO(dir: string): RelayIO {
  const p = (name: string) => {
    checkName(name);
    return join(dir, name);
  };
  const fail = (what: string, name: string, e: unknown): never => {
    throw new HopError(`relay ${dir}: cannot ${what} ${name}: ${(e as Error).message}`, {
      hint: "Check that the relay folder exists and is writable.",
      cause: e,
    });
  };
  return {
    label: dir,
    async list() {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (e) {
        return fail("list", "the folder", e);
      }
      const out: RelayFile[] = [];
      for (const name of names) {
        try {
          const st = await lstat(join(dir, name));
          if (st.isFile()) out.push({ name, size: st.size, mtimeMs: st.mtimeMs });
        } catch {
          // gone since the listing
        }
      }
      return out;
    },
    async stat(name) {
      try {
        const st = await stat(p(name));
        return { name, size: st.size, mtimeMs: st.mtimeMs };
      } catch (e) {
        if (isCode(e, "ENOENT")) return null;
        return fail("stat", name, e);
      }
    },
    async read(name) {
      const path = p(name);
      try {
        const fh = await open(path, "r");
        await fh.close();
      } catch (e) {
        return fail("read", name, e);
      }
      return Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
    },
    async readBytes(name) {
      try {
        return new Uint8Array(await readFile(p(name)));
      } catch (e) {
        return fail("read", name, e);
      }
    },
    async write(name, data) {
      const final = p(name);
      const tmp = join(dir, `.hop-tmp-${randomBytes(6).toString("hex")}`);
      try {
        if (data instanceof Uint8Array) {
          const fh = await open(tmp, "wx");
          try {
            await fh.writeFile(data);
            await fh.sync();
          } finally {
            await fh.close();
          }
        } else {
          await data.pipeTo(Writable.toWeb(createWriteStream(tmp, { flags: "wx" })));
        }
        await rename(tmp, final);
      } catch (e) {
        await unlink(tmp).catch(() => {});
        return fail("write", name, e);
      }
    },
    async createExclusive(name, data) {
      let fh;
      try {
        fh = await open(p(name), "wx");
      } catch (e) {
        if (isCode(e, "EEXIST")) return false;
        return fail("create", name, e);
      }
      try {
        await fh.writeFile(data);
      } finally {
        await fh.close();
      }
      return true;
    },
    async delete(name) {
      try {
        await unlink(p(name));
      } catch (e) {
        if (!isCode(e, "ENOENT")) fail("delete", name, e);
      }
    },
    async rename(from, to) {
      try {
        await rename(p(from), p(to));
      } catch (e) {
        fail("rename", from, e);
      }
    },
    async close() {},
  };
}

/** Opens a relay URL. `file://` only for now (FTP comes with ./backend/). */
export async function openRelayIO(url: string): Promise<RelayIO> {
  const u = new URL(url);
  if (u.protocol === "file:") {
    const dir = decodeURIComponent(u.pathname);
    try {
      const st = await stat(dir);
      if (!st.isDirectory()) throw new Error("not a folder");
    } catch (e) {
      throw new HopError(`relay folder ${dir} is not usable: ${(e as Error).message}`, {
        hint: "Create the relay folder (or mount it) first; hop does not create it, so an " +
          "unmounted relay is never mistaken for an empty one.",
      });
    }
    return folderIO(dir);
  }
  throw new HopError(`relay ${url}: protocol ${u.protocol} is not available yet`, {
    hint: "Use a folder relay (file:///path) for now.",
  });
}
