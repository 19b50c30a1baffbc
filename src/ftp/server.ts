/**
 * The FTP server: a `node:net` listener running one `runSession` per connection in
 * one process, with per-address session caps and failed-login blocking, and the
 * options of the generic engine (`startFtpServer`).
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import { HopError } from "../errors.ts";
import { plainAddress } from "./data.ts";
import { formatReply } from "./reply.ts";
import { runSession, type SessionConfig } from "./session.ts";
import type {
  FtpAuthorizer,
  FtpEvents,
  FtpFileSystem,
  FtpLogger,
  FtpSiteHandler,
} from "./types.ts";

/** Options of the generic FTP engine. */
export interface FtpServerOptions {
  fs: FtpFileSystem;
  authorizer: FtpAuthorizer;
  /** SITE commands beyond SITE HELP. */
  site?: FtpSiteHandler;
  /** Listen address (default "127.0.0.1"); "::" for all IPv6+IPv4. */
  host?: string;
  /** Listen port (default 0: any free port). */
  port?: number;
  /** PEM certificate and key: enables AUTH TLS (explicit FTPS). */
  tls?: { cert: string; key: string; required?: boolean };
  /** 220 greeting text (default "hop FTP server ready."). */
  greeting?: string;
  /** Control connection idle timeout: no complete command for this long (default 300 000 ms). */
  idleTimeoutMs?: number;
  /** A connection not logged in after this long is closed (default 60 000 ms). */
  loginTimeoutMs?: number;
  /** Log lines one session may write at once (default 50), then per second (default 5). */
  logBurst?: number;
  logPerSecond?: number;
  /** Data connection set-up and idle timeout (default 30 000 ms). */
  dataTimeoutMs?: number;
  /** Longest accepted command line in bytes (default 8192). */
  maxLineBytes?: number;
  /** Passive ports, inclusive (default: any free port). */
  passivePorts?: [number, number];
  /** IPv4 address announced in PASV replies (default: the control connection's local address). */
  passiveAddress?: string;
  /** Sessions at once from one address (default 16; 421 beyond). */
  maxSessionsPerIp?: number;
  /** Sessions at once in total (default 512). */
  maxSessions?: number;
  /** Delay before answering a failed login (default 1000 ms; other sessions go on). */
  loginFailDelayMs?: number;
  /** Failed logins per address within `loginFailWindowMs` before it is refused (default 10). */
  maxLoginFailures?: number;
  /** Window for `maxLoginFailures` (default 60 000 ms). */
  loginFailWindowMs?: number;
  /** Failed logins in one session before it is closed (default 3). */
  maxLoginAttemptsPerSession?: number;
  /** One line per event; quiet when absent. */
  log?: FtpLogger;
  /** Structured events (logins, transfers, errors) for a live view. */
  events?: FtpEvents;
}

/** A running server. */
export interface FtpServerHandle {
  port: number;
  address: string;
  /** Stop listening and close every session. */
  close(): Promise<void>;
}

/**
 * Start the FTP engine on a storage backend.
 *
 * @example
 * const srv = await startFtpServer({ fs, authorizer, port: 0 });
 * console.log(srv.port);
 * await srv.close();
 */
export async function startFtpServer(opts: FtpServerOptions): Promise<FtpServerHandle> {
  const log = opts.log ?? (() => {});
  const failures = new Map<string, number[]>();
  const windowMs = opts.loginFailWindowMs ?? 60_000;
  const maxFailures = opts.maxLoginFailures ?? 10;
  const blockedNow = (ip: string): boolean => {
    const now = Date.now();
    const list = (failures.get(ip) ?? []).filter((t) => now - t < windowMs);
    if (list.length === 0) failures.delete(ip);
    else failures.set(ip, list);
    return list.length >= maxFailures;
  };
  let tlsContext: tls.SecureContext | undefined;
  if (opts.tls) {
    try {
      // TLS 1.2 at most: under Deno 2's node:tls, TLS 1.3 server sockets sometimes end
      // early (an upload cut at 112 KiB and reported complete); 1.2 does not.
      tlsContext = tls.createSecureContext({
        cert: opts.tls.cert,
        key: opts.tls.key,
        maxVersion: "TLSv1.2",
      });
    } catch (err) {
      throw new HopError(
        `FTP server: the TLS certificate or key is not usable (${(err as Error).message})`,
        {
          hint: "give a PEM certificate and its PEM private key",
          cause: err,
        },
      );
    }
  }
  const cfg: SessionConfig = {
    fs: opts.fs,
    authorizer: opts.authorizer,
    site: opts.site,
    tlsContext,
    tlsRequired: Boolean(opts.tls?.required),
    greeting: opts.greeting ?? "hop FTP server ready.",
    idleTimeoutMs: opts.idleTimeoutMs ?? 300_000,
    loginTimeoutMs: opts.loginTimeoutMs ?? 60_000,
    logBurst: opts.logBurst ?? 50,
    logPerSecond: opts.logPerSecond ?? 5,
    dataTimeoutMs: opts.dataTimeoutMs ?? 30_000,
    maxLineBytes: opts.maxLineBytes ?? 8192,
    passivePorts: opts.passivePorts,
    passiveAddress: opts.passiveAddress,
    loginFailDelayMs: opts.loginFailDelayMs ?? 1000,
    maxLoginAttemptsPerSession: opts.maxLoginAttemptsPerSession ?? 3,
    reservedPorts: new Set(),
    log,
    events: opts.events ?? {},
    loginFailed(ip) {
      failures.set(ip, [...(failures.get(ip) ?? []), Date.now()]);
      return blockedNow(ip);
    },
  };
  if (opts.passivePorts) {
    const [lo, hi] = opts.passivePorts;
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 1024 && hi <= 65535 && lo <= hi)) {
      throw new HopError(`FTP server: bad passive port range ${lo}-${hi}`, {
        hint: "give two ports between 1024 and 65535, the first not above the second",
      });
    }
  }
  if (opts.passiveAddress !== undefined && !net.isIPv4(opts.passiveAddress)) {
    throw new HopError(
      `FTP server: passive address ${opts.passiveAddress} is not an IPv4 address`,
      {
        hint: "PASV can only announce an IPv4 address (IPv6 clients use EPSV)",
      },
    );
  }
  const perIp = new Map<string, number>();
  const maxPerIp = opts.maxSessionsPerIp ?? 16;
  const maxTotal = opts.maxSessions ?? 512;
  /** Every control socket until it is closed (a finished session may still be flushing). */
  const sockets = new Set<net.Socket>();
  let sessions = 0;

  const server = net.createServer((sock) => {
    const ip = plainAddress(sock.remoteAddress);
    sock.on("error", () => {});
    // Replies are short writes: with Nagle, a reply written while the previous one is not
    // yet acknowledged waits for the client's delayed ACK (about 40 ms per transfer).
    sock.setNoDelay(true);
    const count = perIp.get(ip) ?? 0;
    const refuse = sessions >= maxTotal
      ? "Too many connections, try again later."
      : count >= maxPerIp
      ? "Too many connections from your address."
      : blockedNow(ip)
      ? "Too many failed logins from your address, try again later."
      : null;
    if (refuse) {
      log(`ftp ${ip} refused: ${refuse}`);
      sockets.add(sock);
      sock.once("close", () => sockets.delete(sock));
      sock.end(formatReply(421, refuse));
      setTimeout(() => sock.destroy(), 2000).unref();
      return;
    }
    perIp.set(ip, count + 1);
    sessions++;
    sockets.add(sock);
    sock.once("close", () => sockets.delete(sock));
    void runSession(sock, cfg).then(() => {
      sessions--;
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n <= 0) perIp.delete(ip);
      else perIp.set(ip, n);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => {
      reject(
        new HopError(
          `FTP server: cannot listen on ${opts.host ?? "127.0.0.1"}:${
            opts.port ?? 0
          } (${err.message})`,
          {
            hint: "pick another port or address, or stop what is using it",
            cause: err,
          },
        ),
      );
    });
    server.listen({ host: opts.host ?? "127.0.0.1", port: opts.port ?? 0 }, () => resolve());
  });
  server.on("error", (err) => log(`ftp server error ${err.message}`));
  const addr = server.address() as net.AddressInfo;
  log(`ftp listening on ${addr.address}:${addr.port}`);
  return {
    port: addr.port,
    address: addr.address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
