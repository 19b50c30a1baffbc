/**
 * Test helpers that drive real FTP clients (lftp, curl, Python's ftplib) against a
 * server at host:port. Every program gets an argv array (no shell), paths are
 * quoted for the client's own language, and every child is killed by pid when it
 * overruns its time limit.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { Client } from "basic-ftp";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where to connect and who to be. */
export interface FtpTarget {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** A basic-ftp client logged in as `t` (its commands time out after `timeoutMs`). */
export async function loginBasicFtp(t: FtpTarget, timeoutMs = 30_000): Promise<Client> {
  const c = new Client(timeoutMs);
  try {
    await c.access(t);
  } catch (e) {
    c.close();
    throw e;
  }
  return c;
}

/** The bytes of `name` downloaded with a basic-ftp client. */
export async function downloadBytes(c: Client, name: string): Promise<Buffer> {
  const { Writable } = await import("node:stream");
  const parts: Uint8Array[] = [];
  await c.downloadTo(
    new Writable({
      write(chunk, _e, cb) {
        parts.push(chunk);
        cb();
      },
    }),
    name,
  );
  return Buffer.concat(parts);
}

/** Who to be on a server listening on 127.0.0.1:`port`. */
export function localTarget(port: number, user: string, password: string): FtpTarget {
  return { host: "127.0.0.1", port, user, password };
}

/** Exit code and output of a client run. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `argv` (no shell) with an optional stdin and time limit; never rejects on exit codes. */
export function runProgram(
  argv: string[],
  opts: { timeoutMs?: number; cwd?: string; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, LC_ALL: "C.UTF-8", HOME: process.env.HOME ?? "/tmp" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => stdout += d);
    child.stderr.setEncoding("utf8").on("data", (d: string) => stderr += d);
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs ?? 60_000} ms]`;
      if (child.pid) process.kill(child.pid, "SIGKILL");
    }, opts.timeoutMs ?? 60_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Quote one word for lftp's command language. */
export function lftpQuote(s: string): string {
  return '"' + s.replace(/["\\]/g, (c) => "\\" + c) + '"';
}

/** Host as it goes into a URL (IPv6 in brackets). */
export function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * Run lftp commands (already quoted with `lftpQuote` where they take paths) after
 * logging in. `tls` forces AUTH TLS with PROT P and no certificate check;
 * `passive: false` uses PORT/EPRT.
 *
 * @example await runLftp(t, [`put ${lftpQuote(local)} -o ${lftpQuote("a b.txt")}`], { cwd })
 */
export function runLftp(
  t: FtpTarget,
  commands: string[],
  opts: {
    passive?: boolean;
    tls?: boolean;
    settings?: string[];
    cwd?: string;
    timeoutMs?: number;
  } = {},
): Promise<RunResult> {
  const settings = [
    "set cmd:fail-exit yes",
    "set net:max-retries 1",
    "set net:timeout 15",
    "set net:reconnect-interval-base 1",
    "set xfer:clobber yes",
    `set ftp:passive-mode ${opts.passive === false ? "false" : "true"}`,
    ...(opts.tls
      ? [
        "set ftp:ssl-force yes",
        "set ftp:ssl-protect-data yes",
        "set ftp:ssl-protect-list yes",
        "set ssl:verify-certificate no",
      ]
      : ["set ftp:ssl-allow no"]),
    ...(opts.settings ?? []),
  ];
  const script = [
    ...settings,
    `open -u ${lftpQuote(t.user)},${lftpQuote(t.password)} -p ${t.port} ${
      lftpQuote(urlHost(t.host))
    }`,
    ...commands,
  ].join("\n");
  // A script file, not /dev/stdin: under Bun a child's stdin is a socket, which
  // /dev/stdin cannot open.
  const dir = mkdtempSync(join(tmpdir(), "hop-lftp-"));
  writeFileSync(join(dir, "script"), script + "\n", { mode: 0o600 });
  return runProgram(["lftp", "-f", join(dir, "script")], {
    cwd: opts.cwd,
    timeoutMs: opts.timeoutMs,
  }).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** An ftp:// URL for `path` with every segment percent-encoded. */
export function curlUrl(t: FtpTarget, path: string): string {
  const segs = path.split("/").map((s) => encodeURIComponent(s));
  return `ftp://${urlHost(t.host)}:${t.port}${path.startsWith("/") ? "" : "/"}${segs.join("/")}`;
}

/**
 * Run curl against `path` with extra arguments (e.g. ["-T", file] or ["-o", out]).
 * Credentials go through `--user`; `--ftp-method nocwd` (the default here) keeps
 * paths exact, `multicwd` is needed for `--ftp-create-dirs`.
 */
export function runCurl(
  t: FtpTarget,
  path: string,
  args: string[],
  opts: {
    tls?: boolean;
    cwd?: string;
    timeoutMs?: number;
    ftpMethod?: "nocwd" | "singlecwd" | "multicwd";
  } = {},
): Promise<RunResult> {
  return runProgram([
    "curl",
    "--silent",
    "--show-error",
    "--max-time",
    "60",
    "--user",
    `${t.user}:${t.password}`,
    "--ftp-method",
    opts.ftpMethod ?? "nocwd",
    ...(opts.tls ? ["--ssl-reqd", "-k"] : []),
    ...args,
    curlUrl(t, path),
  ], { cwd: opts.cwd, timeoutMs: opts.timeoutMs });
}

/**
 * Run a Python body with ftplib: `ftp` is a logged-in FTP (or FTP_TLS with
 * PROT P) object, `args` the JSON value given here; assign `result` to return it.
 *
 * @example await runFtplib(t, "result = ftp.nlst(args['dir'])", { dir: "/" })
 */
export async function runFtplib(
  t: FtpTarget,
  body: string,
  args: unknown,
  opts: { tls?: boolean; timeoutMs?: number } = {},
): Promise<{ result: unknown } & RunResult> {
  const prelude = [
    "import ftplib, json, sys, hashlib, io",
    "args = json.loads(sys.argv[1]); conn = json.loads(sys.argv[2])",
    "ftp = (ftplib.FTP_TLS if conn['tls'] else ftplib.FTP)(timeout=30)",
    "ftp.encoding = 'utf-8'",
    "if conn['tls']:",
    "    import ssl; ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE",
    "    ftp = ftplib.FTP_TLS(context=ctx, timeout=30); ftp.encoding = 'utf-8'",
    "ftp.connect(conn['host'], conn['port'])",
    "ftp.login(conn['user'], conn['password'])",
    "if conn['tls']: ftp.prot_p()",
    "result = None",
  ].join("\n");
  const script =
    `${prelude}\n${body}\ntry:\n    ftp.quit()\nexcept Exception:\n    pass\nprint(json.dumps(result))\n`;
  const conn = { ...t, tls: Boolean(opts.tls) };
  const r = await runProgram([
    "/usr/bin/python3",
    "-c",
    script,
    JSON.stringify(args),
    JSON.stringify(conn),
  ], {
    timeoutMs: opts.timeoutMs,
  });
  let result: unknown = undefined;
  if (r.code === 0) {
    const last = r.stdout.trim().split("\n").pop() ?? "";
    result = JSON.parse(last);
  }
  return { result, ...r };
}

/** One parsed server reply. */
export interface FtpReplyMsg {
  code: number;
  /** Text lines without codes and line ends (first line without the `ccc-`). */
  lines: string[];
}

/**
 * Incremental, strict reply parser: every line must end with CRLF, a reply must
 * start with `ccc ` or `ccc-`, and a multi-line reply must end with the same
 * `ccc `. Throws on anything else (used by the fuzz test).
 */
export function createReplyParser(): (chunk: Uint8Array) => FtpReplyMsg[] {
  let pending = new Uint8Array(0);
  let open: FtpReplyMsg | null = null;
  const dec = new TextDecoder();
  return (chunk) => {
    const all = new Uint8Array(pending.length + chunk.length);
    all.set(pending);
    all.set(chunk, pending.length);
    const out: FtpReplyMsg[] = [];
    let start = 0;
    for (let i = 0; i < all.length; i++) {
      if (all[i] !== 10) continue;
      if (i === start || all[i - 1] !== 13) throw new Error("reply line not ended by CRLF");
      const line = dec.decode(all.subarray(start, i - 1));
      start = i + 1;
      if (line.includes("\r")) throw new Error(`bare CR inside reply line ${JSON.stringify(line)}`);
      if (open) {
        if (line.startsWith(`${open.code} `)) {
          open.lines.push(line.slice(4));
          out.push(open);
          open = null;
        } else open.lines.push(line);
        continue;
      }
      const m = /^([1-5][0-5]\d)([ -])(.*)$/s.exec(line);
      if (!m) throw new Error(`malformed reply line ${JSON.stringify(line)}`);
      const msg = { code: Number(m[1]), lines: [m[3]] };
      if (m[2] === " ") out.push(msg);
      else open = msg;
    }
    pending = all.slice(start);
    return out;
  };
}

/** A hand-driven control connection for protocol tests. */
export interface RawFtp {
  socket: import("node:net").Socket;
  /** Send one command line (CRLF added). */
  send(line: string): void;
  /** Send raw bytes as they are. */
  sendRaw(bytes: Uint8Array | string): void;
  /** The next reply (waits up to `timeoutMs`, default 10 s). */
  reply(timeoutMs?: number): Promise<FtpReplyMsg>;
  /** Send a command and return its reply. */
  cmd(line: string): Promise<FtpReplyMsg>;
  /** Resolves when the server closed the connection. */
  closed: Promise<void>;
  close(): void;
}

/** Connect to host:port and read the greeting (returned as `greeting`). */
export async function openRawFtp(
  host: string,
  port: number,
  opts: { localAddress?: string } = {},
): Promise<RawFtp & { greeting: FtpReplyMsg }> {
  const net = await import("node:net");
  const socket = net.connect({ host, port, localAddress: opts.localAddress });
  const parse = createReplyParser();
  const replies: FtpReplyMsg[] = [];
  const waiters: Array<(r: FtpReplyMsg | Error) => void> = [];
  let failure: Error | null = null;
  const deliver = () => {
    while (waiters.length > 0 && (replies.length > 0 || failure)) {
      const w = waiters.shift()!;
      w(replies.length > 0 ? replies.shift()! : failure!);
    }
  };
  socket.on("data", (chunk: Uint8Array) => {
    try {
      replies.push(...parse(chunk));
    } catch (err) {
      failure = err as Error;
    }
    deliver();
  });
  const closed = new Promise<void>((resolve) => {
    socket.on("close", () => {
      failure ??= new Error("connection closed");
      deliver();
      resolve();
    });
  });
  socket.on("error", (err) => {
    failure ??= err;
    deliver();
  });
  const reply = (timeoutMs = 10_000) =>
    new Promise<FtpReplyMsg>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("no reply within " + timeoutMs + " ms")),
        timeoutMs,
      );
      waiters.push((r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      });
      deliver();
    });
  const raw: RawFtp = {
    socket,
    send: (line) => void socket.write(line + "\r\n"),
    sendRaw: (bytes) => void socket.write(bytes),
    reply,
    cmd: (line) => {
      socket.write(line + "\r\n");
      return reply();
    },
    closed,
    close: () => socket.destroy(),
  };
  const greeting = await reply();
  return { ...raw, greeting };
}

/** Parse the port out of a 229 EPSV reply. */
export function epsvPort(r: FtpReplyMsg): number {
  const m = /\(\|\|\|(\d+)\|\)/.exec(r.lines[0]);
  if (!m) throw new Error(`not an EPSV reply: ${r.code} ${r.lines.join(" ")}`);
  return Number(m[1]);
}
