/**
 * The worker pool of the bzip2 engine: web Workers (Blob-URL module workers built from the
 * source of the kernel function, so they work both under `deno run` and in a
 * `bun build --compile` binary), a FIFO job queue, per-caller concurrency limits ("lanes"),
 * and idle shutdown so that a CLI exits promptly once its streams are done.
 *
 * Size: `HOP_WORKERS` (environment) if set, else min(navigator.hardwareConcurrency, 8); a
 * lane asking for more workers grows the pool to that many.
 *
 * @module
 */
import process from "node:process";
import { setTimeout as setTimer } from "node:timers";
import { HopError } from "../errors.ts";
import { type Bzip2Kernel, bzip2Kernel, type KernelResult } from "./bzip2_kernel.ts";
import { bzip2Module } from "./wasm.ts";

/** A job for a worker: compress a chunk, or decompress one block given by bits. */
export type PoolJob =
  | { op: "compress"; src: Uint8Array; level: number }
  | {
    op: "block";
    src: Uint8Array;
    bitOffset: number;
    bitLength: number;
    level: number;
    sizeHint: number;
  };

/** A worker's answer: `out` on success, else `code` (libbzip2 error); `src` is the input back. */
export interface PoolReply {
  out?: Uint8Array;
  code?: number;
  src?: Uint8Array;
}

/** One caller's share of the pool: at most `limit` of its jobs run at once. */
export interface Lane {
  readonly limit: number;
  running: number;
  closed: boolean;
}

interface Pending {
  job: PoolJob;
  lane: Lane;
  resolve: (r: PoolReply) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  current?: Pending;
}

/** Workers are stopped after this long without work (ms), once no lane is open... */
const IDLE_MS = 100;
/** ... or after this long while a lane is still open (an abandoned stream cannot pin us). */
const IDLE_OPEN_LANE_MS = 2000;
const DEFAULT_MAX = 8;

const slots: Slot[] = [];
const queue: Pending[] = [];
let openLanes = 0;
let size: number | undefined;
let idleTimer: ReturnType<typeof setTimer> | undefined;
let workerUrl: string | undefined;

/** The number of workers the pool runs at most. */
export function poolSize(): number {
  size ??= defaultPoolSize();
  return size;
}

/** Set the number of workers (tests, benchmarks); running workers beyond it stop when idle. */
export function setPoolSize(n: number): void {
  size = checkWorkers(n, "pool size");
}

function defaultPoolSize(): number {
  const env = process.env.HOP_WORKERS;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new HopError(`HOP_WORKERS=${env} is not a number of workers`, {
        hint: "set HOP_WORKERS to a whole number from 1 to 64, or unset it",
        exitCode: 2,
      });
    }
    return n;
  }
  const cores = typeof navigator !== "undefined" ? navigator.hardwareConcurrency : 1;
  return Math.max(1, Math.min(cores || 1, DEFAULT_MAX));
}

function checkWorkers(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new HopError(`bad ${what}: ${n}`, { hint: "use a whole number from 1 to 64" });
  }
  return n;
}

/**
 * Open a lane running at most `workers` jobs at once (default: the pool size). Close it when
 * the caller's stream ends, so idle workers can stop quickly.
 */
export function openLane(workers?: number): Lane {
  const limit = workers === undefined ? poolSize() : checkWorkers(workers, "workers");
  if (limit > poolSize()) size = limit;
  openLanes++;
  return { limit, running: 0, closed: false };
}

/** Close a lane (idempotent). */
export function closeLane(lane: Lane): void {
  if (lane.closed) return;
  lane.closed = true;
  openLanes--;
  maybeIdle();
}

/** Run `job` on a worker of the pool, within `lane`'s limit; buffers are transferred. */
export function runJob(lane: Lane, job: PoolJob): Promise<PoolReply> {
  return new Promise<PoolReply>((resolve, reject) => {
    queue.push({ job, lane, resolve, reject });
    if (idleTimer !== undefined) {
      clearTimeout(idleTimer);
      idleTimer = undefined;
    }
    dispatch();
  });
}

/** Stop every worker now; jobs still queued or running fail. The pool restarts on demand. */
export function closePool(): void {
  if (idleTimer !== undefined) clearTimeout(idleTimer);
  idleTimer = undefined;
  for (const p of queue.splice(0)) p.reject(new HopError("bzip2 worker pool closed"));
  for (const s of slots.splice(0)) {
    s.worker.terminate();
    if (s.current) {
      s.current.lane.running--;
      s.current.reject(new HopError("bzip2 worker pool closed"));
    }
  }
}

/** Number of live workers (for tests). */
export function liveWorkers(): number {
  return slots.length;
}

function dispatch(): void {
  for (let i = 0; i < queue.length;) {
    const p = queue[i];
    if (p.lane.running >= p.lane.limit) {
      i++;
      continue;
    }
    let slot = slots.find((s) => s.current === undefined);
    if (!slot) {
      if (slots.length >= poolSize()) return;
      slot = startWorker();
    }
    queue.splice(i, 1);
    slot.current = p;
    p.lane.running++;
    const transfer = [p.job.src.buffer as ArrayBuffer];
    slot.worker.postMessage(p.job, transfer);
  }
}

function startWorker(): Slot {
  workerUrl ??= URL.createObjectURL(
    new Blob([`const kernel = ${bzip2Kernel};\n(${workerMain})(kernel);\n`], {
      type: "text/javascript",
    }),
  );
  const worker = new Worker(workerUrl, { type: "module" });
  worker.postMessage({ op: "init", module: bzip2Module() });
  const slot: Slot = { worker };
  worker.onmessage = (e: MessageEvent) => {
    const p = slot.current;
    slot.current = undefined;
    if (p) {
      p.lane.running--;
      const r = e.data as PoolReply & { error?: string };
      if (r.error !== undefined) p.reject(new HopError(`bzip2 worker failed: ${r.error}`));
      else p.resolve(r);
    }
    // A shrunk pool lets surplus workers go as they become free.
    if (slots.length > poolSize()) dropSlot(slot);
    dispatch();
    maybeIdle();
  };
  const fail = (e: Event) => {
    e.preventDefault?.();
    const msg = (e as ErrorEvent).message ?? e.type;
    dropSlot(slot);
    const p = slot.current;
    slot.current = undefined;
    if (p) {
      p.lane.running--;
      p.reject(new HopError(`bzip2 worker crashed: ${msg}`));
    }
    dispatch();
    maybeIdle();
  };
  worker.onerror = fail;
  worker.onmessageerror = fail;
  slots.push(slot);
  return slot;
}

function dropSlot(slot: Slot): void {
  const i = slots.indexOf(slot);
  if (i >= 0) slots.splice(i, 1);
  slot.worker.terminate();
}

function maybeIdle(): void {
  if (queue.length > 0 || slots.some((s) => s.current) || slots.length === 0) return;
  if (idleTimer !== undefined) clearTimeout(idleTimer);
  const t = setTimer(() => {
    idleTimer = undefined;
    if (queue.length > 0 || slots.some((s) => s.current)) return;
    for (const s of slots.splice(0)) s.worker.terminate();
  }, openLanes > 0 ? IDLE_OPEN_LANE_MS : IDLE_MS);
  t.unref();
  idleTimer = t;
}

/**
 * The body of every worker (self-contained: only its source text travels). Receives the
 * compiled module in an "init" message, then runs jobs with the kernel and answers each,
 * transferring the output buffer (or, on failure, the input back for a retry).
 */
function workerMain(factory: (m: WebAssembly.Module) => Bzip2Kernel): void {
  let k: Bzip2Kernel | undefined;
  const g = globalThis as unknown as {
    onmessage: (e: MessageEvent) => void;
    postMessage: (m: unknown, t?: Transferable[]) => void;
  };
  g.onmessage = (e: MessageEvent) => {
    const m = e.data;
    if (m.op === "init") {
      k = factory(m.module);
      return;
    }
    let r: KernelResult;
    try {
      if (!k) throw new Error("worker not initialised");
      r = m.op === "compress"
        ? k.compress(m.src, m.level)
        : k.decompressBlock(m.src, m.bitOffset, m.bitLength, m.level, m.sizeHint);
    } catch (err) {
      g.postMessage({ error: String(err) });
      return;
    }
    // The input goes back too: a block that turns out to be cut at a false magic match is
    // merged with its neighbours on the main thread (bzip2_split.ts).
    if (typeof r === "number") g.postMessage({ code: r, src: m.src }, [m.src.buffer]);
    else g.postMessage({ out: r, src: m.src }, [r.buffer, m.src.buffer]);
  };
}
