/**
 * One FTP control connection: the protocol handler (RFC 959, 2389, 2428, 2640,
 * 3659, 4217). It parses command lines, keeps the session state (login, cwd, TYPE,
 * REST, RNFR, data endpoint, TLS), runs transfers through the storage backend and
 * maps backend errors to reply codes. Commands run one at a time in arrival order;
 * ABOR and STAT jump the queue while a transfer runs.
 *
 * @module
 */

import type net from "node:net";
import tls from "node:tls";
import {
  connectActive,
  dismissPassive,
  listenPassive,
  type PassiveEndpoint,
  plainAddress,
  receiveStream,
  sameAddress,
  secureData,
  sendChunks,
  sendLines,
  sendStream,
} from "./data.ts";
import { createLineReader } from "./line_reader.ts";
import {
  listableName,
  listChunks,
  listLine,
  MLST_FACTS,
  mlsxLine,
  mlsxLines,
  parseTimeVal,
  sortByName,
  timeVal,
} from "./listing.ts";
import { baseName, joinHome, quotePath, resolveVirtual } from "./path.ts";
import { formatReply } from "./reply.ts";
import { watchStalledWrites } from "./stall.ts";
import {
  type FtpAuthorizer,
  type FtpEvents,
  type FtpFileInfo,
  type FtpFileSystem,
  FtpFsError,
  type FtpLogger,
  type FtpSiteHandler,
  type FtpTransferInfo,
  type FtpUpload,
  type FtpUser,
} from "./types.ts";

/** Settings shared by all sessions of one server (resolved by `startFtpServer`). */
export interface SessionConfig {
  fs: FtpFileSystem;
  authorizer: FtpAuthorizer;
  site?: FtpSiteHandler;
  tlsContext?: tls.SecureContext;
  tlsRequired: boolean;
  greeting: string;
  idleTimeoutMs: number;
  /** A connection not logged in after this long is closed (421). */
  loginTimeoutMs: number;
  /** Log lines one session may write in a burst, and per second after it. */
  logBurst: number;
  logPerSecond: number;
  dataTimeoutMs: number;
  maxLineBytes: number;
  passivePorts?: [number, number];
  passiveAddress?: string;
  loginFailDelayMs: number;
  maxLoginAttemptsPerSession: number;
  reservedPorts: Set<number>;
  log: FtpLogger;
  events: FtpEvents;
  /** Record a failed login; returns true when the address is now blocked. */
  loginFailed(ip: string): boolean;
}

type DataEndpoint =
  | { kind: "passive"; ep: PassiveEndpoint }
  | { kind: "active"; host: string; port: number; family: 4 | 6 };

interface Transfer {
  ac: AbortController;
  sock?: net.Socket;
  byAbor: boolean;
  bytes: number;
  what: string;
}

let transferIds = 0;

/** Thrown inside a handler to end it with a given reply. */
class Reply extends Error {
  constructor(readonly code: number, readonly text: string) {
    super(text);
  }
}

type Handler = (arg: string) => Promise<void> | void;
interface CommandSpec {
  run: Handler;
  /** Allowed before login. */
  open?: boolean;
  /** Argument required (501 otherwise). */
  arg?: boolean;
  /** Changes storage (refused for read-only users). */
  write?: boolean;
  help: string;
}

const IMMEDIATE_WHILE_TRANSFER = new Set(["ABOR", "STAT"]);
const MAX_QUEUED_LINES = 64;
/** Queue limit on TLS control connections, which are never paused (see data.ts). */
const MAX_QUEUED_LINES_TLS = 4096;

/** Run the FTP protocol on `socket` until it closes; resolves then. */
export function runSession(socket: net.Socket, cfg: SessionConfig): Promise<void> {
  return new Promise((resolve) => new Session(socket, cfg, resolve).start());
}

class Session {
  private sock: net.Socket;
  private readonly remote: string;
  private readonly local: string;
  private readonly id: string;
  private user: FtpUser | null = null;
  private pendingUser: string | null = null;
  private loginFailures = 0;
  private cwd = "/";
  private type: "A" | "I" = "A";
  private rest = 0;
  private renameFrom: string | null = null;
  private data: DataEndpoint | null = null;
  private epsvAll = false;
  private tlsOn = false;
  private pbsz = false;
  private protectData = false;
  private mlstFacts = new Set<string>(MLST_FACTS);
  private transfer: Transfer | null = null;
  private queue: string[] = [];
  private working = false;
  private closed = false;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private loginTimer: ReturnType<typeof setTimeout> | undefined;
  /** Log lines this session may still write now, and lines it could not. */
  private logTokens: number;
  private logRefilled = Date.now();
  private logDropped = 0;
  private readonly commands: Record<string, CommandSpec>;
  private readLines: ReturnType<typeof createLineReader>;

  constructor(
    socket: net.Socket,
    private readonly cfg: SessionConfig,
    private readonly done: () => void,
  ) {
    this.sock = socket;
    this.remote = plainAddress(socket.remoteAddress);
    this.local = plainAddress(socket.localAddress);
    this.id = `${this.remote}:${socket.remotePort}`;
    this.readLines = createLineReader(cfg.maxLineBytes);
    this.commands = this.commandTable();
    this.logTokens = cfg.logBurst;
  }

  start(): void {
    this.attach(this.sock);
    this.log("connect", true);
    this.send(220, this.cfg.greeting);
    this.touch();
    this.armLoginTimer();
  }

  /** Until someone logs in, the connection lives `loginTimeoutMs` at most. */
  private armLoginTimer(): void {
    clearTimeout(this.loginTimer);
    this.loginTimer = setTimeout(() => {
      if (this.user || this.closed) return;
      this.log("login timeout", true);
      this.send(421, "Login timeout, closing control connection.");
      this.close();
    }, this.cfg.loginTimeoutMs);
  }

  // ---- plumbing -------------------------------------------------------------

  private attach(sock: net.Socket): void {
    sock.on("data", (chunk: Uint8Array) => this.onData(chunk));
    sock.on("error", (err) => this.log(`control error ${err.message}`));
    sock.on("close", () => this.onClose());
    sock.on("end", () => sock.end());
  }

  /**
   * One log line, within the session's budget (`logBurst`, then `logPerSecond`): a
   * client cannot fill the disk through the log. `always` lines (connect, login,
   * disconnect) are written anyway and tell how many were left out.
   */
  private log(msg: string, always = false): void {
    const now = Date.now();
    this.logTokens = Math.min(
      this.cfg.logBurst,
      this.logTokens + (now - this.logRefilled) / 1000 * this.cfg.logPerSecond,
    );
    this.logRefilled = now;
    if (this.logTokens < 1 && !always) {
      this.logDropped++;
      return;
    }
    this.logTokens = Math.max(0, this.logTokens - 1);
    const dropped = this.logDropped > 0 ? ` (${this.logDropped} lines not logged: too many)` : "";
    this.logDropped = 0;
    this.cfg.log(`ftp ${this.id}${this.user ? " " + this.user.name : ""} ${msg}${dropped}`);
  }

  private send(code: number, text: string | string[]): void {
    if (this.closed || this.sock.destroyed) return;
    this.sock.write(formatReply(code, text));
    if (this.sock.writableNeedDrain && !this.tlsOn) {
      this.sock.pause();
      this.sock.once("drain", () => this.maybeResume());
    }
  }

  private maybeResume(): void {
    if (
      !this.closed && !this.tlsOn && !this.sock.writableNeedDrain &&
      this.queue.length < MAX_QUEUED_LINES
    ) {
      this.sock.resume();
    }
  }

  private touch(): void {
    clearTimeout(this.idleTimer);
    if (this.closed) return;
    this.idleTimer = setTimeout(() => {
      if (this.transfer || this.working) return this.touch();
      this.log("idle timeout");
      this.send(421, "Idle timeout, closing control connection.");
      this.close();
    }, this.cfg.idleTimeoutMs);
  }

  /** End the session after the replies already written have been flushed. */
  private close(): void {
    if (this.closed) return;
    this.shutdown();
    const sock = this.sock;
    sock.end();
    // no timer keeps the session once its socket closed
    const timer = setTimeout(() => sock.destroy(), 2000).unref();
    sock.once("close", () => clearTimeout(timer));
  }

  private onClose(): void {
    if (this.closed) return;
    this.shutdown();
    this.sock.destroy();
  }

  private shutdown(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.loginTimer);
    this.queue = [];
    if (this.transfer) this.abortTransfer(false);
    this.clearData();
    this.log("disconnect", true);
    this.cfg.events.disconnect?.({ session: this.id, user: this.user?.name, ip: this.remote });
    this.done();
  }

  private onData(chunk: Uint8Array): void {
    if (this.closed) return;
    for (const ev of this.readLines(chunk)) {
      if ("tooLong" in ev) {
        this.queue.push("\0toolong");
      } else {
        const verb = ev.line.trimStart().split(" ", 1)[0].toUpperCase();
        if (this.transfer && IMMEDIATE_WHILE_TRANSFER.has(verb) && ev.line.trim().length === 4) {
          this.touch();
          if (verb === "ABOR") this.abor();
          else this.statTransfer();
          continue;
        }
        this.queue.push(ev.line);
      }
    }
    if (this.tlsOn) {
      // pausing a server-side TLS socket stalls it under Deno 2: bound the queue instead
      if (this.queue.length > MAX_QUEUED_LINES_TLS) {
        this.queue = [];
        this.send(421, "Too many commands queued, closing control connection.");
        return this.close();
      }
    } else if (this.queue.length >= MAX_QUEUED_LINES) this.sock.pause();
    // Bytes that end no command do not count as activity: only complete commands keep a
    // session from its idle timeout (a client trickling bytes is cut off all the same).
    if (this.queue.length > 0) void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.working) return;
    this.working = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const line = this.queue.shift()!;
        if (this.queue.length < MAX_QUEUED_LINES / 2) this.maybeResume();
        this.touch();
        if (line === "\0toolong") {
          this.send(500, `Command line too long (limit ${this.cfg.maxLineBytes} bytes).`);
          continue;
        }
        await this.execute(line);
      }
    } finally {
      this.working = false;
      this.touch();
    }
  }

  private async execute(line: string): Promise<void> {
    const sp = line.indexOf(" ");
    const rawVerb = sp < 0 ? line : line.slice(0, sp);
    const verb = rawVerb.toUpperCase();
    const arg = sp < 0 ? "" : line.slice(sp + 1);
    const spec = /^[A-Z]{3,4}$/.test(verb) ? this.commands[verb] : undefined;
    const shown = verb === "PASS" ? "PASS ****" : verb === "SITE" // passwords may follow (SITE USERADD, SITE PASSWD)
      ? (/^\S+\s+\S+(\s+\S+)?/.exec(line)?.[0] ?? "SITE") + " ****"
      : line.length > 200
      ? line.slice(0, 200) + "..."
      : line;
    this.log(`> ${shown}`);
    if (!spec) return this.send(500, `Unknown command "${rawVerb.slice(0, 32)}".`);
    if (/[\0\r]/.test(arg)) return this.send(501, "Invalid character in argument.");
    if (!spec.open && !this.user) return this.send(530, "Please log in with USER and PASS first.");
    if (spec.arg && arg.trim() === "") return this.send(501, `Syntax: ${spec.help}`);
    if (spec.write && this.user?.readOnly) {
      return this.send(550, "Permission denied (read-only account).");
    }
    if (verb !== "RNTO" && verb !== "RNFR") this.renameFrom = null;
    try {
      await spec.run(arg);
    } catch (err) {
      this.replyError(err, verb);
    }
  }

  private replyError(err: unknown, verb: string): void {
    if (err instanceof Reply) return this.send(err.code, err.text);
    if (err instanceof FtpFsError) {
      const storeLike = verb === "STOR" || verb === "APPE" || verb === "MKD" || verb === "RNTO";
      const code = err.kind === "bad-name"
        ? 503
        : err.kind === "no-space"
        ? 452
        : err.kind === "unavailable"
        ? 451
        : (err.kind === "permission" || err.kind === "too-long") && storeLike
        ? 553
        : 550;
      return this.send(code, err.message);
    }
    const code = (err as { code?: unknown })?.code;
    if (code === "ENAMETOOLONG") {
      const storeLike = verb === "STOR" || verb === "APPE" || verb === "MKD" || verb === "RNTO";
      return this.send(storeLike ? 553 : 550, "File name too long.");
    }
    if (code === "ENOSPC" || code === "EDQUOT") {
      this.log(`no space for ${verb}: ${(err as Error).message}`);
      return this.send(452, "Insufficient storage space.");
    }
    const message = err instanceof Error ? err.message : String(err);
    this.log(`error in ${verb}: ${message}`);
    this.cfg.events.error?.({ session: this.id, user: this.user?.name, what: verb, message });
    this.send(451, "Requested action aborted: local error in processing.");
  }

  // ---- paths ----------------------------------------------------------------

  /** Client path for an argument, and the backend path. */
  private path(arg: string): { view: string; fs: string } {
    if (arg.includes("\uFFFD")) throw new Reply(501, "Path is not valid UTF-8.");
    const view = resolveVirtual(this.cwd, arg);
    return { view, fs: joinHome(this.user!.home, view) };
  }

  private async mustStat(fsPath: string, view: string): Promise<FtpFileInfo> {
    const info = await this.cfg.fs.stat(fsPath, this.user!);
    if (!info) throw new Reply(550, `${view}: No such file or directory.`);
    return info;
  }

  // ---- command table --------------------------------------------------------

  private commandTable(): Record<string, CommandSpec> {
    const c: Record<string, CommandSpec> = {
      USER: { run: (a) => this.cmdUser(a), open: true, arg: true, help: "USER <name>" },
      PASS: { run: (a) => this.cmdPass(a), open: true, help: "PASS <password>" },
      QUIT: { run: () => this.cmdQuit(), open: true, help: "QUIT" },
      NOOP: { run: () => this.send(200, "NOOP ok."), open: true, help: "NOOP" },
      SYST: { run: () => this.send(215, "UNIX Type: L8"), open: true, help: "SYST" },
      FEAT: { run: () => this.cmdFeat(), open: true, help: "FEAT" },
      OPTS: { run: (a) => this.cmdOpts(a), open: true, arg: true, help: "OPTS <option> [args]" },
      HELP: { run: (a) => this.cmdHelp(a), open: true, help: "HELP [command]" },
      AUTH: { run: (a) => this.cmdAuth(a), open: true, arg: true, help: "AUTH TLS" },
      PBSZ: { run: (a) => this.cmdPbsz(a), open: true, arg: true, help: "PBSZ 0" },
      PROT: { run: (a) => this.cmdProt(a), open: true, arg: true, help: "PROT C|P" },
      CCC: { run: () => this.send(534, "CCC not allowed."), open: true, help: "CCC" },
      TYPE: { run: (a) => this.cmdType(a), arg: true, help: "TYPE A|I" },
      MODE: { run: (a) => this.cmdMode(a), arg: true, help: "MODE S" },
      STRU: { run: (a) => this.cmdStru(a), arg: true, help: "STRU F" },
      STAT: { run: (a) => this.cmdStat(a), open: true, help: "STAT [path]" },
      PWD: {
        run: () => this.send(257, `${quotePath(this.cwd)} is the current directory.`),
        help: "PWD",
      },
      CWD: { run: (a) => this.cmdCwd(a), arg: true, help: "CWD <path>" },
      CDUP: { run: () => this.cmdCwd(".."), help: "CDUP" },
      MKD: { run: (a) => this.cmdMkd(a), arg: true, write: true, help: "MKD <path>" },
      RMD: { run: (a) => this.cmdRmd(a), arg: true, write: true, help: "RMD <path>" },
      DELE: { run: (a) => this.cmdDele(a), arg: true, write: true, help: "DELE <path>" },
      RNFR: { run: (a) => this.cmdRnfr(a), arg: true, write: true, help: "RNFR <path>" },
      RNTO: { run: (a) => this.cmdRnto(a), arg: true, write: true, help: "RNTO <path>" },
      SIZE: { run: (a) => this.cmdSize(a), arg: true, help: "SIZE <path>" },
      MDTM: { run: (a) => this.cmdMdtm(a), arg: true, help: "MDTM <path>" },
      MFMT: { run: (a) => this.cmdMfmt(a), arg: true, write: true, help: "MFMT <time> <path>" },
      REST: { run: (a) => this.cmdRest(a), arg: true, help: "REST <offset>" },
      PORT: { run: (a) => this.cmdPort(a), arg: true, help: "PORT h1,h2,h3,h4,p1,p2" },
      EPRT: { run: (a) => this.cmdEprt(a), arg: true, help: "EPRT |proto|addr|port|" },
      PASV: { run: () => this.cmdPasv(false, ""), help: "PASV" },
      EPSV: { run: (a) => this.cmdPasv(true, a), help: "EPSV [1|2|ALL]" },
      LIST: { run: (a) => this.cmdList(a, "LIST"), help: "LIST [path]" },
      NLST: { run: (a) => this.cmdList(a, "NLST"), help: "NLST [path]" },
      MLSD: { run: (a) => this.cmdList(a, "MLSD"), help: "MLSD [path]" },
      MLST: { run: (a) => this.cmdMlst(a), help: "MLST [path]" },
      RETR: { run: (a) => this.cmdRetr(a), arg: true, help: "RETR <path>" },
      STOR: { run: (a) => this.cmdStor(a, false), arg: true, write: true, help: "STOR <path>" },
      APPE: { run: (a) => this.cmdStor(a, true), arg: true, write: true, help: "APPE <path>" },
      ABOR: { run: () => this.abor(), open: true, help: "ABOR" },
      SITE: { run: (a) => this.cmdSite(a), arg: true, help: "SITE <command> [args]" },
      ALLO: { run: () => this.send(202, "ALLO not needed."), help: "ALLO <bytes>" },
      ACCT: { run: () => this.send(202, "ACCT not needed."), help: "ACCT <account>" },
      REIN: { run: () => this.send(502, "REIN not implemented."), help: "REIN" },
      SMNT: { run: () => this.send(502, "SMNT not implemented."), help: "SMNT" },
      STOU: { run: () => this.send(502, "STOU not implemented."), help: "STOU" },
    };
    // RFC 775 aliases
    c.XPWD = c.PWD;
    c.XCWD = c.CWD;
    c.XCUP = c.CDUP;
    c.XMKD = c.MKD;
    c.XRMD = c.RMD;
    return c;
  }

  // ---- access ---------------------------------------------------------------

  private cmdUser(name: string): void {
    if (this.cfg.tlsRequired && !this.tlsOn) {
      return this.send(530, "Use AUTH TLS before logging in.");
    }
    if (this.user) {
      this.log("logout");
      this.armLoginTimer();
    }
    this.user = null;
    this.cwd = "/";
    this.pendingUser = name;
    if (this.cfg.authorizer.isAnonymous?.(name)) {
      this.send(331, "Anonymous login ok, send your e-mail address as password.");
    } else this.send(331, `Password required for ${name.slice(0, 64)}.`);
  }

  private async cmdPass(password: string): Promise<void> {
    if (this.user) return this.send(503, "Already logged in.");
    if (this.pendingUser === null) return this.send(503, "Login with USER first.");
    const name = this.pendingUser;
    this.pendingUser = null;
    let user: FtpUser | null = null;
    try {
      user = await this.cfg.authorizer.authenticate(name, password, this.remote);
    } catch (err) {
      this.log(`authorizer error: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!user) {
      this.loginFailures++;
      const blocked = this.cfg.loginFailed(this.remote);
      this.log(`login failed for ${JSON.stringify(name.slice(0, 64))}`);
      this.cfg.events.loginFailed?.({ session: this.id, user: name.slice(0, 64), ip: this.remote });
      await new Promise((r) => setTimeout(r, this.cfg.loginFailDelayMs));
      if (blocked || this.loginFailures >= this.cfg.maxLoginAttemptsPerSession) {
        this.send(421, "Too many failed logins, closing control connection.");
        return this.close();
      }
      return this.send(530, "Login incorrect.");
    }
    this.user = user;
    this.cwd = "/";
    clearTimeout(this.loginTimer);
    this.log("login", true);
    this.cfg.events.login?.({ session: this.id, user: user.name, ip: this.remote });
    this.send(230, "Login successful.");
  }

  private cmdQuit(): void {
    this.send(221, "Goodbye.");
    this.close();
  }

  // ---- information ----------------------------------------------------------

  private cmdFeat(): void {
    const lines = ["Features:"];
    if (this.cfg.tlsContext) lines.push(" AUTH TLS", " PBSZ", " PROT");
    lines.push(
      " EPRT",
      " EPSV",
      " MDTM",
      ...(this.cfg.fs.setMtime ? [" MFMT"] : []),
      " MLST " + MLST_FACTS.map((f) => f + (this.mlstFacts.has(f) ? "*" : "") + ";").join(""),
      " REST STREAM",
      " SIZE",
      " TVFS",
      " UTF8",
      "End",
    );
    this.send(211, lines);
  }

  private cmdOpts(arg: string): void {
    const [opt, ...rest] = arg.trim().split(/\s+/);
    const value = rest.join(" ");
    switch (opt.toUpperCase()) {
      case "UTF8":
      case "UTF-8":
        if (value === "" || /^(ON|OFF)$/i.test(value)) {
          return this.send(200, "Always in UTF8 mode.");
        }
        return this.send(501, "Syntax: OPTS UTF8 ON|OFF");
      case "MLST": {
        const wanted = value.split(";").map((f) => f.trim().toLowerCase()).filter((f) => f !== "");
        this.mlstFacts = new Set(MLST_FACTS.filter((f) => wanted.includes(f.toLowerCase())));
        return this.send(200, `MLST OPTS ${[...this.mlstFacts].map((f) => f + ";").join("")}`);
      }
      default:
        return this.send(501, "Option not understood.");
    }
  }

  private cmdHelp(arg: string): void {
    const verb = arg.trim().toUpperCase();
    if (verb) {
      const spec = this.commands[verb];
      if (!spec) return this.send(501, "Unknown command.");
      return this.send(214, `Syntax: ${spec.help}`);
    }
    const names = Object.keys(this.commands).sort();
    const lines = ["The following commands are recognized:"];
    for (let i = 0; i < names.length; i += 8) lines.push(" " + names.slice(i, i + 8).join(" "));
    lines.push("Help ok.");
    this.send(214, lines);
  }

  private async cmdStat(arg: string): Promise<void> {
    if (arg.trim() === "") {
      return this.send(211, [
        "FTP server status:",
        ` Connected to ${this.remote}`,
        ` Logged in as ${this.user ? this.user.name : "(not logged in)"}`,
        ` TYPE: ${this.type === "A" ? "ASCII" : "BINARY"}, STRUcture: File, MODE: Stream`,
        ` Control connection ${this.tlsOn ? "TLS" : "plain"}, data ${
          this.protectData ? "TLS" : "plain"
        }`,
        ` ${this.transfer ? "Transfer in progress" : "No data connection"}`,
        "End of status.",
      ]);
    }
    if (!this.user) return this.send(530, "Please log in with USER and PASS first.");
    const lines = await this.listingLines(arg, "LIST");
    this.send(213, [`Status of ${arg.trim()}:`, ...lines, "End of status."]);
  }

  private statTransfer(): void {
    const t = this.transfer!;
    this.send(213, `Status: ${t.what}, ${t.bytes} bytes so far.`);
  }

  // ---- TLS ------------------------------------------------------------------

  private cmdAuth(arg: string): void {
    const mech = arg.trim().toUpperCase();
    if (!this.cfg.tlsContext) {
      return this.send(502, "AUTH not supported (no certificate configured).");
    }
    if (this.tlsOn) return this.send(503, "Already using TLS.");
    if (mech !== "TLS" && mech !== "TLS-C" && mech !== "SSL") {
      return this.send(504, `AUTH ${mech.slice(0, 16)} not supported.`);
    }
    const raw = this.sock;
    raw.removeAllListeners("data");
    raw.removeAllListeners("close");
    raw.removeAllListeners("end");
    raw.pause();
    raw.write(formatReply(234, `AUTH ${mech} successful.`), () => {
      if (this.closed) return;
      const t = new tls.TLSSocket(raw, { isServer: true, secureContext: this.cfg.tlsContext });
      this.sock = t;
      this.tlsOn = true;
      this.readLines = createLineReader(this.cfg.maxLineBytes);
      this.attach(t);
      t.once("secure", () => this.log("control TLS established"));
    });
    raw.once("close", () => this.onClose());
  }

  private cmdPbsz(arg: string): void {
    if (!this.tlsOn) return this.send(503, "PBSZ not allowed on an insecure control connection.");
    if (!/^\d+$/.test(arg.trim())) return this.send(501, "Syntax: PBSZ 0");
    this.pbsz = true;
    this.send(200, "PBSZ=0");
  }

  private cmdProt(arg: string): void {
    if (!this.tlsOn) return this.send(503, "PROT not allowed on an insecure control connection.");
    if (!this.pbsz) return this.send(503, "You must issue PBSZ first.");
    const level = arg.trim().toUpperCase();
    if (level === "C") {
      this.protectData = false;
      return this.send(200, "Protection set to Clear.");
    }
    if (level === "P") {
      this.protectData = true;
      return this.send(200, "Protection set to Private.");
    }
    if (level === "S" || level === "E") return this.send(536, `PROT ${level} unsupported.`);
    this.send(504, "Syntax: PROT C|P");
  }

  // ---- parameters -----------------------------------------------------------

  private cmdType(arg: string): void {
    const t = arg.trim().toUpperCase().replace(/\s+/g, " ");
    if (t === "A" || t === "A N") this.type = "A";
    else if (t === "I" || t === "L 8") this.type = "I";
    else return this.send(504, `TYPE ${t.slice(0, 16)} not supported.`);
    this.send(200, `Type set to ${this.type === "A" ? "A" : "I"}.`);
  }

  private cmdMode(arg: string): void {
    if (arg.trim().toUpperCase() === "S") return this.send(200, "Mode set to S.");
    this.send(504, "Only MODE S (stream) is supported.");
  }

  private cmdStru(arg: string): void {
    if (arg.trim().toUpperCase() === "F") return this.send(200, "Structure set to F.");
    this.send(504, "Only STRU F (file) is supported.");
  }

  private cmdRest(arg: string): void {
    const v = arg.trim();
    if (!/^\d{1,15}$/.test(v)) return this.send(501, "Syntax: REST <non-negative integer>");
    this.rest = Number(v);
    this.send(350, `Restarting at ${this.rest}. Send STOR or RETR to start transfer.`);
  }

  // ---- navigation and file management ---------------------------------------

  private async cmdCwd(arg: string): Promise<void> {
    const p = this.path(arg);
    const info = await this.mustStat(p.fs, p.view);
    if (info.type !== "dir") throw new Reply(550, `${p.view}: Not a directory.`);
    this.cwd = p.view;
    this.send(250, `Directory changed to ${p.view}.`);
  }

  private async cmdMkd(arg: string): Promise<void> {
    const p = this.path(arg);
    if (p.view === "/") throw new Reply(550, "Cannot create the root directory.");
    if (await this.cfg.fs.stat(p.fs, this.user!)) throw new Reply(550, `${p.view}: File exists.`);
    await this.cfg.fs.mkdir(p.fs, this.user!);
    this.send(257, `${quotePath(p.view)} directory created.`);
  }

  private async cmdRmd(arg: string): Promise<void> {
    const p = this.path(arg);
    if (p.view === "/") throw new Reply(550, "Cannot remove the root directory.");
    const info = await this.mustStat(p.fs, p.view);
    if (info.type !== "dir") throw new Reply(550, `${p.view}: Not a directory.`);
    await this.cfg.fs.rmdir(p.fs, this.user!);
    if (this.cwd === p.view || this.cwd.startsWith(p.view + "/")) this.cwd = "/";
    this.send(250, `Directory ${p.view} removed.`);
  }

  private async cmdDele(arg: string): Promise<void> {
    const p = this.path(arg);
    const info = await this.mustStat(p.fs, p.view);
    if (info.type === "dir") throw new Reply(550, `${p.view}: Is a directory (use RMD).`);
    await this.cfg.fs.remove(p.fs, this.user!);
    this.send(250, `File ${p.view} deleted.`);
  }

  private async cmdRnfr(arg: string): Promise<void> {
    this.renameFrom = null;
    const p = this.path(arg);
    if (p.view === "/") throw new Reply(550, "Cannot rename the root directory.");
    await this.mustStat(p.fs, p.view);
    this.renameFrom = p.fs;
    this.send(350, "Ready for RNTO.");
  }

  private async cmdRnto(arg: string): Promise<void> {
    const from = this.renameFrom;
    this.renameFrom = null;
    if (from === null) return this.send(503, "Send RNFR first.");
    const p = this.path(arg);
    if (p.view === "/") throw new Reply(553, "Cannot rename onto the root directory.");
    if (p.fs === from) return this.send(250, "Rename successful (same name).");
    if (p.fs.startsWith(from + "/")) throw new Reply(553, "Cannot move a directory into itself.");
    await this.cfg.fs.rename(from, p.fs, this.user!);
    this.send(250, "Rename successful.");
  }

  private async cmdSize(arg: string): Promise<void> {
    const p = this.path(arg);
    const info = await this.mustStat(p.fs, p.view);
    if (info.type !== "file") throw new Reply(550, `${p.view}: Not a regular file.`);
    this.send(213, String(info.size));
  }

  private async cmdMdtm(arg: string): Promise<void> {
    const p = this.path(arg);
    const info = await this.mustStat(p.fs, p.view);
    if (info.type !== "file") throw new Reply(550, `${p.view}: Not a regular file.`);
    this.send(213, timeVal(info.mtime));
  }

  /** MFMT YYYYMMDDHHMMSS[.sss] <path>: set a file's modification time (draft-somers-ftp-mfxx). */
  private async cmdMfmt(arg: string): Promise<void> {
    const m = /^\s*(\d{14}(?:\.\d{1,3})?)\s+(.+)$/.exec(arg);
    const ms = m ? parseTimeVal(m[1]) : NaN;
    if (!m || !Number.isFinite(ms)) throw new Reply(501, "Syntax: MFMT YYYYMMDDHHMMSS <path>");
    const p = await this.setMtime(m[2], ms);
    this.send(213, `Modify=${timeVal(ms)}; ${p.view}`);
  }

  /** Set the modification time of the file at client path `arg` (MFMT, SITE UTIME). */
  private async setMtime(arg: string, ms: number): Promise<{ view: string; fs: string }> {
    if (!this.cfg.fs.setMtime) throw new Reply(502, "Setting modification times not supported.");
    if (this.user!.readOnly) throw new Reply(550, "Permission denied (read-only account).");
    const p = this.path(arg);
    await this.mustStat(p.fs, p.view);
    await this.cfg.fs.setMtime(p.fs, this.user!, ms);
    return p;
  }

  /**
   * SITE UTIME in the two forms clients send: `SITE UTIME YYYYMMDDhhmm[ss] <path>`
   * (proftpd) and `SITE UTIME <path> <atime> <mtime> <ctime> UTC` (lftp's default).
   */
  private async siteUtime(rest: string): Promise<void> {
    const five = /^(.+?)\s+(\d{14})\s+(\d{14})\s+(\d{14})\s+UTC\s*$/i.exec(rest);
    const two = /^(\d{12}|\d{14})\s+(.+)$/.exec(rest.trim());
    const [stamp, target] = five ? [five[3], five[1]] : two ? [two[1].padEnd(14, "0"), two[2]] : [];
    const ms = stamp ? parseTimeVal(stamp) : NaN;
    if (!target || !Number.isFinite(ms)) {
      throw new Reply(501, "Syntax: SITE UTIME YYYYMMDDhhmmss <path>");
    }
    await this.setMtime(target, ms);
    this.send(200, "UTIME command successful.");
  }

  private async cmdMlst(arg: string): Promise<void> {
    const p = this.path(arg.trim() === "" ? "." : arg);
    const info = await this.mustStat(p.fs, p.view);
    const line = mlsxLine(info, p.view, this.mlstFacts, this.user!.readOnly);
    this.send(250, [`Listing ${p.view}`, " " + line, "End"]);
  }

  private async cmdSite(arg: string): Promise<void> {
    const [sub] = arg.trim().split(/\s+/, 1);
    const site = this.cfg.site;
    if (sub.toUpperCase() === "UTIME" && this.cfg.fs.setMtime) {
      return await this.siteUtime(arg.trim().slice(sub.length).trimStart());
    }
    if (sub.toUpperCase() === "HELP") {
      const utime = this.cfg.fs.setMtime ? ["UTIME YYYYMMDDhhmmss <path>"] : [];
      const cmds = ["HELP", ...utime, ...(site?.help ?? [])];
      return this.send(214, ["SITE commands:", ...cmds.map((h) => " " + h), "End"]);
    }
    if (!site) return this.send(500, "Unknown SITE command.");
    const reply = await site.run(arg.trim(), {
      user: this.user!,
      remoteAddress: this.remote,
      resolve: (path) => this.path(path).fs,
    });
    if (!reply) return this.send(500, "Unknown SITE command.");
    this.send(reply.code, reply.text);
  }

  // ---- data connections -----------------------------------------------------

  private clearData(): void {
    if (this.data?.kind === "passive") this.data.ep.close();
    this.data = null;
  }

  private async cmdPasv(extended: boolean, arg: string): Promise<void> {
    const a = arg.trim().toUpperCase();
    if (extended && a === "ALL") {
      this.epsvAll = true;
      return this.send(200, "EPSV ALL ok.");
    }
    if (!extended && this.epsvAll) return this.send(501, "PASV not allowed after EPSV ALL.");
    const v6 = this.local.includes(":");
    if (extended && a !== "" && a !== (v6 ? "2" : "1")) {
      return this.send(522, `Network protocol not supported, use (${v6 ? 2 : 1})`);
    }
    if (!extended && v6) return this.send(501, "PASV not available on IPv6, use EPSV.");
    this.clearData();
    let ep: PassiveEndpoint;
    try {
      ep = await listenPassive({
        host: this.local,
        peer: this.remote,
        range: this.cfg.passivePorts,
        reserved: this.cfg.reservedPorts,
        onForeign: (addr) => this.log(`passive connection from foreign address ${addr} refused`),
        tlsContext: this.protectData ? this.cfg.tlsContext : undefined,
      });
    } catch (err) {
      this.log(`passive listen failed: ${err instanceof Error ? err.message : String(err)}`);
      return this.send(425, "Cannot open passive connection.");
    }
    if (this.closed) return ep.close();
    this.data = { kind: "passive", ep };
    if (extended) return this.send(229, `Entering Extended Passive Mode (|||${ep.port}|)`);
    const host = (this.cfg.passiveAddress ?? this.local).split(".").join(",");
    this.send(227, `Entering Passive Mode (${host},${ep.port >> 8},${ep.port & 255}).`);
  }

  private setActive(host: string, port: number, family: 4 | 6): void {
    if (this.epsvAll) throw new Reply(501, "Only EPSV allowed after EPSV ALL.");
    // an unspecified address (lftp sends "EPRT |2|::|port|") means the client itself
    if (host === "0.0.0.0" || sameAddress(host, "::")) host = this.remote;
    if (!sameAddress(host, this.remote)) {
      this.log(`refused data connection to foreign address ${host}`);
      throw new Reply(504, "Rejected data connection to a foreign address.");
    }
    if (port < 1024) throw new Reply(504, "Rejected data connection to a privileged port.");
    this.clearData();
    this.data = { kind: "active", host, port, family };
  }

  private cmdPort(arg: string): void {
    const parts = arg.trim().split(",");
    if (parts.length !== 6 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
      return this.send(501, "Syntax: PORT h1,h2,h3,h4,p1,p2");
    }
    const n = parts.map(Number);
    this.setActive(n.slice(0, 4).join("."), n[4] * 256 + n[5], 4);
    this.send(200, "PORT command successful.");
  }

  private cmdEprt(arg: string): void {
    const a = arg.trim();
    const d = a[0];
    const parts = a.split(d);
    if (
      !d || d.charCodeAt(0) < 33 || d.charCodeAt(0) > 126 || parts.length !== 5 || parts[4] !== ""
    ) {
      return this.send(501, "Syntax: EPRT |proto|address|port|");
    }
    const [, proto, host, portText] = parts;
    if (proto !== "1" && proto !== "2") {
      return this.send(522, "Network protocol not supported, use (1,2)");
    }
    const ipv = proto === "1" ? 4 : 6;
    const valid = ipv === 4
      ? /^\d{1,3}(\.\d{1,3}){3}$/.test(host) && host.split(".").every((x) => +x <= 255)
      : /^[0-9a-fA-F:.]+$/.test(host) && host.includes(":");
    if (!valid || !/^\d{1,5}$/.test(portText) || +portText > 65535 || +portText === 0) {
      return this.send(501, "Syntax: EPRT |proto|address|port|");
    }
    this.setActive(host, Number(portText), ipv);
    this.send(200, "EPRT command successful.");
  }

  /** Take the data endpoint set by PASV/PORT (each is good for one transfer). */
  private takeData(): DataEndpoint {
    const d = this.data;
    if (!d) throw new Reply(425, "Use PORT, EPRT, PASV or EPSV first.");
    this.data = null;
    return d;
  }

  private async connectData(d: DataEndpoint, signal: AbortSignal): Promise<net.Socket> {
    const aborted = new Promise<never>((_, reject) => {
      signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
    });
    aborted.catch(() => {});
    const p = d.kind === "passive"
      ? d.ep.accept(this.cfg.dataTimeoutMs)
      : connectActive(d.host, d.port, this.local, this.cfg.dataTimeoutMs);
    try {
      return await Promise.race([p, aborted]);
    } catch (err) {
      if (d.kind === "passive") d.ep.close();
      p.then((s) => s.destroy(), () => {});
      throw err;
    }
  }

  /**
   * Run one transfer: open the data connection, reply 150, secure it if PROT P,
   * run `body`, reply 226 (or 425/426 on failure). `cleanup` runs on any failure.
   */
  private async runTransfer(
    what: string,
    d: DataEndpoint,
    body: (sock: net.Socket, t: Transfer) => Promise<void>,
    cleanup: (err: unknown) => Promise<void>,
    direction?: "upload" | "download",
  ): Promise<void> {
    const t: Transfer = { ac: new AbortController(), byAbor: false, bytes: 0, what };
    this.transfer = t;
    const seen = direction ? this.transferSeen(t, direction) : undefined;
    let ok = false;
    let sock: net.Socket | undefined;
    /** The data sockets given a timeout handler (the TCP one, and TLS over it). */
    const timed: net.Socket[] = [];
    try {
      try {
        sock = await this.connectData(d, t.ac.signal);
      } catch (err) {
        await cleanup(err);
        if (t.byAbor) return this.abortReplies();
        this.log(`data connection failed: ${err instanceof Error ? err.message : String(err)}`);
        return this.send(425, "Cannot open data connection.");
      }
      t.sock = sock;
      sock.setTimeout(
        this.cfg.dataTimeoutMs,
        () => sock?.destroy(new Error("data connection idle timeout")),
      );
      timed.push(sock);
      watchStalledWrites(sock); // a client that stops reading a download
      this.send(
        150,
        `Opening ${this.type === "A" ? "ASCII" : "BINARY"} mode data connection for ${what}.`,
      );
      try {
        if (this.protectData) {
          sock = await secureData(sock, this.cfg.tlsContext!, this.cfg.dataTimeoutMs);
          t.sock = sock;
          sock.setTimeout(
            this.cfg.dataTimeoutMs,
            () => sock?.destroy(new Error("data connection idle timeout")),
          );
          timed.push(sock);
          watchStalledWrites(sock);
          if (t.ac.signal.aborted) throw new Error("aborted");
        }
        await body(sock, t);
      } catch (err) {
        sock.destroy();
        await cleanup(err);
        if (t.byAbor) return this.abortReplies();
        if (err instanceof FtpFsError) return this.replyError(err, "STOR");
        this.log(`transfer of ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
        return this.send(426, "Connection closed; transfer aborted.");
      }
      this.log(`transfer of ${what} complete, ${t.bytes} bytes`);
      ok = true;
      this.send(226, "Transfer complete.");
    } finally {
      this.transfer = null;
      seen?.(ok);
      // An ended data socket may linger until the client closes it: its handler would keep
      // this transfer (a listing's lines, the session) with it.
      for (const s of timed) {
        s.setTimeout(0);
        s.removeAllListeners("timeout");
      }
    }
  }

  /** Announces a file transfer to the server's events; the returned function ends it. */
  private transferSeen(t: Transfer, direction: "upload" | "download"): (ok: boolean) => void {
    const ev = this.cfg.events;
    if (!ev.transferStart && !ev.transferEnd) return () => {};
    const info: FtpTransferInfo = {
      id: ++transferIds,
      session: this.id,
      user: this.user?.name ?? "",
      ip: this.remote,
      path: t.what,
      direction,
      startedAt: Date.now(),
      bytes: () => t.bytes,
    };
    ev.transferStart?.(info);
    return (ok) =>
      ev.transferEnd?.(info, {
        ok,
        bytes: t.bytes,
        error: ok ? undefined : t.byAbor ? "aborted by the client" : "transfer failed",
      });
  }

  private abortReplies(): void {
    this.send(426, "Connection closed; transfer aborted.");
    this.send(226, "ABOR command successful.");
  }

  private abortTransfer(byAbor: boolean): void {
    const t = this.transfer;
    if (!t) return;
    t.byAbor = byAbor;
    t.ac.abort();
    t.sock?.destroy();
  }

  private abor(): void {
    if (this.transfer) return this.abortTransfer(true);
    const hadData = this.data !== null;
    this.clearData();
    this.send(hadData ? 225 : 226, "ABOR command successful.");
  }

  // ---- transfers ------------------------------------------------------------

  private takeRest(): number {
    const r = this.rest;
    this.rest = 0;
    return r;
  }

  /** What a LIST, NLST or MLSD of `arg` shows, sorted by name. */
  private async listingEntries(
    arg: string,
    kind: "LIST" | "NLST" | "MLSD",
  ): Promise<FtpFileInfo[]> {
    const cleaned = kind === "MLSD" ? arg : arg.replace(/^\s*(-[a-zA-Z0-9]+\s*)+/, "");
    const p = this.path(cleaned.trim() === "" ? "." : cleaned);
    const info = await this.mustStat(p.fs, p.view);
    let entries: FtpFileInfo[];
    if (info.type === "dir") entries = await this.cfg.fs.list(p.fs, this.user!);
    else if (kind === "MLSD") throw new Reply(501, `${p.view}: Not a directory.`);
    else entries = [{ ...info, name: kind === "NLST" ? cleaned.trim() : baseName(p.view) }];
    return sortByName(entries.filter((e) => listableName(e.name)));
  }

  private async listingLines(arg: string, kind: "LIST" | "NLST" | "MLSD"): Promise<string[]> {
    const entries = await this.listingEntries(arg, kind);
    if (kind === "NLST") return entries.map((e) => e.name);
    if (kind === "MLSD") return mlsxLines(entries, this.mlstFacts, this.user!.readOnly);
    const now = Date.now();
    return entries.map((e) => listLine(e, now)); // STAT: the LIST text as reply lines
  }

  private async cmdList(arg: string, kind: "LIST" | "NLST" | "MLSD"): Promise<void> {
    this.rest = 0;
    const d = this.takeData();
    let send: (sock: net.Socket) => Promise<number>;
    try {
      if (kind === "LIST") {
        // bytes made straight from the entries as the socket takes them
        const entries = await this.listingEntries(arg, kind);
        const now = Date.now();
        send = (sock) => sendChunks(listChunks(entries, now), sock);
      } else {
        const lines = await this.listingLines(arg, kind);
        send = (sock) => sendLines(lines, sock);
      }
    } catch (err) {
      if (d.kind === "passive") dismissPassive(d.ep);
      throw err;
    }
    await this.runTransfer(`${kind} listing`, d, async (sock, t) => {
      t.bytes = await send(sock);
    }, async () => {});
  }

  private async cmdRetr(arg: string): Promise<void> {
    const offset = this.takeRest();
    const d = this.takeData();
    const fs = this.cfg.fs;
    const user = this.user!;
    let stream: ReadableStream<Uint8Array> | undefined;
    let p: { view: string; fs: string };
    try {
      p = this.path(arg);
      const info = await this.mustStat(p.fs, p.view);
      if (info.type !== "file") throw new Reply(550, `${p.view}: Not a regular file.`);
      if (offset > info.size) {
        throw new Reply(554, `Restart offset ${offset} is beyond the end of the file.`);
      }
      if (!(d.kind === "active" && fs.sendDirect && !this.protectData)) {
        stream = await fs.openRead(p.fs, user, offset);
      }
    } catch (err) {
      if (d.kind === "passive") dismissPassive(d.ep);
      throw err;
    }
    if (!stream) {
      const handled = await this.retrDirect(p, offset, d as DataEndpoint & { kind: "active" });
      if (handled) return;
      stream = await fs.openRead(p.fs, user, offset);
    }
    const source = stream;
    await this.runTransfer(p.view, d, async (sock, t) => {
      await sendStream(source, sock, (n) => t.bytes += n);
    }, async (err) => {
      await source.cancel(err).catch(() => {});
    }, "download");
  }

  /** Third-party RETR through the backend's `sendDirect`; true when it answered the client. */
  private async retrDirect(
    p: { view: string; fs: string },
    offset: number,
    d: { host: string; port: number; family: 4 | 6 },
  ): Promise<boolean> {
    const t: Transfer = { ac: new AbortController(), byAbor: false, bytes: 0, what: p.view };
    this.transfer = t;
    const seen = this.transferSeen(t, "download");
    let ok = false;
    try {
      this.send(150, `Opening BINARY mode data connection for ${p.view}.`);
      const sent = await this.cfg.fs.sendDirect!(p.fs, this.user!, offset, {
        ...d,
        signal: t.ac.signal,
      });
      if (!sent && !t.byAbor) {
        // fall back to streaming it ourselves; 150 was already sent
        this.transfer = null;
        const stream = await this.cfg.fs.openRead(p.fs, this.user!, offset);
        let sock: net.Socket;
        try {
          sock = await connectActive(d.host, d.port, this.local, this.cfg.dataTimeoutMs);
        } catch {
          await stream.cancel().catch(() => {});
          this.send(425, "Cannot open data connection.");
          return true;
        }
        this.transfer = t;
        t.sock = sock;
        try {
          await sendStream(stream, sock, (n) => t.bytes += n);
        } catch (err) {
          sock.destroy();
          await stream.cancel(err).catch(() => {});
          if (t.byAbor) this.abortReplies();
          else this.send(426, "Connection closed; transfer aborted.");
          return true;
        }
      }
      if (t.byAbor) this.abortReplies();
      else {
        ok = true;
        this.send(226, "Transfer complete.");
      }
      return true;
    } catch (err) {
      if (t.byAbor) this.abortReplies();
      else {
        this.log(
          `direct transfer of ${p.view} failed: ${
            err instanceof Error ? err.message : String(err)
          }`,
        );
        this.send(426, "Connection closed; transfer aborted.");
      }
      return true;
    } finally {
      this.transfer = null;
      seen(ok);
    }
  }

  private async cmdStor(arg: string, append: boolean): Promise<void> {
    const offset = this.takeRest();
    const d = this.takeData();
    const user = this.user!;
    let upload: FtpUpload;
    let p: { view: string; fs: string };
    try {
      p = this.path(arg);
      if (p.view === "/") throw new Reply(553, "Cannot store onto the root directory.");
      const info = await this.cfg.fs.stat(p.fs, user);
      if (info?.type === "dir") throw new Reply(553, `${p.view}: Is a directory.`);
      if (offset > 0 && (!info || offset > info.size)) {
        throw new Reply(554, `Restart offset ${offset} is beyond the end of the file.`);
      }
      upload = await this.cfg.fs.openWrite(p.fs, user, {
        offset: append ? undefined : offset,
        append,
      });
    } catch (err) {
      if (d.kind === "passive") dismissPassive(d.ep);
      throw err;
    }
    const writer = upload.writable.getWriter();
    await this.runTransfer(p.view, d, async (sock, t) => {
      await receiveStream(sock, writer, (n) => t.bytes += n);
      if (t.ac.signal.aborted) throw new Error("aborted");
      await writer.close();
      await upload.commit();
    }, async (err) => {
      await writer.abort(err).catch(() => {});
      await upload.abort(err).catch(() => {});
    }, "upload");
  }
}
