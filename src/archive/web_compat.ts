/**
 * Fills a gap in the web streams of Bun (1.3), which the single binary runs on
 * when it is built with `bun build --compile`: `WritableStreamDefaultController`
 * has no `signal` there, and modern-tar's decoder sets `controller.signal.onabort`
 * when it waits for its reader. Without this, every archive read in the Bun
 * binary fails with "undefined is not an object".
 *
 * The stand-in signal is never aborted by the runtime; an aborted stream still
 * errors through the stream itself, it just does not wake the decoder early.
 * Deno has the real property, and there this module does nothing.
 *
 * @module
 */

const proto = (globalThis as { WritableStreamDefaultController?: { prototype: object } })
  .WritableStreamDefaultController?.prototype;

if (proto && !("signal" in proto)) {
  const signals = new WeakMap<object, AbortSignal>();
  Object.defineProperty(proto, "signal", {
    configurable: true,
    get(this: object): AbortSignal {
      let s = signals.get(this);
      if (!s) {
        s = new AbortController().signal;
        signals.set(this, s);
      }
      return s;
    },
  });
}
