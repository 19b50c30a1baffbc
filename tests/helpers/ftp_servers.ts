/**
 * FTP servers for tests, on 127.0.0.1 only: pyftpdlib (plain or explicit FTPS,
 * optionally throttled) and vsftpd (plain or explicit FTPS), each started as a
 * child process and stopped by its pid; hop's own folder server (`hop cluster
 * node serve`) in this process; plus `makeSelfSignedCert` and `freePort`. Each
 * server gets a login made for this run ({@linkcode newLogin}) unless the test
 * gives one, says it back, and can be started again on the same port with the
 * same login (`restart`), as a node or relay that went away and came back.
 *
 * vsftpd authenticates through PAM, and PAM reads its services from
 * /etc/pam.d. To leave the system untouched, {@linkcode startVsftpd} runs
 * vsftpd in a private mount namespace (`unshare -m`) where a temp folder is
 * bind-mounted over /etc/pam.d; that folder holds one service using
 * `pam_userdb` over a Berkeley DB of the test user (written by Python's
 * `dbm.ndbm`, which is Berkeley DB 5.3 on Debian, like pam_userdb). If mount
 * namespaces are refused, the service file is written to
 * /etc/pam.d/hop-test-<random> and removed by `stop()`. Logged-in users run as
 * the `ftp` system user that the vsftpd package creates (vsftpd's guest mode;
 * its home must exist), so `root` and its contents are chowned to `ftp`.
 * Why not pam_exec: vsftpd's SIGCHLD handler reaps pam_exec's child and then
 * waits forever for its own child (tried: every login hangs).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { randomBytes, randomInt } from "node:crypto";
import { serveFolder, type ServeFolderOptions } from "../../src/ftp/node_serve.ts";
import { type Login, newLogin } from "./credentials.ts";
import type { FtpTarget } from "./ftp_clients.ts";
import { inNetns } from "./netns.ts";

/** What every running test server says about itself. */
export interface RunningFtpServer {
  host: string;
  port: number;
  /** `ftp://127.0.0.1:<port>` (or `ftps://` with TLS), no credentials. */
  url: string;
  /** The login it takes (made for this run unless the test gave one). */
  user: string;
  password: string;
  /** Where and who to be, for the client helpers. */
  target: FtpTarget;
  /** `ftp://USER:PASSWORD@127.0.0.1:<port>/` + `path`: a node or relay address. */
  loginUrl(path?: string): string;
  /** Stops the server and waits for it to end; idempotent. */
  stop(): Promise<void>;
}

/** A test server in a process of its own. */
export interface TestFtpServer extends RunningFtpServer {
  pid: number;
  /**
   * Stops it if it runs, then starts it again: same root, port, login and options,
   * but for those in `change` (e.g. `{ bytesPerSecond: 0 }`: full speed now).
   */
  restart(change?: Partial<TestServerOptions>): Promise<TestFtpServer>;
}

/** What a test server serves and to whom. */
export interface TestServerOptions {
  root: string;
  /** The login; default: one made for this run. */
  user?: string;
  password?: string;
  /** PEM files; when given the server speaks explicit FTPS (AUTH TLS) and requires it. */
  tls?: { cert: string; key: string };
  /** Fixed port (e.g. to restart on the same port); default: free one. */
  port?: number;
  /** pyftpdlib only: idle control-connection timeout in seconds (default 300). */
  idleTimeout?: number;
  /** pyftpdlib only: the user's permissions (default `elradfmwMT`; `elr` is read-only). */
  perm?: string;
  /**
   * pyftpdlib only: Python code run after the handler class `Handler` is
   * defined and before the server starts; it may rebind `Handler` to a
   * subclass (for example one that answers 452 past a quota).
   */
  python?: string;
  /** pyftpdlib only: data transfers limited to this many bytes per second (a slow node). */
  bytesPerSecond?: number;
  /**
   * pyftpdlib only: serve inside this network namespace (made by the test), on
   * its own 127.0.0.1; then `port` may be 21 (a client that ignores ports).
   */
  netns?: string;
}

const PYTHON = "/usr/bin/python3";
const VSFTPD = "/usr/sbin/vsftpd";

/**
 * Ports test servers listen on: below Linux's ephemeral range (32768-60999), so that
 * while a server is stopped for a `restart` on its port, no outgoing connection of
 * another test and no server bound to port 0 can be given that port (seen once: a
 * restart failed for 10 s with "Address already in use").
 */
const SERVER_PORTS = { from: 20_000, to: 32_768 };

/** A TCP port free on 127.0.0.1 right now, outside the ephemeral range (`SERVER_PORTS`). */
export async function freePort(): Promise<number> {
  for (let attempt = 1;; attempt++) {
    const port = randomInt(SERVER_PORTS.from, SERVER_PORTS.to);
    const free = await new Promise<boolean>((resolve, reject) => {
      const srv = createServer();
      srv.once("error", (e: NodeJS.ErrnoException) => {
        if (e.code === "EADDRINUSE" && attempt < 100) resolve(false);
        else reject(e);
      });
      srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Writes `cert.pem` and `key.pem` (RSA 2048, CN and SAN 127.0.0.1) into `dir`. */
export async function makeSelfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  return { cert, key };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => err += d);
    child.once("error", reject);
    child.once(
      "exit",
      (code) => code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`)),
    );
  });
}

const PYFTPD_SCRIPT = `
import json, sys, logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler, ThrottledDTPHandler
from pyftpdlib.servers import FTPServer
logging.basicConfig(level=logging.ERROR)
cfg = json.loads(sys.argv[1])
auth = DummyAuthorizer()
auth.add_user(cfg["user"], cfg["password"], cfg["root"], perm=cfg["perm"])
base = TLS_FTPHandler if cfg.get("cert") else FTPHandler
class Handler(base):
    pass
exec(cfg["python"])
Handler.authorizer = auth
Handler.timeout = cfg["idle"]
Handler.banner = "hop test pyftpdlib"
if cfg["rate"] > 0:
    class Throttled(ThrottledDTPHandler):
        read_limit = cfg["rate"]
        write_limit = cfg["rate"]
    Handler.dtp_handler = Throttled
if cfg.get("cert"):
    Handler.certfile = cfg["cert"]
    Handler.keyfile = cfg["key"]
    Handler.tls_control_required = True
    Handler.tls_data_required = True
server = FTPServer(("127.0.0.1", cfg["port"]), Handler)
print(server.socket.getsockname()[1], flush=True)
server.serve_forever()
`;

/**
 * Starts pyftpdlib serving `root` on `port`, or on a free port below the ephemeral range
 * (`freePort`; one taken before pyftpdlib binds it is replaced); in a network namespace
 * on the port it binds itself (0). Passive ports are kernel-picked.
 *
 * @example
 * ```ts
 * const srv = await startPyftpdlib({ root });
 * try { await runLftp(srv.target, ["ls"]); } finally { await srv.stop(); }
 * ```
 */
export async function startPyftpdlib(options: TestServerOptions): Promise<TestFtpServer> {
  const opts = withLogin(options);
  if (opts.port !== undefined || opts.netns) return await startPyftpdlibOn(opts, opts.port ?? 0);
  // A free port can be taken by another test before pyftpdlib binds it: a fresh one is tried.
  for (let attempt = 1;; attempt++) {
    try {
      return await startPyftpdlibOn(opts, await freePort());
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test(String(e))) throw e;
    }
  }
}

async function startPyftpdlibOn(
  opts: TestServerOptions & Login,
  port: number,
): Promise<TestFtpServer> {
  const cfg = {
    root: opts.root,
    user: opts.user,
    password: opts.password,
    port,
    rate: opts.bytesPerSecond ?? 0,
    idle: opts.idleTimeout ?? 300,
    perm: opts.perm ?? "elradfmwMT",
    python: opts.python ?? "",
    cert: opts.tls?.cert,
    key: opts.tls?.key,
  };
  const argv = inNetns(opts.netns, [PYTHON, "-c", PYFTPD_SCRIPT, JSON.stringify(cfg)]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    if (stderr.length < 20_000) stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = stopper(child.pid!, exited, false);
  try {
    const bound = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        const m = /^(\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once("exit", (code) => reject(new Error(`pyftpdlib exited (${code}): ${stderr}`)));
      child.once("error", reject);
      setTimeout(() => reject(new Error(`pyftpdlib did not start in 15 s: ${stderr}`)), 15_000);
    });
    // in a namespace the port is not reachable from here; it listens before printing it
    if (!opts.netns) await waitForBanner(bound);
    return server(bound, opts, child.pid!, stop, startPyftpdlib);
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Starts vsftpd serving `root` (chrooted) for one virtual user; see the module
 * doc for how it authenticates without touching the system.
 */
export async function startVsftpd(options: TestServerOptions): Promise<TestFtpServer> {
  const opts = withLogin(options);
  // A free port can be taken by another test before vsftpd binds it: it then exits at
  // once ("could not bind"), and a fresh port is tried.
  for (let attempt = 1;; attempt++) {
    try {
      return await startVsftpdOnce(opts);
    } catch (e) {
      if (options.port !== undefined || attempt >= 3 || !(e instanceof VsftpdExited)) throw e;
    }
  }
}

/** vsftpd ended before it answered (its output says why). */
class VsftpdExited extends Error {}

async function startVsftpdOnce(opts: TestServerOptions & Login): Promise<TestFtpServer> {
  const dir = await mkdtemp(join(tmpdir(), "hop-vsftpd-"));
  const cleanups: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const port = opts.port ?? await freePort();
    const pamDir = join(dir, "pam.d");
    const empty = join(dir, "empty");
    await mkdir(pamDir);
    await mkdir(empty);
    const db = join(dir, "users");
    await run(PYTHON, [
      "-c",
      "import dbm.ndbm, sys\nd = dbm.ndbm.open(sys.argv[1], 'n', 0o600)\n" +
      "d[sys.argv[2]] = sys.argv[3]\nd.close()",
      db,
      opts.user,
      opts.password,
    ]);
    const service = `hop-test-${randomBytes(6).toString("hex")}`;
    const pamText = `auth required pam_userdb.so db=${db}\naccount required pam_permit.so\n` +
      `session required pam_permit.so\n`;
    await writeFile(join(pamDir, service), pamText);
    const ftpUser = await userIds("ftp");
    await chownTree(opts.root, ftpUser.uid, ftpUser.gid);
    const conf = [
      "listen=YES",
      "listen_ipv6=NO",
      "listen_address=127.0.0.1",
      `listen_port=${port}`,
      "background=NO",
      "anonymous_enable=NO",
      "local_enable=YES",
      "write_enable=YES",
      "guest_enable=YES",
      "guest_username=ftp",
      "virtual_use_local_privs=YES",
      `local_root=${opts.root}`,
      "chroot_local_user=YES",
      "allow_writeable_chroot=YES",
      `pam_service_name=${service}`,
      "seccomp_sandbox=NO",
      "isolate=NO",
      "isolate_network=NO",
      `secure_chroot_dir=${empty}`,
      "mdtm_write=YES",
      "local_umask=022",
      "xferlog_enable=NO",
      "syslog_enable=NO",
      "max_per_ip=0",
      "max_clients=0",
      "ftpd_banner=hop test vsftpd",
      ...(opts.tls
        ? [
          "ssl_enable=YES",
          `rsa_cert_file=${opts.tls.cert}`,
          `rsa_private_key_file=${opts.tls.key}`,
          "force_local_logins_ssl=YES",
          "force_local_data_ssl=YES",
          "ssl_tlsv1=NO",
          "ssl_sslv2=NO",
          "ssl_sslv3=NO",
          // vsftpd's default (YES) wants data connections to resume the control TLS
          // session; node:tls clients do that unreliably (Deno: sometimes, Bun: never).
          "require_ssl_reuse=NO",
        ]
        : ["ssl_enable=NO"]),
    ].join("\n") + "\n";
    const confPath = join(dir, "vsftpd.conf");
    await writeFile(confPath, conf);

    let argv: string[];
    if (await canUnshareMount()) {
      // unshare and sh exec in place: the pid we hold is vsftpd's.
      argv = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$1" /etc/pam.d && exec "$2" "$3"',
        "sh",
        pamDir,
        VSFTPD,
        confPath,
      ];
    } else {
      const etc = join("/etc/pam.d", service);
      await writeFile(etc, pamText);
      cleanups.push(() => rm(etc, { force: true }));
      argv = [VSFTPD, confPath];
    }
    // Own process group: vsftpd's session processes are killed with it.
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = ""; // vsftpd says why it stopped ("500 OOPS: ...") on stdout
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8").on("data", (d: string) => {
        if (output.length < 20_000) output += d;
      });
    }
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const kill = stopper(child.pid!, exited, true);
    const stop = async () => {
      await kill();
      await cleanup();
    };
    try {
      let dead: Error | null = null;
      child.once("exit", (code) => dead = new VsftpdExited(`vsftpd exited (${code}): ${output}`));
      await waitForBanner(port, () => dead);
    } catch (e) {
      await stop();
      throw e;
    }
    return server(port, opts, child.pid!, stop, startVsftpd);
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** `opts` with a login made for this run where the test gave none. */
function withLogin<T extends { user?: string; password?: string }>(opts: T): T & Login {
  const made = newLogin(opts.user ?? "ftp");
  return { ...opts, user: opts.user ?? made.user, password: opts.password ?? made.password };
}

function running(
  host: string,
  port: number,
  login: Login,
  tls: boolean,
  stop: () => Promise<void>,
): RunningFtpServer {
  const scheme = tls ? "ftps" : "ftp";
  const hostPort = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const { user, password } = login;
  return {
    host,
    port,
    url: `${scheme}://${hostPort}`,
    user,
    password,
    target: { host, port, user, password },
    loginUrl: (path = "") =>
      `${scheme}://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hostPort}/${path}`,
    stop,
  };
}

function server(
  port: number,
  opts: TestServerOptions & Login,
  pid: number,
  stop: () => Promise<void>,
  start: (opts: TestServerOptions) => Promise<TestFtpServer>,
): TestFtpServer {
  return {
    ...running("127.0.0.1", port, opts, Boolean(opts.tls), stop),
    pid,
    async restart(change = {}) {
      await stop();
      // The port was free a moment ago, and other tests pick free ports (or connect from
      // them) too: while something else holds it, the server cannot bind; try again.
      for (let attempt = 1;; attempt++) {
        try {
          return await start({ ...opts, ...change, port });
        } catch (e) {
          const inUse = /Address already in use|exited \(2\)/.test(String(e));
          if (!inUse || attempt >= 20) throw e;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },
  };
}

/** The FTP servers conformance suites run against: pyftpdlib and vsftpd, plain and FTPS. */
export const FTP_PEERS = [
  ["pyftpdlib", startPyftpdlib, false],
  ["pyftpdlib FTPS", startPyftpdlib, true],
  ["vsftpd", startVsftpd, false],
  ["vsftpd FTPS", startVsftpd, true],
] as const;

/** What {@linkcode withFtpFolder} hands its callback. */
export interface FtpFolder {
  /** The server now (a new one after `restart`). */
  server(): TestFtpServer;
  /** The folder on disk, `folder` under the server's root. */
  dir: string;
  /** The server's certificate (PEM), to trust it, when it speaks FTPS. */
  tlsCa?: string;
  /** Stops the server and starts it again on the same port and root. */
  restart(): Promise<void>;
}

/**
 * Runs `use` with `start`'s server (FTPS with a certificate made for it when `tls`) on a
 * fresh root that holds the folder `folder`; stops it and removes root and certificate after.
 */
export async function withFtpFolder<T>(
  start: (o: TestServerOptions) => Promise<TestFtpServer>,
  tls: boolean,
  folder: string,
  use: (f: FtpFolder) => Promise<T>,
  options: Partial<TestServerOptions> = {},
): Promise<T> {
  const root = await mkdtemp(join(tmpdir(), "hop-ftp-root-"));
  const certDir = tls ? await mkdtemp(join(tmpdir(), "hop-cert-")) : undefined;
  let srv: TestFtpServer | undefined;
  try {
    const dir = join(root, folder);
    await mkdir(dir);
    const cert = certDir ? await makeSelfSignedCert(certDir) : undefined;
    const opts: TestServerOptions = { ...options, root, tls: cert };
    srv = await start(opts);
    return await use({
      server: () => srv!,
      dir,
      tlsCa: cert ? await readFile(cert.cert, "utf8") : undefined,
      restart: async () => {
        const port = srv!.port;
        await srv!.stop();
        srv = await start({ ...opts, port });
      },
    });
  } finally {
    await srv?.stop();
    await rm(root, { recursive: true, force: true });
    if (certDir) await rm(certDir, { recursive: true, force: true });
  }
}

/** hop's folder server in this process. */
export interface HopFolderServer extends RunningFtpServer {
  /** The folder it serves. */
  root: string;
  /** Stops it if it runs, then starts it again: same root, port, login and options. */
  restart(): Promise<HopFolderServer>;
}

/**
 * Serves a folder with hop's own FTP server (`hop cluster node serve`) in this
 * process: `root` (default: a new temp folder, removed by `stop()`), on
 * 127.0.0.1 (or `host`) and a free port, for a login made for this run unless
 * given. Engine options pass through (e.g. `{ maxSessionsPerIp: 2 }`).
 */
export function startHopFolderServer(
  options: Partial<ServeFolderOptions> = {},
): Promise<HopFolderServer> {
  const opts = withLogin({ loginFailDelayMs: 50, ...options, host: options.host ?? "127.0.0.1" });
  return startHopFolder(opts, options.root === undefined);
}

async function startHopFolder(
  opts: Partial<ServeFolderOptions> & Login & { host: string },
  ownsRoot: boolean,
): Promise<HopFolderServer> {
  const root = opts.root ?? await mkdtemp(join(tmpdir(), "hop-ftp-test-"));
  // on loopback, a port below the ephemeral range (`freePort`), kept by `restart`
  const port = opts.port ?? (opts.host === "127.0.0.1" ? await freePort() : 0);
  const srv = await serveFolder({ ...opts, root, port });
  let closed: Promise<void> | null = null;
  const close = () => closed ??= srv.close();
  const stop = async () => {
    await close();
    if (ownsRoot) await rm(root, { recursive: true, force: true });
  };
  return {
    ...running(opts.host, srv.port, opts, Boolean(opts.tls), stop),
    root,
    async restart() {
      await close();
      return await startHopFolder({ ...opts, root, port: srv.port }, ownsRoot);
    },
  };
}

/** SIGTERM (the group when `group`), then SIGKILL after 3 s; waits for exit. */
function stopper(pid: number, exited: Promise<void>, group: boolean): () => Promise<void> {
  let done: Promise<void> | null = null;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(group ? -pid : pid, sig);
    } catch {
      // already gone
    }
  };
  return () =>
    done ??= (async () => {
      signal("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), 3000));
      if ((await Promise.race([exited, late])) === "late") {
        signal("SIGKILL");
        await exited;
      }
      clearTimeout(timer);
      if (group) signal("SIGKILL"); // session processes left in the group
    })();
}

/** Waits until the server on 127.0.0.1:port sends its 220 greeting (10 s max). */
async function waitForBanner(port: number, dead: () => Error | null = () => null): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last: unknown;
  while (Date.now() < deadline) {
    const d = dead();
    if (d) throw d;
    try {
      await new Promise<void>((resolve, reject) => {
        const s = new Socket();
        let buf = "";
        s.setTimeout(2000, () => {
          s.destroy();
          reject(new Error("no greeting"));
        });
        s.on("data", (chunk) => {
          buf += chunk.toString("latin1");
          if (/^220[ -]/.test(buf)) {
            s.end("QUIT\r\n");
            s.destroy();
            resolve();
          }
        });
        s.once("error", reject);
        s.connect(port, "127.0.0.1");
      });
      return;
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`FTP server on 127.0.0.1:${port} did not greet: ${last}`);
}

let unshareOk: Promise<boolean> | null = null;
function canUnshareMount(): Promise<boolean> {
  return unshareOk ??= run("unshare", ["-m", "--propagation", "private", "true"])
    .then(() => true, () => false);
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  for (const e of await readdir(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await chown(p, uid, gid);
  }
}

async function userIds(name: string): Promise<{ uid: number; gid: number }> {
  for (const line of (await readFile("/etc/passwd", "utf8")).split("\n")) {
    const f = line.split(":");
    if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`no user ${name} in /etc/passwd (it comes with the vsftpd package)`);
}
