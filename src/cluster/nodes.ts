/**
 * Storage nodes of the FTP cluster. A node is a storage address
 * (`../storage/address.ts`): `ftp://user@host:port/dir` (any FTP server;
 * control connections pooled, third-party transfers), `file:///path` (a local
 * folder), `sftp://user@host/dir`, `webdav(s)://host/path`, `http(s)://...`,
 * `s3://bucket/prefix?endpoint=...` or `rclone://remote/path`; a password may
 * come from `?password-file=` or `?password-env=` (`../secrets.ts`). Each node
 * is a storage driver (`../storage/`) with what the cluster adds: its key in
 * link files, its load (transfers and operations under way), whether it is
 * believed down (after a connection failure, for a growing while) and why,
 * and reads that resolve only once their first byte arrived, so a reader can
 * fail over to another copy. Where a driver cannot send to a client itself
 * (all but FTP), the cluster streams the data with backpressure.
 *
 * Writes are atomic: `put` (and `receiveFrom`) store the data under a temporary name in
 * the target's folder (`hop-part-<hash>`, {@linkcode NODE_TEMP}), check its size
 * on the node, and only then rename it to the target, so a node path named by a link
 * never holds a cut-off file (object storage, where a PUT is whole or nothing, writes
 * the target itself and checks its size). A failed write removes its temporary file
 * where the node still answers, else reports it ({@linkcode NodeLeftoverError}) for
 * deletion later; audit and cleanup recognise such names and delete them, never adopt
 * them.
 *
 * A sick node holds no one hostage: every FTP command reply (and the login, and the first
 * byte of a download) must come within `connect-timeout` (default 5 s), a data connection
 * may stay idle at most `timeout` (default 30 s), and at most `connections` (default 16)
 * operations run on one node at once; a node that fails is skipped for a while. Per node,
 * as URL parameters: `ftp://u@host/dir?connect-timeout=3&timeout=20&connections=4`.
 *
 * Third-party RETR (`sendTo`, FTP nodes, used for active-mode clients): the
 * node connects to the client itself. It only does this when it accepts a data
 * address other than the cluster server's own: vsftpd needs
 * `port_promiscuous=YES`, pure-ftpd FXP allowed (`--allowuserfxp`), pyftpdlib
 * `permit_foreign_addresses = True`; hop's own node server refuses (bounce
 * protection). A refused PORT makes `sendTo` resolve false and the cluster
 * streams the file itself.
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

import { createHash } from "node:crypto";
import * as nodePath from "node:path";
import type { Readable } from "node:stream";
import { HopError } from "../errors.ts";
import { urlSecret } from "../secrets.ts";
import { openAddress, parseAddress } from "../storage/mod.ts";
import { type Driver, StorageError } from "../storage/types.ts";

/** A copy of a file sits on a node at a relative node path like `61/47/260101-120000-a.txt`. */
export interface StorageNode {
  /**
   * Key written in link files' `server` lines: `ftp://host:port/dir` for an FTP node
   * (`host:port` at the top of the server), `file:///abs/dir` for folders, the address
   * without secrets for the others (`s3://bucket/prefix` for S3).
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

const NODE_FORMS = "Give nodes as ftp://user@host:port/dir?password-file=FILE, file:///path, " +
  "sftp://user@host/dir, webdav(s)://host/path, s3://bucket/prefix?endpoint=URL or " +
  "rclone://remote/path.";

/** Parses and opens a node address. Throws HopError for anything else. */
export function openNode(given: string, options: NodeOptions = {}): StorageNode {
  // a password named by ?password-file= or ?password-env= (kept out of ps) is read here
  const { url: withSecret } = urlSecret(given);
  let own: NodeOptions;
  let url: string;
  let a;
  try {
    [url, own] = urlOptions(withSecret);
    a = parseAddress(url);
  } catch (e) {
    if (e instanceof HopError && !(e.name === "UsageError")) throw e;
    throw new HopError(`bad node URL "${redactUrl(withSecret)}": ${(e as Error).message}`, {
      hint: NODE_FORMS,
      cause: e,
    });
  }
  if (a.kind === "folder" && !/^file:/i.test(url)) {
    throw new HopError(`unsupported node URL "${redactUrl(url)}"`, { hint: NODE_FORMS });
  }
  const o = { ...options, ...own };
  let key: string;
  let legacyKey: string | undefined;
  let label: string;
  let creds: { user?: string; password?: string } = {};
  if (a.kind === "folder") {
    key = label = "file://" + a.path;
  } else if (a.kind === "ftp" && !a.secure) {
    // Two folders of one FTP server are two nodes: the folder is part of the key. A node
    // at the server's top keeps the older form `host:port`, which its folder nodes' links
    // written before still name (`legacyKey`).
    const hostKey = `${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
    const pathname = new URL(url).pathname.replace(/\/+$/, "");
    key = pathname === "" ? hostKey : `ftp://${hostKey}${pathname}`;
    if (key !== hostKey) legacyKey = hostKey;
    label = redactUrl(url);
    // an FTP node's folder is taken from the server's top, as before
    a = { ...a, dir: a.dir === "" ? "/" : "/" + a.dir.replace(/^\/+/, "") };
  } else if (a.kind === "s3") {
    // the bucket and prefix name the copies, whatever key reads them
    label = redactUrl(url);
    key = `s3://${a.bucket}/${a.prefix}`.replace(/\/+$/, "");
  } else {
    label = redactUrl(url);
    key = label.replace(/\?.*$/, "").replace(/\/+$/, "").replace(/:\*\*\*@/, "@");
  }
  if (a.kind === "ftp" || a.kind === "sftp" || a.kind === "webdav") {
    creds = { user: a.user, password: a.password };
    a = { ...a, user: undefined, password: undefined };
  } else if (a.kind === "s3") {
    const u = new URL(url);
    creds = {
      user: u.username ? decodeURIComponent(u.username) : undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
    };
  }
  const driver = openAddress(a, {
    ...creds,
    create: a.kind === "folder",
    maxConnections: o.maxConnections ?? 16,
    timeoutMs: o.timeoutMs ?? 30_000,
    connectTimeoutMs: o.connectTimeoutMs ?? 5000,
  });
  driver.catch(() => {}); // reported by the first call
  return nodeOnDriver(driver, key, label, o, legacyKey);
}

/** The node's own settings from its URL parameters, and the URL without them. */
function urlOptions(url: string): [string, NodeOptions] {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || !url.includes("?")) return [url, {}];
  const u = new URL(url);
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
  // an S3 node's endpoint and region stay in its address
  const kept = u.protocol === "s3:" ? ["endpoint", "region"] : [];
  for (const key of [...u.searchParams.keys()]) {
    if (["connect-timeout", "timeout", "connections"].includes(key)) u.searchParams.delete(key);
    else if (!kept.includes(key)) {
      throw new HopError(`unknown node URL parameter ${key} in ${redactUrl(u.href)}`, {
        hint: "Node URLs take connect-timeout, timeout (seconds), connections, " +
          "password-file or password-env (read when the node is opened), and for s3:// " +
          "endpoint and region.",
      });
    }
  }
  return [u.href.replace(/\?$/, ""), out];
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

/** Tracks down-ness and load of a node. */
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
 * True when `e` (or what caused it) is a connection that was never made: refused, or a
 * host name that does not resolve. Such a write sent nothing, so it left no file.
 */
function neverConnected(e: unknown): boolean {
  for (let c = e, depth = 0; c && depth < 6; c = (c as { cause?: unknown }).cause, depth++) {
    const code = (c as { code?: unknown }).code;
    if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN") return true;
  }
  return false;
}

/** True when `e` says the node cannot be reached (rather than refusing one file). */
function unreachable(e: unknown): boolean {
  return !(e instanceof StorageError) ||
    e.kind === "connect" || e.kind === "auth" || e.kind === "tls";
}

/** A node on a storage driver (opened by `open`); see the module doc. */
export function nodeOnDriver(
  open: Promise<Driver>,
  key: string,
  label: string,
  options: NodeOptions = {},
  legacyKey?: string,
): StorageNode {
  const st = nodeState(options.downForMs ?? 5000);
  /** Runs `f` counted as load; an unreachable node is marked down, a success marks it up. */
  const track = async <T>(what: string, f: (d: Driver) => Promise<T>): Promise<T> => {
    st.load++;
    try {
      const r = await f(await open);
      st.markUp();
      return r;
    } catch (e) {
      if (unreachable(e)) st.markDown(e);
      throw nodeError(what, e);
    } finally {
      st.load--;
    }
  };
  const nodeError = (what: string, e: unknown) =>
    e instanceof HopError && !(e instanceof StorageError)
      ? e
      : new HopError(`${what} on node ${label} failed: ${(e as Error)?.message ?? e}`, {
        hint: (e as HopError)?.hint ??
          "Check that the node's server runs and the URL's user, password and folder are right.",
        cause: e,
      });
  /** Throws unless the file at `p` has `size` bytes. */
  const checkSize = async (d: Driver, p: string, size: number) => {
    const got = (await d.stat(p))?.size ?? null;
    if (got !== size) throw new Error(`size on the node is ${got}, expected ${size}`);
  };
  /** The temporary file `tmp` must have `size` bytes; then it becomes `path`. */
  const settle = async (d: Driver, tmp: string, path: string, size: number) => {
    await checkSize(d, tmp, size);
    await d.rename!(tmp, path);
  };
  /** After a failed write: removes `tmp` if the node lets us; the error to throw. */
  const dropTemp = async (d: Driver, tmp: string, e: unknown): Promise<unknown> => {
    try {
      await d.delete(tmp);
      return e;
    } catch {
      // a write that could not even connect left nothing behind
      if (neverConnected(e)) return e;
      return new NodeLeftoverError(
        `storing on node ${label} failed (${(e as Error)?.message ?? e}); ${tmp} is left there`,
        tmp,
        e,
      );
    }
  };
  return {
    key,
    legacyKey,
    label,
    get load() {
      return st.load;
    },
    isDown: () => st.isDown(),
    lastError: () => st.lastError,
    put: (path, source, size) =>
      track(`storing ${path}`, async (d) => {
        checkNodePath(path);
        if (d.caps.atomicPut) {
          // object storage: a PUT is whole or nothing; then its size is checked
          await d.write(path, source);
          await checkSize(d, path, size).catch(async (e) => {
            await d.delete(path).catch(() => {});
            throw e;
          });
          return size;
        }
        const tmp = nodeTempPath(path);
        try {
          const n = await d.write(tmp, source, { direct: true });
          await settle(d, tmp, path, size);
          return n;
        } catch (e) {
          throw await dropTemp(d, tmp, e);
        }
      }),
    get: async (path, offset) => {
      checkNodePath(path);
      st.load++;
      let done = false;
      const finish = () => {
        if (!done) {
          done = true;
          st.load--;
        }
      };
      let reader: ReadableStreamDefaultReader<Uint8Array>;
      let first: ReadableStreamReadResult<Uint8Array>;
      try {
        const d = await open;
        reader = (await d.read(path, offset)).getReader();
        first = await reader.read();
        st.markUp();
      } catch (e) {
        finish();
        if (unreachable(e)) st.markDown(e);
        throw nodeError(`reading ${path}`, e);
      }
      let pending: ReadableStreamReadResult<Uint8Array> | null = first;
      return new ReadableStream<Uint8Array>({
        async pull(c) {
          try {
            const r = pending ?? await reader.read();
            pending = null;
            if (r.done) {
              finish();
              c.close();
            } else c.enqueue(r.value);
          } catch (e) {
            finish();
            if (unreachable(e)) st.markDown(e);
            c.error(nodeError(`reading ${path}`, e));
          }
        },
        async cancel(reason) {
          finish();
          await reader.cancel(reason).catch(() => {});
        },
      }, { highWaterMark: 0 });
    },
    size: (path) =>
      track(`SIZE ${path}`, async (d) => {
        const e = await d.stat(checkNodePath(path));
        return e && !e.isDir ? e.size : null;
      }),
    remove: (path) => track(`deleting ${path}`, (d) => d.delete(checkNodePath(path))),
    mkdirp: (dir) => track(`MKD ${dir}`, async (d) => void await d.mkdir(checkNodePath(dir))),
    health: async () => {
      try {
        await track("health check", (d) => d.check());
        return true;
      } catch (e) {
        st.markDown(e);
        return false;
      }
    },
    freeSpace: async () => {
      try {
        const d = await open;
        return (await d.freeSpace?.()) ?? null;
      } catch {
        return null;
      }
    },
    sendTo: async (path, offset, target) => {
      checkNodePath(path);
      const d = await open.catch(() => null);
      if (!d?.sendTo) return false;
      st.load++;
      try {
        return await d.sendTo(path, offset, target);
      } catch (e) {
        throw nodeError(`third-party RETR ${path}`, e);
      } finally {
        st.load--;
      }
    },
    list: (dir) =>
      track(`listing ${dir || "/"}`, async (d) => {
        const entries = await d.list(dir === "" ? "" : checkNodePath(dir));
        return entries.map((e) => ({ ...e, mtimeMs: e.isDir ? null : e.mtimeMs }));
      }),
    receiveFrom: async (path, size, send) => {
      checkNodePath(path);
      const d = await open.catch(() => null);
      if (!d?.receiveFrom) return false;
      st.load++;
      const tmp = nodeTempPath(path);
      try {
        if (!(await d.receiveFrom(tmp, send))) {
          const left = await dropTemp(d, tmp, null);
          if (left instanceof NodeLeftoverError) throw left;
          return false;
        }
        await settle(d, tmp, path, size);
        st.markUp();
        return true;
      } catch (e) {
        if (e instanceof NodeLeftoverError) throw e;
        throw nodeError(`third-party STOR ${path}`, await dropTemp(d, tmp, e));
      } finally {
        st.load--;
      }
    },
    close() {
      open.then((d) => d.close()).catch(() => {});
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
