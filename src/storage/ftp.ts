/**
 * The FTP / explicit-FTPS driver, on basic-ftp as set up by `../ftp/client.ts`
 * (the one place hop's outgoing FTP is configured). Control connections are
 * pooled (`maxConnections`, default 16; a relay uses one, so its calls run in
 * order); a pooled connection found dead is replaced and the call retried once.
 *
 * - Reads stream a RETR from an offset (REST) through a data connection of the
 *   driver's own, read into big shared buffers (`read_buffers.ts`) with
 *   backpressure; a read resolves once its first byte arrived, so a caller can
 *   try another copy when this one fails.
 * - Writes upload to a temporary name in the target's folder, then RNFR/RNTO
 *   over the target (rename(2) replaces on pyftpdlib and vsftpd).
 * - Third-party transfers: `sendTo` (PORT/EPRT, REST, RETR: the server
 *   connects to a client itself) and `receiveFrom` (PASV + STOR, for FXP
 *   between nodes). A server only sends to an address other than its control
 *   connection's when allowed: vsftpd `port_promiscuous=YES`, pure-ftpd FXP
 *   (`--allowuserfxp`), pyftpdlib `permit_foreign_addresses = True`; hop's own
 *   node server refuses (bounce protection).
 * - Mtimes come from MLSD/MLST when the server has them, else from MDTM; they
 *   are set with MFMT, else vsftpd's `MDTM time name`. Free space from AVBL
 *   where the server has it (pure-ftpd).
 * - MKD is atomic on every real server; exclusive creates use the listing
 *   fallback of `exclusive.ts` (FTP has no create-if-absent for files).
 *
 * @example
 * ```ts
 * const d = await ftpDriver({ host: "127.0.0.1", port: 2121, user: "u", password: "p", dir: "relay" });
 * try { console.log(await d.list("")); } finally { await d.close(); }
 * ```
 *
 * @module
 */
import { type Client, FTPError } from "basic-ftp";
import net from "node:net";
import process from "node:process";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  connectFtp,
  ftpContext,
  isFtpReply,
  listDir,
  mlsxStamp,
  passiveAddress,
  statFile,
} from "../ftp/client.ts";
import { lentChunks } from "../ftp/data.ts";
import { watchStalledWrites } from "../ftp/stall.ts";
import {
  giveReadBuffer,
  readBufferSize,
  readerOpened,
  readQueueLimit,
  takeReadBuffer,
} from "./read_buffers.ts";
import { createExclusiveByListing } from "./exclusive.ts";
import { counter, toReadable, toWeb } from "./streams.ts";
import {
  checkPath,
  type Driver,
  type Entry,
  joinPath,
  parentOf,
  StorageError,
  tempPathFor,
  type WriteData,
} from "./types.ts";

/** Where and how to connect. */
export interface FtpOptions {
  host: string;
  /** Default 21. */
  port?: number;
  /** Default `anonymous`. */
  user?: string;
  password?: string;
  /** The root folder; relative to the login folder unless it starts with `/`. Default: the login folder. */
  dir?: string;
  /** Explicit FTPS (AUTH TLS) on control and data connections. */
  secure?: boolean;
  /** Accept any server certificate (self-signed test servers). Default false. */
  insecureTls?: boolean;
  /** PEM certificate(s) to trust besides the system's. */
  tlsCa?: string;
  /** Client certificate and its key, PEM. */
  tlsCert?: string;
  tlsKey?: string;
  /** The one TLS version to speak (default: what both sides prefer). */
  tlsVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2";
  /** Make the root folder when missing. Default false. */
  create?: boolean;
  /** Longest a data connection may stay idle during a transfer, ms (default 30 s). */
  timeoutMs?: number;
  /** The login, each command reply and a download's first byte, ms (default: timeoutMs). */
  replyTimeoutMs?: number;
  /** Pooled control connections (default 16). */
  maxConnections?: number;
}

/**
 * Reads of a node's data connection go into big buffers (`onread`, up to 1 MB while few
 * transfers run, smaller when many do: `read_buffers.ts`) instead of the 64 KB chunks
 * of a flowing socket: a proxied RETR then costs the server about a third of the CPU
 * on its read side. Big reads are handed on as they are (no copy) and their buffers
 * come back once written to the client (`lentChunks`); small reads are copied.
 * Deno only: Bun reads big chunks anyway and does not pause a socket from `onread`, so
 * there the socket flows.
 */
/** Reads that fill this share of their buffer or more are lent, not copied. */
const LEND_SHARE = 4;
const USE_ONREAD = process.versions.deno !== undefined;

/**
 * The chunks read from a node's data connection, for one reader. The socket is paused
 * (backpressure) while chunks holding `readQueueLimit()` bytes of memory or more wait,
 * and resumed once the reader took them down to half of that. `onread` (undefined where
 * not used) goes to `net.connect`; then `attach` the socket at once.
 */
function dataSource() {
  const chunks: { chunk: Uint8Array; cost: number }[] = [];
  const limit = readQueueLimit;
  let queued = 0;
  let total = 0;
  let paused = false;
  let over = false;
  let sock: net.Socket | null = null;
  let waiter: (() => void) | null = null;
  const wake = () => {
    const w = waiter;
    waiter = null;
    w?.();
  };
  /** Queue a chunk that holds `cost` bytes of memory; false when the socket was paused. */
  const push = (chunk: Uint8Array, cost: number): boolean => {
    chunks.push({ chunk, cost });
    queued += cost;
    total += chunk.byteLength;
    wake();
    if (queued < limit()) return true;
    paused = true;
    sock?.pause();
    return false;
  };
  return {
    onread: USE_ONREAD
      ? {
        // Called for each read: a buffer no one else holds.
        buffer: () => takeReadBuffer(readBufferSize()),
        // Returning false pauses the socket too.
        callback: (n: number, buf: Uint8Array): boolean => {
          if (n < buf.byteLength / LEND_SHARE) {
            const copy = new Uint8Array(buf.subarray(0, n));
            giveReadBuffer(buf);
            return push(copy, n);
          }
          const chunk = buf.subarray(0, n);
          lentChunks.set(chunk, () => giveReadBuffer(buf));
          return push(chunk, buf.byteLength);
        },
      }
      : undefined,
    attach(s: net.Socket) {
      sock = s;
      s.once("close", readerOpened());
      const end = () => {
        over = true;
        wake();
      };
      if (!USE_ONREAD) s.on("data", (chunk: Uint8Array) => void push(chunk, chunk.byteLength));
      s.on("end", end);
      s.on("close", end);
    },
    wake,
    /** Bytes read so far. */
    get bytes() {
      return total;
    },
    /** True while the socket is held because the reader is behind. */
    get paused() {
      return paused;
    },
    /** The next chunk, or undefined when none is waiting. */
    take(): Uint8Array | undefined {
      const c = chunks.shift();
      if (c) {
        queued -= c.cost;
        if (paused && queued <= limit() / 2) {
          paused = false;
          sock?.resume();
        }
      }
      return c?.chunk;
    },
    /** True once the data connection ended or closed (all its chunks were queued). */
    get over() {
      return over;
    },
    wait: () => new Promise<void>((r) => waiter = r),
  };
}

/**
 * Connect a data connection (rejects after `timeoutMs`), reading into `source` when
 * given (attached at once).
 */
function connectData(
  host: string,
  port: number,
  timeoutMs: number,
  source?: ReturnType<typeof dataSource>,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, onread: source?.onread } as net.NetConnectOpts);
    source?.attach(sock);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`data connection to ${host}:${port} timed out`));
    }, timeoutMs);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.setNoDelay(true);
      sock.off("error", onError);
      resolve(sock);
    });
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    sock.once("error", onError);
  });
}

/**
 * STOR `source` to `target` over a data connection of our own (EPSV, else PASV): the
 * data flows once the node said 150/125; the data connection may stay idle at most
 * `dataTimeout` ms, the node's final reply must come within it too.
 */
async function storeData(
  c: Client,
  target: string,
  source: Readable,
  replyTimeout: number,
  dataTimeout: number,
): Promise<void> {
  const ftp = ftpContext(c);
  const [host, port] = await passiveAddress(c);
  const sock = await connectData(host, port, replyTimeout);
  sock.on("error", () => {}); // reported through the pipeline or the reply
  sock.setTimeout(dataTimeout, () => sock.destroy(new Error("data connection timed out")));
  watchStalledWrites(sock); // a server that stops reading (a frozen node) must not hold the store
  // Reported through the pipeline or the reply; Bun's pipeline can destroy the source with
  // the socket's 'Premature close' after it let go of it (uncaught otherwise).
  source.on("error", () => {});
  let flowing: Promise<void> | null = null;
  let settled = false;
  const replied = ftp.handle(`STOR ${target}`, (res, task) => {
    if (settled) return;
    const end = (f: () => void) => {
      settled = true;
      f();
    };
    if (res instanceof Error) end(() => task.reject(res));
    else if (res.code === 150 || res.code === 125) {
      ftp.socket.setTimeout(0); // the data connection has its own timeout
      flowing ??= pipeline(source, sock).then(() => {
        if (!settled) ftp.socket.setTimeout(dataTimeout); // closing a big file takes a while
      });
      flowing.catch((e) => {
        if (!settled) end(() => task.reject(e));
      });
    } else if (res.code >= 200 && res.code < 300) end(() => task.resolve(res));
    else if (res.code >= 300 && res.code < 400) {
      end(() => task.reject(new Error(`unexpected reply to STOR: ${res.code} ${res.message}`)));
    }
  });
  try {
    await replied;
    if (!flowing) throw new Error("the node answered STOR without a transfer");
    await flowing;
  } catch (e) {
    sock.destroy();
    source.destroy();
    throw e;
  }
}

/**
 * A web stream over a {@linkcode dataSource} that pulls on demand (backpressure).
 * Resolves only once the first chunk is there or the data ended, and rejects when the
 * transfer (`done`) fails before that, so the caller can try another copy. At the end
 * of the data it waits for `done`, so a transfer the server reported as failed errors
 * the stream.
 */
async function firstByteStream(
  sink: ReturnType<typeof dataSource>,
  done: Promise<unknown>,
  onCancel: () => void,
): Promise<ReadableStream<Uint8Array>> {
  let failure: unknown = null;
  done.catch((e) => {
    failure ??= e ?? new Error("transfer failed");
    sink.wake();
  });
  const next = async (): Promise<Uint8Array | null> => {
    for (;;) {
      const c = sink.take();
      if (c) return c;
      if (failure) throw failure;
      if (sink.over) {
        await done;
        return null;
      }
      await sink.wait();
    }
  };
  let first: Uint8Array | null = await next();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = first ?? await next();
        first = null;
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      } catch (e) {
        controller.error(e);
      }
    },
    cancel() {
      onCancel();
    },
  }, { highWaterMark: 0 });
}

/** Opens an FTP storage (connects lazily; `check()` logs in now). */
export function ftpDriver(opts: FtpOptions): Driver {
  const host = opts.host;
  const port = opts.port ?? 21;
  const user = opts.user ?? "anonymous";
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const dirPart = opts.dir ? (opts.dir.startsWith("/") ? opts.dir : "/" + opts.dir) : "/";
  const label = `${opts.secure ? "ftps" : "ftp"}://${encodeURIComponent(user)}@${where}${
    dirPart.split("/").map(encodeURIComponent).join("/")
  }`;
  const max = opts.maxConnections ?? 16;
  /** Data connections: longest idle time during a transfer. */
  const timeout = opts.timeoutMs ?? 30_000;
  /** Login, every reply on the control connection, a download's first byte. */
  const replyTimeout = opts.replyTimeoutMs ?? timeout;
  const idle: Client[] = [];
  const all = new Set<Client>();
  const waiters: (() => void)[] = [];
  let open = 0;
  let closed = false;
  /** Folders known to exist (so mkdir -p is cheap). */
  const madeDirs = new Set<string>();
  /** Whether the server has MLST/MLSD and MFMT (learnt at the first login). */
  let feats: { mlst: boolean; mfmt: boolean } | undefined;
  /** The server answered AVBL with 500, 502 or 504: it has no such command. */
  let noAvbl = false;

  const err = (e: unknown, what: string, name?: string) =>
    mapFtpError(e, { what, name, label, where, user });

  const connect = async (): Promise<Client> => {
    let c: Client | null = null;
    try {
      c = await connectFtp({
        host,
        port,
        user,
        password: opts.password,
        secure: opts.secure,
        insecureTls: opts.insecureTls,
        tlsCa: opts.tlsCa,
        tlsCert: opts.tlsCert,
        tlsKey: opts.tlsKey,
        tlsVersion: opts.tlsVersion,
        timeoutMs: replyTimeout,
      });
      if (!feats) {
        const f = await c.features();
        feats = { mlst: f.has("MLST"), mfmt: f.has("MFMT") };
      }
      if (opts.dir) {
        try {
          await c.cd(opts.dir);
        } catch (e) {
          if (!(e instanceof FTPError) || !opts.create) throw e;
          await c.ensureDir(opts.dir);
        }
      }
      return c;
    } catch (e) {
      c?.close();
      if (e instanceof FTPError && e.code === 550) {
        throw new StorageError("missing", `${label}: no folder ${opts.dir}: ${e.message}`, {
          cause: e,
          hint: "Create the folder on the server first (hop does not create it unless " +
            "asked), or fix the path in the URL.",
        });
      }
      throw err(e, "connect to");
    }
  };

  const acquire = async (): Promise<Client> => {
    for (;;) {
      if (closed) throw new StorageError("other", `${label} is closed`);
      const c = idle.pop();
      if (c) {
        if (!c.closed) return c;
        all.delete(c);
        open--;
        continue;
      }
      if (open < max) {
        open++;
        try {
          const fresh = await connect();
          all.add(fresh);
          return fresh;
        } catch (e) {
          open--;
          waiters.shift()?.();
          throw e;
        }
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const release = (c: Client, healthy: boolean) => {
    if (healthy && !c.closed && !closed) idle.push(c);
    else {
      c.close();
      all.delete(c);
      open--;
    }
    waiters.shift()?.();
  };

  /** Runs `f` on a pooled connection; a dead pooled connection is replaced and `f` retried once when `retry`. */
  const withClient = async <T>(
    what: string,
    name: string | undefined,
    f: (c: Client) => Promise<T>,
    retry = true,
  ): Promise<T> => {
    for (let attempt = 0;; attempt++) {
      const c = await acquire();
      try {
        const r = await f(c);
        release(c, true);
        return r;
      } catch (e) {
        const lost = c.closed || !(isFtpReply(e) || e instanceof StorageError) ||
          (e as { code?: number }).code === 421;
        release(c, !lost);
        if (lost && retry && attempt === 0 && !closed) continue;
        throw err(e, what, name);
      }
    }
  };

  const q = (c: Client, p: string) => c.protectWhitespace(p);

  /** Runs `f` with basic-ftp's socket timeout set to `ms` (a transfer or a long listing). */
  const withTimeout = async <T>(c: Client, ms: number, f: () => Promise<T>): Promise<T> => {
    const ctx = c.ftp as { timeout: number };
    const before = ctx.timeout;
    ctx.timeout = ms;
    try {
      return await f();
    } finally {
      ctx.timeout = before;
    }
  };

  const mkdirp = async (c: Client, dir: string) => {
    const parts = dir.split("/");
    let sofar = "";
    for (const p of parts) {
      sofar = joinPath(sofar, p);
      if (madeDirs.has(sofar)) continue;
      const r = await c.sendIgnoringError(`MKD ${await q(c, sofar)}`);
      // 257 made; 550/521 usually "exists": checked by what follows.
      if (r.code === 257 || r.code === 550 || r.code === 521) madeDirs.add(sofar);
    }
  };

  /** True when `p` is a folder (CWD there, then back). */
  const isDir = async (c: Client, p: string): Promise<boolean> => {
    const home = await c.pwd();
    const r = await c.sendIgnoringError(`CWD ${await q(c, p)}`);
    if (r.code >= 400) return false;
    await c.send(`CWD ${await q(c, home)}`);
    return true;
  };

  const statOn = async (c: Client, p: string): Promise<Entry | null> => {
    const name = p.slice(p.lastIndexOf("/") + 1);
    const st = await statFile(c, p, feats?.mlst ?? false);
    if (st) return { name, isDir: false, size: st.size, mtimeMs: st.mtimeMs };
    return (await isDir(c, p)) ? { name, isDir: true, size: 0, mtimeMs: null } : null;
  };

  const upload = async (c: Client, p: string, data: WriteData, direct: boolean) => {
    const parent = parentOf(p);
    if (parent) await mkdirp(c, parent);
    const tmp = direct ? p : tempPathFor(p);
    const counted = counter();
    const source = toReadable(data);
    // A failed source fails the upload (its error goes to the counting stage). A failed
    // upload leaves the source alone, as the relay always did: destroying it (what
    // pipeline() does) cancels the caller's web stream, and under Bun that surfaced as an
    // uncaught 'Premature close' when a server was killed mid-upload.
    source.on("error", (e) => counted.stream.destroy(e));
    counted.stream.on("error", () => {}); // reported by the transfer
    source.pipe(counted.stream);
    try {
      // FTPS, and whole-file replaces (relay writes), through basic-ftp as the relay always
      // did (under Bun, a server killed mid-upload left the cluster path's pipeline cancel
      // the caller's stream with an uncaught 'Premature close'); in-place writes (node
      // stores, claims) on the cluster's own data connection
      if (opts.secure || !direct) {
        await withTimeout(c, timeout, () => c.uploadFrom(counted.stream, tmp));
      } else {
        await storeData(c, await q(c, tmp), counted.stream, replyTimeout, timeout);
      }
      if (!direct) await c.rename(tmp, p);
    } catch (e) {
      counted.stream.destroy();
      if (!c.closed && !direct) {
        await c.sendIgnoringError(`DELE ${await q(c, tmp)}`).catch(() => {});
      }
      throw e;
    }
    return counted.bytes();
  };

  const driver: Driver = {
    label,
    caps: {
      atomicMkdir: true,
      exclusive: "listing",
      rangedRead: true,
      folders: true,
      atomicPut: false,
    },
    list: (d) =>
      withClient("list", d || undefined, async (c) => {
        checkPath(d, true);
        if (d !== "" && !(await isDir(c, d))) {
          throw new StorageError("missing", `${label}: no folder ${d}`, {
            hint: "The folder is not on the server.",
          });
        }
        // A long listing may be slow to start: the data timeout, not the reply timeout.
        return await withTimeout(c, timeout, () => listDir(c, d, feats?.mlst ?? false));
      }),
    stat: (p) => withClient("stat", p, (c) => statOn(c, checkPath(p))),
    read: async (p, offset = 0) =>
      opts.secure
        ? await readViaClient(checkPath(p), offset)
        : await readFrom(checkPath(p), offset),
    write: (p, data, wo) =>
      withClient(
        "write",
        p,
        (c) => upload(c, checkPath(p), data, wo?.direct ?? false),
        data instanceof Uint8Array,
      ),
    createExclusive: async (p, data) => await createExclusiveByListing(driver, checkPath(p), data),
    delete: (p) =>
      withClient("delete", p, async (c) => {
        const r = await c.sendIgnoringError(`DELE ${await q(c, checkPath(p))}`);
        if (r.code >= 200 && r.code < 300) return true;
        if (r.code === 550 && (await statFile(c, p, false)) === null) return false;
        throw new FTPError(r);
      }),
    mkdir: (p) =>
      withClient("create", p, async (c) => {
        checkPath(p);
        const parent = parentOf(p);
        if (parent) await mkdirp(c, parent);
        for (let attempt = 0;; attempt++) {
          const r = await c.sendIgnoringError(`MKD ${await q(c, p)}`);
          if (r.code === 257) return true;
          // Failed: because it exists, or for another reason? (It may also have been
          // removed between the two commands: then MKD again.)
          if (await isDir(c, p)) return false;
          if (attempt >= 2) throw new FTPError(r);
        }
      }, false),
    rmdir: (p) =>
      withClient("remove", p, async (c) => {
        madeDirs.delete(p);
        await c.sendIgnoringError(`RMD ${await q(c, checkPath(p))}`);
      }),
    rename: (from, to) =>
      withClient("rename", from, async (c) => {
        checkPath(from);
        checkPath(to);
        if (parentOf(to)) await mkdirp(c, parentOf(to));
        try {
          const rn = await c.sendIgnoringError(`RNFR ${await q(c, from)}`);
          if (rn.code !== 350) throw new FTPError(rn);
          const rt = await c.sendIgnoringError(`RNTO ${await q(c, to)}`);
          if (rt.code >= 300) {
            // a server that will not rename over a file: the target goes, then again
            if (!(await statFile(c, to, false))) throw new FTPError(rt);
            await c.send(`DELE ${await q(c, to)}`);
            await c.send(`RNFR ${await q(c, from)}`);
            await c.send(`RNTO ${await q(c, to)}`);
          }
        } catch (e) {
          if (e instanceof FTPError && e.code === 550 && !(await statFile(c, from, false))) {
            throw new StorageError("missing", `${label}: cannot rename ${from}: ${e.message}`, {
              cause: e,
              hint: "The file is not there (removed by another client?).",
            });
          }
          throw e;
        }
      }, false),
    setMtime: (p, mtimeMs) =>
      withClient("set the mtime of", p, async (c) => {
        const stamp = mlsxStamp(mtimeMs);
        const target = await q(c, checkPath(p));
        if (feats?.mfmt) {
          await c.send(`MFMT ${stamp} ${target}`);
          return;
        }
        const res = await c.sendIgnoringError(`MDTM ${stamp} ${target}`);
        if (res.code !== 213) {
          throw new StorageError(
            "unsupported",
            `${label}: cannot set the mtime of ${p}: ${res.message}`,
            {
              hint:
                "The FTP server offers neither MFMT nor MDTM with a time (vsftpd: mdtm_write=YES).",
            },
          );
        }
      }),
    freeSpace: async () => {
      // RFC draft AVBL, where a server has it (pure-ftpd does); unknown otherwise. A
      // server that does not know the command (500, 502, 504) is not asked again: the store worker
      // asks before each copy, and that round trip cost every small file one.
      if (noAvbl) return null;
      try {
        return await withClient("AVBL", undefined, async (c) => {
          const r = await c.sendIgnoringError("AVBL");
          if (r.code === 500 || r.code === 502 || r.code === 504) noAvbl = true;
          const n = r.code === 213 ? Number(r.message.slice(4).trim()) : NaN;
          return Number.isSafeInteger(n) ? n : null;
        });
      } catch {
        return null;
      }
    },
    check: () => withClient("connect to", undefined, (c) => c.send("NOOP").then(() => {})),
    sendTo: async (p, offset, target) => {
      checkPath(p);
      let c: Client;
      try {
        c = await acquire();
      } catch {
        return false;
      }
      let started = false;
      let healthy = false;
      const onAbort = () => c.close();
      target.signal.addEventListener("abort", onAbort);
      try {
        const portCmd = target.family === 6
          ? `EPRT |2|${target.host}|${target.port}|`
          : `PORT ${target.host.replaceAll(".", ",")},${target.port >> 8},${target.port & 255}`;
        if ((await c.sendIgnoringError(portCmd)).code !== 200) return (healthy = true, false);
        if (offset > 0 && (await c.sendIgnoringError(`REST ${offset}`)).code !== 350) {
          return (healthy = true, false);
        }
        const ftp = ftpContext(c);
        const end = await ftp.handle(`RETR ${p}`, (res, task) => {
          if (res instanceof Error) task.reject(res);
          else if (res.code === 150 || res.code === 125) {
            started = true;
            // The node sends straight to the client: nothing to watch here but the end,
            // which ABOR or the client's going away (the signal) cut short.
            ftp.socket.setTimeout(0);
          } else if (res.code >= 200) task.resolve(res);
        }).catch((e: unknown) => {
          if (!started && isFtpReply(e)) return null; // refused before sending anything
          throw e;
        });
        if (end === null) return (healthy = true, false);
        healthy = true;
        return true;
      } catch (e) {
        if (!started) return false;
        throw err(e, "send", p);
      } finally {
        target.signal.removeEventListener("abort", onAbort);
        release(c, healthy);
      }
    },
    receiveFrom: async (p, send) => {
      checkPath(p);
      let c: Client;
      try {
        c = await acquire();
      } catch {
        return false;
      }
      let healthy = false;
      const ac = new AbortController();
      try {
        const parent = parentOf(p);
        if (parent) await mkdirp(c, parent);
        const r = await c.sendIgnoringError("PASV");
        const m = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(r.message);
        if (r.code !== 227 || !m) return (healthy = true, false);
        // A server may announce an address it cannot be reached at (0.0.0.0, NAT):
        // its control address is used then.
        const announced = `${m[1]}.${m[2]}.${m[3]}.${m[4]}`;
        const pasvHost = announced === "0.0.0.0" ? host : announced;
        const pasvPort = Number(m[5]) * 256 + Number(m[6]);
        const ftp = ftpContext(c);
        const stored = ftp.handle(`STOR ${p}`, (res, task) => {
          if (res instanceof Error) task.reject(res);
          else if (res.code === 150 || res.code === 125) ftp.socket.setTimeout(0);
          else if (res.code >= 200) task.resolve(res);
        });
        stored.catch(() => {});
        const sent = await send({ host: pasvHost, port: pasvPort, family: 4, signal: ac.signal })
          .catch((e) => {
            c.close(); // the STOR waits for a connection that will not finish well
            throw e;
          });
        if (!sent) {
          c.close();
          return false;
        }
        ftp.socket.setTimeout(timeout); // the sender is done: the receiver's reply follows
        await stored;
        healthy = true;
        return true;
      } catch (e) {
        throw err(e, "receive", p);
      } finally {
        ac.abort();
        release(c, healthy);
      }
    },
    close() {
      closed = true;
      idle.length = 0;
      for (const c of all) c.close();
      all.clear();
      for (const w of waiters.splice(0)) w();
      return Promise.resolve();
    },
  };

  /**
   * FTPS: RETR through basic-ftp, whose data connections `../ftp/client.ts`
   * secures; the connection is held until the transfer ends. A missing file
   * is told before the stream is handed out.
   */
  async function readViaClient(p: string, offset: number): Promise<ReadableStream<Uint8Array>> {
    let c: Client;
    try {
      c = await acquire();
    } catch (e) {
      throw err(e, "read", p);
    }
    // Room for small files whole: Deno's TLS socket can lose its end while paused by
    // backpressure (`../ftp/client.ts` then ends it after 300 ms of quiet).
    const pass = new PassThrough({ highWaterMark: 4 << 20 });
    let finished = false;
    let failed: unknown = null;
    pass.on("error", () => {}); // told through `failed` or the web stream
    pass.once("close", () => {
      // The reader went away mid-transfer: basic-ftp cannot abort one, so drop the connection.
      if (!finished) c.close();
    });
    const done = withTimeout(c, timeout, () => c.downloadTo(pass, p, offset)).then(
      () => {
        finished = true;
        release(c, true);
      },
      (e) => {
        finished = true;
        failed = err(e, "read", p);
        release(c, isFtpReply(e) && !c.closed);
        pass.destroy(failed as Error);
      },
    );
    // A missing file is told now: wait for the first byte, the end, or the refusal.
    await new Promise<void>((r) => {
      const onReadable = () => {
        if (pass.readableLength > 0) {
          pass.off("readable", onReadable);
          r();
        }
      };
      pass.on("readable", onReadable);
      done.then(() => {
        pass.off("readable", onReadable);
        r();
      });
    });
    if (failed && pass.readableLength === 0) throw failed;
    return toWeb(pass);
  }

  /** RETR from `offset` on a pooled connection held until the transfer ends. */
  async function readFrom(p: string, offset: number): Promise<ReadableStream<Uint8Array>> {
    let c: Client | null = null;
    let released = false;
    const finish = (healthy: boolean) => {
      if (released) return;
      released = true;
      if (c) release(c, healthy);
    };
    try {
      c = await acquire();
    } catch (e) {
      throw err(e, "read", p);
    }
    const client = c;
    const ftp = ftpContext(client);
    const source = dataSource();
    let sock: net.Socket | null = null;
    let done: Promise<unknown>;
    try {
      const [dataHost, dataPort] = await passiveAddress(client);
      sock = await connectData(dataHost, dataPort, replyTimeout, source);
      const data = sock;
      // Idle data connection: an error, unless it is idle because the reader is behind.
      // Until the first byte, the server has `replyTimeout` (a sick node fails over fast).
      data.on("timeout", () => {
        if (!source.paused) data.destroy(new Error("data connection timed out"));
      });
      data.setTimeout(replyTimeout);
      if (offset > 0) {
        const r = await client.sendIgnoringError(`REST ${offset}`);
        if (r.code !== 350) throw new FTPError(r);
      }
      let answered = false;
      const received = new Promise<void>((resolve, reject) => {
        data.once("end", () => {
          // All data is in: the server's final reply must follow within `timeout`.
          if (!answered) ftp.socket.setTimeout(timeout);
          resolve();
        });
        data.once("error", reject);
        data.once("close", () => reject(new Error("data connection closed before its end")));
      });
      const replied = ftp.handle(`RETR ${await q(client, p)}`, (res, task) => {
        if (res instanceof Error) task.reject(res);
        else if (res.code === 150 || res.code === 125) {
          // The data connection keeps its own timeout while the file flows.
          ftp.socket.setTimeout(0);
        } else if (res.code >= 200 && res.code < 300) task.resolve(res);
        else if (res.code >= 300 && res.code < 400) {
          task.reject(new Error(`unexpected reply to RETR: ${res.code} ${res.message}`));
        }
      });
      replied.then(() => answered = true, () => answered = true);
      replied.catch(() => data.destroy()); // refused: nothing will come
      done = Promise.all([replied, received]);
    } catch (e) {
      sock?.destroy();
      finish(isFtpReply(e) && !client.closed);
      throw err(e, "read", p);
    }
    const data = sock;
    done = done.then(
      (r) => {
        finish(true);
        return r;
      },
      (e) => {
        // A refused RETR (550) leaves the control connection usable; anything else
        // (the data cut, a timeout) leaves it in an unknown state: drop it.
        const refused = isFtpReply(e) && !client.closed && source.bytes === 0;
        if (!refused) client.close();
        finish(refused);
        data.destroy();
        throw err(e, "read", p);
      },
    );
    const stream = await firstByteStream(source, done, () => {
      // The reader went away: drop the data and the control connection.
      client.close();
      data.destroy();
      finish(false);
    });
    data.setTimeout(timeout); // flowing now: the transfer's idle limit
    return stream;
  }

  return driver;
}

/** Turns a basic-ftp or socket error into a StorageError with a hint. */
export function mapFtpError(
  e: unknown,
  ctx: { what: string; name?: string; label: string; where: string; user: string },
): StorageError {
  if (e instanceof StorageError) return e;
  const subject = ctx.name ? `${ctx.what} ${ctx.name}` : ctx.what;
  const msg = (e as Error)?.message ?? String(e);
  const head = `${ctx.label}: cannot ${subject}: ${msg}`;
  const o = (hint: string) => ({ cause: e, hint });
  if (e instanceof FTPError) {
    const c = e.code;
    if (c === 530) {
      return new StorageError(
        "auth",
        head,
        o(`Check the user (${ctx.user}) and password for ${ctx.where}.`),
      );
    }
    if (c === 552 || c === 452) {
      return new StorageError(
        "full",
        head,
        o("The storage is full (disk or quota): free space on it (on a relay, or lower `maxpagesize`)."),
      );
    }
    if (c === 421) {
      return new StorageError(
        "connect",
        head,
        o(`The server at ${ctx.where} closed the connection (too many clients, or shutting down); hop retries on the next pass.`),
      );
    }
    if (
      ctx.what === "connect to" && (c === 500 || c === 502 || c === 504 || c === 534 || c === 431)
    ) {
      return new StorageError(
        "tls",
        head,
        o("The server does not offer FTPS (AUTH TLS): use an ftp:// URL, or enable TLS on the server."),
      );
    }
    if (c === 550 || c === 553 || c === 450 || c === 532) {
      const readish = ctx.what === "read" || ctx.what === "stat" || ctx.what === "rename";
      return readish
        ? new StorageError(
          "missing",
          head,
          o("The file is not there, or not readable by this user."),
        )
        : new StorageError(
          "denied",
          head,
          o(`The server refused: check that ${ctx.user} may write in that folder (read-only account or storage?).`),
        );
    }
    if (c === 522) {
      return new StorageError(
        "tls",
        head,
        o("The server refused the TLS data connection; if it requires TLS session reuse (vsftpd require_ssl_reuse=YES), this runtime may not resume sessions: set require_ssl_reuse=NO on the server or use the Deno build."),
      );
    }
    return new StorageError(
      "other",
      head,
      o("The FTP server refused the command; its reply is above."),
    );
  }
  const code = String((e as { code?: unknown })?.code ?? "");
  if (code === "ECONNREFUSED") {
    return new StorageError(
      "connect",
      head,
      o(`Is the FTP server at ${ctx.where} running? Check the host and port.`),
    );
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new StorageError("connect", head, o(`Check the host name in ${ctx.label}.`));
  }
  if (
    /cert|self.signed|UnknownIssuer|NotValidForName|ERR_TLS|ERR_SSL|SSL|TLS/i.test(code + " " + msg)
  ) {
    return new StorageError(
      "tls",
      head,
      o("The TLS connection failed: trust the server's certificate (its CA), or for a self-signed test server allow insecure TLS; check that the server speaks explicit FTPS."),
    );
  }
  if (/timeout|ETIMEDOUT/i.test(code + " " + msg)) {
    return new StorageError(
      "connect",
      head,
      o(`The server at ${ctx.where} stopped answering; check the network. hop retries on the next pass.`),
    );
  }
  return new StorageError(
    "connect",
    head,
    o(`The connection to ${ctx.where} failed or dropped; hop retries on the next pass.`),
  );
}
