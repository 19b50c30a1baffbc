/**
 * The FTP / explicit-FTPS relay backend, on basic-ftp: one control connection
 * per backend, commands serialised by a queue, reconnected when it drops (and
 * an idempotent call retried once). Atomic writes upload to a temp name then
 * RNFR/RNTO over the target (rename(2) replaces on pyftpdlib and vsftpd);
 * exclusive creates use the claim folders of `exclusive.ts` (MKD is atomic).
 * Mtimes come from MLSD/MLST when the server has them, else from MDTM (one
 * per file: a listing on a LIST-only server such as vsftpd costs a round trip
 * per file); they are set with MFMT, else vsftpd's `MDTM time name`.
 * Logging in, data connections (FTPS included) and listings are those of
 * `../../ftp/client.ts`, shared with the cluster's FTP nodes.
 *
 * @example
 * ```ts
 * const relay = await ftpBackend({ host: "127.0.0.1", port: 2121, user: "bob", password: "pw", dir: "relay" });
 * try { console.log(await relay.list()); } finally { await relay.close(); }
 * ```
 *
 * @module
 */
import { type Client, FTPError } from "basic-ftp";
import { Readable, Transform, Writable } from "node:stream";
import { connectFtp, listDir, mlsxStamp, statFile } from "../../ftp/client.ts";
import { type ClaimOps, claimState, createExclusive, deleteWithClaim } from "./exclusive.ts";
import {
  checkName,
  CLAIM_SUFFIX,
  type RelayBackend,
  RelayError,
  type RelayFile,
  tempName,
} from "./types.ts";

/** Where and how to connect. */
export interface FtpOptions {
  host: string;
  /** Default 21. */
  port?: number;
  /** Default `anonymous`. */
  user?: string;
  password?: string;
  /** Relay folder; relative to the login folder unless it starts with `/`. Default: the login folder. */
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
  /** Make the relay folder when missing. Default false. */
  create?: boolean;
  /** Control/data inactivity timeout, ms (default 60 s). */
  timeoutMs?: number;
  /** How long a claim without its file is tolerated (ms, default 60 s). */
  claimGraceMs?: number;
}

interface Conn {
  client: Client;
  mlst: boolean;
  mfmt: boolean;
  /** Absolute path of the relay folder on the server. */
  home: string;
}

/** A queue of one: `take()` resolves with a release function in call order. */
function mutex(): () => Promise<() => void> {
  let tail: Promise<void> = Promise.resolve();
  return () => {
    let release!: () => void;
    const held = new Promise<void>((r) => release = r);
    const before = tail;
    tail = tail.then(() => held);
    return before.then(() => release);
  };
}

/** Opens an FTP relay: connects and logs in now, so a wrong password fails here. */
export async function ftpBackend(opts: FtpOptions): Promise<RelayBackend> {
  const port = opts.port ?? 21;
  const user = opts.user ?? "anonymous";
  const where = `${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`;
  const dirPart = opts.dir ? (opts.dir.startsWith("/") ? opts.dir : "/" + opts.dir) : "/";
  const label = `${opts.secure ? "ftps" : "ftp"}://${encodeURIComponent(user)}@${where}${dirPart}`;
  const take = mutex();
  const claims = claimState(opts.claimGraceMs);
  let conn: Conn | null = null;
  let closed = false;

  const err = (e: unknown, what: string, name?: string) =>
    mapFtpError(e, { what, name, label, where, user });

  async function connect(): Promise<Conn> {
    let client: Client | null = null;
    try {
      client = await connectFtp({
        host: opts.host,
        port,
        user,
        password: opts.password,
        secure: opts.secure,
        insecureTls: opts.insecureTls,
        tlsCa: opts.tlsCa,
        tlsCert: opts.tlsCert,
        tlsKey: opts.tlsKey,
        tlsVersion: opts.tlsVersion,
        timeoutMs: opts.timeoutMs ?? 60_000,
      });
      const feats = await client.features();
      if (opts.dir) {
        try {
          await client.cd(opts.dir);
        } catch (e) {
          if (!(e instanceof FTPError) || !opts.create) throw e;
          await client.ensureDir(opts.dir);
        }
      }
      const home = await client.pwd();
      return { client, mlst: feats.has("MLST"), mfmt: feats.has("MFMT"), home };
    } catch (e) {
      client?.close();
      if (e instanceof FTPError && e.code === 550) {
        throw new RelayError("missing", `relay ${label}: no folder ${opts.dir}: ${e.message}`, {
          cause: e,
          hint: "Create the relay folder on the server first (hop does not create it unless " +
            "asked), or fix the path in the URL.",
        });
      }
      throw err(e, "connect to");
    }
  }

  function drop() {
    conn?.client.close();
    conn = null;
  }

  /** Runs `fn` alone on the connection; retries once on a dropped connection when `retry`. */
  async function run<T>(
    what: string,
    name: string | undefined,
    retry: boolean,
    fn: (c: Conn) => Promise<T>,
  ): Promise<T> {
    if (closed) throw new RelayError("other", `relay ${label} is closed`);
    const release = await take();
    try {
      for (let attempt = 0;; attempt++) {
        if (closed) throw new RelayError("other", `relay ${label} is closed`);
        conn ??= await connect();
        try {
          return await fn(conn);
        } catch (e) {
          if (e instanceof RelayError) throw e;
          const dropped = conn.client.closed || !(e instanceof FTPError) ||
            (e as FTPError).code === 421;
          if (dropped) drop();
          if (dropped && retry && attempt === 0) continue;
          throw err(e, what, name);
        }
      }
    } finally {
      release();
    }
  }

  async function statOn(c: Conn, name: string): Promise<RelayFile | null> {
    const st = await statFile(c.client, name, c.mlst);
    if (!st) return null;
    if (st.mtimeMs === null) {
      throw new RelayError("unsupported", `relay ${label}: the server tells no mtime of ${name}`, {
        hint: "Relays over FTP need MLST or MDTM: use a server that has them (most do).",
      });
    }
    return { name, size: st.size, mtimeMs: st.mtimeMs };
  }

  async function uploadAtomic(c: Conn, name: string, source: Readable): Promise<void> {
    const tmp = tempName(name);
    // A failed upload is reported by uploadFrom; Bun's pipeline can also destroy the source
    // with the same error once it is done with it, which must not be an uncaught 'error'.
    source.on("error", () => {});
    try {
      await c.client.uploadFrom(source, tmp);
      await c.client.rename(tmp, name);
    } catch (e) {
      if (!c.client.closed) await c.client.sendIgnoringError(`DELE ${tmp}`).catch(() => {});
      throw e;
    }
  }

  /** Primitives for exclusive create; they run inside `run` (the connection is held). */
  function claimOps(c: Conn): ClaimOps {
    const q = (name: string) => c.client.protectWhitespace(name);
    return {
      async mkdir(name) {
        const res = await c.client.sendIgnoringError(`MKD ${await q(name)}`);
        if (res.code === 257) return true;
        // Failed: because it exists (a claim), or for another reason?
        const cd = await c.client.sendIgnoringError(`CWD ${await q(name)}`);
        if (cd.code >= 400) throw new FTPError({ code: res.code, message: res.message });
        await c.client.send(`CWD ${c.home}`);
        return false;
      },
      async rmdir(name) {
        await c.client.sendIgnoringError(`RMD ${await q(name)}`);
      },
      async exists(name) {
        return (await statOn(c, name)) !== null;
      },
      writeAtomic(name, data) {
        return uploadAtomic(c, name, Readable.from(data.length ? [data] : []));
      },
      async unlink(name) {
        const res = await c.client.sendIgnoringError(`DELE ${await q(name)}`);
        if (res.code >= 400 && (await statOn(c, name)) !== null) {
          throw new FTPError({ code: res.code, message: res.message });
        }
      },
    };
  }

  // Connect now: a wrong address or password is reported by openBackend.
  conn = await connect();

  return {
    label,
    async list() {
      return await run("list", undefined, true, async (c) => {
        const out: RelayFile[] = [];
        for (const e of await listDir(c.client, "", c.mlst)) {
          if (e.isDir) continue;
          if (e.mtimeMs === null) {
            throw new RelayError(
              "unsupported",
              `relay ${label}: the server tells no mtime of ${e.name}`,
              {
                hint: "Relays over FTP need MLST or MDTM: use a server that has them (most do).",
              },
            );
          }
          out.push({ name: e.name, size: e.size, mtimeMs: e.mtimeMs });
        }
        return out;
      });
    },
    async listClaims() {
      return await run("list", undefined, true, async (c) => {
        const out: RelayFile[] = [];
        for (const e of await listDir(c.client, "", c.mlst)) {
          if (!e.isDir || !e.name.endsWith(CLAIM_SUFFIX)) continue;
          out.push({ name: e.name, size: 0, mtimeMs: e.mtimeMs ?? NaN });
        }
        return out;
      });
    },
    async stat(name) {
      checkName(name);
      return await run("stat", name, true, (c) => statOn(c, name));
    },
    async read(name) {
      checkName(name);
      if (closed) throw new RelayError("other", `relay ${label} is closed`);
      // Held until the transfer ends: the stream owns the connection meanwhile.
      const release = await take();
      let c: Conn;
      let expected = 0;
      try {
        conn ??= await connect();
        c = conn;
        const st = await statOn(c, name);
        if (!st) {
          throw new RelayError("missing", `relay ${label}: no file ${name}`, {
            hint: "The file is not on the relay (removed by another client?).",
          });
        }
        expected = st.size;
      } catch (e) {
        release();
        if (e instanceof RelayError) throw e;
        drop();
        throw err(e, "read", name);
      }
      // Counts the bytes: a transfer that ends short (or long) is an error, never a silent cut.
      let count = 0;
      const pass = new Transform({
        highWaterMark: 256 * 1024,
        transform(chunk: Uint8Array, _enc, cb) {
          count += chunk.length;
          cb(null, chunk);
        },
        flush(cb) {
          cb(
            count === expected ? null : new RelayError(
              "other",
              `relay ${label}: read ${count} bytes of ${name}, expected ${expected}`,
              { hint: "The file changed during the transfer, or the connection broke; try again." },
            ),
          );
        },
      });
      let finished = false;
      let ended = false;
      pass.once("end", () => ended = true);
      pass.once("close", () => {
        // The reader went away mid-transfer: basic-ftp cannot abort one, so drop the connection.
        if (!finished && !ended && conn === c) drop();
      });
      c.client.downloadTo(pass, name).then(
        () => {
          finished = true;
          release();
        },
        (e) => {
          finished = true;
          if (c.client.closed || !(e instanceof FTPError)) {
            if (conn === c) drop();
          }
          release();
          pass.destroy(err(e, "read", name));
        },
      );
      return Readable.toWeb(pass) as unknown as ReadableStream<Uint8Array>;
    },
    async readBytes(name) {
      checkName(name);
      return await run("read", name, true, async (c) => {
        const chunks: Uint8Array[] = [];
        let total = 0;
        const sink = new Writable({
          write(chunk: Uint8Array, _enc, cb) {
            chunks.push(chunk);
            total += chunk.length;
            cb();
          },
        });
        try {
          await c.client.downloadTo(sink, name);
        } catch (e) {
          if (e instanceof FTPError && e.code === 550) {
            throw new RelayError("missing", `relay ${label}: cannot read ${name}: ${e.message}`, {
              cause: e,
              hint: "The file is not on the relay (removed by another client?).",
            });
          }
          throw e;
        }
        const out = new Uint8Array(total);
        let off = 0;
        for (const ch of chunks) {
          out.set(ch, off);
          off += ch.length;
        }
        return out;
      });
    },
    async write(name, data) {
      checkName(name);
      const bytes = data instanceof Uint8Array;
      return await run("write", name, bytes, (c) =>
        uploadAtomic(
          c,
          name,
          bytes
            ? Readable.from(data.length ? [data] : [])
            : Readable.fromWeb(data as import("node:stream/web").ReadableStream),
        ));
    },
    async createExclusive(name, data) {
      checkName(name);
      // Not retried: a dropped MKD may have made the claim; the grace period clears it.
      return await run(
        "create",
        name,
        false,
        (c) => createExclusive(claimOps(c), claims, name, data),
      );
    },
    async delete(name) {
      checkName(name);
      return await run("delete", name, true, (c) => deleteWithClaim(claimOps(c), name));
    },
    async rename(from, to) {
      checkName(from);
      checkName(to);
      return await run("rename", from, false, async (c) => {
        try {
          await c.client.rename(from, to);
        } catch (e) {
          if (e instanceof FTPError && e.code === 550 && !(await statOn(c, from))) {
            throw new RelayError("missing", `relay ${label}: cannot rename ${from}: ${e.message}`, {
              cause: e,
              hint: "The file is not on the relay (removed by another client?).",
            });
          }
          throw e;
        }
      });
    },
    async setMtime(name, mtimeMs) {
      checkName(name);
      return await run("set the mtime of", name, true, async (c) => {
        const stamp = mlsxStamp(mtimeMs);
        const target = await c.client.protectWhitespace(name);
        if (c.mfmt) {
          await c.client.send(`MFMT ${stamp} ${target}`);
          return;
        }
        const res = await c.client.sendIgnoringError(`MDTM ${stamp} ${target}`);
        if (res.code !== 213) {
          throw new RelayError(
            "unsupported",
            `relay ${label}: cannot set the mtime of ${name}: ${res.message}`,
            {
              hint:
                "The FTP server offers neither MFMT nor MDTM with a time (vsftpd: mdtm_write=YES).",
            },
          );
        }
      });
    },
    /** Drops the connection at once, aborting a transfer still running (its temp file stays; sync removes stale ones). */
    close() {
      closed = true;
      drop();
      return Promise.resolve();
    },
  };
}

/** Turns a basic-ftp or socket error into a RelayError with a hint. */
export function mapFtpError(
  e: unknown,
  ctx: { what: string; name?: string; label: string; where: string; user: string },
): RelayError {
  if (e instanceof RelayError) return e;
  const subject = ctx.name ? `${ctx.what} ${ctx.name}` : ctx.what;
  const msg = (e as Error)?.message ?? String(e);
  const head = `relay ${ctx.label}: cannot ${subject}: ${msg}`;
  const o = (hint: string) => ({ cause: e, hint });
  if (e instanceof FTPError) {
    const c = e.code;
    if (c === 530) {
      return new RelayError(
        "auth",
        head,
        o(`Check the user (${ctx.user}) and password for ${ctx.where}.`),
      );
    }
    if (c === 552 || c === 452) {
      return new RelayError(
        "full",
        head,
        o("The relay is full (disk or quota): free space on it, or lower `maxpagesize`."),
      );
    }
    if (c === 421) {
      return new RelayError(
        "connect",
        head,
        o(`The server at ${ctx.where} closed the connection (too many clients, or shutting down); hop retries on the next pass.`),
      );
    }
    if (
      ctx.what === "connect to" && (c === 500 || c === 502 || c === 504 || c === 534 || c === 431)
    ) {
      return new RelayError(
        "tls",
        head,
        o("The server does not offer FTPS (AUTH TLS): use an ftp:// URL, or enable TLS on the server."),
      );
    }
    if (c === 550 || c === 553 || c === 450 || c === 532) {
      const readish = ctx.what === "read" || ctx.what === "stat" || ctx.what === "rename";
      return readish
        ? new RelayError(
          "missing",
          head,
          o("The file is not on the relay, or not readable by this user."),
        )
        : new RelayError(
          "denied",
          head,
          o(`The server refused: check that ${ctx.user} may write in the relay folder (read-only account or storage?).`),
        );
    }
    if (c === 522) {
      return new RelayError(
        "tls",
        head,
        o("The server refused the TLS data connection; if it requires TLS session reuse (vsftpd require_ssl_reuse=YES), this runtime may not resume sessions: set require_ssl_reuse=NO on the server or use the Deno build."),
      );
    }
    return new RelayError(
      "other",
      head,
      o("The FTP server refused the command; its reply is above."),
    );
  }
  const code = String((e as { code?: unknown })?.code ?? "");
  if (code === "ECONNREFUSED") {
    return new RelayError(
      "connect",
      head,
      o(`Is the FTP server at ${ctx.where} running? Check the host and port.`),
    );
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new RelayError("connect", head, o(`Check the host name in ${ctx.label}.`));
  }
  if (
    /cert|self.signed|UnknownIssuer|NotValidForName|ERR_TLS|ERR_SSL|SSL|TLS/i.test(code + " " + msg)
  ) {
    return new RelayError(
      "tls",
      head,
      o("The TLS connection failed: trust the server's certificate (its CA), or for a self-signed test server allow insecure TLS; check that the server speaks explicit FTPS."),
    );
  }
  if (/timeout|ETIMEDOUT/i.test(code + " " + msg)) {
    return new RelayError(
      "connect",
      head,
      o(`The server at ${ctx.where} stopped answering; check the network. hop retries on the next pass.`),
    );
  }
  return new RelayError(
    "connect",
    head,
    o(`The connection to ${ctx.where} failed or dropped; hop retries on the next pass.`),
  );
}
