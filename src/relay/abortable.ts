/**
 * Streams of a sync step: they stop when the sync is asked to stop (Ctrl-C):
 * a push's archive or a pull's download errors out at once, so the step in
 * progress ends within seconds and publishes nothing (the relay's atomic
 * writes drop their temp file, the pull's staging folder is removed); and
 * they count the bytes that went through, for progress.
 *
 * @module
 */
import { HopError } from "../errors.ts";

/** The error a stopped transfer ends with. */
export function stoppedError(): HopError {
  return new HopError("stopped on request (Ctrl-C); nothing of this step was published", {
    code: "interrupted",
    hint: "Run the sync again: it resumes where it was.",
  });
}

/** `source`, erroring as soon as `signal` aborts (the source is cancelled). */
export function abortable<T>(
  source: ReadableStream<T>,
  signal: AbortSignal | undefined,
): ReadableStream<T> {
  if (!signal) return source;
  const reader = source.getReader();
  let onAbort = () => {};
  return new ReadableStream<T>({
    start(controller) {
      onAbort = () => {
        const err = stoppedError();
        try {
          controller.error(err);
        } catch {
          // already closed
        }
        reader.cancel(err).catch(() => {});
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (signal.aborted) return;
        if (done) {
          signal.removeEventListener("abort", onAbort);
          controller.close();
        } else controller.enqueue(value);
      } catch (e) {
        signal.removeEventListener("abort", onAbort);
        if (!signal.aborted) controller.error(e);
      }
    },
    cancel(reason) {
      signal.removeEventListener("abort", onAbort);
      return reader.cancel(reason);
    },
  });
}

/** `source`, calling `onBytes` with the size of each chunk that goes through. */
export function counted(
  source: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      onBytes(value.byteLength);
      controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}
