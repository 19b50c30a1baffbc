/**
 * What relay sync needs from a relay storage: the narrow view of a backend
 * (`./backend/`) the sync engine uses — flat files listed with size and
 * mtime, read as a stream or whole, written atomically, created exclusively
 * (for locks), deleted and renamed — and the opening of a relay from a
 * folder's configuration.
 *
 * @module
 */
import { openBackend, type OpenOptions } from "./backend/mod.ts";
import type { RelayBackend } from "./backend/types.ts";

export type { RelayFile } from "./backend/types.ts";

/** The relay operations sync uses (every backend has them). */
export type RelayIO = Omit<RelayBackend, "setMtime">;

/** Opens the relay of a folder configuration (FTP connects and logs in now). */
export async function openRelayIO(
  url: string,
  opts: Pick<
    OpenOptions,
    | "user"
    | "password"
    | "insecureTls"
    | "tlsCa"
    | "tlsCert"
    | "tlsKey"
    | "tlsVersion"
    | "claimGraceMs"
  > = {},
): Promise<RelayIO> {
  return await openBackend(url, opts);
}
