/**
 * Relay storage backends for `hop relay sync`: {@linkcode openBackend} turns a
 * relay address into a {@linkcode RelayBackend} (folder, FTP or explicit FTPS).
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
import { UsageError } from "../../errors.ts";
import { folderBackend } from "./folder.ts";
import { ftpBackend } from "./ftp.ts";
import type { RelayBackend } from "./types.ts";
import { parseRelayAddress } from "./url.ts";

export { folderBackend, type FolderOptions } from "./folder.ts";
export { ftpBackend, type FtpOptions } from "./ftp.ts";
export { parseRelayAddress, type RelayAddress } from "./url.ts";
export {
  CLAIM_SUFFIX,
  type RelayBackend,
  RelayError,
  type RelayErrorKind,
  type RelayFile,
  TEMP_PREFIX,
} from "./types.ts";

/** Options of {@linkcode openBackend}; credentials here and in the URL must agree. */
export interface OpenOptions {
  user?: string;
  password?: string;
  /** FTPS: accept any certificate (self-signed). */
  insecureTls?: boolean;
  /** FTPS: PEM CA certificate(s) to trust. */
  tlsCa?: string;
  /** FTPS: client certificate and its key, PEM. */
  tlsCert?: string;
  tlsKey?: string;
  /** FTPS: the one TLS version to speak. */
  tlsVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2";
  /** Make the relay folder when missing (default false). */
  create?: boolean;
  /** FTP inactivity timeout, ms (default 60 s). */
  timeoutMs?: number;
  /** How long a claim folder without its file is tolerated, ms (default 60 s). */
  claimGraceMs?: number;
}

/** Opens the relay at `address` (see `url.ts` for the forms). FTP connects and logs in now. */
export async function openBackend(address: string, opts: OpenOptions = {}): Promise<RelayBackend> {
  const a = parseRelayAddress(address);
  if (a.kind === "folder") {
    return await folderBackend(a.path, { create: opts.create, claimGraceMs: opts.claimGraceMs });
  }
  const pick = (what: string, fromUrl?: string, fromOpts?: string) => {
    if (fromUrl !== undefined && fromOpts !== undefined && fromUrl !== fromOpts) {
      throw new UsageError(
        `relay ${what} differs between the address and the settings`,
        `Give the ${what} once, in the address or in the settings.`,
      );
    }
    return fromOpts ?? fromUrl;
  };
  return await ftpBackend({
    host: a.host,
    port: a.port,
    user: pick("user", a.user, opts.user),
    password: pick("password", a.password, opts.password),
    dir: a.dir,
    secure: a.secure,
    insecureTls: opts.insecureTls,
    tlsCa: opts.tlsCa,
    tlsCert: opts.tlsCert,
    tlsKey: opts.tlsKey,
    tlsVersion: opts.tlsVersion,
    create: opts.create,
    timeoutMs: opts.timeoutMs,
    claimGraceMs: opts.claimGraceMs,
  });
}
