/**
 * The SFTP driver, on the npm package `ssh2` (pure JavaScript: it runs in
 * Deno and in the Bun-built binary). One SSH connection with one SFTP session,
 * opened on the first call and opened again when it drops; SFTP requests are
 * pipelined on it, so concurrent calls run at once.
 *
 * - Login: a private key (OpenSSH or PEM text, with its passphrase), else a
 *   password, else the SSH agent (`SSH_AUTH_SOCK`) and the first of
 *   `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
 * - The server is known by its host key: a fingerprint given (`SHA256:...`,
 *   as `ssh-keygen -l` prints it) or a line of `~/.ssh/known_hosts`
 *   (`../codec/known_hosts.ts`); an unknown or different key is refused (kind
 *   `tls`) with its fingerprint in the message, unless told to accept any.
 * - Reads keep several read requests in flight (a stream of 64 KB requests
 *   answered in order), pulled as the reader reads.
 * - Writes go to a temporary name in the target's folder, then
 *   `posix-rename@openssh.com` over the target (atomic replace); servers
 *   without that extension get remove-then-rename.
 * - Exclusive create opens with SSH_FXF_EXCL (O_EXCL on the server): the file
 *   is there, empty, for a moment before its bytes; readers of exclusive files
 *   must take an empty one for one being written.
 * - Free space from `statvfs@openssh.com`. SFTP version 3 tells a full disk
 *   only as "Failure": such errors are kind `other`, with the server's text.
 *
 * @module
 */
import { Client, type ConnectConfig, type FileEntry, type SFTPWrapper, type Stats } from "ssh2";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join as joinLocal } from "node:path";
import process from "node:process";
import { pipeline } from "node:stream/promises";
import { knownHostKeys } from "../codec/known_hosts.ts";
import { counter, toReadable } from "./streams.ts";
import {
  checkPath,
  type Driver,
  type Entry,
  joinPath,
  parentOf,
  StorageError,
  tempName,
} from "./types.ts";

/** Where and how to connect. */
export interface SftpOptions {
  host: string;
  /** Default 22. */
  port?: number;
  /** Default: the local user's name. */
  user?: string;
  password?: string;
  /** Private key text (OpenSSH or PEM). */
  privateKey?: string;
  passphrase?: string;
  /** The host key's fingerprint, `SHA256:<base64>`. */
  hostKey?: string;
  /** Accept any host key. */
  insecureHostKey?: boolean;
  /** Root folder: absolute, or relative to the login folder. Default `.`. */
  dir?: string;
  /** Make the root folder when missing. */
  create?: boolean;
  /** Connect and request timeout, ms (default 30 s). */
  timeoutMs?: number;
  /** Unused: one SSH connection carries concurrent requests. */
  maxConnections?: number;
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;
const FAILURE = 4;
const OP_UNSUPPORTED = 8;
/** Bytes per read request, and requests kept in flight. */
const READ_SIZE = 64 * 1024;
const READS_IN_FLIGHT = 8;

interface Session {
  client: Client;
  sftp: SFTPWrapper;
  closed: boolean;
}

function sftpCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown })?.code;
  return typeof c === "number" ? c : undefined;
}

/** `SHA256:<base64 without padding>` of a host key blob. */
export function fingerprint(key: Uint8Array): string {
  return "SHA256:" + createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
}

/** Opens an SFTP storage (connects on the first call; `check()` connects now). */
export function sftpDriver(o: SftpOptions): Driver {
  const port = o.port ?? 22;
  const user = o.user ?? process.env.USER ?? process.env.LOGNAME ?? "root";
  const where = `${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`;
  const rootDir = o.dir ?? ".";
  const label = `sftp://${encodeURIComponent(user)}@${where}${
    rootDir.startsWith("/") ? "" : "/~/"
  }${rootDir === "." ? "" : rootDir.split("/").map(encodeURIComponent).join("/")}`;
  const timeout = o.timeoutMs ?? 30_000;
  let session: Promise<Session> | null = null;
  let closed = false;
  let seenKey = "";

  const full = (p: string, rootOk = false) => {
    checkPath(p, rootOk);
    if (p === "") return rootDir;
    return rootDir === "." ? p : `${rootDir.replace(/\/$/, "")}/${p}`;
  };

  const err = (e: unknown, what: string, name?: string): StorageError => {
    if (e instanceof StorageError) return e;
    const subject = name ? `${what} ${name}` : what;
    const msg = `${label}: cannot ${subject}: ${(e as Error)?.message ?? e}`;
    const o2 = (hint: string) => ({ cause: e, hint });
    const code = sftpCode(e);
    if (code === NO_SUCH_FILE) {
      return new StorageError("missing", msg, o2("The file is not there."));
    }
    if (code === PERMISSION_DENIED) {
      return new StorageError(
        "denied",
        msg,
        o2(`The server refused: check that ${user} may write there (read-only account?).`),
      );
    }
    if (code === OP_UNSUPPORTED) {
      return new StorageError("unsupported", msg, o2("The SFTP server lacks this operation."));
    }
    if (code !== undefined) {
      return new StorageError("other", msg, o2("The SFTP server refused; its reply is above."));
    }
    const level = (e as { level?: string })?.level;
    const text = `${String((e as { code?: unknown })?.code ?? "")} ${msg}`;
    if (level === "client-authentication") {
      return new StorageError(
        "auth",
        msg,
        o2(`Check the user (${user}) and the key or password for ${where}.`),
      );
    }
    if (/host key/i.test(msg)) {
      return new StorageError(
        "tls",
        msg,
        o2(
          `Check that ${where} is the server you mean; then add its key to ~/.ssh/known_hosts ` +
            `(ssh-keyscan -p ${port} ${o.host}) or give its fingerprint (${
              seenKey || "SHA256:..."
            }).`,
        ),
      );
    }
    if (/ECONNREFUSED/.test(text)) {
      return new StorageError(
        "connect",
        msg,
        o2(`Is the SSH server at ${where} running? Check the host and port.`),
      );
    }
    if (/ENOTFOUND|EAI_AGAIN/.test(text)) {
      return new StorageError("connect", msg, o2(`Check the host name in ${label}.`));
    }
    return new StorageError(
      "connect",
      msg,
      o2(`The connection to ${where} failed or dropped; hop retries on the next pass.`),
    );
  };

  async function loginConfig(): Promise<ConnectConfig> {
    const cfg: ConnectConfig = {
      host: o.host,
      port,
      username: user,
      readyTimeout: timeout,
      keepaliveInterval: 15_000,
    };
    if (o.privateKey) {
      cfg.privateKey = o.privateKey;
      if (o.passphrase) cfg.passphrase = o.passphrase;
    }
    if (o.password !== undefined) cfg.password = o.password;
    if (!o.privateKey && o.password === undefined) {
      if (process.env.SSH_AUTH_SOCK) cfg.agent = process.env.SSH_AUTH_SOCK;
      for (const f of ["id_ed25519", "id_ecdsa", "id_rsa"]) {
        const text = await readFile(joinLocal(homedir(), ".ssh", f), "utf8").catch(() => null);
        if (text) {
          cfg.privateKey = text;
          if (o.passphrase) cfg.passphrase = o.passphrase;
          break;
        }
      }
    }
    let known: string[] | null = null;
    if (!o.insecureHostKey && !o.hostKey) {
      const text = await readFile(joinLocal(homedir(), ".ssh", "known_hosts"), "utf8")
        .catch(() => "");
      known = knownHostKeys(text, o.host, port);
    }
    cfg.hostVerifier = (key: Uint8Array) => {
      seenKey = fingerprint(key);
      if (o.insecureHostKey) return true;
      if (o.hostKey) return seenKey === o.hostKey.trim();
      const b64 = Buffer.from(key).toString("base64");
      return known!.includes(b64);
    };
    return cfg;
  }

  function connect(): Promise<Session> {
    return (async () => {
      const cfg = await loginConfig();
      const client = new Client();
      const s: Session = await new Promise((resolve, reject) => {
        client.once("error", (e) => {
          const hostKeyFailed = /Handshake failed|host key|verification/i.test(e.message) &&
            seenKey !== "" && !o.insecureHostKey;
          reject(
            hostKeyFailed
              ? new Error(`host key ${seenKey} of ${where} is not the one known: ${e.message}`)
              : e,
          );
        });
        client.once("ready", () => {
          client.sftp((e, sftp) => {
            if (e) return reject(e);
            resolve({ client, sftp, closed: false });
          });
        });
        client.connect(cfg);
      });
      const drop = () => {
        s.closed = true;
        if (session && !closed) session = null;
      };
      client.on("error", drop);
      client.on("close", drop);
      s.sftp.on("close", drop);
      // The root folder, checked (and made when asked) once per connection.
      const st = await call<Stats>(s, (cb) => s.sftp.stat(rootDir, cb)).catch(async (e) => {
        if (sftpCode(e) !== NO_SUCH_FILE || !o.create) throw e;
        await mkdirs(s, rootDir);
        return await call<Stats>(s, (cb) => s.sftp.stat(rootDir, cb));
      });
      if (!st.isDirectory()) {
        throw Object.assign(new Error(`${rootDir} is not a folder`), { code: NO_SUCH_FILE });
      }
      return s;
    })();
  }

  async function get(): Promise<Session> {
    if (closed) throw new StorageError("other", `${label} is closed`);
    if (!session) {
      const p = connect();
      session = p;
      p.catch(() => {
        if (session === p) session = null;
      });
    }
    const s = await session;
    if (s.closed) {
      session = null;
      return await get();
    }
    return s;
  }

  /**
   * Runs `f` on the session; a call on a dropped connection is retried once on a new one
   * when `retry` (not for a write of a stream: its bytes are gone).
   */
  async function run<T>(
    what: string,
    name: string | undefined,
    f: (s: Session) => Promise<T>,
    retry = true,
  ): Promise<T> {
    for (let attempt = 0;; attempt++) {
      let s: Session;
      try {
        s = await get();
      } catch (e) {
        if (sftpCode(e) === NO_SUCH_FILE) {
          throw new StorageError("missing", `${label}: no folder ${rootDir}`, {
            cause: e,
            hint: "Create the folder on the server first (hop does not create it unless asked), " +
              "or fix the path in the address.",
          });
        }
        throw err(e, what === "connect to" ? what : "connect to");
      }
      try {
        return await f(s);
      } catch (e) {
        if (s.closed && sftpCode(e) === undefined && attempt === 0 && retry && !closed) continue;
        throw err(e, what, name);
      }
    }
  }

  function call<T>(
    s: Session,
    f: (cb: (e: Error | null | undefined, v: T) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (s.closed) return reject(new Error("connection closed"));
      f((e, v) => (e ? reject(e) : resolve(v)));
    });
  }

  async function mkdirs(s: Session, dir: string): Promise<void> {
    const parts = dir.split("/");
    let sofar = dir.startsWith("/") ? "" : ".";
    for (const p of parts) {
      if (p === "" || p === ".") continue;
      sofar = sofar === "" ? `/${p}` : sofar === "." ? p : `${sofar}/${p}`;
      await call<void>(s, (cb) => s.sftp.mkdir(sofar, cb)).catch(async (e) => {
        const st = await call<Stats>(s, (cb) => s.sftp.stat(sofar, cb)).catch(() => null);
        if (!st?.isDirectory()) throw e;
      });
    }
  }

  const entryOf = (name: string, a: Stats | FileEntry["attrs"]): Entry | null => {
    const type = (a.mode ?? 0) & 0o170000;
    if (type !== 0o040000 && type !== 0o100000) return null;
    const isDir = type === 0o040000;
    return { name, isDir, size: isDir ? 0 : Number(a.size), mtimeMs: a.mtime * 1000 };
  };

  const statOn = async (s: Session, p: string): Promise<Entry | null> => {
    try {
      const a = await call<Stats>(s, (cb) => s.sftp.stat(full(p), cb));
      return entryOf(p.slice(p.lastIndexOf("/") + 1), a);
    } catch (e) {
      if (sftpCode(e) === NO_SUCH_FILE) return null;
      throw e;
    }
  };

  async function renameOver(s: Session, from: string, to: string): Promise<void> {
    try {
      await call<void>(s, (cb) => s.sftp.ext_openssh_rename(from, to, cb));
    } catch (e) {
      if (
        !/not supported|Unsupported/i.test((e as Error).message) && sftpCode(e) !== OP_UNSUPPORTED
      ) {
        throw e;
      }
      // no posix-rename: remove, then rename (not atomic)
      await call<void>(s, (cb) => s.sftp.unlink(to, cb)).catch(() => {});
      await call<void>(s, (cb) => s.sftp.rename(from, to, cb));
    }
  }

  const driver: Driver = {
    label,
    caps: {
      atomicMkdir: true,
      exclusive: "native",
      rangedRead: true,
      folders: true,
      atomicPut: false,
    },
    list: (d) =>
      run("list", d || undefined, async (s) => {
        const list = await call<FileEntry[]>(s, (cb) => s.sftp.readdir(full(d, true), cb));
        const out: Entry[] = [];
        for (const f of list) {
          if (f.filename === "." || f.filename === "..") continue;
          let e = entryOf(f.filename, f.attrs);
          if (!e && ((f.attrs.mode ?? 0) & 0o170000) === 0o120000) {
            // a symbolic link: what it points at
            e = await statOn(s, joinPath(d, f.filename)).catch(() => null);
          }
          if (e) out.push(e);
        }
        return out;
      }),
    stat: (p) => run("stat", p, (s) => statOn(s, p)),
    read: (p, offset = 0) =>
      run("read", p, async (s) => {
        const handle = await call<Buffer>(s, (cb) => s.sftp.open(full(p), "r", cb));
        const size = Number((await call<Stats>(s, (cb) => s.sftp.fstat(handle, cb))).size);
        return readStream(s, handle, offset, size, (e) => err(e, "read", p));
      }),
    write: (p, data, wo) =>
      run("write", p, async (s) => {
        const target = full(p);
        const dir = parentOf(target);
        if (parentOf(p)) await mkdirs(s, dir);
        const direct = wo?.direct ?? false;
        const tmp = direct
          ? target
          : (dir ? dir + "/" : "") + tempName(target.slice(target.lastIndexOf("/") + 1));
        const counted = counter();
        try {
          await pipeline(toReadable(data), counted.stream, s.sftp.createWriteStream(tmp));
          if (!direct) await renameOver(s, tmp, target);
        } catch (e) {
          if (!s.closed && !direct) {
            await call<void>(s, (cb) => s.sftp.unlink(tmp, cb)).catch(() => {});
          }
          throw e;
        }
        return counted.bytes();
      }, data instanceof Uint8Array),
    createExclusive: (p, data) =>
      run("create", p, async (s) => {
        let handle: Buffer;
        try {
          handle = await call<Buffer>(s, (cb) => s.sftp.open(full(p), "wx", cb));
        } catch (e) {
          if (sftpCode(e) === FAILURE && (await statOn(s, p))) return false;
          throw e;
        }
        try {
          let off = 0;
          while (off < data.length) {
            const n = Math.min(32 * 1024, data.length - off);
            await call<void>(s, (cb) =>
              s.sftp.write(
                handle,
                Buffer.from(data.buffer, data.byteOffset + off, n),
                0,
                n,
                off,
                cb,
              ));
            off += n;
          }
        } finally {
          await call<void>(s, (cb) => s.sftp.close(handle, cb)).catch(() => {});
        }
        return true;
      }),
    delete: (p) =>
      run("delete", p, async (s) => {
        try {
          await call<void>(s, (cb) => s.sftp.unlink(full(p), cb));
          return true;
        } catch (e) {
          if (sftpCode(e) === NO_SUCH_FILE) return false;
          throw e;
        }
      }),
    mkdir: (p) =>
      run("create", p, async (s) => {
        const target = full(p);
        if (parentOf(p)) await mkdirs(s, parentOf(target));
        try {
          await call<void>(s, (cb) => s.sftp.mkdir(target, cb));
          return true;
        } catch (e) {
          const st = await statOn(s, p).catch(() => null);
          if (st?.isDir) return false;
          throw e;
        }
      }),
    rmdir: (p) =>
      run("remove", p, async (s) => {
        await call<void>(s, (cb) => s.sftp.rmdir(full(p), cb)).catch((e) => {
          if (sftpCode(e) !== NO_SUCH_FILE) throw e;
        });
      }),
    rename: (from, to) =>
      run("rename", from, async (s) => {
        const target = full(to);
        if (parentOf(to)) await mkdirs(s, parentOf(target));
        await renameOver(s, full(from), target);
      }),
    setMtime: (p, mtimeMs) =>
      run("set the mtime of", p, async (s) => {
        const t = Math.floor(mtimeMs / 1000);
        await call<void>(s, (cb) => s.sftp.utimes(full(p), t, t, cb));
      }),
    freeSpace: async () => {
      try {
        return await run("statvfs", undefined, async (s) => {
          const v = await call<{ bavail: number; frsize: number }>(
            s,
            (cb) => s.sftp.ext_openssh_statvfs(rootDir, cb as never),
          );
          return Number(v.bavail) * Number(v.frsize);
        });
      } catch {
        return null;
      }
    },
    check: () => run("connect to", undefined, async () => {}),
    close() {
      closed = true;
      const s = session;
      session = null;
      s?.then((x) => x.client.end()).catch(() => {});
      return Promise.resolve();
    },
  };
  return driver;
}

/**
 * A stream over an open SFTP handle from `offset` to `size`: up to
 * READS_IN_FLIGHT requests of READ_SIZE bytes in flight, delivered in order,
 * fetched as the reader pulls. A file that ends early is an error.
 */
function readStream(
  s: Session,
  handle: Buffer,
  offset: number,
  size: number,
  mapError: (e: unknown) => Error,
): ReadableStream<Uint8Array> {
  let next = offset; // next byte to request
  const inFlight: Promise<Uint8Array>[] = [];
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    s.sftp.close(handle, () => {});
  };
  const readAt = (pos: number, len: number): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      const buf = Buffer.allocUnsafe(len);
      s.sftp.read(handle, buf, 0, len, pos, (e, n) => {
        if (e) return reject(e);
        if (n === 0) return reject(new Error(`the file ended at ${pos} bytes of ${size}`));
        if (n < len) {
          // a short read: fetch the rest before handing it on
          readAt(pos + n, len - n).then(
            (rest) => resolve(Buffer.concat([buf.subarray(0, n), rest])),
            reject,
          );
          return;
        }
        resolve(buf);
      });
    });
  const fill = () => {
    while (!closed && inFlight.length < READS_IN_FLIGHT && next < size) {
      const len = Math.min(READ_SIZE, size - next);
      const p = readAt(next, len);
      p.catch(() => {});
      inFlight.push(p);
      next += len;
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      fill();
      const p = inFlight.shift();
      if (!p) {
        close();
        c.close();
        return;
      }
      try {
        c.enqueue(await p);
      } catch (e) {
        close();
        c.error(mapError(e));
      }
    },
    cancel: close,
  }, { highWaterMark: 0 });
}
