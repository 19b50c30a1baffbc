/**
 * The FTP data connection: passive listeners (PASV/EPSV, accepting only the control
 * connection's peer), active connects (PORT/EPRT), optional TLS on top (RFC 4217:
 * the server is always the TLS server), and moving bytes with backpressure in both
 * directions.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";

/** Strip the IPv4-mapped prefix so "::ffff:1.2.3.4" compares equal to "1.2.3.4". */
export function plainAddress(address: string | undefined): string {
  if (!address) return "";
  return address.startsWith("::ffff:") && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** True when two addresses name the same host (IPv4-mapped aware, IPv6 case-insensitive). */
export function sameAddress(a: string, b: string): boolean {
  const x = plainAddress(a).toLowerCase();
  const y = plainAddress(b).toLowerCase();
  if (x === y) return true;
  if (net.isIPv6(x) && net.isIPv6(y)) return expandV6(x) === expandV6(y);
  return false;
}

function expandV6(a: string): string {
  const [head, tail = ""] = a.includes("::") ? a.split("::") : [a, undefined as unknown as string];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const fill = a.includes("::") ? Array(8 - h.length - t.length).fill("0") : [];
  return [...h, ...fill, ...t].map((p) => p.replace(/^0+(?=.)/, "")).join(":");
}

/**
 * Ends a passive endpoint whose transfer was refused before its 150 (a full disk, a
 * missing file). The client connects before it sends the command: closing the listener
 * at once resets a connection that is on its way, and some clients then report the reset
 * instead of the reply. The connection is taken (for up to 2 s) and ended cleanly.
 */
export function dismissPassive(ep: PassiveEndpoint): void {
  ep.accept(2000).then((sock) => endSocket(sock), () => {}).finally(() => ep.close());
}

/** A listening passive endpoint waiting for the client's data connection. */
export interface PassiveEndpoint {
  port: number;
  /** The accepted connection (waits up to `timeoutMs`). */
  accept(timeoutMs: number): Promise<net.Socket>;
  close(): void;
}

/**
 * Listen for one data connection on `host`, on a port from `range` (or any port),
 * accepting it only from `peer`; connections from elsewhere are dropped and
 * reported through `onForeign`.
 */
export async function listenPassive(
  // Taken apart here: closures below hold what they use, not the options object (an
  // async function keeps every binding): the accepted socket outlives the transfer a
  // little, and `onForeign` (dropped once a connection is taken) would keep the caller's
  // whole session with it.
  { host, peer, range, reserved, onForeign, tlsContext }: {
    host: string;
    peer: string;
    range?: [number, number];
    reserved: Set<number>;
    onForeign?: (address: string) => void;
    /** Start TLS on the accepted connection at once (PROT P): nothing waits unread. */
    tlsContext?: tls.SecureContext;
  },
): Promise<PassiveEndpoint> {
  let accepted: net.Socket | null = null;
  let waiter: ((s: net.Socket) => void) | null = null;
  const foreign = (sock: net.Socket): boolean => {
    if (!accepted && sameAddress(sock.remoteAddress ?? "", peer)) return false;
    if (!accepted) onForeign?.(plainAddress(sock.remoteAddress));
    sock.destroy();
    return true;
  };
  const take = (sock: net.Socket): void => {
    accepted = sock;
    onForeign = undefined;
    sock.on("error", () => {});
    server.close();
    if (waiter) waiter(sock);
  };
  const server = net.createServer({ pauseOnConnect: !tlsContext }, (sock) => {
    if (foreign(sock)) return;
    sock.setNoDelay(true); // the last short segment of a file goes at once (no Nagle wait)
    take(tlsContext ? startTls(sock, tlsContext) : sock);
  });
  server.on("error", () => {});
  const port = await bindPort(server, host, range, reserved);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    onForeign = undefined;
    reserved.delete(port);
    server.close();
  };
  server.on("close", () => {
    reserved.delete(port);
  });
  return {
    port,
    close() {
      close();
      if (accepted && !waiter) accepted.destroy();
    },
    accept(timeoutMs) {
      if (accepted) return Promise.resolve(accepted);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiter = null;
          close();
          reject(new Error("no data connection within " + timeoutMs + " ms"));
        }, timeoutMs);
        waiter = (s) => {
          clearTimeout(timer);
          resolve(s);
        };
      });
    },
  };
}

async function bindPort(
  server: net.Server,
  host: string,
  range: [number, number] | undefined,
  reserved: Set<number>,
): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<boolean>((resolve) => {
      const onErr = () => resolve(false);
      server.once("error", onErr);
      server.listen({ host, port, exclusive: true }, () => {
        server.off("error", onErr);
        resolve(true);
      });
    });
  if (!range) {
    if (!(await tryListen(0))) throw new Error("cannot listen on " + host);
    const port = (server.address() as net.AddressInfo).port;
    reserved.add(port);
    return port;
  }
  const [lo, hi] = range;
  const count = hi - lo + 1;
  const start = Math.floor(Math.random() * count);
  for (let i = 0; i < count; i++) {
    const port = lo + ((start + i) % count);
    if (reserved.has(port)) continue;
    reserved.add(port);
    if (await tryListen(port)) return port;
    reserved.delete(port);
  }
  throw new Error(`no free passive port in ${lo}-${hi}`);
}

/** Connect to the client's PORT/EPRT address from `localAddress`. */
export function connectActive(
  host: string,
  port: number,
  localAddress: string,
  timeoutMs: number,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, localAddress: localAddress || undefined });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.setNoDelay(true);
      sock.removeAllListeners("error");
      sock.on("error", () => {});
      resolve(sock);
    });
    sock.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Decrypted data of a TLS data socket, collected in flowing mode. */
interface TlsInbox {
  chunks: Uint8Array[];
  /** Bytes in `chunks`. */
  queued: number;
  /** 'end' seen (clean end of stream). */
  ended: boolean;
  /** 'close' seen: no more data can come (Deno may deliver data after 'end'). */
  closed: boolean;
  wake: (() => void) | null;
  /** The TCP socket under a wrapped TLS socket (its byte count guards against lost data). */
  raw: net.Socket | null;
}
const inboxes = new WeakMap<net.Socket, TlsInbox>();
const MAX_TLS_QUEUE = 64 << 20;

/** Keep a TLS socket flowing from the start (see receiveStream); chunks wait in an inbox. */
function collectTls(t: tls.TLSSocket, raw: net.Socket | null): void {
  const inbox: TlsInbox = { chunks: [], queued: 0, ended: false, closed: false, wake: null, raw };
  inboxes.set(t, inbox);
  t.on("data", (chunk: Uint8Array) => {
    if (t.destroyed) return;
    inbox.chunks.push(chunk);
    inbox.queued += chunk.byteLength;
    if (inbox.queued > MAX_TLS_QUEUE) {
      t.destroy(new Error("upload queue over limit (storage too slow)"));
    }
    inbox.wake?.();
  });
  t.on("end", () => {
    inbox.ended = true;
    inbox.wake?.();
  });
  t.on("close", () => {
    inbox.closed = true;
    inbox.wake?.();
  });
}

/** Run the server side of a TLS handshake on a data socket. */
export function secureData(
  sock: net.Socket,
  context: tls.SecureContext,
  timeoutMs: number,
): Promise<net.Socket> {
  const t = sock instanceof tls.TLSSocket ? sock : startTls(sock, context);
  const ready = handshakes.get(t) ?? Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      t.destroy();
      reject(new Error("TLS handshake on data connection timed out"));
    }, timeoutMs);
  });
  return Promise.race([ready, timeout]).then(() => t).finally(() => clearTimeout(timer));
}

const handshakes = new WeakMap<net.Socket, Promise<void>>();

/** Wrap `sock` as the TLS server side now; `secureData` later waits for the handshake. */
export function startTls(sock: net.Socket, context: tls.SecureContext): tls.TLSSocket {
  const t = new tls.TLSSocket(sock, { isServer: true, secureContext: context });
  collectTls(t, sock);
  const ready = new Promise<void>((resolve, reject) => {
    t.once("secure", () => {
      t.removeAllListeners("error");
      t.on("error", () => {});
      resolve();
    });
    t.once("error", (err) => {
      t.destroy();
      reject(err);
    });
  });
  ready.catch(() => {});
  handshakes.set(t, ready);
  return t;
}

function waitDrain(sock: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      sock.off("drain", done);
      sock.off("close", closed);
      resolve();
    };
    const closed = () => {
      sock.off("drain", done);
      reject(new Error("data connection closed"));
    };
    sock.once("drain", done);
    sock.once("close", closed);
  });
}

/**
 * Most bytes a data socket may hold unsent before `sendStream` waits for it to drain.
 * Above the 16 KB default so that chunks do not wait for a drain one by one (several
 * chunks go to the kernel per write), small enough to keep backpressure tight. While
 * many transfers run, each gets its share of {@linkcode WRITE_AHEAD_BUDGET} instead
 * (at least {@linkcode MIN_WRITE_AHEAD}): hundreds of clients do not hold a megabyte each.
 */
export const WRITE_AHEAD = 1024 * 1024;
/** Bytes all running `sendStream` calls may hold unsent together (see `WRITE_AHEAD`). */
export const WRITE_AHEAD_BUDGET = 16 * 1024 * 1024;
/** Bytes a data socket may always hold unsent, however many transfers run. */
export const MIN_WRITE_AHEAD = 64 * 1024;
let sending = 0;

/** The write-ahead bound of one data socket now, given how many transfers are sending. */
export function writeAhead(): number {
  return Math.min(
    WRITE_AHEAD,
    Math.max(MIN_WRITE_AHEAD, Math.floor(WRITE_AHEAD_BUDGET / Math.max(1, sending))),
  );
}

/** Writes `sendStream` lets wait in a socket at once (one being written, one queued). */
const MAX_PENDING_WRITES = 2;

/** A count of writes not yet done, and a way to wait until one is (or the socket closed). */
function pendingWrites() {
  const w = {
    pending: 0,
    wake: null as (() => void) | null,
    wait(sock: net.Socket): Promise<void> {
      return new Promise<void>((resolve) => {
        const done = () => {
          w.wake = null;
          sock.off("close", done);
          resolve();
        };
        w.wake = done;
        sock.once("close", done);
      });
    },
  };
  return w;
}

/**
 * Chunks whose memory is lent by their producer: once `sendStream` has written such a
 * chunk to its socket, it calls the function, and the producer may reuse the memory
 * (a storage node reader recycles its read buffers so). A chunk never written is
 * simply not given back.
 */
export const lentChunks: WeakMap<Uint8Array, () => void> = new WeakMap();

/**
 * Write `source` to `sock` (at most {@linkcode writeAhead} bytes waiting in the socket,
 * then it waits for drain), then end it cleanly. `onChunk` counts the bytes as they go.
 */
export async function sendStream(
  source: ReadableStream<Uint8Array>,
  sock: net.Socket,
  onChunk?: (bytes: number) => void,
): Promise<number> {
  const reader = source.getReader();
  let bytes = 0;
  const writes = pendingWrites();
  sending++;
  try {
    while (true) {
      if (sock.destroyed) throw new Error("data connection closed");
      const { done, value } = await reader.read();
      if (done) break;
      if (value.byteLength === 0) continue;
      bytes += value.byteLength;
      onChunk?.(value.byteLength);
      // A false return only says the 16 KB mark was passed; 'drain' still follows once
      // the socket's queue is empty, which is what is awaited past WRITE_AHEAD.
      // Over TLS the chunk is never given back: when Deno's node:tls is done reading
      // it is not certain.
      const lent = sock instanceof tls.TLSSocket ? undefined : lentChunks.get(value);
      writes.pending++;
      const ok = sock.write(value, (err) => {
        writes.pending--;
        writes.wake?.();
        if (!err) lent?.();
      });
      if (!ok && sock.writableLength >= writeAhead()) await waitDrain(sock);
      // More than two writes waiting would be joined into one new buffer (writev): a
      // copy of each chunk, left to the garbage collector.
      while (writes.pending >= MAX_PENDING_WRITES && !sock.destroyed) await writes.wait(sock);
    }
  } catch (err) {
    await reader.cancel(err).catch(() => {});
    throw err;
  } finally {
    sending--;
  }
  await endSocket(sock);
  return bytes;
}

/**
 * Write `lines` (a listing) each followed by CRLF, encoded a slice at a time (about
 * 64 KB each, waiting for drain between slices), then end the socket: a listing of
 * many thousand files is never one big string or buffer. Resolves to the bytes sent.
 */
export function sendLines(lines: readonly string[], sock: net.Socket): Promise<number> {
  return sendChunks(lineChunks(lines), sock);
}

function* lineChunks(lines: readonly string[]): Generator<Uint8Array> {
  const encoder = new TextEncoder();
  let start = 0;
  let chars = 0;
  for (let i = 0; i < lines.length; i++) {
    chars += lines[i].length + 2;
    if (chars < 64 * 1024 && i < lines.length - 1) continue;
    // one join per slice: under Bun, half the time of a string grown line by line
    yield encoder.encode(lines.slice(start, i + 1).join("\r\n") + "\r\n");
    start = i + 1;
    chars = 0;
  }
}

/**
 * Write the chunks of a listing (made as they are taken: see `listChunks`), waiting
 * for drain whenever the socket's buffer is full, then end the socket. Resolves to
 * the bytes sent.
 */
export async function sendChunks(chunks: Iterable<Uint8Array>, sock: net.Socket): Promise<number> {
  let bytes = 0;
  for (const chunk of chunks) {
    bytes += chunk.byteLength;
    if (sock.destroyed) throw new Error("data connection closed");
    if (!sock.write(chunk)) await waitDrain(sock);
  }
  await endSocket(sock);
  return bytes;
}

/** End a data socket and wait until its data was handed to the kernel. */
export function endSocket(sock: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    if (sock.destroyed) return reject(new Error("data connection closed"));
    const onClose = () => reject(new Error("data connection closed"));
    sock.once("close", onClose);
    sock.end(() => {
      sock.off("close", onClose);
      // the client closes its side after reading; do not keep a dead socket around (nor,
      // through the timer, the socket and its session once it closed)
      const timer = setTimeout(() => sock.destroy(), 10_000).unref();
      sock.once("close", () => clearTimeout(timer));
      resolve();
    });
  });
}

/**
 * Read `sock` to its end into `sink`, one awaited write per chunk (backpressure).
 * TLS sockets are read in flowing mode with a bounded queue instead: pausing a
 * server-side TLS socket stalls it for good under Deno 2's node:tls.
 */
export function receiveStream(
  sock: net.Socket,
  sink: WritableStreamDefaultWriter<Uint8Array>,
  onChunk?: (bytes: number) => void,
): Promise<number> {
  return sock instanceof tls.TLSSocket
    ? receiveFlowing(sock, sink, onChunk)
    : receivePaced(sock, sink, onChunk);
}

/**
 * After the sink failed (a full disk), up to this many more bytes are read and dropped,
 * so that the client, still sending, gets the reply rather than a reset.
 */
const DRAIN_LIMIT = 64 * 1024 * 1024;

async function receivePaced(
  sock: net.Socket,
  sink: WritableStreamDefaultWriter<Uint8Array>,
  onChunk?: (bytes: number) => void,
): Promise<number> {
  let bytes = 0;
  let failure: { error: unknown } | null = null;
  let dropped = 0;
  for await (const chunk of sock as AsyncIterable<Uint8Array>) {
    bytes += chunk.byteLength;
    onChunk?.(chunk.byteLength);
    if (failure) {
      dropped += chunk.byteLength;
      if (dropped > DRAIN_LIMIT) break;
      continue;
    }
    try {
      await sink.write(chunk);
    } catch (error) {
      failure = { error };
    }
  }
  if (failure) throw failure.error;
  return bytes;
}

function receiveFlowing(
  sock: net.Socket,
  sink: WritableStreamDefaultWriter<Uint8Array>,
  onChunk: ((bytes: number) => void) | undefined,
): Promise<number> {
  const inbox = inboxes.get(sock);
  if (!inbox) return receivePaced(sock, sink, onChunk);
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let writing = false;
    let settled = false;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      inbox.wake = null;
      if (err) {
        sock.destroy();
        reject(err);
      } else resolve(bytes);
    };
    let failure: Error | null = null;
    let dropped = 0;
    const pump = async () => {
      if (writing || settled) return;
      writing = true;
      while (inbox.chunks.length > 0 && !settled) {
        const chunk = inbox.chunks.shift()!;
        inbox.queued -= chunk.byteLength;
        bytes += chunk.byteLength;
        onChunk?.(chunk.byteLength);
        if (failure) {
          // The sink failed: read on and drop, so the client gets the reply, not a reset.
          dropped += chunk.byteLength;
          if (dropped > DRAIN_LIMIT) {
            writing = false;
            return settle(failure);
          }
          continue;
        }
        try {
          await sink.write(chunk);
        } catch (err) {
          failure = err as Error;
        }
      }
      writing = false;
      if (inbox.chunks.length > 0) return void pump();
      if (!inbox.closed) return;
      if (failure) return settle(failure);
      if (!inbox.ended) return settle(new Error("data connection closed"));
      // Deno 2's node:tls can report the end of a TLS stream before all records were
      // decrypted; more ciphertext than the plaintext explains means data was lost.
      const raw = inbox.raw?.bytesRead ?? 0;
      if (raw > bytes + 16384 + bytes / 20) {
        return settle(
          new Error(`TLS data connection lost data (${raw} bytes received, ${bytes} decrypted)`),
        );
      }
      settle(null);
    };
    inbox.wake = () => void pump();
    sock.on("error", (err) => settle(err));
    void pump();
  });
}
