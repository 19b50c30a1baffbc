/**
 * hop's outgoing FTP: the one place where basic-ftp is set up, for the relay's
 * FTP backend and the cluster's FTP nodes. {@linkcode connectFtp} logs in and
 * makes basic-ftp's data connections safe on every runtime hop runs on:
 *
 * - hop opens each passive data connection itself (EPSV, else PASV) and keeps
 *   what arrives before basic-ftp reads it: Bun 1.3's sockets emitted data (and
 *   end) with no reader attached, so a small file or listing came back empty or
 *   cut when the event loop was busy ({@linkcode holdUntilPiped}).
 * - FTPS data connections start TLS on the server's 150 reply, not right after
 *   connecting (pyftpdlib drops data connections that speak before the transfer
 *   command; vsftpd takes both), and basic-ftp is made to wait for the handshake
 *   before it writes (Bun reports a cipher before the handshake is done, and an
 *   empty upload then closed the socket mid-handshake).
 * - A TLS data socket whose end is lost (Deno) is ended once the server said the
 *   transfer is complete and the socket has gone quiet.
 * - An upload the server stops reading times out as basic-ftp means it to (Bun
 *   fires no socket timeout while a write is pending: {@linkcode watchStalledWrites}).
 *
 * Listings are complete or fail: {@linkcode listDir} never returns a listing
 * cut short, and a file it cannot stat is left out only when the server says it
 * is gone (550), never on any other error.
 *
 * @example
 * ```ts
 * const c = await connectFtp({ host: "127.0.0.1", port: 2121, user: "u", password: "p" });
 * try {
 *   for (const e of await listDir(c, "")) console.log(e.name, e.size, e.mtimeMs);
 * } finally {
 *   c.close();
 * }
 * ```
 *
 * @module
 */
import { Client, FTPError, type FTPResponse } from "basic-ftp";
import type { FTPContext } from "basic-ftp";
import { Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { parseTimeVal } from "./listing.ts";
import { watchStalledWrites } from "./stall.ts";

/** Where and how to log in. */
export interface FtpConnectOptions {
  host: string;
  /** Default 21. */
  port?: number;
  /** Default `anonymous`. */
  user?: string;
  password?: string;
  /** Explicit FTPS (AUTH TLS) on control and data connections. */
  secure?: boolean;
  /** Accept any server certificate (self-signed test servers). Default false. */
  insecureTls?: boolean;
  /** PEM certificate(s) to trust besides the system's. */
  tlsCa?: string;
  /** PEM client certificate (and its key; default: in the same PEM) to present. */
  tlsCert?: string;
  tlsKey?: string;
  /** Speak only this TLS version. */
  tlsVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2";
  /** Control/data inactivity timeout, ms (default 30 s). */
  timeoutMs?: number;
}

/** Connects and logs in; the client is closed again when that fails. */
export async function connectFtp(o: FtpConnectOptions): Promise<Client> {
  const client = new Client(o.timeoutMs ?? 30_000);
  client.ftp.verbose = false;
  // Commands are short writes: with Nagle, one written before the server acknowledged the
  // last waits for its delayed ACK (about 40 ms per command on Deno).
  client.ftp.socket.setNoDelay(true);
  const user = o.user ?? "anonymous";
  const secureOptions: ConnectionOptions = {
    rejectUnauthorized: !o.insecureTls,
    ...(o.tlsCa ? { ca: o.tlsCa } : {}),
    ...(o.tlsCert ? { cert: o.tlsCert, key: o.tlsKey ?? o.tlsCert } : {}),
    ...(o.tlsVersion ? { minVersion: o.tlsVersion, maxVersion: o.tlsVersion } : {}),
    servername: isIp(o.host) ? undefined : o.host,
  };
  try {
    await client.access({
      host: o.host,
      port: o.port ?? 21,
      user,
      password: o.password ?? (user === "anonymous" ? "hop@" : ""),
      secure: o.secure ?? false,
      secureOptions,
    });
    client.ftp.socket.setNoDelay(true); // the TLS socket replaced the plain one
    ownDataConnections(client, o.secure ?? false);
    return client;
  } catch (e) {
    client.close();
    throw e;
  }
}

/** The part of basic-ftp's FTPContext used for transfers it has no call for. */
export interface FtpContextLike {
  socket: Socket;
  handle(
    cmd: string,
    h: (
      res: Error | { code: number; message: string },
      task: { resolve(v: unknown): void; reject(e: unknown): void },
    ) => void,
  ): Promise<{ code: number; message: string }>;
}

/** basic-ftp's context of `c`, for commands with a data connection of hop's own. */
export function ftpContext(c: Client): FtpContextLike {
  return (c as unknown as { ftp: FtpContextLike }).ftp;
}

/** True when `e` is an FTP error reply (4xx/5xx: the control connection is still fine). */
export function isFtpReply(e: unknown): e is { code: number; message: string } {
  return typeof e === "object" && e !== null && "code" in e &&
    typeof (e as { code: unknown }).code === "number" && (e as { code: number }).code >= 400;
}

/**
 * Where the server wants its passive data connection (EPSV, else PASV). A PASV
 * answer that cannot be reached from here (0.0.0.0, or a private address of a
 * server behind NAT seen at a public one) is replaced by the control address.
 */
export async function passiveAddress(c: Client): Promise<[string, number]> {
  const peer = ftpContext(c).socket.remoteAddress ?? "";
  const e = await c.sendIgnoringError("EPSV");
  const m = e.code === 229 ? /\(([^\d\s])\1\1(\d{1,5})\1\)/.exec(e.message) : null;
  if (m) return [peer, Number(m[2])];
  const p = await c.sendIgnoringError("PASV");
  const n = p.code === 227 ? /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(p.message) : null;
  if (!n) throw new FTPError({ code: p.code >= 400 ? p.code : 425, message: p.message });
  const ip = n.slice(1, 5).join(".");
  const port = Number(n[5]) * 256 + Number(n[6]);
  const privateV4 = /^(10|127)\.|^192\.168\.|^172\.(1[6-9]|2\d|3[01])\./;
  if (ip === "0.0.0.0" || (privateV4.test(ip) && !privateV4.test(plainV4(peer)))) {
    return [peer, port];
  }
  return [ip, port];
}

const plainV4 = (a: string) => a.startsWith("::ffff:") ? a.slice(7) : a;

/** One entry of a directory listing. */
export interface FtpEntry {
  name: string;
  isDir: boolean;
  size: number;
  /** Modification time in ms, or null when the server cannot tell. */
  mtimeMs: number | null;
}

/**
 * The files and folders of `dir` ("" for the current folder), with sizes and
 * mtimes: from MLSD where the server has it (`mlst`), else LIST for the names
 * and SIZE + MDTM for each file (one round trip each). Complete or it throws: a
 * data connection cut, a refused or failed transfer, or a SIZE that fails for
 * another reason than "no such file" is an error, never a shorter listing.
 */
export async function listDir(c: Client, dir: string, mlst: boolean): Promise<FtpEntry[]> {
  const out: FtpEntry[] = [];
  for (const f of await c.list(dir)) {
    if (f.name === "." || f.name === ".." || f.name.includes("/")) continue;
    if (f.isDirectory) {
      const t = f.modifiedAt?.getTime();
      out.push({ name: f.name, isDir: true, size: 0, mtimeMs: Number.isFinite(t) ? t! : null });
      continue;
    }
    if (!f.isFile) continue;
    const t = mlst ? f.modifiedAt?.getTime() : undefined;
    if (t !== undefined && Number.isFinite(t)) {
      out.push({ name: f.name, isDir: false, size: f.size, mtimeMs: t });
      continue;
    }
    const st = await statFile(c, dir === "" ? f.name : `${dir}/${f.name}`, false);
    if (st) out.push({ name: f.name, isDir: false, ...st });
  }
  return out;
}

/**
 * Size and mtime of file `path` (MLST where `mlst`, else SIZE + MDTM), or null
 * when the server says there is no such file (550). Other refusals throw.
 */
export async function statFile(
  c: Client,
  path: string,
  mlst: boolean,
): Promise<{ size: number; mtimeMs: number | null } | null> {
  const target = await c.protectWhitespace(path);
  if (mlst) {
    const res = await c.sendIgnoringError(`MLST ${target}`);
    if (res.code === 550) return null;
    if (res.code < 400) {
      const line = res.message.split("\n").find((l) => l.startsWith(" "));
      const facts = parseFacts(line ?? "");
      if (facts.type !== undefined && facts.type !== "file") return null;
      const size = Number(facts.size);
      const mtimeMs = facts.modify ? parseMlsxDate(facts.modify) : NaN;
      if (Number.isFinite(size)) {
        return { size, mtimeMs: Number.isFinite(mtimeMs) ? mtimeMs : null };
      }
    }
  }
  const sized = await c.sendIgnoringError(`SIZE ${target}`);
  if (sized.code === 550) return null;
  if (sized.code !== 213) throw new FTPError(sized);
  const size = Number(sized.message.slice(4).trim());
  if (!Number.isSafeInteger(size)) {
    throw new FTPError({ code: 451, message: `unreadable SIZE reply: ${sized.message}` });
  }
  const mdtm = await c.sendIgnoringError(`MDTM ${target}`);
  if (mdtm.code === 550) return null;
  const mtimeMs = mdtm.code === 213 ? parseMlsxDate(mdtm.message.slice(4).trim()) : NaN;
  return { size, mtimeMs: Number.isFinite(mtimeMs) ? mtimeMs : null };
}

/** `modify=...;size=...;type=file; name` -> facts (lower-case keys and values). */
export function parseFacts(line: string): Record<string, string> {
  const facts: Record<string, string> = {};
  const sp = line.trimStart();
  const end = sp.indexOf(" ");
  for (const part of (end < 0 ? sp : sp.slice(0, end)).split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) facts[part.slice(0, eq).toLowerCase()] = part.slice(eq + 1).toLowerCase();
  }
  return facts;
}

/** `YYYYMMDDHHMMSS[.sss]` (UTC) -> ms; NaN when malformed. */
export function parseMlsxDate(s: string): number {
  return parseTimeVal(s.trim());
}

/** ms -> `YYYYMMDDHHMMSS` (UTC, whole seconds). */
export function mlsxStamp(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

/**
 * Holds what a data socket receives until basic-ftp pipes it somewhere. Bun 1.3's
 * sockets emit data (and end) with no reader attached, and when the event loop
 * is busy (bzip2 workers running) a small file's bytes and end arrive before
 * basic-ftp's pipe: the download came back empty. Node, Deno and Bun 1.4 buffer
 * anyway; `client_test.ts` checks the busy-loop case on every runtime.
 */
function holdUntilPiped(sock: Socket): void {
  const held: Uint8Array[] = [];
  let ended = false;
  const onData = (chunk: Uint8Array) => held.push(chunk);
  const onEnd = () => (ended = true);
  sock.on("data", onData);
  sock.once("end", onEnd);
  const pipe = sock.pipe.bind(sock);
  sock.pipe = (<T extends NodeJS.WritableStream>(dest: T, o?: { end?: boolean }): T => {
    sock.off("data", onData);
    sock.off("end", onEnd);
    sock.pipe = pipe;
    for (const chunk of held.splice(0)) dest.write(chunk);
    if (ended) {
      if (o?.end !== false) dest.end();
      return dest;
    }
    return pipe(dest, o);
  }) as typeof sock.pipe;
}

/**
 * Makes basic-ftp wait for 'secureConnect' before it writes to `sock`: it
 * checks `getCipher()`, which Bun answers before the handshake is done.
 */
function cipherOnlyWhenSecure(sock: TLSSocket): void {
  const getCipher = sock.getCipher.bind(sock);
  let secure = false;
  sock.once("secureConnect", () => secure = true);
  sock.getCipher = (() => secure ? getCipher() : undefined) as typeof sock.getCipher;
}

/**
 * Opens the data connections itself (EPSV, else PASV), so that what arrives
 * before basic-ftp reads is kept ({@link holdUntilPiped}). With `secure`, TLS
 * starts on the server's 150/125 reply (see the module doc).
 */
function ownDataConnections(client: Client, secure: boolean): void {
  type Ctx = FTPContext & {
    _dataSocket?: Socket;
    _setupDefaultErrorHandlers(s: Socket, id: string): void;
  };
  const ftp = client.ftp as Ctx;
  let plain: Socket | null = null;
  client.prepareTransfer = async (ctx: FTPContext): Promise<FTPResponse> => {
    const [host, port] = await passiveAddress(client);
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = new Socket();
      s.setTimeout(ctx.timeout, () => {
        s.destroy();
        reject(new Error(`timeout opening the data connection to ${host}:${port}`));
      });
      s.once("error", reject);
      s.connect(port, host, () => {
        s.setNoDelay(true);
        s.removeListener("error", reject);
        s.setTimeout(0);
        resolve(s);
      });
    });
    if (!secure) holdUntilPiped(sock);
    watchStalledWrites(sock); // basic-ftp's idle timeout, also on uploads a server stopped reading
    ctx.dataSocket = sock;
    plain = secure ? sock : null;
    return { code: 200, message: `data connection to ${host}:${port}` };
  };
  if (!secure) return;
  const handle = ftp.handle.bind(ftp);
  ftp.handle = (command, handler) =>
    handle(command, (res, task) => {
      if (
        !(res instanceof Error) && (res.code === 150 || res.code === 125) && plain &&
        ftp.dataSocket === plain
      ) {
        const secured = tlsConnect({
          ...ftp.tlsOptions,
          socket: plain,
          session: (ftp.socket as TLSSocket).getSession?.(),
        });
        plain = null;
        cipherOnlyWhenSecure(secured);
        secured.setTimeout(0);
        watchStalledWrites(secured);
        ftp._setupDefaultErrorHandlers(secured, "data socket");
        ftp._dataSocket = secured; // not the setter: it would close the socket under TLS
        // vsftpd announces the size ("(1234 bytes)") and waits for our close before its 226.
        const announced = /\((\d+) bytes\)/.exec(res.message);
        if (announced) {
          const size = Number(announced[1]);
          let got = 0;
          const onData = (chunk: Uint8Array) => {
            got += chunk.length;
            if (got >= size) {
              secured.off("data", onData);
              watchForLostEnd(secured);
            }
          };
          if (size === 0) watchForLostEnd(secured);
          else secured.on("data", onData);
        }
      } else if (!(res instanceof Error) && res.code >= 200 && res.code < 300) {
        const data = ftp.dataSocket;
        if (data && "encrypted" in data) watchForLostEnd(data as TLSSocket);
      }
      handler(res, task);
    });
}

/**
 * The server said the transfer is complete (226), or sent every byte it
 * announced, so no data can follow. Deno's TLS socket sometimes never emits
 * 'end' when the peer's close arrives while the socket is paused by
 * backpressure, and the download stalls until the timeout (seen with both
 * pyftpdlib and vsftpd). Once the socket is flowing and has been silent for
 * 300 ms, end it by hand.
 */
function watchForLostEnd(sock: TLSSocket): void {
  if (sock.readableEnded || sock.destroyed) return;
  let quietTicks = 0;
  const onData = () => quietTicks = 0;
  sock.on("data", onData);
  const timer = setInterval(() => {
    if (sock.readableEnded || sock.destroyed) {
      stop();
      return;
    }
    if (sock.isPaused() || sock.readableLength > 0) {
      quietTicks = 0;
      return;
    }
    if (++quietTicks >= 3) {
      stop();
      sock.push(null);
    }
  }, 100);
  const stop = () => {
    clearInterval(timer);
    sock.off("data", onData);
  };
  sock.once("close", stop);
}
