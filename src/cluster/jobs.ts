/**
 * How the cluster uses the queue's jobs (`src/codec/queue_job.ts`, stored by
 * `./queue.ts` in `.queue/`):
 *
 * - `upload <path> <uid> <size> <mtime>`: `path` is the at-rest path of the link file
 *   (relative to the cluster root, e.g. `alice/report.pdf#`), whose extra line
 *   `staged <id>` names the staged data. The store worker drops the job when that link
 *   is gone, no longer staged or of another size (renamed or replaced: a newer job
 *   exists). Its mtime may be older than the link's: MFMT queues no job.
 * - `delete <link>`: `link` is `.deleted/<entry>`; the worker deletes every copy (and the
 *   staged data) the link file names, then the link file.
 *
 * @module
 */

import * as path from "node:path";
import { encodeJob, type QueueJob } from "../codec/queue_job.ts";
import type { ClusterLayout } from "./layout.ts";
import * as queue from "./queue.ts";

export type { QueueJob } from "../codec/queue_job.ts";

/** Where jobs go (the FTP side only enqueues). */
export interface JobSink {
  /** Queue `job`; resolves once it is durable. */
  enqueue(job: QueueJob): Promise<void>;
  /**
   * Write and flush `job` without queueing it yet (`queue.ts`: `prepare`): its flush can
   * overlap others; `publish()` queues it, `discard()` drops it.
   */
  prepare(job: QueueJob): Promise<PreparedJob>;
}

/** A job written and flushed, not queued yet ({@linkcode JobSink.prepare}). */
export interface PreparedJob {
  /** Queue it; resolves once it is durable. */
  publish(): Promise<void>;
  /** Remove it (it will not be queued). */
  discard(): Promise<void>;
}

/** Why a job whose file changed (or went) since it was queued is not done. */
export const STALE = "stale (file changed or gone)";

/** The upload job of the link file at disk path `linkFile`. */
export function uploadJob(
  l: ClusterLayout,
  linkFile: string,
  uid: number,
  size: number,
  mtime: number,
): QueueJob {
  return { type: "upload", path: relPath(l, linkFile), uid, size, mtime, nodes: [] };
}

/** The delete job of `.deleted/<entry>`. */
export function deleteJob(entry: string): QueueJob {
  return { type: "delete", link: `.deleted/${entry}`, nodes: [] };
}

/** Path of `file` relative to the cluster root, with `/` separators. */
export function relPath(l: ClusterLayout, file: string): string {
  return path.relative(l.root, file).split(path.sep).join("/");
}

/** Disk path of a job path (relative to the root); null when it would leave the root. */
export function jobDiskPath(l: ClusterLayout, rel: string): string | null {
  const p = path.resolve(l.root, rel);
  return p.startsWith(l.root + path.sep) ? p : null;
}

/** A job taken from the queue, to be completed or put back for later. */
export interface TakenJob {
  job: QueueJob;
  /** Done: remove it from the queue. */
  complete(): Promise<void>;
  /** Not done: make it ready again after `delayMs`. */
  retry(delayMs: number, reason: string): Promise<void>;
}

/** The queue as the store worker uses it. */
export interface JobQueue extends JobSink {
  /** The next ready job, claimed, or null when none is ready. */
  take(): Promise<TakenJob | null>;
  /** Every queued job (claimed or not). */
  list(): Promise<QueueJob[]>;
}

/**
 * The queue directory `dir` as a {@linkcode JobQueue}: takes upload and delete jobs,
 * and `replicate` jobs too with `opts.replicate` (else they stay queued). Retry delays
 * are kept in this process (a restart retries at once). `onEnqueue` runs after each
 * enqueue (to wake the worker).
 */
export function openJobQueue(
  dir: string,
  onEnqueue?: () => void,
  opts: { replicate?: boolean } = {},
): JobQueue {
  const notBefore = new Map<string, number>();
  return {
    async enqueue(job) {
      await queue.enqueue(dir, job);
      onEnqueue?.();
    },
    async prepare(job) {
      const p = await queue.prepare(dir, job);
      return {
        async publish() {
          await p.publish();
          onEnqueue?.();
        },
        discard: p.discard,
      };
    },
    async take() {
      const now = Date.now();
      const got = await queue.take(
        dir,
        (job) =>
          (opts.replicate || job.type !== "replicate") &&
          (notBefore.get(encodeJob(job)) ?? 0) <= now,
      );
      if (!got) return null;
      const key = encodeJob(got.job);
      return {
        job: got.job,
        complete: async () => {
          notBefore.delete(key);
          await queue.complete(dir, got.id);
        },
        retry: async (delayMs) => {
          notBefore.set(key, Date.now() + delayMs);
          await queue.release(dir, got.id);
        },
      };
    },
    async list() {
      return (await queue.list(dir)).map((e) => e.job);
    },
  };
}
