/**
 * The WebDAV driver (http and https), on the npm package `webdav` (PROPFIND,
 * PUT, GET with ranges, MOVE, MKCOL, DELETE; basic and digest auth). TLS is
 * set through an https agent (verification, trusted CAs, a client
 * certificate); under Bun, whose `node-fetch` is its own `fetch` and ignores
 * agents, the same settings go to Bun's `fetch` as its `tls` option.
 *
 * - Writes PUT to a temporary name in the target's folder, then MOVE with
 *   `Overwrite: T` over the target, whatever the server does with a PUT: a
 *   reader sees the old file or the whole new one, never part of it, but
 *   Apache mod_dav and `rclone serve webdav` both remove the target before
 *   they rename, so for a moment there is no file at the name.
 * - `check()` probes the server once: whether MKCOL of an existing collection
 *   fails (405, as RFC 4918 says; then folders are made atomically and relays
 *   keep their claim folders), whether it has WebDAV locks (class 2), and
 *   whether a PUT with `If-None-Match: *` on an existing file is refused.
 *   Exclusive creates are an exclusive LOCK of the name then a PUT under it
 *   where the server has locks (Apache with a DavLockDB, `rclone serve
 *   webdav`); else that conditional PUT where honoured (not atomic on every
 *   server: Apache checks, then writes, and two racing PUTs both won there);
 *   else the listing scheme of `exclusive.ts`. `rclone serve webdav` 1.60
 *   makes MKCOL of an existing folder succeed and ignores `If-None-Match`.
 * - Modification times are the server's `getlastmodified` (whole seconds);
 *   WebDAV has no portable way to set them. Free space from
 *   `quota-available-bytes` (RFC 4331) where the server tells it.
 *
 * @module
 */
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import process from "node:process";
import { Readable } from "node:stream";
import {
  createClient,
  type FileStat,
  getPatcher,
  type ResponseDataDetailed,
  type WebDAVClient,
} from "webdav";
import { counter, toReadable, toWeb } from "./streams.ts";
import {
  checkPath,
  type Driver,
  type Entry,
  joinPath,
  parentOf,
  StorageError,
  TEMP_PREFIX,
  tempPathFor,
} from "./types.ts";
import { createExclusiveByListing } from "./exclusive.ts";

/** Where and how to connect. */
export interface WebdavOptions {
  /** `http(s)://host[:port]/path` of the root collection. */
  url: string;
  user?: string;
  password?: string;
  /** Accept any server certificate. */
  insecureTls?: boolean;
  /** PEM CA certificate(s) to trust. */
  tlsCa?: string;
  /** Client certificate and key, PEM. */
  tlsCert?: string;
  tlsKey?: string;
  tlsVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2";
  /** Make the root collection when missing. */
  create?: boolean;
  /** Request inactivity timeout, ms (default 60 s). */
  timeoutMs?: number;
}

let bunFetchPatched = false;

/** Under Bun: node-fetch is Bun's fetch, which takes TLS settings as `tls`, not an agent. */
function patchFetchForBun(): void {
  if (bunFetchPatched || process.versions.bun === undefined) return;
  bunFetchPatched = true;
  getPatcher().patch("fetch", (...args: unknown[]) => {
    const url = String(args[0]);
    const o: Record<string, unknown> = { ...(args[1] as Record<string, unknown>) };
    const agentOf = o.agent as ((u: URL) => { options?: Record<string, unknown> }) | undefined;
    delete o.agent;
    if (agentOf) {
      const a = agentOf(new URL(url)).options ?? {};
      o.tls = {
        rejectUnauthorized: a.rejectUnauthorized,
        ...(a.ca ? { ca: a.ca } : {}),
        ...(a.cert ? { cert: a.cert, key: a.key } : {}),
      };
    }
    if (o.body instanceof Readable) {
      o.body = toWeb(o.body);
      o.duplex = "half";
    }
    return globalThis.fetch(url, o as RequestInit);
  });
}

function statusOf(e: unknown): number | undefined {
  const s = (e as { status?: unknown; response?: { status?: unknown } })?.status ??
    (e as { response?: { status?: unknown } })?.response?.status;
  return typeof s === "number" ? s : undefined;
}

/** What hop reads of a response. */
interface Resp {
  status: number;
  statusText: string;
  body?: unknown;
  headers?: { get(name: string): string | null };
}

/** Opens a WebDAV storage (requests are made on each call; `check()` probes now). */
export function webdavDriver(o: WebdavOptions): Driver {
  patchFetchForBun();
  const base = new URL(o.url);
  const user = o.user ?? "";
  const where = base.host;
  const redacted = new URL(base.href);
  if (user) redacted.username = encodeURIComponent(user);
  const label = redacted.href.replace(/^http/, "webdav").replace(/\/$/, "");
  const agentOpts = {
    keepAlive: true,
    timeout: o.timeoutMs ?? 60_000,
  };
  const secure = base.protocol === "https:";
  const clientOpts = {
    username: o.user,
    password: o.password,
    ...(secure
      ? {
        httpsAgent: new HttpsAgent({
          ...agentOpts,
          rejectUnauthorized: !o.insecureTls,
          ...(o.tlsCa ? { ca: o.tlsCa } : {}),
          ...(o.tlsCert ? { cert: o.tlsCert, key: o.tlsKey ?? o.tlsCert } : {}),
          ...(o.tlsVersion ? { minVersion: o.tlsVersion, maxVersion: o.tlsVersion } : {}),
        }),
      }
      : { httpAgent: new HttpAgent(agentOpts) }),
  };
  const client: WebDAVClient = createClient(base.href, clientOpts);
  const caps = {
    atomicMkdir: false,
    exclusive: "listing" as "native" | "listing",
    rangedRead: true,
    folders: true,
    atomicPut: false,
  };
  let probed: Promise<void> | null = null;
  /** How exclusive creates are made, once probed: `If-None-Match: *`, a WebDAV LOCK, or a listing. */
  let exclusiveBy: "inm" | "lock" | "listing" = "listing";

  const at = (p: string, rootOk = false) => "/" + checkPath(p, rootOk);

  const err = (e: unknown, what: string, name?: string): StorageError => {
    if (e instanceof StorageError) return e;
    const subject = name ? `${what} ${name}` : what;
    const status = statusOf(e);
    const msg = `${label}: cannot ${subject}: ${(e as Error)?.message ?? e}`;
    const h = (hint: string) => ({ cause: e, hint });
    if (status === 401) {
      return new StorageError(
        "auth",
        msg,
        h(`Check the user (${user || "none"}) and password for ${where}.`),
      );
    }
    if (status === 403) {
      return new StorageError(
        "denied",
        msg,
        h(`The server refused: check that ${user || "this login"} may write there.`),
      );
    }
    if (status === 404 || status === 409) {
      return new StorageError("missing", msg, h("The file or folder is not there."));
    }
    if (status === 507 || status === 413) {
      return new StorageError(
        "full",
        msg,
        h("The storage is full (disk or quota): free space on it (on a relay, or lower `maxpagesize`)."),
      );
    }
    if (status === 405 || status === 501) {
      return new StorageError(
        "unsupported",
        msg,
        h("The WebDAV server does not allow this method here."),
      );
    }
    if (status !== undefined) {
      return new StorageError("other", msg, h("The WebDAV server refused; its reply is above."));
    }
    const code = String((e as { code?: unknown })?.code ?? "") + " " +
      String((e as { cause?: { code?: unknown } })?.cause?.code ?? "") + " " + msg;
    if (/cert|self.signed|UNABLE_TO_VERIFY|ERR_TLS|SSL|TLS|UnknownIssuer/i.test(code)) {
      return new StorageError(
        "tls",
        msg,
        h("The TLS connection failed: trust the server's certificate (its CA), or for a self-signed test server allow insecure TLS."),
      );
    }
    if (/ECONNREFUSED|ConnectionRefused/i.test(code)) {
      return new StorageError(
        "connect",
        msg,
        h(`Is the WebDAV server at ${where} running? Check the host and port.`),
      );
    }
    return new StorageError(
      "connect",
      msg,
      h(`The connection to ${where} failed or dropped; hop retries on the next pass.`),
    );
  };

  const wrap = async <T>(
    what: string,
    name: string | undefined,
    f: () => Promise<T>,
  ): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw err(e, what, name);
    }
  };

  /**
   * One request; resolves to the response whatever its status (the library
   * throws for errors). `423 Locked` (a server's own lock held by a request
   * under way, as `rclone serve webdav` takes them) is retried a few times.
   */
  const req = async (
    p: string,
    method: string,
    headers: Record<string, string> = {},
    data?: unknown,
  ): Promise<Resp> => {
    for (let attempt = 0;; attempt++) {
      let r: Resp;
      try {
        r = await client.customRequest(p, { method, headers, data: data as never }) as never;
      } catch (e) {
        const resp = (e as { response?: { status: number; statusText: string } }).response;
        if (!resp || typeof resp.status !== "number") throw e;
        r = resp;
      }
      if (r.status !== 423 || attempt >= 8 || data instanceof Readable) return r;
      await new Promise((res) => setTimeout(res, 50 * (attempt + 1)));
    }
  };

  const entryOf = (s: FileStat): Entry => {
    const t = Date.parse(s.lastmod);
    return {
      name: s.basename,
      isDir: s.type === "directory",
      size: s.type === "directory" ? 0 : Number(s.size),
      mtimeMs: Number.isFinite(t) ? t : null,
    };
  };

  const statAt = async (p: string): Promise<Entry | null> => {
    try {
      const s = await client.stat(at(p, true)) as FileStat | ResponseDataDetailed<FileStat>;
      return entryOf("data" in s ? s.data : s);
    } catch (e) {
      if (statusOf(e) === 404) return null;
      throw e;
    }
  };

  /** MKCOL each folder of `dir` that is not there. */
  const mkdirs = async (dir: string) => {
    let sofar = "";
    for (const part of dir.split("/")) {
      sofar = joinPath(sofar, part);
      const r = await req(at(sofar), "MKCOL");
      if (r.status >= 400 && r.status !== 405) {
        const st = await statAt(sofar);
        if (!st?.isDir) {
          throw Object.assign(new Error(`MKCOL ${sofar}: ${r.status} ${r.statusText}`), {
            status: r.status,
          });
        }
      }
    }
  };

  const put = async (
    p: string,
    data: Parameters<typeof toReadable>[0],
    headers: Record<string, string> = {},
  ) => {
    const counted = counter();
    // bytes as a Buffer: the library sends any other object as JSON
    const body = data instanceof Uint8Array
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : toReadable(data).pipe(counted.stream);
    const r = await req(at(p), "PUT", {
      "Content-Type": "application/octet-stream",
      ...(data instanceof Uint8Array ? { "Content-Length": String(data.length) } : {}),
      ...headers,
    }, body);
    return {
      status: r.status,
      statusText: r.statusText,
      bytes: data instanceof Uint8Array ? data.length : counted.bytes(),
    };
  };

  const failOf = (r: { status: number; statusText: string }, what: string) =>
    Object.assign(new Error(`${what}: ${r.status} ${r.statusText}`), { status: r.status });

  const move = async (from: string, to: string) => {
    const dest = new URL(
      base.href.replace(/\/?$/, "/") + to.split("/").map(encodeURIComponent).join("/"),
    );
    const r = await req(at(from), "MOVE", { Destination: dest.href, Overwrite: "T" });
    if (r.status >= 400) {
      // some servers answer 403 for a source that is not there
      if (r.status !== 404 && !(await statAt(from))) {
        throw failOf({ ...r, status: 404 }, `MOVE ${from}`);
      }
      throw failOf(r, `MOVE ${from}`);
    }
  };

  async function probe(): Promise<void> {
    const root = await statAt("").catch((e) => {
      if (statusOf(e) === 404 || statusOf(e) === 409) return null;
      throw e;
    });
    if (!root) {
      if (!o.create) {
        throw new StorageError("missing", `${label}: no folder ${base.pathname}`, {
          hint: "Create the folder on the server first (hop does not create it unless asked), " +
            "or fix the path in the address.",
        });
      }
      // each folder of the root's path, from the server's top
      const top = createClient(base.origin, clientOpts);
      let sofar = "";
      for (const part of base.pathname.split("/").filter((x) => x)) {
        sofar += "/" + part;
        await top.customRequest(sofar, { method: "MKCOL" }).catch(() => {});
      }
      if (!(await statAt(""))) {
        throw Object.assign(new Error("cannot make the root collection"), { status: 404 });
      }
    }
    const name = TEMP_PREFIX + "probe-" + randomBytes(6).toString("hex");
    const r1 = await req(at(name), "MKCOL");
    if (r1.status >= 300) throw failOf(r1, "MKCOL");
    const r2 = await req(at(name), "MKCOL");
    caps.atomicMkdir = r2.status === 405;
    await req(at(name), "DELETE").catch(() => {});
    const file = name + ".f";
    const p1 = await put(file, new Uint8Array(1));
    if (p1.status >= 300) throw failOf(p1, "PUT");
    const p2 = await put(file, new Uint8Array(2), { "If-None-Match": "*" });
    await req(at(file), "DELETE").catch(() => {});
    const opts = await req(at("", true), "OPTIONS");
    const dav = String(opts.headers?.get("dav") ?? "");
    // An exclusive LOCK first: Apache checks If-None-Match and then writes, so two
    // racing PUTs both won there (seen); its LOCKs go through its lock database.
    exclusiveBy = /\b2\b/.test(dav) ? "lock" : p2.status === 412 ? "inm" : "listing";
    caps.exclusive = exclusiveBy === "listing" ? "listing" : "native";
  }

  /**
   * Exclusive create on a server that ignores `If-None-Match` but has WebDAV
   * locks (class 2, as `rclone serve webdav`): an exclusive LOCK of the name
   * (the server makes an empty file for it: 201 when the name was free), a PUT
   * under the lock, then UNLOCK. A racer's LOCK gets 423; a later one finds
   * the file there (200). A crash between LOCK and PUT leaves an empty file
   * and a lock that expires after 30 s.
   */
  async function createUnderLock(p: string, data: Uint8Array): Promise<boolean> {
    if (await statAt(p)) return false;
    const body = `<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>hop</D:owner></D:lockinfo>`;
    const r = await req(at(p), "LOCK", {
      "Content-Type": "application/xml; charset=utf-8",
      Depth: "0",
      Timeout: "Second-30",
    }, Buffer.from(body));
    if (r.status === 423) return false;
    if (r.status !== 200 && r.status !== 201) throw failOf(r, `LOCK ${p}`);
    const token = String(r.headers?.get("lock-token") ?? "")
      .replace(/^<|>$/g, "");
    try {
      // Under the lock the name is empty (made for the lock: rclone; a lock-null
      // name: Apache) unless a racer finished before: its bytes are there.
      const st = await statAt(p);
      if (st && (st.isDir || st.size > 0)) return false;
      const url = base.href.replace(/\/?$/, "/") + p.split("/").map(encodeURIComponent).join("/");
      const w = await put(p, data, { If: `<${url}> (<${token}>)` });
      // Apache sometimes refuses its own fresh token when LOCKs race (412): nothing was
      // written, so this attempt lost; the next one races again.
      if (w.status === 412) return false;
      if (w.status >= 300) throw failOf(w, `PUT ${p}`);
      return true;
    } finally {
      await req(at(p), "UNLOCK", { "Lock-Token": `<${token}>` }).catch(() => {});
    }
  }

  const driver: Driver = {
    label,
    caps,
    list: (d) =>
      wrap("list", d || undefined, async () => {
        const r = await client.getDirectoryContents(at(d, true)) as FileStat[];
        return r.map(entryOf);
      }),
    stat: (p) => wrap("stat", p, () => statAt(p)),
    read: (p, offset = 0) =>
      wrap("read", p, async () => {
        const r = await req(at(p), "GET", offset > 0 ? { Range: `bytes=${offset}-` } : {});
        if (r.status >= 300) throw failOf(r, `GET ${p}`);
        if (offset > 0 && r.status !== 206) throw failOf(r, `GET ${p} from ${offset} (no range)`);
        const body = r.body;
        if (!body) return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
        const web = body instanceof Readable ? toWeb(body) : body as ReadableStream<Uint8Array>;
        const reader = web.getReader();
        return new ReadableStream<Uint8Array>({
          async pull(c) {
            try {
              const x = await reader.read();
              if (x.done) c.close();
              else c.enqueue(x.value instanceof Uint8Array ? x.value : new Uint8Array(x.value));
            } catch (e) {
              c.error(err(e, "read", p));
            }
          },
          cancel: (why) => reader.cancel(why),
        }, { highWaterMark: 0 });
      }),
    write: (p, data, wo) =>
      wrap("write", p, async () => {
        checkPath(p);
        if (parentOf(p)) await mkdirs(parentOf(p));
        const direct = wo?.direct ?? false;
        const tmp = direct ? p : tempPathFor(p);
        const r = await put(tmp, data);
        if (r.status >= 300) throw failOf(r, `PUT ${p}`);
        if (direct) return r.bytes;
        try {
          await move(tmp, p);
        } catch (e) {
          await req(at(tmp), "DELETE").catch(() => {});
          throw e;
        }
        return r.bytes;
      }),
    createExclusive: (p, data) =>
      wrap("create", p, async () => {
        checkPath(p);
        await driver.check();
        if (exclusiveBy === "listing") return await createExclusiveByListing(driver, p, data);
        if (exclusiveBy === "inm") {
          const r = await put(p, data, { "If-None-Match": "*" });
          if (r.status === 412) return false;
          if (r.status >= 300) throw failOf(r, `PUT ${p}`);
          return true;
        }
        return await createUnderLock(p, data);
      }),
    delete: (p) =>
      wrap("delete", p, async () => {
        const r = await req(at(p), "DELETE");
        if (r.status === 404) return false;
        if (r.status >= 300) throw failOf(r, `DELETE ${p}`);
        return true;
      }),
    mkdir: (p) =>
      wrap("create", p, async () => {
        checkPath(p);
        await driver.check();
        if (parentOf(p)) await mkdirs(parentOf(p));
        // where MKCOL of an existing folder succeeds, look first (not atomic: see caps)
        if (!caps.atomicMkdir && (await statAt(p))?.isDir) return false;
        const r = await req(at(p), "MKCOL");
        if (r.status < 300) return true;
        const st = await statAt(p);
        if (st?.isDir) return false;
        throw failOf(r, `MKCOL ${p}`);
      }),
    rmdir: (p) =>
      wrap("remove", p, async () => {
        const st = await statAt(p);
        if (!st?.isDir) return;
        const inside = await client.getDirectoryContents(at(p)) as FileStat[];
        if (inside.length > 0) return; // only empty folders (DELETE would remove the tree)
        await req(at(p), "DELETE");
      }),
    rename: (from, to) =>
      wrap("rename", from, async () => {
        checkPath(from);
        checkPath(to);
        if (parentOf(to)) await mkdirs(parentOf(to));
        await move(from, to);
      }),
    freeSpace: async () => {
      try {
        const q = await client.getQuota() as { available?: unknown } | null;
        const n = Number(q?.available);
        return Number.isSafeInteger(n) && n >= 0 ? n : null;
      } catch {
        return null;
      }
    },
    check: () =>
      wrap("connect to", undefined, () =>
        probed ??= probe().catch((e) => {
          probed = null;
          throw e;
        })),
    close() {
      return Promise.resolve();
    },
  };
  return driver;
}
