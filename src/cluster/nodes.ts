/**
 * Storage node clients of the FTP cluster. A node is a URL:
 * `ftp://user:pass@host:port/dir` (any FTP server; control connections are pooled)
 * or `file:///path` (a local folder). Each client stores a file from a stream,
 * streams a file back from a byte offset (with backpressure, never buffering the
 * whole file), deletes, tells a size, makes directories and checks health; it
 * keeps its load (transfers under way) and, where it can learn it, its free space,
 * so the store worker can choose where copies go.
 *
 * Writes are atomic: `put` (and `receiveFrom`) store the data under a temporary name in
 * the target's folder (`hop-part-<hash>`, {@linkcode NODE_TEMP}), check its size
 * on the node, and only then rename it to the target, so a node path named by a link
 * never holds a cut-off file. A failed write removes its temporary file where the node
 * still answers, else reports it ({@linkcode NodeLeftoverError}) for deletion later;
 * audit and cleanup recognise such names and delete them, never adopt them.
 *
 * A sick node holds no one hostage: every FTP command reply (and the login, and the first
 * byte of a download) must come within `connect-timeout` (default 5 s), a data connection
 * may stay idle at most `timeout` (default 30 s), and at most `connections` (default 16)
 * operations run on one node at once; a node that fails is skipped for a while. Per node,
 * as URL parameters: `ftp://u:p@host/dir?connect-timeout=3&timeout=20&connections=4`.
 *
 * Third-party RETR (`sendTo`, used for active-mode clients): the cluster sends the node
 * `PORT <client address>` (or `EPRT`), `REST`, `RETR`, and the node connects to the
 * client itself. A node only does this when it accepts a data address other than the
 * cluster server's own: vsftpd needs `port_promiscuous=YES` (when client and cluster
 * server differ in address), pure-ftpd needs FXP allowed (`-w`/`--allowuserfxp`, or
 * `-W` for anonymous too), pyftpdlib needs `FTPHandler.permit_foreign_addresses = True`;
 * hop's own node server refuses (bounce protection). A refused PORT makes `sendTo`
 * resolve false and the cluster streams the file itself.
 *
 * @example
 * ```ts
 * const node = openNode("ftp://u:p@127.0.0.1:2100/data");
 * await node.put("ab/cd/260101-000000-x.txt", Readable.from([bytes]), bytes.length);
 * const stream = await node.get("ab/cd/260101-000000-x.txt", 0);
 * ```
 *
 * @module
 */

import { type Client, FTPError } from "basic-ftp";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import net from "node:net";
import * as fsp from "node:fs/promises";
import * as nodePath from "node:path";
import { Buffer } from "node:buffer";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { HopError } from "../errors.ts";
import { urlSecret } from "../secrets.ts";
import {
  connectFtp,
  ftpContext,
  isFtpReply,
  listDir,
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

/** A copy of a file sits on a node at a relative node path like `61/47/260101-120000-a.txt`. */
export interface StorageNode {
  /**
   * Key written in link files' `server` lines: `ftp://host:port/dir` for an FTP node
   * (`host:port` at the top of the server), `file:///abs/dir` for folders.
   */
  readonly key: string;
  /** The key older hop versions wrote for this node (`host:port`), when it differs. */
  readonly legacyKey?: string;
  /** The URL without its password (for logs and messages). */
  readonly label: string;
  /** Transfers and operations under way on this node now. */
  readonly load: number;
  /** True while the node is believed down (after a failure, until `downUntil`). */
  isDown(): boolean;
  /** The last failure that marked it down (message, ms since the epoch), if any. */
  lastError?(): { message: string; at: number } | null;
  /**
   * Store `source` at `path` atomically (parent directories made): the data goes to a
   * temporary name, its size on the node must be `size`, then it is renamed to `path`.
   * Resolves to the bytes written; throws (leaving `path` as it was) otherwise.
   */
  put(path: string, source: Readable, size: number): Promise<number>;
  /**
   * Stream `path` from byte `offset`. Resolves only once the first byte arrived (or the
   * file ended), so a caller can try another copy when this one fails.
   */
  get(path: string, offset: number): Promise<ReadableStream<Uint8Array>>;
  /** Size in bytes of `path`, or null when it is not there; throws when the node cannot tell. */
  size(path: string): Promise<number | null>;
  /** Delete `path`; resolves false when it was not there. */
  remove(path: string): Promise<boolean>;
  /** Make `dir` and its parents. */
  mkdirp(dir: string): Promise<void>;
  /** True when the node answers (FTP: login + NOOP; folder: writable directory). */
  health(): Promise<boolean>;
  /** Free bytes, or null when the node cannot tell (most FTP servers). */
  freeSpace(): Promise<number | null>;
  /**
   * Optional third-party send: make the node connect to `target` (PORT/EPRT) and send
   * `path` from `offset`. Resolves true when the node reported success, false when it
   * refused or failed before sending anything; throws when it failed while sending.
   */
  sendTo?(
    path: string,
    offset: number,
    target: { host: string; port: number; family: 4 | 6; signal: AbortSignal },
  ): Promise<boolean>;
  /**
   * The entries of directory `dir` (relative; "" is the node's root): name, kind, size
   * and mtime (ms, or null when unknown). FTP: MLSD where the server has it, else LIST
   * for names and SIZE + MDTM per file. Throws when the node cannot be listed.
   */
  list(dir: string): Promise<NodeEntry[]>;
  /**
   * Optional third-party receive (node to node, FXP): the node opens a passive data
   * port (PASV), starts a STOR to a temporary name, and `send` makes another node send
   * the data there (its {@linkcode StorageNode.sendTo}); once its size is `size` it is
   * renamed to `path`. Resolves true when both sides reported success, false when either
   * refused before data moved (then nothing is left half-done on purpose: the caller
   * copies another way); throws when it failed later.
   */
  receiveFrom?(
    path: string,
    size: number,
    send: (target: { host: string; port: number; family: 4 | 6; signal: AbortSignal }) => Promise<
      boolean
    >,
  ): Promise<boolean>;
  /** Close pooled connections. */
  close(): void;
}

/** One entry of a node directory listing. */
export interface NodeEntry {
  name: string;
  isDir: boolean;
  size: number;
  /** Modification time in ms, or null when unknown. */
  mtimeMs: number | null;
}

/** Options of {@linkcode openNode} (URL parameters of a node override them). */
export interface NodeOptions {
  /** Operations at once on one FTP node: pooled control connections (default 16). */
  maxConnections?: number;
  /** Login, each command reply and a download's first byte, in ms (default 5000). */
  connectTimeoutMs?: number;
  /** Longest a data connection may stay idle during a transfer, in ms (default 30000). */
  timeoutMs?: number;
  /** How long a failed node is skipped before it is tried again (ms, default 5000). */
  downForMs?: number;
}

/**
 * Temporary names of node writes under way (`nodeTempPath`), and those of older hop
 * versions' folder nodes (`<path>.part-<pid>-<ms>`): never a file's copy.
 */
export const NODE_TEMP = /(^|\/)hop-part-[0-9a-f]{8}-[0-9a-f]{12}$|\.part-[0-9]+-[0-9]+$/;

/**
 * The temporary name of a write to node path `path`, in its folder (see
 * {@linkcode NODE_TEMP}). The same for every attempt: a write retried after a crash
 * overwrites what the cut one left. (One writer per node path at a time: the serve lease
 * and the queue's claims see to that.)
 */
export function nodeTempPath(path: string): string {
  const dir = nodePath.posix.dirname(path);
  const h = createHash("sha256").update(path).digest("hex");
  const name = `hop-part-${h.slice(0, 8)}-${h.slice(8, 20)}`;
  return dir === "." ? name : `${dir}/${name}`;
}

/** A failed write whose temporary file could not be removed: `leftover` is its node path. */
export class NodeLeftoverError extends HopError {
  constructor(message: string, readonly leftover: string, cause: unknown) {
    super(message, {
      hint: "The node did not answer; the temporary file is deleted once it does.",
      cause,
    });
    this.name = "NodeLeftoverError";
  }
}

/** Checks a node path handed to a node: relative, no `..`, no control characters. */
function checkNodePath(p: string): string {
  if (p === "" || p.startsWith("/") || /(^|\/)\.\.?(\/|$)|[\0\r\n\\]/.test(p)) {
    throw new HopError(`bad node path "${p}"`, {
      hint: "Node paths in link files must be relative (like 61/47/260101-120000-name).",
    });
  }
  return p;
}

/** Parses and opens a node URL. Throws HopError for anything but ftp:// and file:// URLs. */
export function openNode(given: string, options: NodeOptions = {}): StorageNode {
  // a password named by ?password-file= or ?password-env= (kept out of ps) is read here
  const url = urlSecret(given).url;
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new HopError(`bad node URL "${url}"`, {
      hint: "Give nodes as ftp://user@host:port/dir?password-file=FILE or file:///path.",
      cause: e,
    });
  }
  const o = { ...options, ...urlOptions(u) };
  if (u.protocol === "file:") return openFolderNode(fileURLToPath(u), o);
  if (u.protocol === "ftp:") return openFtpNode(u, o);
  throw new HopError(`unsupported node URL "${redactUrl(url)}"`, {
    hint: "Give nodes as ftp://user@host:port/dir?password-file=FILE or file:///path.",
  });
}

/** The node's own settings from its URL parameters (taken out of `u`). */
function urlOptions(u: URL): NodeOptions {
  const out: NodeOptions = {};
  const num = (key: string, min: number, max: number): number | undefined => {
    const v = u.searchParams.get(key);
    if (v === null) return undefined;
    const n = Number(v);
    if (!(Number.isFinite(n) && n >= min && n <= max)) {
      throw new HopError(`bad node URL parameter ${key}=${v} in ${redactUrl(u.href)}`, {
        hint: `Give ${key} a number from ${min} to ${max}.`,
      });
    }
    return n;
  };
  const ct = num("connect-timeout", 0.1, 600);
  const t = num("timeout", 0.1, 3600);
  const c = num("connections", 1, 256);
  if (ct !== undefined) out.connectTimeoutMs = Math.round(ct * 1000);
  if (t !== undefined) out.timeoutMs = Math.round(t * 1000);
  if (c !== undefined) out.maxConnections = Math.floor(c);
  for (const key of [...u.searchParams.keys()]) {
    if (!["connect-timeout", "timeout", "connections"].includes(key)) {
      throw new HopError(`unknown node URL parameter ${key} in ${redactUrl(u.href)}`, {
        hint: "Node URLs take connect-timeout, timeout (seconds), connections, and " +
          "password-file or password-env (read when the node is opened).",
      });
    }
  }
  u.search = "";
  return out;
}

/**
 * Keys of link files written before node keys named the folder (`host:port`), mapped
 * to the key of the one configured node they mean: the node of that server, when only
 * one is configured (with two folders of one server, such old links are ambiguous and
 * left as they are: their copies read as on a node not configured).
 */
export function nodeAliases(nodes: Iterable<StorageNode>): Map<string, string> {
  const keys = new Set<string>();
  const byLegacy = new Map<string, string[]>();
  for (const n of nodes) {
    keys.add(n.key);
    if (n.legacyKey) byLegacy.set(n.legacyKey, [...byLegacy.get(n.legacyKey) ?? [], n.key]);
  }
  const out = new Map<string, string>();
  for (const [legacy, now] of byLegacy) {
    if (now.length === 1 && !keys.has(legacy)) out.set(legacy, now[0]);
  }
  return out;
}

/** The URL with its password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ":***@");
  }
}

/** Tracks down-ness and load shared by both node kinds. */
function nodeState(downForMs: number) {
  return {
    load: 0,
    downUntil: 0,
    failures: 0,
    /** The last failure that marked the node down, for status pages. */
    lastError: null as { message: string; at: number } | null,
    markDown(why?: unknown) {
      if (why !== undefined) {
        this.lastError = { message: (why as Error)?.message ?? String(why), at: Date.now() };
      }
      if (this.isDown()) return; // one failure per down period: no runaway backoff
      this.failures++;
      this.downUntil = Date.now() + Math.min(downForMs * this.failures, downForMs * 12);
    },
    markUp() {
      this.failures = 0;
      this.downUntil = 0;
    },
    isDown() {
      return Date.now() < this.downUntil;
    },
  };
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
  watchStalledWrites(sock); // a node that stops reading (frozen) must not hold the store
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

/** A local file from byte `offset` as a pull stream of 256 KB reads (backpressure). */
export async function fileStream(
  file: string,
  offset: number,
): Promise<ReadableStream<Uint8Array>> {
  const fh = await fsp.open(file, "r");
  let pos = offset;
  const CHUNK = 256 * 1024;
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        const buf = new Uint8Array(CHUNK);
        const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
        if (bytesRead === 0) {
          await fh.close();
          ctl.close();
          return;
        }
        pos += bytesRead;
        ctl.enqueue(buf.subarray(0, bytesRead));
      } catch (err) {
        await fh.close().catch(() => {});
        ctl.error(err);
      }
    },
    async cancel() {
      await fh.close().catch(() => {});
    },
  }, { highWaterMark: 1 });
}

/** Pass `source` through a byte counter (without putting `source` in flowing mode early). */
function counting(source: Readable): { stream: Readable; done: Promise<void>; bytes(): number } {
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer | Uint8Array | string, _enc, cb) {
      const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      n += b.length;
      cb(null, b);
    },
  });
  const done = pipeline(source, t);
  done.catch(() => {}); // awaited by the caller on success; a failed upload reports its own error
  return { stream: t, done, bytes: () => n };
}

/** fsync a directory so a rename in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, "r");
  try {
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on directories; nothing more can be done there.
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------- folder nodes

function openFolderNode(dir: string, options: NodeOptions): StorageNode {
  const root = nodePath.resolve(dir);
  const st = nodeState(options.downForMs ?? 5000);
  const full = (p: string) => nodePath.join(root, checkNodePath(p));
  const track = async <T>(f: () => Promise<T>): Promise<T> => {
    st.load++;
    try {
      return await f();
    } finally {
      st.load--;
    }
  };
  return {
    key: "file://" + root,
    label: "file://" + root,
    get load() {
      return st.load;
    },
    isDown: () => st.isDown(),
    lastError: () => st.lastError,
    put: (path, source, size) =>
      track(async () => {
        const target = full(path);
        await fsp.mkdir(nodePath.dirname(target), { recursive: true });
        const tmp = full(nodeTempPath(path));
        const counted = counting(source);
        try {
          const out = fs.createWriteStream(tmp);
          await Promise.all([pipeline(counted.stream, out), counted.done]);
          const fh = await fsp.open(tmp, "r+");
          try {
            await fh.sync();
            const got = (await fh.stat()).size;
            if (got !== size) throw new Error(`size on the node is ${got}, expected ${size}`);
          } finally {
            await fh.close();
          }
          await fsp.rename(tmp, target);
          await fsyncDir(nodePath.dirname(target));
        } catch (e) {
          await fsp.rm(tmp, { force: true });
          throw new HopError(`storing ${path} on ${root} failed: ${(e as Error).message}`, {
            hint: "Check that the node folder exists, is writable and has free space.",
            cause: e,
          });
        }
        return counted.bytes();
      }),
    get: (path, offset) =>
      track(async () => {
        const target = full(path);
        return await fileStream(target, offset).catch((e) => {
          throw new HopError(`${path} is not on ${root}: ${(e as { code?: string }).code ?? e}`, {
            cause: e,
          });
        });
      }),
    size: (path) =>
      track(async () => {
        try {
          const s = await fsp.stat(full(path));
          return s.isFile() ? s.size : null;
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === "ENOENT" || code === "ENOTDIR") return null;
          throw new HopError(`cannot stat ${path} on ${root}: ${code ?? e}`, { cause: e });
        }
      }),
    remove: (path) =>
      track(async () => {
        try {
          await fsp.unlink(full(path));
          return true;
        } catch (e) {
          if ((e as { code?: string }).code === "ENOENT") return false;
          throw e;
        }
      }),
    mkdirp: (d) => track(async () => void await fsp.mkdir(full(d), { recursive: true })),
    health: async () => {
      try {
        await fsp.mkdir(root, { recursive: true });
        await fsp.access(root, fs.constants.W_OK);
        st.markUp();
        return true;
      } catch (e) {
        st.markDown(e);
        return false;
      }
    },
    freeSpace: async () => {
      try {
        const s = await fsp.statfs(root);
        return Number(s.bavail) * Number(s.bsize);
      } catch {
        return null;
      }
    },
    list: (d) =>
      track(async () => {
        const at = d === "" ? root : full(d);
        const ents = (await fsp.readdir(at, { withFileTypes: true }))
          .filter((e) => e.isFile() || e.isDirectory());
        const out: NodeEntry[] = [];
        for (let i = 0; i < ents.length; i += 64) {
          const stats = await Promise.all(
            ents.slice(i, i + 64).map((e) => fsp.stat(nodePath.join(at, e.name)).catch(() => null)),
          );
          stats.forEach((s, k) => {
            if (s) {
              const name = ents[i + k].name;
              out.push({ name, isDir: s.isDirectory(), size: s.size, mtimeMs: s.mtimeMs });
            }
          });
        }
        return out;
      }),
    close() {},
  };
}

// ---------------------------------------------------------------- FTP nodes

function openFtpNode(u: URL, options: NodeOptions): StorageNode {
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const port = Number(u.port || 21);
  const user = decodeURIComponent(u.username || "anonymous");
  const password = decodeURIComponent(u.password || "hop@");
  const baseDir = decodeURIComponent(u.pathname || "/").replace(/\/+$/, "") || "/";
  // Two folders of one FTP server are two nodes: the folder is part of the key. A node
  // at the server's top keeps the older form `host:port`, which its folder nodes' links
  // written before still name (`legacyKey`).
  const hostKey = `${u.hostname}:${port}`;
  const key = baseDir === "/" ? hostKey : `ftp://${hostKey}${u.pathname.replace(/\/+$/, "")}`;
  const redacted = new URL(u.toString());
  if (redacted.password) redacted.password = "***";
  const label = redacted.toString();
  const max = options.maxConnections ?? 16;
  /** Data connections: longest idle time during a transfer. */
  const timeout = options.timeoutMs ?? 30000;
  /** Login, every reply on the control connection, a download's first byte. */
  const replyTimeout = options.connectTimeoutMs ?? 5000;
  const st = nodeState(options.downForMs ?? 5000);
  const idle: Client[] = [];
  const waiters: (() => void)[] = [];
  let open = 0;
  let closed = false;
  /** Directories known to exist on the node (so mkdir -p is cheap). */
  const madeDirs = new Set<string>();
  /** Whether the server has MLST/MLSD (learnt at the first login). */
  let mlst: boolean | undefined;

  const connect = async (): Promise<Client> => {
    const c = await connectFtp({ host, port, user, password, timeoutMs: replyTimeout });
    try {
      if (baseDir !== "/" || u.pathname === "/") await c.cd(baseDir === "/" ? "/" : baseDir);
      mlst ??= (await c.features()).has("MLST");
      return c;
    } catch (e) {
      c.close();
      throw e;
    }
  };

  const acquire = async (): Promise<Client> => {
    for (;;) {
      if (closed) throw new HopError(`node ${label} is closed`);
      const c = idle.pop();
      if (c) {
        if (!c.closed) return c;
        open--;
        continue;
      }
      if (open < max) {
        open++;
        try {
          return await connect();
        } catch (e) {
          open--;
          waiters.shift()?.();
          throw e;
        }
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  /**
   * A pooled connection for a transfer that counts as load until the caller's
   * `st.load--`; null (node marked down, load given back) when none can be had.
   */
  const acquireCounted = async (): Promise<Client | null> => {
    st.load++;
    try {
      return await acquire();
    } catch (e) {
      st.load--;
      st.markDown(e);
      return null;
    }
  };
  const release = (c: Client, healthy: boolean) => {
    if (healthy && !c.closed && !closed) idle.push(c);
    else {
      c.close();
      open--;
    }
    waiters.shift()?.();
  };

  /**
   * Run `f` on a pooled connection; a stale pooled connection is retried once on a fresh
   * one, unless `f` says it went too far for that (`retryable` false: data was sent).
   */
  const withClient = async <T>(
    what: string,
    f: (c: Client) => Promise<T>,
    retryable: () => boolean = () => true,
  ): Promise<T> => {
    st.load++;
    try {
      for (let attempt = 0;; attempt++) {
        let c: Client;
        try {
          c = await acquire();
        } catch (e) {
          st.markDown(e);
          throw nodeError(what, e);
        }
        try {
          const r = await f(c);
          release(c, true);
          st.markUp();
          return r;
        } catch (e) {
          const connectionLost = c.closed || !isFtpReply(e);
          release(c, !connectionLost);
          if (connectionLost && attempt === 0 && retryable()) continue;
          if (connectionLost) st.markDown(e);
          throw nodeError(what, e);
        }
      }
    } finally {
      st.load--;
    }
  };
  const nodeError = (what: string, e: unknown) =>
    e instanceof HopError
      ? e
      : new HopError(`${what} on node ${label} failed: ${(e as Error)?.message ?? e}`, {
        hint:
          "Check that the node's FTP server runs and the URL's user, password and folder are right.",
        cause: e,
      });

  const mkdirp = async (c: Client, dir: string) => {
    const parts = dir.split("/").filter((s) => s);
    let sofar = "";
    for (const p of parts) {
      sofar = sofar ? `${sofar}/${p}` : p;
      if (madeDirs.has(sofar)) continue;
      const r = await c.sendIgnoringError(`MKD ${sofar}`);
      // 257 created; 550/521 usually "exists": checked by the STOR that follows.
      if (r.code === 257 || r.code === 550 || r.code === 521) madeDirs.add(sofar);
    }
  };
  /** Check the temporary file `tmp` has `size` bytes, then rename it to `path`. */
  const settle = async (c: Client, tmp: string, path: string, size: number) => {
    const got = (await statFile(c, tmp, false))?.size ?? null;
    if (got !== size) throw new Error(`size on the node is ${got}, expected ${size}`);
    const from = await c.sendIgnoringError(`RNFR ${tmp}`);
    if (from.code !== 350) throw new FTPError(from);
    const to = await c.sendIgnoringError(`RNTO ${path}`);
    if (to.code >= 200 && to.code < 300) return;
    // A server that will not rename over a file: the copy there (the same data, made by
    // another attempt) stays when whole; else it goes, and the rename is tried again.
    const there = await statFile(c, path, false);
    if (there?.size === size) {
      await c.sendIgnoringError(`DELE ${tmp}`);
      return;
    }
    if (there) await c.send(`DELE ${path}`);
    await c.send(`RNFR ${tmp}`);
    await c.send(`RNTO ${path}`);
  };
  /** After a failed write: remove `tmp` if the node lets us; the error to throw. */
  const dropTemp = async (c: Client, tmp: string, e: unknown): Promise<unknown> => {
    if (!c.closed) {
      const r = await c.sendIgnoringError(`DELE ${tmp}`).catch(() => null);
      if (r && (r.code < 300 || r.code === 550)) return e;
    }
    const fresh = await connect().catch(() => null);
    if (fresh) {
      try {
        const r = await fresh.sendIgnoringError(`DELE ${tmp}`);
        if (r.code < 300 || r.code === 550) return e;
      } catch {
        /* reported below */
      } finally {
        fresh.close();
      }
    }
    return new NodeLeftoverError(
      `storing on node ${label} failed (${(e as Error)?.message ?? e}); ${tmp} is left there`,
      tmp,
      e,
    );
  };

  return {
    key,
    legacyKey: key === hostKey ? undefined : hostKey,
    label,
    get load() {
      return st.load;
    },
    isDown: () => st.isDown(),
    lastError: () => st.lastError,
    put: (path, source, size) => {
      let started = false;
      return withClient(`storing ${path}`, async (c) => {
        checkNodePath(path);
        const dir = nodePath.posix.dirname(path);
        if (dir !== ".") await mkdirp(c, dir);
        const tmp = nodeTempPath(path);
        started = true;
        const counted = counting(source);
        try {
          await storeData(c, tmp, counted.stream, replyTimeout, timeout);
          await counted.done;
          await settle(c, tmp, path, size);
        } catch (e) {
          throw await dropTemp(c, tmp, e);
        }
        return counted.bytes();
      }, () => !started);
    },
    get: async (path, offset) => {
      checkNodePath(path);
      st.load++;
      let c: Client | null = null;
      let released = false;
      const finish = (healthy: boolean) => {
        if (released) return;
        released = true;
        st.load--;
        if (c) release(c, healthy);
      };
      try {
        c = await acquire();
      } catch (e) {
        finish(false);
        st.markDown(e);
        throw nodeError(`reading ${path}`, e);
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
        // Until the first byte, the node has `replyTimeout` (a sick node fails over fast).
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
            // All data is in: the node's final reply must follow within `timeout`.
            if (!answered) ftp.socket.setTimeout(timeout);
            resolve();
          });
          data.once("error", reject);
          data.once("close", () => reject(new Error("data connection closed before its end")));
        });
        const replied = ftp.handle(`RETR ${path}`, (res, task) => {
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
        if (!isFtpReply(e)) st.markDown(e);
        throw nodeError(`reading ${path}`, e);
      }
      const data = sock;
      done = done.then(
        (r) => {
          finish(true);
          st.markUp();
          return r;
        },
        (e) => {
          // A refused RETR (550) leaves the control connection usable; anything else
          // (the data cut, a timeout) leaves it in an unknown state: drop it.
          const refused = isFtpReply(e) && !client.closed && source.bytes === 0;
          if (!refused) client.close();
          finish(refused);
          if (!isFtpReply(e)) st.markDown(e);
          data.destroy();
          throw nodeError(`reading ${path}`, e);
        },
      );
      const stream = await firstByteStream(source, done, () => {
        // The reader went away: drop the data and the control connection.
        client.close();
        data.destroy();
      });
      data.setTimeout(timeout); // flowing now: the transfer's idle limit
      return stream;
    },
    size: (path) =>
      withClient(
        `SIZE ${path}`,
        async (c) => (await statFile(c, checkNodePath(path), false))?.size ?? null,
      ),
    remove: (path) =>
      withClient(`deleting ${path}`, async (c) => {
        const r = await c.sendIgnoringError(`DELE ${checkNodePath(path)}`);
        if (r.code >= 200 && r.code < 300) return true;
        if (r.code === 550 && (await statFile(c, path, false)) === null) return false;
        throw new HopError(`node ${label} refused DELE ${path}: ${r.message}`);
      }),
    mkdirp: (d) => withClient(`MKD ${d}`, (c) => mkdirp(c, checkNodePath(d))),
    health: async () => {
      try {
        await withClient("NOOP", (c) => c.send("NOOP"));
        return true;
      } catch (e) {
        st.markDown(e);
        return false;
      }
    },
    freeSpace: async () => {
      // RFC draft AVBL, where a server has it (pure-ftpd does); unknown otherwise.
      try {
        return await withClient("AVBL", async (c) => {
          const r = await c.sendIgnoringError("AVBL");
          const n = r.code === 213 ? Number(r.message.slice(4).trim()) : NaN;
          return Number.isSafeInteger(n) ? n : null;
        });
      } catch {
        return null;
      }
    },
    sendTo: async (path, offset, target) => {
      checkNodePath(path);
      const c = await acquireCounted();
      if (!c) return false;
      let started = false;
      let healthy = false;
      const onAbort = () => c.close();
      target.signal.addEventListener("abort", onAbort);
      try {
        const port = target.family === 6
          ? `EPRT |2|${target.host}|${target.port}|`
          : `PORT ${target.host.replaceAll(".", ",")},${target.port >> 8},${target.port & 255}`;
        if ((await c.sendIgnoringError(port)).code !== 200) return (healthy = true, false);
        if (offset > 0 && (await c.sendIgnoringError(`REST ${offset}`)).code !== 350) {
          return (healthy = true, false);
        }
        const ftp = ftpContext(c);
        const end = await ftp.handle(`RETR ${path}`, (res, task) => {
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
        st.markUp();
        return true;
      } catch (e) {
        if (!started) {
          st.markDown(e);
          return false;
        }
        throw nodeError(`third-party RETR ${path}`, e);
      } finally {
        target.signal.removeEventListener("abort", onAbort);
        release(c, healthy);
        st.load--;
      }
    },
    list: (d) =>
      withClient(`listing ${d || "/"}`, async (c) => {
        // A long listing may be slow to start: the data timeout, not the reply timeout.
        const ctx = c.ftp as { timeout: number };
        ctx.timeout = timeout;
        try {
          const entries = await listDir(c, d === "" ? "" : checkNodePath(d), mlst ?? false);
          return entries.map((e) => ({ ...e, mtimeMs: e.isDir ? null : e.mtimeMs }));
        } finally {
          ctx.timeout = replyTimeout;
        }
      }),
    receiveFrom: async (path, size, send) => {
      checkNodePath(path);
      const c = await acquireCounted();
      if (!c) return false;
      let healthy = false;
      let begun = false;
      const tmp = nodeTempPath(path);
      const ac = new AbortController();
      try {
        const dir = nodePath.posix.dirname(path);
        if (dir !== ".") await mkdirp(c, dir);
        const r = await c.sendIgnoringError("PASV");
        const m = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(r.message);
        if (r.code !== 227 || !m) return (healthy = true, false);
        // A server may announce an address it cannot be reached at (0.0.0.0, NAT):
        // its control address is used then.
        const announced = `${m[1]}.${m[2]}.${m[3]}.${m[4]}`;
        const pasvHost = announced === "0.0.0.0" ? host : announced;
        const pasvPort = Number(m[5]) * 256 + Number(m[6]);
        const ftp = ftpContext(c);
        begun = true;
        const stored = ftp.handle(`STOR ${tmp}`, (res, task) => {
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
          const e = await dropTemp(c, tmp, null);
          if (e instanceof NodeLeftoverError) throw e;
          return false;
        }
        ftp.socket.setTimeout(timeout); // the sender is done: the receiver's reply follows
        await stored;
        await settle(c, tmp, path, size);
        healthy = true;
        st.markUp();
        return true;
      } catch (e) {
        if (e instanceof NodeLeftoverError) throw e;
        throw nodeError(`third-party STOR ${path}`, begun ? await dropTemp(c, tmp, e) : e);
      } finally {
        ac.abort();
        release(c, healthy);
        st.load--;
      }
    },
    close() {
      closed = true;
      for (const c of idle.splice(0)) c.close();
      for (const w of waiters.splice(0)) w();
    },
  };
}

/**
 * Choose `count` nodes for new copies of a `size`-byte file: nodes not believed down,
 * with room for it (unknown free space passes), least loaded first, then most free space.
 * `exclude` lists node keys that already hold a copy or just failed.
 */
export async function chooseNodes(
  nodes: readonly StorageNode[],
  count: number,
  size: number,
  exclude: ReadonlySet<string> = new Set(),
): Promise<StorageNode[]> {
  const candidates: { node: StorageNode; free: number }[] = [];
  for (const node of nodes) {
    if (exclude.has(node.key) || node.isDown()) continue;
    const free = await node.freeSpace();
    if (free !== null && free < size + 1024 * 1024) continue;
    candidates.push({ node, free: free ?? Number.MAX_SAFE_INTEGER });
  }
  rotation = (rotation + 1) % 1_000_000;
  candidates.sort((a, b) =>
    a.node.load - b.node.load || Math.sign(b.free - a.free) ||
    ((nodes.indexOf(a.node) + rotation) % nodes.length) -
      ((nodes.indexOf(b.node) + rotation) % nodes.length)
  );
  return candidates.slice(0, count).map((c) => c.node);
}
let rotation = 0;
