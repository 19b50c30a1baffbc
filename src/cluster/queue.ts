/**
 * The cluster's job queue: a crash-safe store of {@linkcode QueueJob}s in a
 * directory (`.queue/` of the cluster root), one file per job.
 *
 * Files (ids sort by creation time, so listing order is queue order):
 * - `<id>.job`: a queued job, its line (`queue_job.ts`) and `\n`;
 * - `<id>.claimed.<pid>@<instance>`: a job taken by process `<pid>` of host boot and PID
 *   namespace `<instance>` (`lease.ts`: `processIdentity`); `<id>.claimed.<pid>` (older
 *   hop) is read as this instance's;
 * - `.tmp.<pid>@<instance>.<id>`: a job being written (never read as a job);
 * - `<id>.bad`: a job file that could not be decoded, set aside for a human.
 *
 * Crash safety: a job is written to its temp file, fsynced, renamed to
 * `<id>.job`, and the directory is fsynced; {@linkcode enqueue} returns only
 * then. Rename is atomic, so at any instant a job is either absent (its
 * enqueue had not returned), queued, claimed, or gone (completed), never
 * half-written. Taking is a rename from `<id>.job` to `<id>.claimed.<pid>`:
 * of two takers, only one rename succeeds. Completing deletes the claimed
 * file. Taking, completing and releasing do not wait for the disk (no fsync of
 * the directory: one journal commit less per step, and the worker's steps run
 * beside uploads waiting for theirs): after a crash a job taken or completed
 * just before is queued or claimed again, and done again (delivery is at least
 * once anyway, below).
 *
 * Dead workers: a claim of this instance whose process no longer exists
 * (checked with signal 0), or that carries this process's pid but was not made
 * by this process (a pid reused after a restart), is stale. A claim made in
 * another instance (another host, another PID namespace) cannot be checked
 * from here: it is stale only once its instance was declared gone
 * ({@linkcode forgetInstance}, when a server takes over the serve lease of a
 * server of that instance). {@linkcode take} takes stale claims like queued
 * jobs (in id order) and {@linkcode recover} puts them back and removes temp
 * files of dead processes.
 *
 * Delivery is at least once: a worker that dies after doing a job but
 * before {@linkcode complete} leaves it to be done again, so jobs must be
 * idempotent (and may check `size`/`mtime` to drop stale ones).
 *
 * @example
 * ```ts
 * const id = await enqueue(".queue", { type: "delete", link: ".deleted/x#", nodes: [] });
 * const got = await take(".queue");
 * if (got) { await doTheWork(got.job); await complete(".queue", got.id); }
 * ```
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { closeSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { CodecError } from "../codec/errors.ts";
import { decodeJob, encodeJob, type QueueJob } from "../codec/queue_job.ts";
import { fsyncFd, syncDir } from "../durable.ts";
import { HopError } from "../errors.ts";
import { processIdentity } from "./lease.ts";

/** A job in the queue. */
export interface QueueEntry {
  /** Time-sortable id: `<ms, 14 digits>-<sequence, 6 digits>-<random hex>`. */
  id: string;
  job: QueueJob;
  /** Pid of the process that took it, or null while queued. */
  claimedBy: number | null;
  /** Instance (host boot and PID namespace) of that process, null when queued or unknown. */
  claimedOn: string | null;
}

const ID = /^[0-9]{14}-[0-9]{6}-[0-9a-f]{8}$/;
const QUEUED = /^([0-9]{14}-[0-9]{6}-[0-9a-f]{8})\.job$/;
const CLAIMED = /^([0-9]{14}-[0-9]{6}-[0-9a-f]{8})\.claimed\.([0-9]+)(?:@([0-9a-f]{4,32}))?$/;
const TEMP = /^\.tmp\.([0-9]+)(?:@([0-9a-f]{4,32}))?\./;

/** Claims made by this process (to tell them from stale claims with a reused pid). */
const myClaims = new Set<string>();
/** Instances whose claims are stale (their server is gone). */
const goneInstances = new Set<string>();
/** The claim file name of this process for job `id`. */
const claimName = (id: string) => `${id}.claimed.${process.pid}@${processIdentity().instance}`;
/** Jobs a take() of this process is claiming right now. */
const busy = new Set<string>();
/** Queue directories this process made sure exist. */
const queueDirs = new Set<string>();
/** Temp files this process is writing. */
const myTemps = new Set<string>();
let lastMs = 0;
let seq = 0;

/** A new time-sortable job id. */
export function newJobId(): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    seq = 0;
  } else if (++seq > 999999) {
    lastMs++;
    seq = 0;
  }
  return `${String(lastMs).padStart(14, "0")}-${String(seq).padStart(6, "0")}-${
    randomBytes(4).toString("hex")
  }`;
}

function checkId(id: string): void {
  if (!ID.test(id)) throw new HopError(`not a queue job id: ${JSON.stringify(id)}`);
}

function code(e: unknown): string | undefined {
  return (e as { code?: string })?.code;
}

/** True when process `pid` exists (on this host). Only ESRCH means gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    if (code(e) === "ESRCH") return false;
    if (code(e) === "EPERM") return true;
    throw new HopError(`cannot tell whether process ${pid}, holding a queue job, is alive: ${e}`, {
      hint:
        "hop needs permission to signal processes (Deno: --allow-run) to recover jobs of dead workers.",
      cause: e,
    });
  }
}

function isStale(id: string, pid: number, instance: string | undefined): boolean {
  if (instance !== undefined && instance !== processIdentity().instance) {
    return goneInstances.has(instance);
  }
  if (pid === process.pid) return !myClaims.has(id) && !busy.has(id);
  return !alive(pid);
}

/** A temp file of a dead writer (another instance's: gone, or older than an hour). */
async function tempIsStale(file: string, pid: number, instance: string | undefined) {
  if (instance !== undefined && instance !== processIdentity().instance) {
    if (goneInstances.has(instance)) return true;
    const st = await stat(file).catch(() => null);
    return st !== null && Date.now() - st.mtimeMs > 3_600_000;
  }
  return pid === process.pid ? !myTemps.has(file) : !alive(pid);
}

/**
 * Declare the processes of `instance` gone (their server's lease was taken over):
 * their claims are stale from now on, in this process.
 */
export function forgetInstance(instance: string): void {
  if (instance !== processIdentity().instance) goneInstances.add(instance);
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    if (code(e) === "ENOENT") return [];
    throw e;
  }
}

async function readJob(dir: string, name: string): Promise<QueueJob> {
  const text = await readFile(join(dir, name), "utf8");
  if (!text.endsWith("\n") || text.indexOf("\n") !== text.length - 1) {
    throw new CodecError(
      "queue job",
      join(dir, name),
      1,
      "a job file holds exactly one line ending with a newline",
    );
  }
  return decodeJob(text.slice(0, -1), join(dir, name));
}

/**
 * Adds `job` to the queue in `dir` (made if missing) and returns its id once
 * the job is durable. Throws `EncodeError` for a job a line cannot hold.
 */
export async function enqueue(dir: string, job: QueueJob): Promise<string> {
  return await (await prepare(dir, job)).publish();
}

/** A job written and flushed under its temp name ({@linkcode prepare}), not queued yet. */
export interface PreparedJob {
  /** Queues it (rename, fsync of the directory); returns its id once it is durable. */
  publish(): Promise<string>;
  /** Removes its temp file (when it will not be queued). */
  discard(): Promise<void>;
}

/**
 * The first half of {@linkcode enqueue}: the job's temp file written and fsynced, so
 * that this flush can run alongside others (an upload's data) and the job be queued
 * once what it names exists.
 */
export async function prepare(dir: string, job: QueueJob): Promise<PreparedJob> {
  const line = encodeJob(job) + "\n";
  if (!queueDirs.has(dir)) {
    const made = await mkdir(dir, { recursive: true });
    if (made !== undefined) await syncDir(dirname(made));
    queueDirs.add(dir);
  }
  const id = newJobId();
  const tmp = join(dir, `.tmp.${process.pid}@${processIdentity().instance}.${id}`);
  myTemps.add(tmp);
  const drop = () => {
    rmSync(tmp, { force: true });
    myTemps.delete(tmp);
    return Promise.resolve();
  };
  // One line: open, write and close are synchronous, the flush is not (`fsyncFd`).
  try {
    const fd = openSync(tmp, "wx");
    try {
      writeFileSync(fd, line, "utf8");
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    await drop();
    throw e;
  }
  return {
    async publish() {
      try {
        renameSync(tmp, join(dir, `${id}.job`));
      } catch (e) {
        await drop();
        throw e;
      }
      myTemps.delete(tmp);
      await syncDir(dir);
      return id;
    },
    discard: drop,
  };
}

/**
 * The jobs in the queue, queued and claimed, in id order. Temp and `.bad`
 * files are not listed. Throws `CodecError` (naming the file) for a job file
 * that does not decode.
 */
export async function list(dir: string): Promise<QueueEntry[]> {
  const out: QueueEntry[] = [];
  for (const name of await names(dir)) {
    const q = QUEUED.exec(name);
    const c = q ? null : CLAIMED.exec(name);
    if (!q && !c) continue;
    try {
      out.push({
        id: (q ?? c)![1],
        job: await readJob(dir, name),
        claimedBy: c ? Number(c[2]) : null,
        claimedOn: c ? c[3] ?? null : null,
      });
    } catch (e) {
      if (code(e) === "ENOENT") continue; // taken or completed meanwhile
      throw e;
    }
  }
  return out;
}

/**
 * Claims the oldest job that is queued or whose claim is stale, or returns
 * null when there is none. `accept` may skip jobs (they stay queued).
 * A job file that does not decode is renamed `<id>.bad` and its `CodecError`
 * thrown (the next call goes on with the other jobs).
 */
export async function take(
  dir: string,
  accept?: (job: QueueJob) => boolean,
): Promise<QueueEntry | null> {
  for (const name of await names(dir)) {
    const q = QUEUED.exec(name);
    const c = q ? null : CLAIMED.exec(name);
    if (!q && !(c && isStale(c[1], Number(c[2]), c[3]))) continue;
    const id = (q ?? c)![1];
    if (busy.has(id)) continue; // another take() of this process is on it
    busy.add(id);
    try {
      let job: QueueJob;
      try {
        job = await readJob(dir, name);
      } catch (e) {
        if (code(e) === "ENOENT") continue;
        if (e instanceof CodecError) {
          await rename(join(dir, name), join(dir, `${id}.bad`)).catch(() => {});
        }
        throw e;
      }
      if (accept && !accept(job)) continue;
      try {
        await rename(join(dir, name), join(dir, claimName(id)));
      } catch (e) {
        if (code(e) === "ENOENT") continue; // another worker was faster
        throw e;
      }
      myClaims.add(id);
      return { id, job, claimedBy: process.pid, claimedOn: processIdentity().instance };
    } finally {
      busy.delete(id);
    }
  }
  return null;
}

function notMine(dir: string, id: string, what: string): HopError {
  return new HopError(`cannot ${what} queue job ${id} in ${dir}: this process does not hold it`, {
    hint: "A job is completed or released by the process that took it.",
  });
}

/** Removes a job this process took: it is done. */
export async function complete(dir: string, id: string): Promise<void> {
  checkId(id);
  if (!myClaims.has(id)) throw notMine(dir, id, "complete");
  try {
    await unlink(join(dir, claimName(id)));
  } catch (e) {
    if (code(e) === "ENOENT") throw notMine(dir, id, "complete");
    throw e;
  } finally {
    myClaims.delete(id);
  }
}

/** Puts a job this process took back in the queue (at its old place), e.g. after a failure to retry. */
export async function release(dir: string, id: string): Promise<void> {
  checkId(id);
  if (!myClaims.has(id)) throw notMine(dir, id, "release");
  try {
    await rename(join(dir, claimName(id)), join(dir, `${id}.job`));
  } catch (e) {
    if (code(e) === "ENOENT") throw notMine(dir, id, "release");
    throw e;
  } finally {
    myClaims.delete(id);
  }
}

/**
 * Puts stale claims back in the queue and removes temp files left by dead
 * processes. Call when a queue processor starts. Returns what it did.
 */
export async function recover(dir: string): Promise<{ requeued: string[]; removedTemp: number }> {
  const requeued: string[] = [];
  let removedTemp = 0;
  for (const name of await names(dir)) {
    const c = CLAIMED.exec(name);
    if (c && isStale(c[1], Number(c[2]), c[3])) {
      try {
        await rename(join(dir, name), join(dir, `${c[1]}.job`));
        requeued.push(c[1]);
      } catch (e) {
        if (code(e) !== "ENOENT") throw e;
      }
      continue;
    }
    const t = TEMP.exec(name);
    if (t && await tempIsStale(join(dir, name), Number(t[1]), t[2])) {
      await unlink(join(dir, name)).catch((e) => {
        if (code(e) !== "ENOENT") throw e;
      });
      removedTemp++;
    }
  }
  if (requeued.length > 0 || removedTemp > 0) await syncDir(dir);
  return { requeued, removedTemp };
}

/** Depth of a queue without reading its jobs: queued and claimed, and the oldest job's age. */
export interface QueueStats {
  /** Jobs queued or claimed. */
  depth: number;
  /** Of them, claimed by a worker now. */
  claimed: number;
  /** When the oldest job was queued (ms since the epoch), or null when the queue is empty. */
  oldestMs: number | null;
}

/** {@linkcode QueueStats} of the queue in `dir`, from the job ids (time-sortable). */
export async function stats(dir: string): Promise<QueueStats> {
  const out: QueueStats = { depth: 0, claimed: 0, oldestMs: null };
  for (const name of await names(dir)) {
    const q = QUEUED.exec(name);
    const c = q ? null : CLAIMED.exec(name);
    if (!q && !c) continue;
    out.depth++;
    if (c) out.claimed++;
    const ms = Number((q ?? c)![1].slice(0, 14));
    if (out.oldestMs === null || ms < out.oldestMs) out.oldestMs = ms;
  }
  return out;
}
