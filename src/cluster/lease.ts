/**
 * One cluster root, one server, across hosts: the serve lease `.hop/serve.lease`
 * (text by `src/codec/lease.ts`) and who this process is ({@linkcode processIdentity}).
 *
 * - **Taking it:** created with an exclusive create; a lease already there is live
 *   while its holder is (same host boot and PID namespace: its process exists and
 *   started when the lease says) or, for a holder elsewhere (another host, another
 *   PID namespace), while its last renewal is younger than its `ttl`. A live lease
 *   refuses the start and names the holder. A stale one is taken over under a guard
 *   directory (`.hop/serve.lease.takeover`, so two starters never both take it), after
 *   reading it again: the new lease is renamed over it.
 * - **Holding it:** renewed every `ttl/6` in place, through a descriptor opened before
 *   the token is checked, then the path is checked to still be that file: a renewal
 *   never lands on a lease another server took over (that rename made a new file), and
 *   it needs no new disk block (a full disk does not stop it).
 * - **Acknowledging:** {@linkcode HeldLease.held} is true only within `ttl/2` of the
 *   start of the last renewal that completed (by this process's monotonic clock), so a
 *   server that was paused, cut off from the root or superseded stops acknowledging
 *   uploads before another server may take the root over (clocks of the hosts sharing a
 *   root must agree within `ttl/2`).
 * - **Losing it:** a renewal that finds another token, or the path holding another
 *   file, reports the loss once (`onLost`): the server stops.
 * - **Giving it back:** {@linkcode HeldLease.release} removes the file only while it
 *   still holds this process's token.
 *
 * @example
 * ```ts
 * const lease = await acquireServeLease(layout, { ttlMs: 30_000 });
 * lease.start((why) => console.error(why));
 * if (lease.held()) acknowledge();
 * await lease.release();
 * ```
 *
 * @module
 */

import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { performance } from "node:perf_hooks";
import { CodecError } from "../codec/errors.ts";
import { decodeLease, encodeLease, type ServeLease } from "../codec/lease.ts";
import { HopError } from "../errors.ts";
import type { ClusterLayout } from "./layout.ts";
import { syncDir } from "../durable.ts";

export type { ServeLease } from "../codec/lease.ts";

/** Default lease lifetime without renewal (ms). */
export const DEFAULT_LEASE_TTL_MS = 30_000;

/** Who this process is, as leases and queue claims name it. */
export interface ProcessIdentity {
  host: string;
  /** Host boot and PID namespace, as hex: pids mean the same thing only within one. */
  instance: string;
  pid: number;
  /** Kernel start time of this process (clock ticks since boot), or null when unknown. */
  processStart: number | null;
  /** True when `/proc` shows this PID namespace (so `/proc/<pid>` can be read). */
  ownProc: boolean;
}

let identity: ProcessIdentity | null = null;
/** Tokens of the leases this process holds. */
const heldHere = new Set<string>();

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** Field 22 of `/proc/<pid>/stat` (start time), or null. */
function procStart(pid: number | "self"): number | null {
  const text = readText(`/proc/${pid}/stat`);
  if (text === null) return null;
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const n = Number(fields[19]);
  return Number.isSafeInteger(n) ? n : null;
}

/** This process's identity (computed once). */
export function processIdentity(): ProcessIdentity {
  if (identity) return identity;
  let ns = "";
  let ownProc = false;
  try {
    ns = fs.readlinkSync("/proc/self/ns/pid");
    ownProc = fs.readlinkSync("/proc/self") === String(process.pid);
  } catch {
    // not Linux: the host name and boot time stand for the instance
  }
  const boot = readText("/proc/sys/kernel/random/boot_id")?.trim() ??
    String(Math.round((Date.now() - os.uptime() * 1000) / 60_000));
  const host = os.hostname() || "localhost";
  identity = {
    host,
    instance: createHash("sha256").update(`${host}\0${boot}\0${ns}`).digest("hex").slice(0, 12),
    pid: process.pid,
    processStart: ownProc ? procStart("self") : null,
    ownProc,
  };
  return identity;
}

/** True when process `pid` of this PID namespace exists (EPERM counts as existing). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code !== "ESRCH";
  }
}

/**
 * Whether lease `l` still binds others, judged by `me` at wall time `now`: its holder
 * runs (same instance) or renewed it within its ttl (elsewhere). Returns why, in words.
 */
export function leaseLiveness(
  l: ServeLease,
  me: ProcessIdentity,
  now: number,
): { live: boolean; why: string } {
  if (l.instance === me.instance) {
    if (l.pid === me.pid) {
      return heldHere.has(l.token)
        ? { live: true, why: "this process serves it" }
        : { live: false, why: "it names this process's pid" };
    }
    if (!pidAlive(l.pid)) return { live: false, why: `process ${l.pid} is gone` };
    if (me.ownProc && l.processStart !== null) {
      const s = procStart(l.pid);
      if (s !== null && s !== l.processStart) {
        return { live: false, why: `pid ${l.pid} is another process now` };
      }
    }
    return { live: true, why: `process ${l.pid} runs on this host` };
  }
  const age = now - l.renewed;
  return age < l.ttl
    ? { live: true, why: `renewed ${Math.max(0, Math.round(age / 1000))} s ago` }
    : { live: false, why: `not renewed for ${Math.round(age / 1000)} s` };
}

/** A lease this process holds. */
export interface HeldLease {
  readonly file: string;
  /** The lease as written by this process. */
  readonly lease: ServeLease;
  /** The stale lease this one replaced (its holder is presumed gone), or null. */
  readonly previous: ServeLease | null;
  /** True while this process may acknowledge uploads (see the module doc). */
  held(): boolean;
  /** The reason uploads are refused now, or null while held. */
  refusal(): string | null;
  /** Renew every `ttl/6` until released; `onLost` runs once if another server has it. */
  start(onLost: (why: string) => void): void;
  /** Renew now (also what the timer does); resolves false once the lease is lost. */
  renew(): Promise<boolean>;
  /** Stop renewing; remove the file while it holds this process's token. */
  release(): Promise<void>;
}

/** Staging ids of uploads made under lease `l` start with this tag. */
export function leaseTag(l: ServeLease): string {
  return l.token.slice(0, 8);
}

const code = (e: unknown) => (e as { code?: string })?.code;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readLeaseFile(file: string): Promise<ServeLease | null> {
  try {
    return decodeLease(await fsp.readFile(file), file);
  } catch (e) {
    if (code(e) === "ENOENT") return null;
    throw e;
  }
}

/** The lease of the cluster at `l`, or null when none. Throws CodecError when damaged. */
export function readServeLease(l: ClusterLayout): Promise<ServeLease | null> {
  return readLeaseFile(path.join(l.root, ".hop", "serve.lease"));
}

/** Refuse a start while an older hop's `.hop/serve.pid` names a live process here. */
async function checkLegacyPidFile(dir: string): Promise<void> {
  const file = path.join(dir, "serve.pid");
  const text = await fsp.readFile(file, "utf8").catch(() => null);
  if (text === null) return;
  const pid = Number(text.trim());
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
    throw new HopError(`the cluster at ${path.dirname(dir)} is served by process ${pid}`, {
      hint: "Stop that server (an older hop) first, or serve another --root.",
    });
  }
  await fsp.rm(file, { force: true });
}

/**
 * Take the serve lease of the cluster at `l`, or throw a HopError naming the server
 * that holds it. `ttlMs` (default 30 s) is how long the lease outlives a holder that
 * stopped renewing it on another host or PID namespace.
 */
export async function acquireServeLease(
  l: ClusterLayout,
  o: {
    ttlMs?: number;
    log?: (line: string) => void;
    /** Monotonic milliseconds (default `performance.now`; tests pass their own). */
    clock?: () => number;
  } = {},
): Promise<HeldLease> {
  const ttl = o.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  if (!(Number.isInteger(ttl) && ttl >= 1000)) {
    throw new HopError(`bad lease timeout ${ttl} ms`, { hint: "Give at least 1 second." });
  }
  const dir = path.join(l.root, ".hop");
  const file = path.join(dir, "serve.lease");
  const guard = path.join(dir, "serve.lease.takeover");
  await fsp.mkdir(dir, { recursive: true });
  await checkLegacyPidFile(dir);
  const me = processIdentity();
  const now = Date.now();
  const mine: ServeLease = {
    host: me.host,
    instance: me.instance,
    pid: me.pid,
    processStart: me.processStart,
    started: now,
    renewed: now,
    ttl,
    token: randomBytes(16).toString("hex"),
    extra: [],
  };
  const text = () => encodeLease({ ...mine, renewed: Date.now() });
  let previous: ServeLease | null = null;
  const deadline = Date.now() + Math.max(10_000, ttl);
  for (;;) {
    if (Date.now() > deadline) {
      throw new HopError(`cannot take the serve lease ${file}: another start is taking it`, {
        hint: "Start one server at a time; remove serve.lease.takeover if no server is starting.",
      });
    }
    try {
      const fh = await fsp.open(file, "wx", 0o644);
      try {
        await fh.writeFile(text());
        await fh.sync();
      } finally {
        await fh.close();
      }
      await syncDir(dir);
      break;
    } catch (e) {
      if (code(e) !== "EEXIST") throw e;
    }
    let cur: ServeLease | null;
    try {
      cur = await readLeaseFile(file);
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      // Being written right now, or damaged: damaged once it is older than a ttl.
      const st = await fsp.stat(file).catch(() => null);
      if (st && Date.now() - st.mtimeMs < ttl) {
        await sleep(200);
        continue;
      }
      o.log?.(`cluster: lease: replacing a damaged lease: ${e.message}`);
      cur = null;
    }
    if (cur) {
      const live = leaseLiveness(cur, me, Date.now());
      if (live.live) {
        throw new HopError(
          `the cluster at ${l.root} is served by pid ${cur.pid} on ${cur.host} since ${
            new Date(cur.started).toISOString()
          } (${live.why})`,
          {
            hint: cur.instance === me.instance
              ? "Stop that server first, or serve another --root."
              : `Stop that server first. If it is gone, its lease expires ${
                Math.round(cur.ttl / 1000)
              } s after its last renewal (${new Date(cur.renewed).toISOString()}).`,
          },
        );
      }
    }
    // Stale (or damaged): take it over, one starter at a time.
    try {
      await fsp.mkdir(guard);
    } catch (e) {
      if (code(e) !== "EEXIST") throw e;
      const st = await fsp.stat(guard).catch(() => null);
      if (st && Date.now() - st.mtimeMs > 60_000) await fsp.rmdir(guard).catch(() => {});
      else await sleep(200);
      continue;
    }
    try {
      const again = await readLeaseFile(file).catch(() => null);
      if (cur && (again?.token !== cur.token || leaseLiveness(again, me, Date.now()).live)) {
        continue; // renewed or taken meanwhile: judge it again
      }
      const tmp = `${file}.new-${mine.token}`;
      const fh = await fsp.open(tmp, "w", 0o644);
      try {
        await fh.writeFile(text());
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, file);
      await syncDir(dir);
      previous = cur;
      if (cur) {
        o.log?.(
          `cluster: lease: took over the lease of pid ${cur.pid} on ${cur.host} (${
            leaseLiveness(cur, me, Date.now()).why
          })`,
        );
      }
      break;
    } finally {
      await fsp.rmdir(guard).catch(() => {});
    }
  }
  heldHere.add(mine.token);
  return holdLease(file, mine, previous, o.clock ?? (() => performance.now()), o.log);
}

function holdLease(
  file: string,
  mine: ServeLease,
  previous: ServeLease | null,
  clock: () => number,
  log?: (line: string) => void,
): HeldLease {
  let lastOk = clock();
  let lost: string | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;
  let onLost: ((why: string) => void) | null = null;
  let running: Promise<boolean> | null = null;
  let failing = false;
  const lose = (why: string) => {
    if (lost !== null) return;
    lost = why;
    heldHere.delete(mine.token);
    clearInterval(timer);
    log?.(`cluster: lease LOST: ${why}`);
    onLost?.(why);
  };
  const renewOnce = async (): Promise<boolean> => {
    if (lost !== null) return false;
    const t0 = clock();
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, "r+");
    } catch (e) {
      if (code(e) !== "ENOENT") throw e;
      lose("the lease file was removed");
      return false;
    }
    try {
      const st = await fh.stat();
      const buf = new Uint8Array(Math.min(st.size, 64 * 1024));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const body = buf.subarray(0, bytesRead);
      let cur: ServeLease;
      try {
        cur = decodeLease(body, file);
      } catch (e) {
        lose(`the lease file no longer decodes: ${(e as Error).message}`);
        return false;
      }
      if (cur.token !== mine.token) {
        lose(`the lease now names pid ${cur.pid} on ${cur.host}`);
        return false;
      }
      const next = new TextEncoder().encode(encodeLease({ ...mine, renewed: Date.now() }));
      await fh.write(next, 0, next.length, 0);
      if (next.length !== bytesRead) await fh.truncate(next.length);
      await fh.sync();
      const now = await fsp.stat(file).catch(() => null);
      if (!now || now.ino !== st.ino || now.dev !== st.dev) {
        lose("another server replaced the lease file");
        return false;
      }
    } finally {
      await fh.close();
    }
    // A renewal that took long (a pause mid-way) does not count.
    if (clock() - t0 < mine.ttl / 4) lastOk = t0;
    if (failing) log?.("cluster: lease: renewed again");
    failing = false;
    return true;
  };
  const renew = (): Promise<boolean> => {
    running ??= renewOnce().catch((e) => {
      if (!failing) log?.(`cluster: lease: renewal failed: ${(e as Error).message}`);
      failing = true;
      return lost === null;
    }).finally(() => running = null);
    return running;
  };
  const refusal = (): string | null => {
    if (lost !== null) return `this server lost the cluster root's lease (${lost})`;
    const age = clock() - lastOk;
    return age < mine.ttl / 2
      ? null
      : `this server could not renew its lease for ${Math.round(age / 1000)} s`;
  };
  return {
    file,
    lease: mine,
    previous,
    held: () => refusal() === null,
    refusal,
    renew,
    start(cb) {
      onLost = cb;
      clearInterval(timer);
      timer = setInterval(() => void renew(), Math.max(200, Math.floor(mine.ttl / 6)));
    },
    async release() {
      clearInterval(timer);
      await running;
      if (lost !== null) return;
      lost = "released";
      heldHere.delete(mine.token);
      const cur = await readLeaseFile(file).catch(() => null);
      if (cur?.token === mine.token) await fsp.rm(file, { force: true });
    },
  };
}
