/**
 * Idle limits that hold while a socket's writes wait on a peer that reads nothing.
 *
 * Node fires a socket's `timeout` event once it has been idle for `socket.timeout`
 * ms, writes waiting on the peer included. Bun (1.4) never fires it while a write is
 * pending: a frozen FTP node under a store, or a client that stops reading a
 * download, held the transfer forever in the binary. {@linkcode watchStalledWrites}
 * emits `timeout` itself when bytes wait to be written and nothing has moved either
 * way for `socket.timeout` ms, so the handlers given to `setTimeout` run on both
 * runtimes. It follows later `setTimeout` calls (it reads `socket.timeout`), and on
 * Node, where the socket's own timer comes first, it adds nothing.
 *
 * @example
 * ```ts
 * import { connect } from "node:net";
 * const sock = connect(2121, "127.0.0.1");
 * sock.setTimeout(30_000, () => sock.destroy(new Error("data connection timed out")));
 * watchStalledWrites(sock);
 * ```
 *
 * @module
 */
import type { Socket } from "node:net";

const watched = new WeakSet<Socket>();

/** Emits `timeout` on `sock` when its pending writes have not moved for `sock.timeout` ms. */
export function watchStalledWrites(sock: Socket, checkEveryMs = 500): void {
  if (watched.has(sock)) return;
  watched.add(sock);
  let mark = "";
  let since = Date.now();
  const timer = setInterval(() => {
    if (sock.destroyed) return clearInterval(timer);
    const now = `${sock.bytesWritten} ${sock.writableLength} ${sock.bytesRead}`;
    const limit = sock.timeout ?? 0;
    if (now !== mark || sock.writableLength === 0 || !(limit > 0)) {
      mark = now;
      since = Date.now();
    } else if (Date.now() - since >= limit) {
      since = Date.now(); // once per stall: the handler decides what happens next
      sock.emit("timeout");
    }
  }, checkEveryMs);
  timer.unref?.();
  sock.once("close", () => clearInterval(timer));
}
