/**
 * Exclusive create without O_EXCL, the same on every backend. FTP has no
 * "create if absent" for files, but making a folder is atomic on every real
 * server (mkdir(2) fails when it exists), so the claim is a folder:
 *
 * 1. `mkdir <name>.excl` — the claim; only one racer succeeds.
 * 2. If `<name>` already exists (written by a client that does not claim,
 *    such as Escale, which writes its locks in place), the claim is undone
 *    and the create reports false.
 * 3. `<name>` is written atomically (temp + rename); true.
 *
 * Removing (`delete`) undoes the claim first, then removes the file, so a
 * crash in between leaves a plain file, which lock timeouts already handle.
 * A crash between steps 1 and 3 leaves a claim without its file; a client
 * that sees such a claim for longer than `graceMs` (by its own clock,
 * remembered in `seen`) removes it and reports false, so the next attempt
 * races fairly. The folder backend uses the same scheme, so folder and FTP
 * clients sharing one storage exclude each other.
 *
 * @module
 */
import { CLAIM_SUFFIX } from "./types.ts";

/** The few primitives the scheme needs. */
export interface ClaimOps {
  /** True when made, false when it exists. */
  mkdir(name: string): Promise<boolean>;
  /** Removes an empty folder; no error when absent. */
  rmdir(name: string): Promise<void>;
  /** True when a file `name` exists. */
  exists(name: string): Promise<boolean>;
  writeAtomic(name: string, data: Uint8Array): Promise<void>;
  /** Removes a file; no error when absent. */
  unlink(name: string): Promise<void>;
}

/** State kept per backend: when an orphan-looking claim was first seen. */
export interface ClaimState {
  seen: Map<string, number>;
  graceMs: number;
  now: () => number;
}

/** A fresh state; `graceMs` defaults to 60 s. */
export function claimState(graceMs = 60_000, now: () => number = Date.now): ClaimState {
  return { seen: new Map(), graceMs, now };
}

/** Creates `name` exclusively (see the module doc). */
export async function createExclusive(
  ops: ClaimOps,
  state: ClaimState,
  name: string,
  data: Uint8Array,
): Promise<boolean> {
  const claim = name + CLAIM_SUFFIX;
  if (await ops.mkdir(claim)) {
    state.seen.delete(name);
    if (await ops.exists(name)) {
      await ops.rmdir(claim);
      return false;
    }
    try {
      await ops.writeAtomic(name, data);
    } catch (e) {
      await ops.rmdir(claim).catch(() => {});
      throw e;
    }
    return true;
  }
  if (await ops.exists(name)) {
    state.seen.delete(name);
    return false;
  }
  // A claim without its file: being written right now, or left by a crash.
  const first = state.seen.get(name);
  if (first === undefined) {
    state.seen.set(name, state.now());
  } else if (state.now() - first >= state.graceMs) {
    state.seen.delete(name);
    await ops.rmdir(claim);
  }
  return false;
}

/** Removes `name` and its claim (claim first); idempotent. */
export async function deleteWithClaim(ops: ClaimOps, name: string): Promise<void> {
  await ops.rmdir(name + CLAIM_SUFFIX);
  await ops.unlink(name);
}
