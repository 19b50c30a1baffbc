/**
 * Test helpers that drive real FTP clients (lftp, curl, Python's ftplib) against a
 * server at host:port. Every program gets an argv array (no shell), paths are
 * quoted for the client's own language, and every child is killed by pid when it
 * overruns its time limit.
 *
 * @module
 */

import { spawn } from "node:child_process";

/** Where to connect and who to be. */
export interface FtpTarget {
  host: string;
  port: number;
  user: string;
  password: string;
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
  opts: { passive?: boolean; tls?: boolean; settings?: string[]; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const settings = [
    "set cmd:fail-exit yes",
    "set net:max-retries 1",
    "set net:timeout 15",
    "set net:reconnect-interval-base 1",
    "set xfer:clobber yes",
    `set ftp:passive-mode ${opts.passive === false ? "false" : "true"}`,
    ...(opts.tls
      ? ["set ftp:ssl-force yes", "set ftp:ssl-protect-data yes", "set ftp:ssl-protect-list yes", "set ssl:verify-certificate no"]
      : ["set ftp:ssl-allow no"]),
    ...(opts.settings ?? []),
  ];
  const script = [
    ...settings,
    `open -u ${lftpQuote(t.user)},${lftpQuote(t.password)} -p ${t.port} ${lftpQuote(urlHost(t.host))}`,
    ...commands,
  ].join("\n");
  return runProgram(["lftp", "-f", "/dev/stdin"], { cwd: opts.cwd, timeoutMs: opts.timeoutMs, input: script });
}

/** An ftp:// URL for `path` with every segment percent-encoded. */
export function curlUrl(t: FtpTarget, path: string): string {
  const segs = path.split("/").map((s) => encodeURIComponent(s));
  return `ftp://${urlHost(t.host)}:${t.port}${path.startsWith("/") ? "" : "/"}${segs.join("/")}`;
}

/**
 * Run curl against `path` with extra arguments (e.g. ["-T", file] or ["-o", out]).
 * Credentials go through `--user`; `--ftp-method nocwd` keeps paths exact.
 */
export function runCurl(
  t: FtpTarget,
  path: string,
  args: string[],
  opts: { tls?: boolean; cwd?: string; timeoutMs?: number } = {},
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
    "nocwd",
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
  const script = `${prelude}\n${body}\ntry:\n    ftp.quit()\nexcept Exception:\n    pass\nprint(json.dumps(result))\n`;
  const conn = { ...t, tls: Boolean(opts.tls) };
  const r = await runProgram(["/usr/bin/python3", "-c", script, JSON.stringify(args), JSON.stringify(conn)], {
    timeoutMs: opts.timeoutMs,
  });
  let result: unknown = undefined;
  if (r.code === 0) {
    const last = r.stdout.trim().split("\n").pop() ?? "";
    result = JSON.parse(last);
  }
  return { result, ...r };
}
