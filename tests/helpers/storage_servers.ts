/**
 * Real storage servers for the storage-driver tests, on 127.0.0.1 only, each a
 * child process stopped by its pid, with credentials generated per start:
 *
 * - {@linkcode startSshd}: OpenSSH's sshd (Debian `openssh-server`) with its
 *   internal SFTP server; a fresh host key and a fresh client key (the login is
 *   the user running the tests, authorised by that key alone).
 * - {@linkcode startApacheDav}: Apache httpd with mod_dav / mod_dav_fs and
 *   basic auth (Debian `apache2`), plain HTTP or HTTPS with a self-signed
 *   certificate.
 * - {@linkcode startRcloneWebdav}: `rclone serve webdav` over a local folder
 *   (Debian `rclone`).
 * - {@linkcode startS3rver}: the npm package `s3rver` (an S3 API over a
 *   folder) run by Node.js, one bucket.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { newLogin, newPassword } from "./credentials.ts";
import { freePort, makeSelfSignedCert } from "./ftp_servers.ts";

/** A running server: stop() kills it by pid and removes its state; idempotent. */
export interface TestStorageServer {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Waits until 127.0.0.1:`port` accepts a connection (or the child exits). */
async function waitForPort(
  port: number,
  child: ReturnType<typeof spawn>,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  let exited = false;
  child.once("exit", () => exited = true);
  while (Date.now() < deadline) {
    if (exited) throw new Error(`server exited before listening: ${log()}`);
    const ok = await new Promise<boolean>((r) => {
      const s = new Socket();
      s.once("connect", () => {
        s.destroy();
        r(true);
      });
      s.once("error", () => r(false));
      s.connect(port, "127.0.0.1");
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server not listening on ${port} after 30 s: ${log()}`);
}

/** Spawns `cmd` and waits for its port; returns the server with a stop by pid. */
async function startChild(
  cmd: string,
  args: string[],
  port: number,
  cleanup: () => Promise<void>,
  env?: Record<string, string>,
): Promise<TestStorageServer> {
  const child = spawn(cmd, args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: env ? { ...process.env, ...env } : undefined,
  });
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err = (err + d).slice(-4000);
  });
  let stopping = false;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.once("exit", (code, signal) => {
    // a server that dies under a test says why (its last stderr)
    if (!stopping) console.error(`${cmd} exited (${code ?? signal}) under the test:\n${err}`);
  });
  const stop = async () => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, "SIGTERM");
      const t = setTimeout(
        () => child.exitCode === null && process.kill(child.pid!, "SIGKILL"),
        5000,
      );
      await exited;
      clearTimeout(t);
    }
    await cleanup();
  };
  try {
    await waitForPort(port, child, () => err);
  } catch (e) {
    await stop();
    throw e;
  }
  let stopped: Promise<void> | null = null;
  return { port, pid: child.pid!, stop: () => stopped ??= stop() };
}

/** An SFTP server: the login `user` with the private key `key` (PEM). */
export interface TestSshd extends TestStorageServer {
  user: string;
  /** The client's private key, OpenSSH PEM. */
  key: string;
  /** Its file (mode 0600). */
  keyFile: string;
  /** The server's host key fingerprint as `ssh-keygen -l` prints it (`SHA256:...`). */
  hostKeyFingerprint: string;
  /** `sftp://user@127.0.0.1:port` (a path follows). */
  url: string;
}

/** Runs `cmd` to completion; rejects with its stderr. */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const c = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    c.stdout!.setEncoding("utf8").on("data", (d: string) => out += d);
    c.stderr!.setEncoding("utf8").on("data", (d: string) => err += d);
    c.once("error", rej);
    c.once("exit", (code) => code === 0 ? res(out) : rej(new Error(`${cmd}: ${err}`)));
  });
}

/**
 * Starts sshd on a free loopback port: a fresh host key, and a fresh client
 * key authorised for the user running the tests (no password logins).
 */
export async function startSshd(): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), "hop-sshd-"));
  const port = await freePort();
  const hostKey = join(dir, "host_ed25519");
  const keyFile = join(dir, "client_ed25519");
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile, "-C", "hop-test"]);
  await writeFile(join(dir, "authorized_keys"), await readFile(keyFile + ".pub"));
  const fp = (await run("ssh-keygen", ["-l", "-f", hostKey + ".pub"])).split(" ")[1];
  // sshd insists on its privilege separation folder (the package makes it at boot).
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const user = (await run("id", ["-un"])).trim();
  await writeFile(
    join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      "PidFile none",
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "StrictModes no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      `AllowUsers ${user}`,
      "MaxStartups 100:30:200",
      "MaxSessions 100",
      "Subsystem sftp internal-sftp",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  const srv = await startChild(
    "/usr/sbin/sshd",
    ["-D", "-e", "-f", join(dir, "sshd_config")],
    port,
    () => rm(dir, { recursive: true, force: true }),
  );
  return {
    ...srv,
    user,
    key: await readFile(keyFile, "utf8"),
    keyFile,
    hostKeyFingerprint: fp,
    url: `sftp://${user}@127.0.0.1:${port}`,
  };
}

/** A WebDAV server over a folder. */
export interface TestDav extends TestStorageServer {
  /** `http://127.0.0.1:port/dav` (or https), no credentials. */
  url: string;
  user: string;
  password: string;
  /** The folder the server serves at `url`. */
  root: string;
  /** HTTPS only: the self-signed certificate (PEM). */
  cert?: string;
}

/**
 * Apache httpd with mod_dav_fs on `root` at `/dav`, basic auth with a fresh
 * password; with `tls`, HTTPS on a self-signed certificate. Apache drops root
 * for www-data, so `root` is handed to www-data.
 */
export async function startApacheDav(root: string, o: { tls?: boolean } = {}): Promise<TestDav> {
  const dir = await mkdtemp(join(tmpdir(), "hop-apache-"));
  const port = await freePort();
  const { user, password } = newLogin("dav");
  const sha = createHash("sha1").update(password).digest("base64");
  await writeFile(join(dir, "htpasswd"), `${user}:{SHA}${sha}\n`);
  const tls = o.tls ? await makeSelfSignedCert(dir) : undefined;
  const www = await wwwData();
  await mkdir(join(dir, "lock"));
  await run("chown", ["-R", `${www.uid}:${www.gid}`, root, join(dir, "lock")]);
  // www-data must reach the root through the test's own temporary folders (made 0700)
  for (let p = resolve(root, ".."); p.startsWith(tmpdir() + "/"); p = resolve(p, "..")) {
    await chmod(p, 0o755);
  }
  await chmod(dir, 0o755);
  const mods = "/usr/lib/apache2/modules";
  const load = (m: string, f: string) => `LoadModule ${m}_module ${mods}/${f}`;
  await writeFile(
    join(dir, "httpd.conf"),
    [
      load("mpm_event", "mod_mpm_event.so"),
      load("alias", "mod_alias.so"),
      load("authz_core", "mod_authz_core.so"),
      load("authz_user", "mod_authz_user.so"),
      load("authn_core", "mod_authn_core.so"),
      load("authn_file", "mod_authn_file.so"),
      load("auth_basic", "mod_auth_basic.so"),
      load("dav", "mod_dav.so"),
      load("dav_fs", "mod_dav_fs.so"),
      ...(tls ? [load("ssl", "mod_ssl.so"), load("socache_shmcb", "mod_socache_shmcb.so")] : []),
      `ServerRoot ${dir}`,
      "ServerName 127.0.0.1",
      `Listen 127.0.0.1:${port}`,
      `PidFile ${dir}/httpd.pid`,
      `ErrorLog ${dir}/error.log`,
      "LogLevel warn",
      "User www-data",
      "Group www-data",
      `DavLockDB ${dir}/lock/DavLock`,
      "LimitRequestBody 0",
      "Timeout 120",
      ...(tls
        ? [
          "SSLEngine on",
          `SSLCertificateFile ${tls.cert}`,
          `SSLCertificateKeyFile ${tls.key}`,
          `SSLSessionCache shmcb:${dir}/ssl_scache(512000)`,
        ]
        : []),
      `Alias /dav ${resolve(root)}`,
      `<Directory ${resolve(root)}>`,
      "  Dav On",
      "  AuthType Basic",
      '  AuthName "hop test"',
      `  AuthUserFile ${dir}/htpasswd`,
      "  Require valid-user",
      "</Directory>",
      "",
    ].join("\n"),
  );
  await chmod(join(dir, "htpasswd"), 0o644);
  const srv = await startChild(
    "/usr/sbin/apache2",
    ["-f", join(dir, "httpd.conf"), "-DFOREGROUND"],
    port,
    () => rm(dir, { recursive: true, force: true }),
    { APACHE_RUN_DIR: dir, APACHE_LOCK_DIR: dir, APACHE_LOG_DIR: dir },
  );
  const scheme = tls ? "https" : "http";
  return {
    ...srv,
    url: `${scheme}://127.0.0.1:${port}/dav`,
    user,
    password,
    root,
    cert: tls ? await readFile(tls.cert, "utf8") : undefined,
  };
}

async function wwwData(): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile("/etc/passwd", "utf8");
  const line = passwd.split("\n").find((l) => l.startsWith("www-data:"));
  if (!line) throw new Error("no www-data user: install apache2");
  const f = line.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** `rclone serve webdav` over `root`, with a fresh user and password. */
export async function startRcloneWebdav(root: string): Promise<TestDav> {
  const port = await freePort();
  const { user, password } = newLogin("rclone");
  const cfg = await mkdtemp(join(tmpdir(), "hop-rclone-"));
  const srv = await startChild(
    "rclone",
    [
      "serve",
      "webdav",
      resolve(root),
      "--addr",
      `127.0.0.1:${port}`,
      "--user",
      user,
      "--pass",
      password,
      "--config",
      join(cfg, "rclone.conf"),
      "--dir-cache-time",
      "0s",
      "--poll-interval",
      "0",
    ],
    port,
    () => rm(cfg, { recursive: true, force: true }),
  );
  return { ...srv, url: `http://127.0.0.1:${port}`, user, password, root };
}

/** An S3 server with one bucket. */
export interface TestS3 extends TestStorageServer {
  /** `http://127.0.0.1:port` */
  endpoint: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  /** The folder holding the bucket's objects (s3rver's layout). */
  dir: string;
}

const S3RVER_MAIN = fileURLToPath(new URL("./s3rver_main.mjs", import.meta.url));

/** s3rver (npm) run by Node.js on a fresh folder, with a fresh key pair and one bucket. */
export async function startS3rver(bucket = "relay"): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), "hop-s3rver-"));
  const port = await freePort();
  const accessKey = "AK" + newPassword().toUpperCase();
  const secretKey = newPassword() + newPassword();
  const srv = await startChild(
    "node",
    [S3RVER_MAIN, JSON.stringify({ port, dir, bucket, accessKey, secretKey })],
    port,
    () => rm(dir, { recursive: true, force: true }),
  );
  return {
    ...srv,
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    accessKey,
    secretKey,
    dir,
  };
}

/** rclone remotes that run here, in a configuration file of their own. */
export interface TestRcloneRemotes {
  /** The configuration file (give it as `--config` / `rcloneConfig`). */
  config: string;
  /** Each remote's name, a folder here, and that folder's path on the remote. */
  remotes: [string, string, string][];
  stop(): Promise<void>;
}

/**
 * Writes an rclone configuration under `dir` with three remotes: `local` (a
 * local folder, paths from the file system's top), `ssh` (SFTP to a fresh
 * sshd, key login) and `dav` (WebDAV to a fresh Apache mod_dav, its password
 * obscured as rclone wants it). With `localOnly`, the `local` remote alone (no
 * server started).
 */
export async function rcloneRemotes(
  dir: string,
  o: { localOnly?: boolean } = {},
): Promise<TestRcloneRemotes> {
  const localDir = join(dir, "local-remote");
  if (o.localOnly) {
    const config = join(dir, "rclone.conf");
    await writeFile(config, "[local]\ntype = local\n");
    return { config, remotes: [["local", localDir, localDir]], stop: async () => {} };
  }
  const sshd = await startSshd();
  const davRoot = join(dir, "dav-root");
  // the folders tests use, made before Apache hands the tree to www-data
  for (const sub of ["store", "relay"]) {
    await mkdir(join(davRoot, "relay", sub), { recursive: true });
  }
  const dav = await startApacheDav(davRoot).catch(async (e) => {
    await sshd.stop();
    throw e;
  });
  const sshDir = join(dir, "ssh-remote");
  const obscured = (await run("rclone", ["obscure", dav.password])).trim();
  const config = join(dir, "rclone.conf");
  await writeFile(
    config,
    [
      "[local]",
      "type = local",
      "",
      "[ssh]",
      "type = sftp",
      "host = 127.0.0.1",
      `port = ${sshd.port}`,
      `user = ${sshd.user}`,
      `key_file = ${sshd.keyFile}`,
      "",
      "[dav]",
      "type = webdav",
      `url = ${dav.url}`,
      "vendor = other",
      `user = ${dav.user}`,
      `pass = ${obscured}`,
      "",
    ].join("\n"),
  );
  return {
    config,
    remotes: [
      ["local", localDir, localDir],
      ["ssh", sshDir, sshDir],
      ["dav", join(davRoot, "relay"), "relay"],
    ],
    stop: async () => {
      await sshd.stop();
      await dav.stop();
    },
  };
}
