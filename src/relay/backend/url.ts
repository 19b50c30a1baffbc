/**
 * Relay addresses: `file:///path`, a plain path, `ftp://[user[:pass]@]host[:port]/dir`
 * and `ftps://...` (explicit TLS). As in RFC 1738, the FTP path is relative to
 * the login folder; `%2F` makes it absolute (`ftp://h/%2Fsrv/relay`).
 *
 * @module
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../../errors.ts";

/** A parsed relay address. */
export type RelayAddress =
  | { kind: "folder"; path: string }
  | {
    kind: "ftp";
    secure: boolean;
    host: string;
    port: number;
    user?: string;
    password?: string;
    /** "" for the login folder. */
    dir: string;
  };

/**
 * Parses a relay address; throws UsageError on anything else.
 *
 * @example
 * ```ts
 * parseRelayAddress("ftp://bob@example.org:2121/relay");
 * // { kind: "ftp", secure: false, host: "example.org", port: 2121, user: "bob", dir: "relay" }
 * ```
 */
export function parseRelayAddress(address: string): RelayAddress {
  if (address.trim() === "") throw new UsageError("empty relay address");
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(address)?.[1]?.toLowerCase();
  if (!scheme || (scheme.length === 1 && /^[a-z]:[\\/]/i.test(address))) {
    return { kind: "folder", path: resolve(address) };
  }
  let u: URL;
  try {
    u = new URL(address);
  } catch {
    throw new UsageError(
      `relay address ${address} is not a valid URL`,
      "Use file:///path, ftp://host/dir or ftps://host/dir.",
    );
  }
  if (scheme === "file") {
    if (u.hostname !== "" && u.hostname !== "localhost") {
      throw new UsageError(
        `relay address ${address} names a remote host`,
        "A file:// relay is a local (or mounted) folder: file:///path.",
      );
    }
    return { kind: "folder", path: fileURLToPath(new URL("file://" + u.pathname)) };
  }
  if (scheme !== "ftp" && scheme !== "ftps") {
    throw new UsageError(
      `relay protocol ${scheme}: is not supported`,
      "Use file:///path, ftp://host/dir or ftps://host/dir.",
    );
  }
  if (u.hostname === "") throw new UsageError(`relay address ${address} has no host`);
  const port = u.port === "" ? 21 : Number(u.port);
  let dir: string;
  try {
    dir = decodeURIComponent(u.pathname).slice(1);
  } catch {
    throw new UsageError(`relay address ${address} has a malformed %-escape`);
  }
  if (dir.length > 1) dir = dir.replace(/\/+$/, "");
  return {
    kind: "ftp",
    secure: scheme === "ftps",
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    ...(u.username ? { user: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    dir,
  };
}
