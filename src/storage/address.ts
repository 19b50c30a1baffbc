/**
 * Storage addresses, one form per driver:
 *
 * | form                                              | driver                |
 * | ------------------------------------------------- | --------------------- |
 * | `/path`, `./path`, `file:///path`                  | folder                |
 * | `ftp://[user[:pass]@]host[:port]/dir`, `ftps://`   | FTP, explicit FTPS    |
 * | `sftp://[user[:pass]@]host[:port]/abs/dir`         | SFTP (`/~/dir`: home) |
 * | `webdav://host[:port]/path`, `webdavs://`, `http(s)://` | WebDAV           |
 * | `s3://bucket/prefix[?endpoint=URL&region=R]`       | S3-compatible         |
 * | `rclone://remote/path`, `rclone:remote:path`       | an rclone remote      |
 *
 * An rclone path is relative to the remote's top (`rclone://remote//abs/path`
 * or `rclone:remote:/abs/path` for an absolute one, as on local and SFTP
 * remotes).
 *
 * As in RFC 1738, an FTP path is relative to the login folder (`%2F` makes it
 * absolute); an SFTP path is absolute, as curl reads it, and `/~/` starts at
 * the home folder. `webdav://` is HTTP and `webdavs://` HTTPS.
 *
 * @module
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.ts";

/** A parsed storage address. */
export type Address =
  | { kind: "folder"; path: string }
  | {
    kind: "ftp" | "sftp" | "webdav";
    /** ftps, webdavs/https. */
    secure: boolean;
    host: string;
    port: number;
    user?: string;
    password?: string;
    /** FTP: relative to the login folder ("" the login folder) unless it starts with `/`. SFTP: absolute, or relative to home. WebDAV: the URL path ("/" the root). */
    dir: string;
  }
  | { kind: "s3"; bucket: string; prefix: string; endpoint?: string; region?: string }
  | { kind: "rclone"; remote: string; path: string };

const FORMS = "Use a folder, file:///path, ftp(s)://host/dir, sftp://user@host/dir, " +
  "webdav(s)://host/path, http(s)://host/path, s3://bucket/prefix or rclone://remote/path.";

/** The schemes {@linkcode parseAddress} knows. */
export const SCHEMES = [
  "file",
  "ftp",
  "ftps",
  "sftp",
  "webdav",
  "webdavs",
  "http",
  "https",
  "s3",
  "rclone",
];

/**
 * Parses a storage address; throws UsageError on anything else.
 *
 * @example
 * ```ts
 * parseAddress("sftp://bob@example.org/srv/relay");
 * // { kind: "sftp", secure: false, host: "example.org", port: 22, user: "bob", dir: "/srv/relay" }
 * ```
 */
export function parseAddress(address: string): Address {
  if (address.trim() === "") throw new UsageError("empty storage address", FORMS);
  const rc = /^rclone:(?!\/\/)([^:/][^:]*):(.*)$/.exec(address);
  if (rc) return { kind: "rclone", remote: rc[1], path: rc[2].replace(/(.)\/+$/, "$1") };
  // rclone remote names may hold blanks, which URLs do not: split by hand
  const rcu = /^rclone:\/\/([^/]*)(\/.*)?$/i.exec(address);
  if (rcu) {
    if (rcu[1] === "") {
      throw new UsageError(`address ${address} names no remote: rclone://remote/path`);
    }
    try {
      return {
        kind: "rclone",
        remote: decodeURIComponent(rcu[1]),
        // one slash follows the remote; a second one starts an absolute path
        path: decodeURIComponent(rcu[2] ?? "").replace(/^\//, "").replace(/(.)\/+$/, "$1"),
      };
    } catch {
      throw new UsageError(`address ${address} has a malformed %-escape`);
    }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(address)?.[1]?.toLowerCase();
  if (!scheme || (scheme.length === 1 && /^[a-z]:[\\/]/i.test(address))) {
    return { kind: "folder", path: resolve(address) };
  }
  let u: URL;
  try {
    u = new URL(address);
  } catch {
    throw new UsageError(`address ${address} is not a valid URL`, FORMS);
  }
  let path: string;
  try {
    path = decodeURIComponent(u.pathname);
  } catch {
    throw new UsageError(`address ${address} has a malformed %-escape`);
  }
  if (scheme === "file") {
    if (u.hostname !== "" && u.hostname !== "localhost") {
      throw new UsageError(
        `address ${address} names a remote host`,
        "A file:// address is a local (or mounted) folder: file:///path.",
      );
    }
    return { kind: "folder", path: fileURLToPath(new URL("file://" + u.pathname)) };
  }
  if (!SCHEMES.includes(scheme)) {
    throw new UsageError(`storage protocol ${scheme}: is not supported by hop`, FORMS);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  if (scheme === "s3") {
    if (host === "") throw new UsageError(`address ${address} names no bucket: s3://bucket/prefix`);
    const endpoint = u.searchParams.get("endpoint") ?? undefined;
    const region = u.searchParams.get("region") ?? undefined;
    return {
      kind: "s3",
      bucket: decodeURIComponent(u.hostname),
      prefix: path.replace(/^\/+|\/+$/g, ""),
      ...(endpoint ? { endpoint } : {}),
      ...(region ? { region } : {}),
    };
  }
  if (host === "") throw new UsageError(`address ${address} has no host`);
  const kind = scheme.startsWith("ftp") ? "ftp" : scheme === "sftp" ? "sftp" : "webdav";
  const secure = scheme === "ftps" || scheme === "webdavs" || scheme === "https";
  const defaultPort = kind === "ftp" ? 21 : kind === "sftp" ? 22 : secure ? 443 : 80;
  let dir: string;
  if (kind === "ftp") {
    dir = path.slice(1);
    if (dir.length > 1) dir = dir.replace(/\/+$/, "");
  } else if (kind === "sftp") {
    dir = path.startsWith("/~/") || path === "/~" ? path.slice(3) : path;
    if (dir.length > 1) dir = dir.replace(/\/+$/, "");
    if (dir === "") dir = ".";
  } else {
    dir = path.replace(/\/+$/, "") || "/";
  }
  return {
    kind,
    secure,
    host,
    port: u.port === "" ? defaultPort : Number(u.port),
    ...(u.username ? { user: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    dir,
  };
}

/** The address with its password replaced by `***` (for messages). */
export function redactAddress(address: string): string {
  try {
    const u = new URL(address);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return address.replace(/:[^:@/]*@/, ":***@");
  }
}
