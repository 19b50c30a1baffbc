/**
 * Storage drivers: {@linkcode openDriver} turns an address (see `address.ts`)
 * into a {@linkcode Driver} — a folder, FTP(S), SFTP, WebDAV, S3-compatible
 * object storage or an rclone remote. Relays (`../relay/backend/`) and cluster
 * nodes (`../cluster/nodes.ts`) are built on it.
 *
 * @example
 * ```ts
 * const d = await openDriver("sftp://bob@files.example.org/srv/relay", { sshKey });
 * try {
 *   await d.write("a/b.txt", new TextEncoder().encode("hi"));
 * } finally {
 *   await d.close();
 * }
 * ```
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { type Address, parseAddress } from "./address.ts";
import { folderDriver } from "./folder.ts";
import { ftpDriver } from "./ftp.ts";
import type { Driver } from "./types.ts";

export { type Address, parseAddress, redactAddress, SCHEMES } from "./address.ts";
export {
  type Capabilities,
  checkPath,
  type Driver,
  type Entry,
  joinPath,
  parentOf,
  StorageError,
  type StorageErrorKind,
  TEMP_PREFIX,
  type TransferTarget,
  type WriteData,
  type WriteOptions,
} from "./types.ts";

/** Options of {@linkcode openDriver}; credentials here and in the address must agree. */
export interface OpenOptions {
  user?: string;
  password?: string;
  /** TLS (FTPS, HTTPS): accept any certificate; SFTP: accept any host key. */
  insecureTls?: boolean;
  /** TLS: PEM CA certificate(s) to trust. */
  tlsCa?: string;
  /** TLS: client certificate and its key, PEM. */
  tlsCert?: string;
  tlsKey?: string;
  /** TLS: the one version to speak. */
  tlsVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2";
  /** SFTP: the private key (OpenSSH or PEM text); default: the SSH agent, then ~/.ssh/id_*. */
  sshKey?: string;
  /** SFTP: the private key's passphrase. */
  sshKeyPassphrase?: string;
  /** SFTP: the server's host key fingerprint (`SHA256:...`, as `ssh-keygen -l` prints it); default: ~/.ssh/known_hosts. */
  hostKey?: string;
  /** S3: the endpoint URL (default: the address's `endpoint`, then AWS_ENDPOINT_URL, then AWS). */
  s3Endpoint?: string;
  /** S3: the region (default: the address's `region`, then AWS_REGION, then us-east-1). */
  s3Region?: string;
  /** rclone: the program (default `rclone` on PATH). */
  rcloneBinary?: string;
  /** rclone: its configuration file (default: RCLONE_CONFIG, then rclone's default). */
  rcloneConfig?: string;
  /** Make the root folder when missing (default false). */
  create?: boolean;
  /** Inactivity timeout of one operation (FTP: of a data connection), ms. */
  timeoutMs?: number;
  /** FTP: the login, each command reply and a download's first byte, ms (default: timeoutMs). */
  connectTimeoutMs?: number;
  /** Connections kept per storage (FTP, SFTP; default 16). */
  maxConnections?: number;
}

/** Opens the storage at `address`. Network storages connect (and log in) on their first call; `check()` does it now. */
export async function openDriver(address: string, opts: OpenOptions = {}): Promise<Driver> {
  return await openAddress(parseAddress(address), opts);
}

/**
 * Opens a parsed address (see {@linkcode openDriver}). The S3, SFTP, WebDAV and rclone
 * drivers are loaded when first opened: their libraries cost a server that never uses
 * them some 30 MB of memory (issue 13).
 */
export async function openAddress(a: Address, opts: OpenOptions = {}): Promise<Driver> {
  if (a.kind === "folder") return await folderDriver(a.path, { create: opts.create });
  if (a.kind === "s3") {
    const { s3Driver } = await import("./s3.ts");
    return s3Driver({
      bucket: a.bucket,
      prefix: a.prefix,
      endpoint: opts.s3Endpoint ?? a.endpoint,
      region: opts.s3Region ?? a.region,
      accessKey: opts.user,
      secretKey: opts.password,
      insecureTls: opts.insecureTls,
      tlsCa: opts.tlsCa,
      timeoutMs: opts.timeoutMs,
    });
  }
  if (a.kind === "rclone") {
    const { rcloneDriver } = await import("./rclone.ts");
    return rcloneDriver({
      remote: a.remote,
      path: a.path,
      binary: opts.rcloneBinary,
      config: opts.rcloneConfig,
    });
  }
  const user = pick("user", a.user, opts.user);
  const password = pick("password", a.password, opts.password);
  if (a.kind === "ftp") {
    return ftpDriver({
      host: a.host,
      port: a.port,
      user,
      password,
      dir: a.dir,
      secure: a.secure,
      insecureTls: opts.insecureTls,
      tlsCa: opts.tlsCa,
      tlsCert: opts.tlsCert,
      tlsKey: opts.tlsKey,
      tlsVersion: opts.tlsVersion,
      create: opts.create,
      timeoutMs: opts.timeoutMs,
      replyTimeoutMs: opts.connectTimeoutMs,
      maxConnections: opts.maxConnections,
    });
  }
  if (a.kind === "sftp") {
    const { sftpDriver } = await import("./sftp.ts");
    return sftpDriver({
      host: a.host,
      port: a.port,
      user,
      password,
      dir: a.dir,
      privateKey: opts.sshKey,
      passphrase: opts.sshKeyPassphrase,
      hostKey: opts.hostKey,
      insecureHostKey: opts.insecureTls,
      create: opts.create,
      timeoutMs: opts.timeoutMs,
      maxConnections: opts.maxConnections,
    });
  }
  const { webdavDriver } = await import("./webdav.ts");
  return webdavDriver({
    url: `${a.secure ? "https" : "http"}://${
      a.host.includes(":") ? `[${a.host}]` : a.host
    }:${a.port}${a.dir.split("/").map(encodeURIComponent).join("/")}`,
    user,
    password,
    insecureTls: opts.insecureTls,
    tlsCa: opts.tlsCa,
    tlsCert: opts.tlsCert,
    tlsKey: opts.tlsKey,
    tlsVersion: opts.tlsVersion,
    create: opts.create,
    timeoutMs: opts.timeoutMs,
  });
}

function pick(what: string, fromUrl?: string, fromOpts?: string): string | undefined {
  if (fromUrl !== undefined && fromOpts !== undefined && fromUrl !== fromOpts) {
    throw new UsageError(
      `storage ${what} differs between the address and the settings`,
      `Give the ${what} once, in the address or in the settings.`,
    );
  }
  return fromOpts ?? fromUrl;
}
