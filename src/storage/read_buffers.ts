/**
 * Read buffers for node data connections and file reads (`streams.ts`), shared by all
 * transfers of the process: their size adapts to how many readers are open (1 MB each
 * while few are, for the speed of a proxied RETR, down to 64 KB when hundreds are, so
 * that together they stay near a fixed budget), and buffers given back are reused across
 * transfers instead of being left to the garbage collector.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** Largest read buffer (a lone big transfer). */
export const MAX_READ_BUFFER = 1024 * 1024;
/** Smallest read buffer (many transfers at once). */
export const MIN_READ_BUFFER = 64 * 1024;
/** Read buffers all open data connections aim at together. */
const BUDGET = 4 * 1024 * 1024;
/** Bytes of read chunks all open data connections may hold together (see readQueueLimit). */
const QUEUE_BUDGET = 16 * 1024 * 1024;
/** Bytes of free buffers kept for reuse. */
const FREE_BYTES = 8 * 1024 * 1024;

let open = 0;
let freeBytes = 0;
const free = new Map<number, Uint8Array[]>();

/**
 * Count one more open reader (a data connection, a file); the returned function counts
 * it closed (calling it again does nothing).
 *
 * @example
 * const closed = readerOpened();
 * sock.once("close", closed);
 */
export function readerOpened(): () => void {
  open++;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    open--;
  };
}

/** The read buffer size for now: the budget shared by the open connections, a power of two. */
export function readBufferSize(): number {
  let size = MAX_READ_BUFFER;
  while (size > MIN_READ_BUFFER && size * Math.max(1, open) > BUDGET) size /= 2;
  return size;
}

/**
 * Bytes of read chunks one open data connection may hold waiting for its reader before
 * it is paused: 4 read buffers while few connections are open, down to one buffer when
 * many are (their share of {@linkcode QUEUE_BUDGET}).
 */
export function readQueueLimit(): number {
  const size = readBufferSize();
  return Math.min(4 * size, Math.max(size, Math.floor(QUEUE_BUDGET / Math.max(1, open))));
}

/** A buffer of `size` bytes no one else holds (a reused one when there is one). */
export function takeReadBuffer(size: number): Uint8Array {
  const list = free.get(size);
  const buf = list?.pop();
  if (buf) {
    freeBytes -= size;
    return buf;
  }
  return Buffer.allocUnsafe(size);
}

/** Give back a buffer from {@linkcode takeReadBuffer} that no one uses any more. */
export function giveReadBuffer(buf: Uint8Array): void {
  const size = buf.byteLength;
  if (freeBytes + size > FREE_BYTES) return;
  let list = free.get(size);
  if (!list) free.set(size, list = []);
  list.push(buf);
  freeBytes += size;
}
