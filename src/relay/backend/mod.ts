/**
 * Relay storage backends for `hop relay sync`: {@linkcode openBackend} turns a
 * relay address (any storage address, see `../../storage/address.ts`) into a
 * {@linkcode RelayBackend}: the storage driver seen as a flat relay folder.
 * It connects and logs in now, so a wrong address or password fails here.
 *
 * @example
 * ```ts
 * const relay = await openBackend("ftps://bob@relay.example.org/escale", { password: "pw" });
 * try {
 *   if (await relay.createExclusive(".0.lock", lockBytes)) { ... await relay.delete(".0.lock"); }
 * } finally {
 *   await relay.close();
 * }
 * ```
 *
 * @module
 */
import { type Driver, openDriver, type OpenOptions as DriverOptions } from "../../storage/mod.ts";
import { relayOnDriver } from "./relay.ts";
import type { RelayBackend } from "./types.ts";

export { relayOnDriver } from "./relay.ts";
export {
  CLAIM_SUFFIX,
  type RelayBackend,
  type RelayFile,
  StorageError,
  type StorageErrorKind,
  TEMP_PREFIX,
} from "./types.ts";

/** Options of {@linkcode openBackend}: the driver's, and the claim grace period. */
export interface OpenOptions extends DriverOptions {
  /** How long a claim folder without its file is tolerated, ms (default 60 s). */
  claimGraceMs?: number;
}

/** Opens the relay at `address`; a network relay connects and logs in now. */
export async function openBackend(address: string, opts: OpenOptions = {}): Promise<RelayBackend> {
  return relayOnDriver(await openRelayDriver(address, opts), { claimGraceMs: opts.claimGraceMs });
}

/**
 * The storage of the relay at `address` itself, checked usable: for Escale's
 * placeholder scheme, whose relay is a tree of folders rather than one flat
 * folder. A network relay connects and logs in now.
 */
export async function openRelayDriver(address: string, opts: OpenOptions = {}): Promise<Driver> {
  // One connection: a relay's calls run in order, as the sync engine expects.
  const d = await openDriver(address, { maxConnections: 1, timeoutMs: 60_000, ...opts });
  try {
    await d.check();
  } catch (e) {
    await d.close();
    throw e;
  }
  return d;
}
