/**
 * The relay-sync configuration: an `escale.conf` (read by the codec
 * `../codec/escale_conf.ts` exactly as the Escale 0.7 client reads it), or a
 * one-off folder + relay URL from the command line. Each section becomes one
 * {@linkcode FolderConfig} with Escale's meaning for every option, alias and
 * value spelling Escale accepts (its `escale/base/config.py` field table,
 * tried alias by alias, getter by getter, as Escale does).
 *
 * Each section stands alone: a section with a fault is reported
 * ({@linkcode SectionError}) and the others still run. Faults are of two
 * kinds, told apart in their messages: a value Escale would not accept is
 * "malformed" (a {@linkcode CodecError} naming the line); an option Escale
 * accepts but hop does not implement, when it changes what is pushed or
 * pulled or where, is "not supported by hop". Options that change nothing
 * of the data (logging, caches, retries) are named in one warning.
 *
 * Paths in the file (local path, secrets given as file paths, certificates)
 * are taken from the current directory, as Escale takes them.
 *
 * @example
 * ```ts
 * const { folders, errors, warnings } = await loadRelayConfig("escale.conf");
 * for (const e of errors) reporter.warn(`[${e.section}] ${e.error.message}`);
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { homedir, hostname } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import {
  confGet,
  confKeys,
  confRaw,
  type ConfSection,
  decodeEscaleConf,
  type EscaleConf,
} from "../codec/escale_conf.ts";
import { type Compression, parseCompression } from "../codec/compression.ts";
import { CodecError } from "../codec/errors.ts";
import { parseSizeText } from "../codec/text.ts";
import { HopError, UsageError } from "../errors.ts";
import { urlSecret } from "../secrets.ts";
import { parseAddress } from "../storage/address.ts";

/** How a client takes part: as in Escale. */
export type RelayMode = "shared" | "upload" | "download" | "conservative";

/**
 * One include/exclude rule, as Escale applies it: `name` rules match the
 * start of a file's name, `dir` rules the start of each folder on its way
 * (`a`, then `a/b`), `ext` rules its extension (Python's `splitext`).
 */
export interface PathFilter {
  /** The rule as written. */
  source: string;
  on: "name" | "dir" | "ext";
  /** `name`/`dir`: anchored at the start only (Python's `re.match`); `ext`: the whole extension. */
  re: RegExp;
}

/** Escale's encryption of a relay (`encryption = yes | fernet | blowfish`). */
export interface EscaleCipher {
  name: "fernet" | "blowfish";
  /** The passphrase bytes as Escale uses them (a file's whole content when given as a path). */
  key: Uint8Array;
}

/** Everything hop needs to sync one folder through one relay. */
export interface FolderConfig {
  /** Section name (the local folder for the one-off form). */
  name: string;
  /** Where this came from, for messages: `escale.conf [docs]`. */
  origin: string;
  /** Absolute local folder. */
  localPath: string;
  /** Relay URL: `file:///abs/dir`, `ftp://host:port/dir` or `ftps://...`. */
  relayUrl: string;
  /** Login for FTP relays. */
  user?: string;
  /** Password for FTP relays. */
  password?: string;
  /** This client's name on the relay. */
  clientName: string;
  mode: RelayMode;
  /** `index`: Escale's index scheme; `placeholder`: its default scheme (no `index` line). */
  scheme: "index" | "placeholder";
  /** 0: one page `0`; N: topdir paging over N levels. */
  pageDepth: number;
  /** Seconds between passes (the loop waits between refresh/2 and refresh). */
  refreshSeconds: number;
  /** Minimum number of pullers before an update is removed (Escale's `puller count`). */
  pullerCount?: number;
  /** node:crypto hash name used for `checksum:` lines. */
  checksum: string;
  /** Stop adding files to an update once it holds this many bytes. */
  maxPageSize: number;
  /** Seconds after which a lock nobody refreshed may be taken over (Infinity: never). */
  lockTimeoutSeconds: number;
  include: PathFilter[];
  exclude: PathFilter[];
  /** Seconds after which another client's registration is ignored. */
  clientExpirySeconds: number;
  /** Most bytes the relay may hold (`disk quota`): pushers wait rather than exceed it. */
  diskQuota?: number;
  /** Escale's encryption of archives (`encryption = yes | fernet | blowfish`). */
  cipher?: EscaleCipher;
  /** hop's own encryption (`encryption = hop`): archives and indexes sealed; hop-only relays. */
  passphrase?: string;
  /**
   * How update archives are compressed (`compression = bzip2 | zstd | none`; unset: bzip2,
   * the only one Escale reads). zstd and none are for hop-only relays, recorded on the relay.
   */
  compression?: Compression;
  /** A puller may empty a page's index when every file of it is missing (`allow page deletion`). */
  allowPageDeletion?: boolean;
  /** FTPS: accept any server certificate (`verify ssl = no`, `tls verify = no`). */
  insecureTls?: boolean;
  /** FTPS: PEM certificate(s) to trust (`tls ca = file`). */
  tlsCa?: string;
  /** FTPS: client certificate and key, PEM (`certfile`, `keyfile`). */
  tlsCert?: string;
  tlsKey?: string;
  /** FTPS: the one TLS version to use (`ssl version = TLSv1.2`). */
  tlsVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2";
  /** SFTP: the private key, PEM or OpenSSH text (`ssh key = FILE`). */
  sshKey?: string;
  /** SFTP: the server's host key fingerprint (`host key = SHA256:...`). */
  hostKey?: string;
  /** S3: the endpoint URL (`endpoint = URL`) and region (`region`). */
  s3Endpoint?: string;
  s3Region?: string;
  /** rclone: the program (`rclone binary`, Escale's option) and its configuration (`rclone config`). */
  rcloneBinary?: string;
  rcloneConfig?: string;
}

/** A section that cannot run, and why. */
export interface SectionError {
  section: string;
  error: HopError;
}

/** The result of reading a configuration file. */
export interface RelayConfig {
  folders: FolderConfig[];
  /** Sections that cannot run (the others do). */
  errors: SectionError[];
  /** Options hop ignores because they change nothing of the data, and values worth a second look. */
  warnings: string[];
}

/** Option defaults (Escale's where it has one). */
export const DEFAULTS = {
  mode: "shared" as RelayMode,
  refreshSeconds: 30,
  checksum: "sha512",
  maxPageSize: 200 * 1024 * 1024,
  lockTimeoutSeconds: 600,
  clientExpirySeconds: 30 * 24 * 3600,
};

/** Escale's `lock timeout = yes`: three days. */
const ESCALE_LOCK_TIMEOUT = 3 * 24 * 3600;

// ------------------------------------------------------------ Escale's field table

type Getter = "bool" | "int" | "float" | "str" | "path" | "list" | "number_unit";

/** Escale 0.7.13's `fields` and `global_fields`: getters tried in order, aliases in order. */
const FIELDS = {
  path: [["path"], ["local path", "path"]],
  address: [["str"], ["host address", "relay address", "remote address", "address"]],
  directory: [["str"], [
    "host directory",
    "relay directory",
    "remote directory",
    "directory",
    "relay dir",
    "remote dir",
    "host dir",
    "dir",
    "host path",
    "relay path",
    "remote path",
  ]],
  port: [["str"], ["port", "host port", "relay port", "remote port"]],
  username: [["str"], ["user", "auth user", "host user", "relay user", "remote user"]],
  password: [["path", "str"], ["password", "secret", "secret file", "credential"]],
  refresh: [["bool", "float"], ["refresh"]],
  timestamp: [["bool", "str"], ["modification time", "timestamp", "mtime"]],
  clientname: [["str"], ["client name", "client"]],
  encryption: [["bool", "str"], ["encryption"]],
  passphrase: [["path", "str"], ["passphrase", "key"]],
  push_only: [["bool"], ["push only", "read only"]],
  pull_only: [["bool"], ["pull only", "write only"]],
  ssl_version: [["str"], ["ssl version"]],
  verify_ssl: [["bool"], ["verify ssl"]],
  filetype: [["list"], ["file extension", "file type"]],
  include: [["list"], ["include", "include files", "pattern", "filter"]],
  exclude: [["list"], ["exclude", "exclude files"]],
  quota: [["number_unit"], ["disk quota", "quota"]],
  maintainer: [["str"], ["maintainer", "email"]],
  certfile: [["path"], ["certfile", "cert file", "certificate"]],
  keyfile: [["path"], ["keyfile", "key file", "private key"]],
  locktimeout: [["bool", "int"], ["lock timeout"]],
  mode: [["str"], ["mode", "synchronization mode"]],
  count: [["int"], ["puller count", "pullers"]],
  checksum: [["bool", "str"], ["checksum", "hash algorithm"]],
  minsplitsize: [["int"], ["min split size", "split size", "split"]],
  maxpendingtransfers: [["int"], ["max pending transfers"]],
  index: [["bool", "str"], ["index", "compact"]],
  maxpagesize: [["number_unit"], ["maxpagesize", "maxarchivesize"]],
  includedirectory: [["list"], ["include directory", "include directories"]],
  excludedirectory: [["list"], ["exclude directory", "exclude directories"]],
  checksumcache: [["bool", "path"], ["checksum cache"]],
  retryonerror: [["list"], ["retryonerror", "retry on error"]],
  pulloverwrite: [["bool"], ["pull overwrite"]],
  verbosity: [["int"], ["verbosity", "verbosity level"]],
  allow_page_deletion: [["bool"], ["allow page deletion", "page deletion"]],
  keepalive: [["bool", "int"], ["keep alive"]],
} as const satisfies Record<string, readonly [readonly Getter[], readonly string[]]>;

type Field = keyof typeof FIELDS;

/** Options Escale reads outside its field table. */
const ESCALE_OTHERS = new Set(["protocol", "upload max wait", "priority", "rclone binary"]);
/** Escale's global options (log set-up, run and cache folders): no effect on the data. */
const ESCALE_GLOBALS = new Set([
  "log file",
  "log level",
  "log rotate",
  "log",
  "cache",
  "cache dir",
]);
/** Options hop adds. */
const HOP_OPTIONS = new Set([
  "password file",
  "passphrase file",
  "tls verify",
  "tls ca",
  "client expiry",
  "ssh key",
  "host key",
  "endpoint",
  "region",
  "rclone config",
  "compression",
]);
/** Fields that change nothing of the data: hop ignores them, in one warning. */
const NO_DATA_EFFECT = new Set<Field>([
  "maintainer",
  "checksumcache",
  "retryonerror",
  "verbosity",
  "keepalive",
  "maxpendingtransfers",
]);

/** Escale's storage units, in MB (`escale/base/config.py`). */
const UNIT_MB: Record<string, number> = {
  Kb: 0.0001220703125,
  KB: 0.0009765625,
  Mb: 0.125,
  MB: 1,
  Gb: 128,
  GB: 1024,
  Tb: 131072,
  TB: 1048576,
  Pb: 134217728,
  PB: 1073741824,
  Eb: 137438953472,
  EB: 1099511627776,
  MiB: 1,
  GiB: 1024,
  TiB: 1048576,
  PiB: 1073741824,
  EiB: 1099511627776,
};
for (const u of "KMGTPE") UNIT_MB[u] = UNIT_MB[u + "o"] = UNIT_MB[u + "B"];

/** Python's `configparser` booleans. */
const BOOLEANS: Record<string, boolean> = {
  "1": true,
  yes: true,
  true: true,
  on: true,
  "0": false,
  no: false,
  false: false,
  off: false,
};

/** A typed value, or why a getter refused the text. */
type Got =
  | { ok: true; type: Getter; value: unknown }
  | { ok: false };

/** Python's `int()` on a string: optional sign, digits with single `_` between them. */
export function pyInt(s: string): number | undefined {
  const t = s.trim();
  if (!/^[+-]?\d+(?:_\d+)*$/.test(t)) return undefined;
  return Number(t.replaceAll("_", ""));
}

/** Python's `float()` on a string (finite values only; `inf` and `nan` are refused). */
function pyFloat(s: string): number | undefined {
  const t = s.trim().replaceAll(/(?<=\d)_(?=\d)/g, "");
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

/** `~` and `~/x` as Python's `os.path.expanduser`. */
function expandUser(p: string): string {
  if (p === "~" || p.startsWith("~/")) return (process.env.HOME ?? homedir()) + p.slice(1);
  return p;
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isDirectory() ?? false;
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isFile() ?? false;
}

/** Escale's getters (`escale/base/config.py`'s `getter`). */
async function runGetter(g: Getter, text: string): Promise<Got> {
  switch (g) {
    case "bool": {
      const b = BOOLEANS[text.toLowerCase()];
      return b === undefined ? { ok: false } : { ok: true, type: g, value: b };
    }
    case "int": {
      const n = pyInt(text);
      return n === undefined ? { ok: false } : { ok: true, type: g, value: n };
    }
    case "float": {
      const n = pyFloat(text);
      return n === undefined ? { ok: false } : { ok: true, type: g, value: n };
    }
    case "str":
      return { ok: true, type: g, value: text };
    case "path": {
      if (text === "") return { ok: false };
      const p = expandUser(text);
      const parent = dirname(p) === "." && !p.startsWith("./") ? "" : dirname(p);
      if (parent !== "" && (await isDir(resolve(parent)))) {
        return { ok: true, type: g, value: p.replaceAll("\\", "/") };
      }
      return { ok: false };
    }
    case "list":
      return {
        ok: true,
        type: g,
        value: text.split(",").map((i) => i.trim()).filter((i) => i !== ""),
      };
    case "number_unit": {
      const m = /^([0-9]+(?:[.,][0-9]+)?)\s*([a-zA-Z]*)/.exec(text);
      if (!m) return { ok: false };
      return { ok: true, type: g, value: [Number(m[1].replace(",", ".")), m[2]] };
    }
  }
}

/** One field of a section as Escale parses it. */
interface Parsed {
  /** The alias found (first in Escale's order). */
  key: string;
  line: number;
  /** The text after interpolation. */
  text: string;
  /** The first getter that accepted it; undefined when none did (Escale then keeps the text). */
  got?: { type: Getter; value: unknown };
}

// ------------------------------------------------------------ reading a file

/** Where Escale looks for its configuration when none is given, in order. */
export function escaleConfigLocations(home = process.env.HOME ?? homedir()): string[] {
  return [
    join(home, ".config", "escale", "escale.conf"),
    join(home, ".escale", "escale.conf"),
    "/etc/escale.conf",
  ];
}

/** The first of {@linkcode escaleConfigLocations} that exists, or undefined. */
export async function findEscaleConfig(home?: string): Promise<string | undefined> {
  for (const f of escaleConfigLocations(home)) if (await isFile(f)) return f;
  return undefined;
}

/** Reads a configuration file (an existing `escale.conf` works unchanged). */
export async function loadRelayConfig(
  file: string,
  env: { hostname?: string } = {},
): Promise<RelayConfig> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new HopError(`cannot read the configuration file ${file}: ${(e as Error).message}`, {
      hint: "Give an existing file with --config FILE.",
      cause: e,
    });
  }
  return await parseRelayConfig(bytes, file, env);
}

/** Same as {@linkcode loadRelayConfig} on text already read; `file` names it in messages. */
export async function parseRelayConfig(
  text: string | Uint8Array,
  file: string,
  env: { hostname?: string } = {},
): Promise<RelayConfig> {
  const conf = decodeEscaleConf(text, file);
  const out: RelayConfig = { folders: [], errors: [], warnings: [] };
  const ignored = new Set<string>();
  const unknown = new Set<string>();
  const commented = new Set<string>();
  if (conf.sections.length === 0) {
    throw conf.defaults.errors[0] ?? new CodecError(
      "escale.conf",
      file,
      1,
      "no [section]: one section per synchronized folder",
      [
        "Add a section such as:",
        "[docs]",
        "local path = /home/me/docs",
        "relay path = /mnt/relay/docs",
        "index = 1",
      ].join("\n"),
    );
  }
  for (const sec of conf.sections) {
    const fault = conf.defaults.errors[0] ?? sec.errors[0];
    if (fault) {
      out.errors.push({ section: sec.name, error: fault });
      continue;
    }
    try {
      const notes = { ignored, unknown, commented };
      out.folders.push(await buildFolder(conf, sec, file, env.hostname ?? hostname(), notes));
    } catch (e) {
      if (!(e instanceof HopError)) throw e;
      out.errors.push({ section: sec.name, error: e });
    }
  }
  if (ignored.size > 0) {
    out.warnings.push(
      `${file}: hop ignores ${plural(ignored.size, "option")} that change nothing of the data: ${
        [...ignored].sort().join(", ")
      }`,
    );
  }
  if (unknown.size > 0) {
    out.warnings.push(
      `${file}: ${plural(unknown.size, "option")} neither Escale nor hop knows, ignored: ${
        [...unknown].sort().join(", ")
      }`,
    );
  }
  for (const c of [...commented].sort()) {
    out.warnings.push(
      `${file}: ${c} holds a ';' or '#' after the value: Escale (and hop) read it as part of ` +
        "the value (configparser has no inline comments); put comments on their own line",
    );
  }
  return out;
}

function plural(n: number, word: string): string {
  return n === 1 ? `1 ${word}` : `${n} ${word}s`;
}

/** What a section says, read through Escale's field table. */
class SectionReader {
  constructor(
    readonly conf: EscaleConf,
    readonly sec: ConfSection,
    readonly file: string,
  ) {}

  /** A malformed value: the line, and what Escale accepts. */
  bad(p: { key: string; line: number } | string, problem: string, hint?: string): never {
    const o = typeof p === "string" ? confRaw(this.conf, this.sec, p) : p;
    const key = typeof p === "string" ? p : p.key;
    throw new CodecError(
      "escale.conf",
      this.file,
      o?.line ?? this.sec.line,
      `[${this.sec.name}] ${key}: ${problem}`,
      hint ?? `Fix "${key}" (${this.file} [${this.sec.name}]).`,
    );
  }

  /** An option Escale accepts that hop does not implement. */
  unsupported(p: { key: string; line: number }, what: string, hint?: string): never {
    throw new HopError(
      `${this.file}:${p.line}: [${this.sec.name}] ${p.key}: ${what} is not supported by hop`,
      {
        hint: hint ??
          `Remove "${p.key}" to use this section with hop, or keep this folder on Escale.`,
      },
    );
  }

  /** Escale's `parse_field`: the first alias present, its text through the getters in order. */
  async field(name: Field): Promise<Parsed | undefined> {
    const [getters, aliases] = FIELDS[name];
    for (const key of aliases) {
      const o = confRaw(this.conf, this.sec, key);
      if (!o) continue;
      const text = confGet(this.conf, this.sec, key)!;
      for (const g of getters) {
        const got = await runGetter(g, text);
        if (got.ok) return { key, line: o.line, text, got };
      }
      return { key, line: o.line, text };
    }
    return undefined;
  }

  /** A field whose getters must accept the text (else malformed, saying what is expected). */
  async typed(
    name: Field,
    expected: string,
  ): Promise<Parsed & { got: { type: Getter; value: unknown } } | undefined> {
    const f = await this.field(name);
    if (f && !f.got) this.bad(f, `${JSON.stringify(f.text)} is not ${expected}`);
    return f as Parsed & { got: { type: Getter; value: unknown } } | undefined;
  }

  /** A hop option (plain text). */
  hop(key: string): { key: string; line: number; text: string } | undefined {
    const o = confRaw(this.conf, this.sec, key);
    return o ? { key, line: o.line, text: confGet(this.conf, this.sec, key)! } : undefined;
  }
}

interface Notes {
  ignored: Set<string>;
  unknown: Set<string>;
  commented: Set<string>;
}

async function buildFolder(
  conf: EscaleConf,
  sec: ConfSection,
  file: string,
  host: string,
  notes: Notes,
): Promise<FolderConfig> {
  const r: SectionReader = new SectionReader(conf, sec, file);
  if (sec.name === "error") {
    r.bad(
      { key: "section name", line: sec.line },
      `"error" is reserved by Escale`,
      "Rename the section.",
    );
  }
  // every option: known to Escale (its table or elsewhere), to hop, or neither
  const known = new Set<string>();
  for (const [, aliases] of Object.values(FIELDS)) for (const a of aliases) known.add(a);
  for (const key of confKeys(conf, sec)) {
    const o = confRaw(conf, sec, key)!;
    if (
      /\s[;#]/.test(o.value) &&
      !["password", "secret", "credential", "passphrase", "key"].includes(key)
    ) {
      notes.commented.add(`[${sec.name}] ${key} (line ${o.line})`);
    }
    if (!known.has(key) && !ESCALE_OTHERS.has(key) && !HOP_OPTIONS.has(key)) {
      (ESCALE_GLOBALS.has(key) ? notes.ignored : notes.unknown).add(key);
    }
  }
  for (const f of NO_DATA_EFFECT) {
    const p = await r.field(f);
    if (p) notes.ignored.add(p.key);
  }
  for (const k of ["upload max wait", "priority"]) if (confRaw(conf, sec, k)) notes.ignored.add(k);

  // local folder
  const pathF = await r.field("path");
  if (!pathF || pathF.text === "") {
    r.bad({ key: "local path", line: sec.line }, `no "local path": which folder is synced?`);
  }
  const localPath = resolve(expandUser(pathF.text));

  // mode: push only / pull only win over mode
  const push = await r.typed("push_only", "yes or no");
  const pull = await r.typed("pull_only", "yes or no");
  let mode: RelayMode = DEFAULTS.mode;
  const modeF = await r.field("mode");
  if (modeF) {
    const m = modeF.text.toLowerCase();
    if (m === "download" || m === "upload") mode = m;
    else if (m.startsWith("shar")) mode = "shared";
    else if (m === "conservative" || m === "protective") mode = "conservative";
    else {
      r.bad(
        modeF,
        `"${modeF.text}" is not a mode`,
        "Use shared (share), upload, download or conservative (protective).",
      );
    }
  }
  if (push?.got.value && pull?.got.value) {
    r.bad(pull, `both ${push.key} and ${pull.key} are on: the mode cannot be decided`);
  }
  if (push?.got.value) mode = "upload";
  else if (pull?.got.value) mode = "download";

  // scheme and pages
  let scheme: FolderConfig["scheme"] = "placeholder";
  let pageDepth = 0;
  const indexF = await r.field("index");
  if (indexF) {
    if (indexF.got?.type === "bool") {
      scheme = indexF.got.value ? "index" : "placeholder";
    } else if (/^top ?dir/.test(indexF.text)) {
      scheme = "index";
      pageDepth = 1;
      const parts = indexF.text.split(":");
      if (parts.length > 1) {
        const n = pyInt(parts[1]);
        if (n === undefined || n < 1 || n > 32) {
          r.bad(indexF, `"${indexF.text}": the levels after "topdir:" must be 1 to 32`);
        }
        pageDepth = n;
      }
    } else {
      r.bad(
        indexF,
        `"${indexF.text}" is not an index setting`,
        "Use yes (one page), topdir or topdir:N.",
      );
    }
  }

  const refreshF = await r.typed("refresh", "yes or a number of seconds");
  let refreshSeconds = DEFAULTS.refreshSeconds;
  if (refreshF) {
    if (refreshF.got.type === "bool") {
      if (!refreshF.got.value) {
        r.unsupported(refreshF, "refresh = no (passes without pause)", "Give a number of seconds.");
      }
    } else {
      refreshSeconds = refreshF.got.value as number;
      if (!(refreshSeconds > 0)) {
        r.bad(refreshF, `"${refreshF.text}" is not a positive number of seconds`);
      }
    }
  }

  const tsF = await r.field("timestamp");
  if (tsF && !(tsF.got?.type === "bool" && tsF.got.value)) {
    r.unsupported(tsF, `${tsF.key} = ${tsF.text} (files without modification times)`);
  }

  const countF = await r.typed("count", "a whole number");
  const count = countF ? (countF.got.value as number) : undefined;

  const sumF = await r.field("checksum");
  let checksum = DEFAULTS.checksum;
  if (sumF && sumF.got?.type !== "bool") checksum = hashName(r, sumF);

  const maxF = await r.typed("maxpagesize", "a size in MB (a number, then an optional unit)");
  let maxPageSize = DEFAULTS.maxPageSize;
  if (maxF) maxPageSize = sizeInBytes(r, maxF);
  if (maxPageSize <= 0) r.bad(maxF!, `"${maxF!.text}" is not a positive size`);

  const lockF = await r.typed("locktimeout", "yes, no or a number of seconds");
  let lockTimeoutSeconds = DEFAULTS.lockTimeoutSeconds;
  if (lockF) {
    if (lockF.got.type === "bool") {
      lockTimeoutSeconds = lockF.got.value ? ESCALE_LOCK_TIMEOUT : Infinity;
    } else lockTimeoutSeconds = lockF.got.value as number;
    if (!(lockTimeoutSeconds > 0)) {
      r.bad(lockF, `"${lockF.text}" is not a positive number of seconds`);
    }
  }

  const quotaF = await r.typed("quota", "a size in MB (a number, then an optional unit)");
  const diskQuota = quotaF ? sizeInBytes(r, quotaF) : undefined;

  const include: PathFilter[] = [];
  const exclude: PathFilter[] = [];
  for (
    const [field, on, list] of [
      ["include", "name", include],
      ["exclude", "name", exclude],
      ["includedirectory", "dir", include],
      ["excludedirectory", "dir", exclude],
    ] as const
  ) {
    const f = await r.field(field);
    if (!f) continue;
    for (const rule of f.got!.value as string[]) {
      list.push(escaleFilter(rule, on, (p) => r.bad(f, p)));
    }
  }
  const typesF = await r.field("filetype");
  for (const ext of (typesF?.got?.value as string[] | undefined) ?? []) {
    const dotted = ext.startsWith(".") ? ext : "." + ext;
    include.push({ source: ext, on: "ext", re: new RegExp(`^${escapeRe(dotted)}$`) });
  }

  const overwrite = await r.typed("pulloverwrite", "yes or no");
  if (overwrite?.got.value) {
    r.unsupported(
      overwrite,
      "pull overwrite = yes (incoming files replace local changes unchecked)",
    );
  }
  const pageDeletion = await r.typed("allow_page_deletion", "yes or no");
  const split = await r.field("minsplitsize");
  if (split) r.unsupported(split, "splitting files into parts");

  // where the relay is, and how to log in
  const relay = await relayOf(r, conf, sec);

  // secrets given as file paths are read, as Escale reads them
  let user = (await r.field("username"))?.text;
  let password: string | undefined;
  const pwF = await r.field("password");
  if (pwF) {
    const p = resolve(expandUser(pwF.text));
    if (pwF.text !== "" && (await isFile(p))) {
      const creds = credentialsFromFile(r, pwF, await readFile(p, "utf8"), user);
      user = creds.user;
      password = creds.password;
    } else password = pwF.text;
  }
  const pwFile = r.hop("password file");
  if (pwFile) password = await readSecretFile(r, pwFile);

  // encryption
  let cipher: EscaleCipher | undefined;
  let passphrase: string | undefined;
  const encF = await r.field("encryption");
  const ppF = await r.field("passphrase");
  const ppFile = r.hop("passphrase file");
  const keyBytes = async (): Promise<Uint8Array | undefined> => {
    if (ppFile) return new TextEncoder().encode(await readSecretFile(r, ppFile));
    if (!ppF) return undefined;
    const p = resolve(expandUser(ppF.text));
    if (ppF.text !== "" && (await isFile(p))) return new Uint8Array(await readFile(p));
    return new TextEncoder().encode(ppF.text);
  };
  if (encF) {
    let name: string | undefined;
    if (encF.got?.type === "bool") name = encF.got.value ? "fernet" : undefined;
    else name = encF.text.toLowerCase();
    if (name !== undefined && name !== "plain") {
      if (name.startsWith("native")) {
        r.unsupported(encF, `encryption = ${encF.text} (encryption by the storage service)`);
      }
      const key = await keyBytes();
      if (!key || key.length === 0) {
        r.bad(
          encF,
          `encryption = ${encF.text} needs a passphrase`,
          'Add "passphrase = ..." (or a path to a file holding it).',
        );
      }
      if (name === "hop") {
        passphrase = new TextDecoder().decode(key);
      } else if (name === "fernet") {
        if (!fernetKeyOk(key)) {
          r.bad(
            ppF ?? ppFile ?? encF,
            "a Fernet passphrase must be a key: 32 bytes in URL-safe base64 (44 characters)",
            'Make one with: python3 -c "from cryptography.fernet import Fernet; ' +
              'print(Fernet.generate_key().decode())"',
          );
        }
        cipher = { name: "fernet", key };
      } else if (name === "blowfish" || name === "blowfish.cryptography") {
        if (key.length < 4 || key.length > 56) {
          r.bad(
            ppF ?? ppFile ?? encF,
            `a Blowfish passphrase must be 4 to 56 bytes, not ${key.length}`,
          );
        }
        cipher = { name: "blowfish", key };
      } else if (name === "blowfish.blowfish") {
        r.unsupported(
          encF,
          "encryption = blowfish.blowfish (Escale itself needs a library it lacks for it)",
          "Use encryption = blowfish.",
        );
      } else {
        r.bad(
          encF,
          `"${encF.text}" is not an encryption`,
          "Use yes (Fernet), fernet, blowfish, no, or hop (hop's own).",
        );
      }
    }
  }

  // compression: zstd and none only where no Escale client reads the archives
  const compF = r.hop("compression");
  let compression: Compression | undefined;
  if (compF) {
    compression = parseCompression(compF.text);
    if (compression === undefined) {
      r.bad(
        compF,
        `"${compF.text}" is not a compression`,
        "Use bzip2 (the default), zstd or none.",
      );
    }
    if (compression !== "bzip2" && scheme !== "index") {
      r.bad(
        compF,
        `compression = ${compression} needs Escale's index scheme, and this section has no ` +
          "`index` line (the placeholder scheme stores files one by one, uncompressed)",
        "Add `index = 1` on every client of this relay, or remove `compression`.",
      );
    }
    if (compression !== "bzip2" && cipher) {
      r.bad(
        compF,
        `compression = ${compression} cannot go with Escale's encryption (\`${encF!.key} = ${
          encF!.text
        }\`): Escale clients read bzip2 archives only`,
        "On a relay only hop clients use, take `encryption = hop` with it; with Escale " +
          "clients, remove `compression` (bzip2).",
      );
    }
    if (compression === "bzip2") compression = undefined;
  }

  // TLS
  const verify = await r.typed("verify_ssl", "yes or no");
  const tlsVerify = r.hop("tls verify");
  if (tlsVerify && BOOLEANS[tlsVerify.text.toLowerCase()] === undefined) {
    r.bad(tlsVerify, `"${tlsVerify.text}" is not yes or no`);
  }
  const insecureTls =
    verify?.got.value === false || BOOLEANS[tlsVerify?.text.toLowerCase() ?? ""] === false
      ? true
      : undefined;
  const tlsCaF = r.hop("tls ca");
  const tlsCa = tlsCaF ? await readSecretFile(r, tlsCaF, false) : undefined;
  const certF = await r.field("certfile");
  const keyF = await r.field("keyfile");
  if (keyF && !certF) r.bad(keyF, `${keyF.key} needs a certfile as well`);
  let tlsCert: string | undefined;
  let tlsKey: string | undefined;
  if (certF) {
    tlsCert = await readSecretFile(r, { ...certF }, false);
    tlsKey = keyF ? await readSecretFile(r, { ...keyF }, false) : tlsCert;
  }
  const sslF = await r.field("ssl_version");
  let tlsVersion: FolderConfig["tlsVersion"];
  if (sslF) {
    const v = sslF.text.toLowerCase();
    if (v === "tlsv1") tlsVersion = "TLSv1";
    else if (v === "tlsv1.1") tlsVersion = "TLSv1.1";
    else if (v === "tlsv1.2") tlsVersion = "TLSv1.2";
    else if (v !== "tls" && v !== "sslv23") {
      r.bad(
        sslF,
        `"${sslF.text}" is not an SSL version this Escale accepts`,
        "Use TLS, TLSv1, TLSv1.1 or TLSv1.2.",
      );
    }
  }

  // SFTP, S3 and rclone settings
  const sshKeyF = r.hop("ssh key");
  const sshKey = sshKeyF ? await readSecretFile(r, sshKeyF, false) : undefined;
  const hostKey = r.hop("host key")?.text;
  const rcloneBinary = r.hop("rclone binary")?.text;
  const rcloneConfigF = r.hop("rclone config");
  const rcloneConfig = rcloneConfigF ? resolve(expandUser(rcloneConfigF.text)) : undefined;

  // client name: Escale's default is the host name, or the section's when that is localhost
  const nameF = await r.field("clientname");
  const clientName = nameF?.text ?? (host && host !== "localhost" ? host : sec.name);
  if (!/^[^\s/\\]+$/.test(clientName) || /^[-.]/.test(clientName)) {
    r.bad(
      nameF ?? { key: "client name", line: sec.line },
      `"${clientName}" must be one word without slashes or leading - or .`,
    );
  }

  const expiry = r.hop("client expiry");
  let clientExpirySeconds = DEFAULTS.clientExpirySeconds;
  if (expiry) {
    const s = parseDuration(expiry.text);
    if (s === undefined || s <= 0) {
      r.bad(expiry, `"${expiry.text}" is not a duration (30d, 12h, 3600)`);
    }
    clientExpirySeconds = s;
  }

  return {
    name: sec.name,
    origin: `${file} [${sec.name}]`,
    localPath,
    relayUrl: relay.url,
    user,
    password,
    clientName,
    mode,
    scheme,
    pageDepth,
    refreshSeconds,
    pullerCount: count !== undefined && count >= 1 ? count : undefined,
    checksum,
    maxPageSize,
    lockTimeoutSeconds,
    include,
    exclude,
    clientExpirySeconds,
    diskQuota,
    cipher,
    passphrase,
    compression,
    allowPageDeletion: pageDeletion?.got.value === true ? true : undefined,
    insecureTls,
    tlsCa,
    tlsCert,
    tlsKey,
    tlsVersion,
    sshKey,
    hostKey,
    // a bare name is looked up on PATH, as Escale does
    rcloneBinary: rcloneBinary && /[/~]/.test(rcloneBinary)
      ? resolve(expandUser(rcloneBinary))
      : rcloneBinary,
    rcloneConfig,
  };
}

/** Python hashlib names to node:crypto's. */
function hashName(r: SectionReader, f: Parsed): string {
  const t = f.text.toLowerCase();
  const node = ({
    blake2b: "blake2b512",
    blake2s: "blake2s256",
    sha3_224: "sha3-224",
    sha3_256: "sha3-256",
    sha3_384: "sha3-384",
    sha3_512: "sha3-512",
    sha512_224: "sha512-224",
    sha512_256: "sha512-256",
  } as Record<string, string>)[t] ?? t;
  try {
    createHash(node).update("").digest("hex");
  } catch {
    if (/^shake_/.test(t)) {
      r.unsupported(f, `${f.key} = ${f.text} (a digest without a fixed length)`);
    }
    r.bad(
      f,
      `"${f.text}" is not a hash algorithm`,
      "Use sha512 (the default), sha256, sha1, md5, ...",
    );
  }
  return node;
}

function sizeInBytes(r: SectionReader, f: Parsed & { got: { value: unknown } }): number {
  const [num, unit] = f.got.value as [number, string];
  if (unit === "") return Math.floor(num * 1048576);
  const mb = UNIT_MB[unit];
  if (mb === undefined) {
    r.bad(
      f,
      `unit "${unit}" is not one Escale knows`,
      "Use K, M, G, T (or KB, MB, MiB, GB, ...); no unit means MB.",
    );
  }
  return Math.floor(num * mb * 1048576);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/**
 * An Escale include/exclude rule: `/regex/` (or `/regex`) is a regular
 * expression, anything else a "glob" where Escale turns `.` into `\.` and
 * `*` into `.*` (other characters keep their regex meaning). Either way it
 * must match at the start of the name (Python's `re.match`), not the end.
 */
export function escaleFilter(
  rule: string,
  on: "name" | "dir",
  bad: (problem: string) => never,
): PathFilter {
  let src: string;
  if (rule.startsWith("/")) {
    src = rule.endsWith("/") && rule.length > 1 ? rule.slice(1, -1) : rule.slice(1);
  } else src = rule.replaceAll(".", "\\.").replaceAll("*", ".*");
  // Python's named groups, in JavaScript's spelling
  const js = src.replaceAll("(?P<", "(?<").replace(/\(\?P=(\w+)\)/g, "\\k<$1>");
  try {
    return { source: rule, on, re: new RegExp(`^(?:${js})`) };
  } catch (e) {
    return bad(`rule ${JSON.stringify(rule)} is not a valid pattern: ${(e as Error).message}`);
  }
}

/** Compiles include/exclude rules given on one line, comma-separated, as Escale does. */
export function parseFilters(v: string | undefined, on: "name" | "dir" = "name"): PathFilter[] {
  if (v === undefined) return [];
  return v.split(",").map((i) => i.trim()).filter((i) => i !== "").map((rule) =>
    escaleFilter(rule, on, (p) => {
      throw new UsageError(p);
    })
  );
}

/** True when `path` (relative, `/`-separated) passes the rules, as Escale selects files. */
export function pathSelected(
  path: string,
  filters: { include: PathFilter[]; exclude: PathFilter[] },
): boolean {
  if (filters.include.length === 0 && filters.exclude.length === 0) return true;
  const slash = path.lastIndexOf("/");
  const name = path.slice(slash + 1);
  const dirs: string[] = [];
  for (let i = path.indexOf("/"); i >= 0 && i <= slash; i = path.indexOf("/", i + 1)) {
    dirs.push(path.slice(0, i));
  }
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 ? name.slice(dot) : "";
  const inc = (on: PathFilter["on"]) => filters.include.filter((f) => f.on === on);
  const exts = inc("ext");
  if (exts.length > 0 && !exts.some((f) => f.re.test(ext))) return false;
  const names = inc("name");
  if (names.length > 0 && !names.some((f) => f.re.test(name))) return false;
  for (const f of filters.exclude) if (f.on === "name" && f.re.test(name)) return false;
  const incDirs = inc("dir");
  const excDirs = filters.exclude.filter((f) => f.on === "dir");
  for (const d of dirs) {
    if (incDirs.length > 0 && !incDirs.some((f) => f.re.test(d))) return false;
    if (excDirs.some((f) => f.re.test(d))) return false;
  }
  return true;
}

/** Fernet keys: URL-safe base64 (padding optional, other characters skipped as Python does) of 32 bytes. */
export function fernetKeyBytes(key: Uint8Array): Uint8Array | undefined {
  const s = new TextDecoder().decode(key).replace(/[^A-Za-z0-9_\-+/]/g, "");
  if (s.length % 4 === 1) return undefined;
  const bytes = Uint8Array.from(
    atob(s.replaceAll("-", "+").replaceAll("_", "/").padEnd(Math.ceil(s.length / 4) * 4, "=")),
    (c) => c.charCodeAt(0),
  );
  return bytes.length === 32 ? bytes : undefined;
}

function fernetKeyOk(key: Uint8Array): boolean {
  try {
    return fernetKeyBytes(key) !== undefined;
  } catch {
    return false;
  }
}

/** Escale's credential file: one line (the password), `user:password` lines, or `user:password` alone. */
function credentialsFromFile(
  r: SectionReader,
  f: Parsed,
  text: string,
  user: string | undefined,
): { user?: string; password: string } {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) {
    r.bad(f, `${f.text} is empty`, "Put the password on the file's first line.");
  }
  if (user !== undefined) {
    if (lines.length === 1) return { user, password: lines[0] };
    const line = lines.find((l) => l.startsWith(user));
    if (line === undefined) {
      r.bad(f, `${f.text} has no line for user ${user}`, `Add a line "${user}:PASSWORD".`);
    }
    return { user, password: line.slice(user.length + 1) };
  }
  const colon = lines[0].indexOf(":");
  if (colon < 0) {
    r.bad(f, `${f.text}: without "user", its first line must be "user:password"`);
  }
  return { user: lines[0].slice(0, colon), password: lines[0].slice(colon + 1) };
}

/** A file named by a hop option (or a certificate): its text, a final newline dropped for secrets. */
async function readSecretFile(
  r: SectionReader,
  o: { key: string; line: number; text: string },
  chomp = true,
): Promise<string> {
  try {
    const t = await readFile(resolve(expandUser(o.text)), "utf8");
    return chomp ? t.replace(/\r?\n$/, "") : t;
  } catch (e) {
    return r.bad(o, `cannot read ${o.text}: ${(e as Error).message}`);
  }
}

/** Protocols Escale sends through rclone: the address names an rclone remote. */
const RCLONE_PROTOCOLS = new Set([
  "rclone",
  "sftp",
  "s3",
  "dropbox",
  "b2",
  "onedrive",
  "swift",
  "googlecloud",
  "amazoncloud",
  "hubic",
  "yandex",
]);

/** Protocols Escale knows that hop does not reach. */
const OTHER_PROTOCOLS = new Set(["ssh", "googledrive", "google", "gdrive", "yandexdisk"]);

/**
 * Escale's relay address: `address` (a URL or a path) with `directory`
 * (joined), `protocol` over the URL's scheme, `port`. FTP folders are
 * relative to the login folder (Escale drops a leading `/`). WebDAV is
 * `http`, `https`, or `webdav` (HTTPS, as Escale takes it). The protocols
 * Escale sends through rclone name an rclone remote (the address's host part,
 * or the address itself; the folder is the directory), as Escale does;
 * `sftp` and `s3` reach the server with hop's own drivers instead when the
 * section gives their hop options (`ssh key` or `host key`; `endpoint` or
 * `region`).
 */
async function relayOf(
  r: SectionReader,
  conf: EscaleConf,
  sec: ConfSection,
): Promise<{ url: string }> {
  const addrF = await r.field("address");
  const dirF = await r.field("directory");
  const portF = await r.field("port");
  const protoRaw = confRaw(conf, sec, "protocol");
  let address = addrF?.text;
  let directory = dirF?.text;
  if (address === undefined && directory !== undefined && isAbsolute(expandUser(directory))) {
    address = directory;
    directory = undefined;
  }
  if (address === undefined) {
    return r.bad(
      { key: "relay path", line: sec.line },
      `no relay: give "relay path" (a folder) or "host address" (ftp://host/dir)`,
    );
  }
  // Escale's parse_address
  let scheme: string | undefined;
  let host: string | undefined;
  let urlPort: string | undefined;
  let urlDir: string | undefined;
  let absPath: string | undefined;
  const parts = address.split("://");
  if (parts.length > 2) r.bad(addrF!, `"${address}" holds "://" twice`);
  if (parts.length === 1) {
    const a = expandUser(address);
    if (isAbsolute(a)) absPath = a;
    else [host, urlPort, urlDir] = splitHost(a);
  } else {
    scheme = parts[0];
    const a = expandUser(parts[1]);
    if (isAbsolute(a)) absPath = a;
    else [host, urlPort, urlDir] = splitHost(a);
  }
  // Escale wants `protocol = file` with a bare folder; hop takes the folder as meant
  const protocol = protoRaw
    ? confGet(conf, sec, "protocol")!
    : scheme ?? (absPath ? "file" : undefined);
  if (!protocol) {
    return r.bad(
      addrF ?? dirF!,
      `no protocol: write "protocol = ftp" (or file, ftps) or a URL such as ftp://${address}`,
    );
  }
  const where = protoRaw ? { key: "protocol", line: protoRaw.line } : addrF!;
  if (OTHER_PROTOCOLS.has(protocol)) {
    r.unsupported(
      where,
      `protocol ${protocol}`,
      protocol === "ssh"
        ? "Use protocol = sftp (hop's SFTP with `ssh key` or `host key`, or an rclone remote)."
        : "Use protocol = rclone with an rclone remote of that service (rclone config).",
    );
  }
  const joined = [directory, urlDir].filter((d): d is string => d !== undefined && d !== "");
  const native = (protocol === "sftp" && (r.hop("ssh key") || r.hop("host key"))) ||
    (protocol === "s3" && (r.hop("endpoint") || r.hop("region")));
  if (RCLONE_PROTOCOLS.has(protocol) && !native) {
    const remote = host ?? absPath;
    if (!remote) {
      return r.bad(
        addrF ?? dirF!,
        `protocol ${protocol} needs the rclone remote's name as address`,
      );
    }
    const rest = joined.join("/");
    return { url: `rclone:${remote}:${rest}` };
  }
  if (protocol === "file" || protocol === "local") {
    const base = absPath;
    if (base === undefined) {
      return r.bad(addrF ?? dirF!, `a file relay needs an absolute folder, not "${address}"`);
    }
    const rest = joined.join("/").replace(/^\/+/, "");
    return { url: pathToFileURL(rest ? join(base, rest) : base).href };
  }
  const KNOWN = ["ftp", "ftps", "http", "https", "webdav", "sftp", "s3"];
  if (!KNOWN.includes(protocol)) {
    r.bad(
      where,
      `protocol "${protocol}" is not one Escale knows`,
      "Use file, ftp, ftps, webdav, http, https, or rclone (or a service rclone reaches).",
    );
  }
  if (absPath !== undefined || !host) {
    r.bad(addrF ?? dirF!, `an ${protocol} relay needs a host: ${protocol}://host[:port]/folder`);
  }
  const port = urlPort ?? (portF ? portF.text : undefined);
  if (
    port !== undefined && (pyInt(port) === undefined || pyInt(port)! < 1 || pyInt(port)! > 65535)
  ) {
    r.bad(portF ?? addrF!, `"${port}" is not a port number`);
  }
  const scheme2 = protocol === "webdav" ? "https" : protocol;
  let url: URL;
  try {
    url = new URL(`${scheme2}://${host}`);
  } catch {
    return r.bad(addrF!, `"${host}" is not a host name`);
  }
  if (port !== undefined) url.port = String(pyInt(port));
  const segs = joined.join("/").split("/").filter((s) => s !== "" && s !== ".");
  // an SFTP folder is taken from the login folder unless it is absolute
  const fromHome = protocol === "sftp" && !joined.join("/").startsWith("/");
  url.pathname = (fromHome ? "/~/" : "/") + segs.map((s) => encodeURIComponent(s)).join("/");
  if (protocol === "s3") {
    const ep = r.hop("endpoint");
    const rg = r.hop("region");
    if (ep) url.searchParams.set("endpoint", ep.text);
    if (rg) url.searchParams.set("region", rg.text);
  }
  return { url: url.href };
}

/** `host[:port][/path]` as Escale splits it. */
function splitHost(a: string): [string, string | undefined, string | undefined] {
  const slash = a.indexOf("/");
  const hp = slash < 0 ? a : a.slice(0, slash);
  const path = slash < 0 ? undefined : a.slice(slash + 1);
  const c = hp.split(":");
  return c.length === 2 ? [c[0], c[1], path] : [hp, undefined, path];
}

/** Parses a duration: `30`, `30s`, `5m`, `2h`, `7d` (plain numbers are seconds). */
export function parseDuration(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?$/i.exec(v.trim());
  if (!m) return undefined;
  const mult = { s: 1, sec: 1, m: 60, min: 60, h: 3600, d: 86400 }[
    (m[2] ?? "s").toLowerCase() as "s"
  ];
  return Number(m[1]) * mult;
}

/**
 * Parses a size: a plain number is bytes; `k`, `M`, `G`, `T` (optionally
 * followed by `B` or `iB`) are powers of 1024. (Command-line sizes; the
 * configuration file's are Escale's, in MB.)
 */
export function parseSize(v: string, key = "size"): number {
  const n = parseSizeText(v);
  if (n === null) throw new UsageError(`${key}: "${v}" is not a size (200M, 1G, 50000)`);
  return n;
}

/**
 * The default client name of the one-off form: the host's name and the
 * folder's (`laptop-work`), so two folders of one host syncing through one
 * relay never share a name.
 */
export function oneOffClientName(host: string, local: string): string {
  const folder = basename(resolve(local)).replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^[-.]+/, "");
  return `${host}-${folder || "root"}`;
}

/** Options of the one-off form: `hop relay sync ./folder file:///mnt/relay`. */
export interface OneOffOptions {
  local: string;
  relay: string;
  /** SFTP: the private key's text, the host key's fingerprint. */
  sshKey?: string;
  hostKey?: string;
  /** TLS: accept any certificate (SFTP: any host key). */
  insecureTls?: boolean;
  /** rclone's configuration file. */
  rcloneConfig?: string;
  clientName?: string;
  mode?: RelayMode;
  /** How this client's update archives are compressed (default bzip2). */
  compression?: Compression;
  hostname?: string;
}

/** Builds a folder config from a local folder and a relay URL or path. */
export function oneOffConfig(o: OneOffOptions): FolderConfig {
  // any storage address (../storage/address.ts); a bad one is a usage error. A password
  // named by ?password-file= or ?password-env= (kept out of ps) is read here
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(o.relay);
  const given = isUrl ? urlSecret(o.relay).url : o.relay;
  const a = parseAddress(given);
  let relayUrl = given;
  let user: string | undefined;
  let password: string | undefined;
  if (a.kind === "folder") relayUrl = pathToFileURL(a.path).href;
  else if (isUrl && a.kind !== "rclone") {
    const url = new URL(given);
    user = url.username ? decodeURIComponent(url.username) : undefined;
    password = url.password ? decodeURIComponent(url.password) : undefined;
    url.password = ""; // kept apart: the URL shows in messages and names the state file
    relayUrl = url.href;
  }
  return {
    name: o.local,
    origin: "command line",
    localPath: isAbsolute(o.local) ? o.local : resolve(o.local),
    relayUrl,
    user,
    password,
    sshKey: o.sshKey,
    hostKey: o.hostKey,
    insecureTls: o.insecureTls,
    rcloneConfig: o.rcloneConfig,
    clientName: o.clientName ?? oneOffClientName(o.hostname ?? hostname(), o.local),
    mode: o.mode ?? DEFAULTS.mode,
    compression: o.compression === "bzip2" ? undefined : o.compression,
    scheme: "index",
    pageDepth: 0,
    refreshSeconds: DEFAULTS.refreshSeconds,
    checksum: DEFAULTS.checksum,
    maxPageSize: DEFAULTS.maxPageSize,
    lockTimeoutSeconds: DEFAULTS.lockTimeoutSeconds,
    include: [],
    exclude: [],
    clientExpirySeconds: DEFAULTS.clientExpirySeconds,
  };
}
