/**
 * The relay-sync configuration: an `escale.conf`-style INI file (global lines
 * before the first section, then one section per synchronized folder), or a
 * one-off folder + relay URL from the command line. Produces one typed
 * {@linkcode FolderConfig} per section; bad values are {@linkcode CodecError}s
 * naming the file and line; options hop does not support are collected into
 * one warning.
 *
 * The file is read with Python-configparser semantics, which is what Escale
 * uses: `key = value` and `key: value`, `#`/`;` comments on their own line
 * only (a `#` inside a password stays), section names kept as written (dots
 * included), indented lines continuing the previous value. The `ini` package
 * is used for quoted values only: its own parser strips inline `#`/`;` and
 * nests dotted section names, which would change what an Escale file means.
 *
 * @example
 * ```ts
 * const { folders, warnings } = await loadRelayConfig("escale.conf");
 * for (const w of warnings) reporter.warn(w);
 * ```
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { unsafe } from "ini";
import { CodecError } from "../codec/errors.ts";
import { HopError, UsageError } from "../errors.ts";

/** How a client takes part: as in Escale. */
export type RelayMode = "shared" | "upload" | "download" | "conservative";

/** One include/exclude rule: a glob or a `/regex/`. */
export interface PathFilter {
  /** The rule as written. */
  source: string;
  /** Compiled matcher, tested against the `/`-separated relative path. */
  re: RegExp;
}

/** Everything hop needs to sync one folder through one relay. */
export interface FolderConfig {
  /** Section name (`command line` for the one-off form). */
  name: string;
  /** Where this came from, for messages: `escale.conf [docs]`. */
  origin: string;
  /** Absolute local folder. */
  localPath: string;
  /** Relay URL: `file:///abs/dir`, `ftp://host:port/dir` or `ftps://...`. */
  relayUrl: string;
  /** Login for FTP relays. */
  user?: string;
  /** Password for FTP relays (from `password` or `password file`). */
  password?: string;
  /** This client's name on the relay. */
  clientName: string;
  mode: RelayMode;
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
  /** Seconds after which a lock nobody refreshed may be taken over. */
  lockTimeoutSeconds: number;
  include: PathFilter[];
  exclude: PathFilter[];
  /** Seconds after which another client's registration is ignored. */
  clientExpirySeconds: number;
  /** Most bytes the relay may hold (`disk quota`): pushers wait rather than exceed it. */
  diskQuota?: number;
  /** Set when `encryption` is on: the relay is sealed with a key from it (hop-only relay). */
  passphrase?: string;
  /** FTPS: accept any server certificate (`tls verify = no`). */
  insecureTls?: boolean;
  /** FTPS: PEM certificate(s) to trust (`tls ca = file`). */
  tlsCa?: string;
}

/** The result of reading a configuration file. */
export interface RelayConfig {
  folders: FolderConfig[];
  /** At most one line naming every option hop does not support. */
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

interface RawValue {
  value: string;
  line: number;
}

type RawSection = Map<string, RawValue>;

/** Options read by hop (lower-case, single spaces). */
const SUPPORTED = new Set([
  "local path",
  "relay path",
  "host address",
  "relay address",
  "protocol",
  "port",
  "user",
  "username",
  "password",
  "password file",
  "client name",
  "mode",
  "index",
  "refresh",
  "puller count",
  "checksum",
  "maxpagesize",
  "lock timeout",
  "include",
  "exclude",
  "client expiry",
  "disk quota",
  "encryption",
  "passphrase",
  "passphrase file",
  "tls verify",
  "tls ca",
]);

/** Options hop recognises but does not implement yet: named in the warning. */
const NOT_YET = new Set<string>();

/**
 * Parses configparser-style text into global lines and sections, keeping
 * line numbers. Throws a CodecError on a line that is neither.
 */
export function parseIniText(
  text: string,
  source: string,
): { globals: RawSection; sections: Map<string, RawSection> } {
  const globals: RawSection = new Map();
  const sections = new Map<string, RawSection>();
  let current = globals;
  let lastKey: string | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i];
    if (/^\s*$/.test(raw) || /^\s*[#;]/.test(raw)) {
      lastKey = undefined;
      continue;
    }
    if (/^\s/.test(raw) && lastKey !== undefined) {
      const prev = current.get(lastKey)!;
      prev.value = prev.value === "" ? raw.trim() : prev.value + "\n" + raw.trim();
      continue;
    }
    const sec = /^\s*\[([^\]]*)\]\s*$/.exec(raw);
    if (sec) {
      const name = sec[1].trim();
      if (name === "") throw new CodecError("INI", source, lineNo, "empty section name");
      if (sections.has(name)) {
        throw new CodecError("INI", source, lineNo, `section [${name}] appears twice`);
      }
      current = new Map();
      sections.set(name, current);
      lastKey = undefined;
      continue;
    }
    const kv = /^\s*([^=:]+?)\s*[=:]\s*(.*)$/.exec(raw);
    if (!kv) {
      throw new CodecError("INI", source, lineNo, `expected "key = value" or "[section]"`);
    }
    const key = kv[1].toLowerCase().replace(/[\s_]+/g, " ");
    current.set(key, { value: unquote(kv[2].trim()), line: lineNo });
    lastKey = key;
  }
  return { globals, sections };
}

function unquote(v: string): string {
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) return unsafe(v);
  return v;
}

/**
 * Reads a configuration file (an existing `escale.conf` works unchanged).
 * Relative paths in it are taken from the file's directory.
 */
export async function loadRelayConfig(
  file: string,
  env: { hostname?: string } = {},
): Promise<RelayConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new HopError(`cannot read the configuration file ${file}: ${(e as Error).message}`, {
      hint: "Give an existing file with --config FILE.",
      cause: e,
    });
  }
  return await parseRelayConfig(text, file, env);
}

/** Same as {@linkcode loadRelayConfig} on text already read; `file` names it in errors. */
export async function parseRelayConfig(
  text: string,
  file: string,
  env: { hostname?: string } = {},
): Promise<RelayConfig> {
  const { globals, sections } = parseIniText(text, file);
  const unsupported = new Set<string>();
  const folders: FolderConfig[] = [];
  const baseDir = dirname(resolve(file));
  for (const key of globals.keys()) if (!SUPPORTED.has(key)) unsupported.add(key);
  if (sections.size === 0) {
    throw new CodecError(
      "INI",
      file,
      1,
      "no [section]: one section per synchronized folder",
      [
        "Add a section such as:",
        "[docs]",
        "local path = /home/me/docs",
        "relay path = /mnt/relay/docs",
      ].join("\n"),
    );
  }
  for (const [name, sec] of sections) {
    const merged: RawSection = new Map();
    for (const [k, v] of globals) if (SUPPORTED.has(k) || NOT_YET.has(k)) merged.set(k, v);
    for (const [k, v] of sec) merged.set(k, v);
    for (const k of merged.keys()) if (!SUPPORTED.has(k)) unsupported.add(k);
    folders.push(
      await buildFolder(name, merged, file, baseDir, env.hostname ?? hostname()),
    );
  }
  const warnings = unsupported.size === 0 ? [] : [
    `${file}: option${unsupported.size > 1 ? "s" : ""} not supported by hop, ignored: ${
      [...unsupported].sort().join(", ")
    }`,
  ];
  return { folders, warnings };
}

async function buildFolder(
  name: string,
  sec: RawSection,
  file: string,
  baseDir: string,
  host: string,
): Promise<FolderConfig> {
  const bad = (key: string, problem: string, hint?: string): never => {
    const v = sec.get(key);
    throw new CodecError("INI", file, v?.line ?? 1, `[${name}] ${key}: ${problem}`, hint);
  };
  const get = (key: string) => sec.get(key)?.value;
  const enc = get("encryption");
  let passphrase: string | undefined;
  if (enc !== undefined && !isFalse(enc)) {
    if (!/^(1|true|yes|on|aes|aes-gcm|aes256|gpg|symmetric)$/i.test(enc.trim())) {
      bad("encryption", `"${enc}" is not on/off`);
    }
    passphrase = get("passphrase");
    const ppFile = get("passphrase file");
    if (ppFile !== undefined) {
      try {
        passphrase = (await readFile(resolve(baseDir, expandHome(ppFile)), "utf8")).replace(
          /\r?\n$/,
          "",
        );
      } catch (e) {
        bad("passphrase file", `cannot read ${ppFile}: ${(e as Error).message}`);
      }
    }
    if (!passphrase) {
      bad("encryption", "encryption is on but there is no `passphrase` (or `passphrase file`)");
    }
  }
  const local = get("local path");
  if (!local) {
    throw new CodecError("INI", file, firstLine(sec), `[${name}] has no "local path"`);
  }
  const localPath = resolve(baseDir, expandHome(local));

  const relayUrl = relayFromSection(sec, baseDir, bad);
  let password = get("password");
  const pwFile = get("password file");
  if (pwFile !== undefined) {
    try {
      password = (await readFile(resolve(baseDir, expandHome(pwFile)), "utf8")).replace(
        /\r?\n$/,
        "",
      );
    } catch (e) {
      bad("password file", `cannot read ${pwFile}: ${(e as Error).message}`);
    }
  }
  const mode = (get("mode") ?? DEFAULTS.mode).toLowerCase();
  if (!["shared", "upload", "download", "conservative"].includes(mode)) {
    bad("mode", `"${mode}" is not one of shared, upload, download, conservative`);
  }
  const checksum = parseChecksum(get("checksum"), bad);
  let tlsCa: string | undefined;
  if (get("tls ca") !== undefined) {
    try {
      tlsCa = await readFile(resolve(baseDir, expandHome(get("tls ca")!)), "utf8");
    } catch (e) {
      bad("tls ca", `cannot read ${get("tls ca")}: ${(e as Error).message}`);
    }
  }
  const tlsVerify = get("tls verify");
  if (tlsVerify !== undefined && !isFalse(tlsVerify) && !/^(1|true|yes|on)$/i.test(tlsVerify)) {
    bad("tls verify", `"${tlsVerify}" is not yes/no`);
  }
  const cfg: FolderConfig = {
    name,
    origin: `${file} [${name}]`,
    localPath,
    relayUrl,
    user: get("user") ?? get("username"),
    password,
    clientName: get("client name") ?? host,
    mode: mode as RelayMode,
    pageDepth: parseIndex(get("index"), bad),
    refreshSeconds: parseSeconds(get("refresh"), "refresh", DEFAULTS.refreshSeconds, bad),
    pullerCount: get("puller count") === undefined
      ? undefined
      : parseCount(get("puller count")!, "puller count", bad),
    checksum,
    maxPageSize: get("maxpagesize") === undefined
      ? DEFAULTS.maxPageSize
      : parseSize(get("maxpagesize")!, "maxpagesize", bad),
    lockTimeoutSeconds: parseSeconds(
      get("lock timeout"),
      "lock timeout",
      DEFAULTS.lockTimeoutSeconds,
      bad,
    ),
    passphrase,
    insecureTls: tlsVerify !== undefined && isFalse(tlsVerify) ? true : undefined,
    tlsCa,
    diskQuota: get("disk quota") === undefined
      ? undefined
      : parseSize(get("disk quota")!, "disk quota", bad),
    include: parseFilters(get("include"), "include", bad),
    exclude: parseFilters(get("exclude"), "exclude", bad),
    clientExpirySeconds: parseSeconds(
      get("client expiry"),
      "client expiry",
      DEFAULTS.clientExpirySeconds,
      bad,
    ),
  };
  if (!/^[^\s/\\]+$/.test(cfg.clientName) || /^[-.]/.test(cfg.clientName)) {
    bad("client name", `"${cfg.clientName}" must be one word without slashes or leading - or .`);
  }
  return cfg;
}

function firstLine(sec: RawSection): number {
  let min = Infinity;
  for (const v of sec.values()) min = Math.min(min, v.line);
  return min === Infinity ? 1 : Math.max(1, min - 1);
}

function isFalse(v: string): boolean {
  return /^(0|false|no|off|none|)$/i.test(v.trim());
}

function expandHome(p: string): string {
  const home = process.env.HOME;
  if (home && (p === "~" || p.startsWith("~/"))) return home + p.slice(1);
  return p;
}

function relayFromSection(
  sec: RawSection,
  baseDir: string,
  bad: (key: string, problem: string, hint?: string) => never,
): string {
  const get = (k: string) => sec.get(k)?.value;
  const protocol = get("protocol")?.toLowerCase();
  if (protocol !== undefined && !["file", "local", "ftp", "ftps"].includes(protocol)) {
    bad("protocol", `"${protocol}" is not supported (file, ftp, ftps)`);
  }
  const hostKey = get("host address") !== undefined ? "host address" : "relay address";
  const host = get(hostKey);
  const path = get("relay path");
  const port = get("port");
  if (port !== undefined && !/^\d{1,5}$/.test(port)) bad("port", `"${port}" is not a port number`);
  if (host !== undefined && host.includes("://")) {
    let url: URL;
    try {
      url = new URL(host);
    } catch {
      return bad(hostKey, `"${host}" is not a URL`);
    }
    const scheme = url.protocol.replace(/:$/, "");
    if (!["file", "ftp", "ftps"].includes(scheme)) {
      bad(hostKey, `scheme ${scheme}:// is not supported (file, ftp, ftps)`);
    }
    if (path !== undefined && scheme !== "file") {
      url.pathname = joinUrlPath(url.pathname, path);
    }
    if (port !== undefined && url.port === "") url.port = port;
    return url.href;
  }
  if (path !== undefined && path.includes("://")) return relayFromSectionUrl(path, bad);
  const isFtp = protocol === "ftp" || protocol === "ftps" ||
    (protocol === undefined && host !== undefined);
  if (isFtp) {
    if (!host) return bad("protocol", `protocol ${protocol} needs a "host address"`);
    const scheme = protocol ?? "ftp";
    let url: URL;
    try {
      url = new URL(`${scheme}://${host}`);
    } catch {
      return bad(hostKey, `"${host}" is not a host name`);
    }
    if (port !== undefined) url.port = port;
    url.pathname = joinUrlPath("/", path ?? "/");
    return url.href;
  }
  if (path === undefined) {
    return bad("relay path", `no "relay path" or "host address": where is the relay?`);
  }
  return pathToFileURL(resolve(baseDir, expandHome(path))).href;
}

function relayFromSectionUrl(
  value: string,
  bad: (key: string, problem: string, hint?: string) => never,
): string {
  try {
    const url = new URL(value);
    if (!["file:", "ftp:", "ftps:"].includes(url.protocol)) {
      bad("relay path", `scheme ${url.protocol}// is not supported (file, ftp, ftps)`);
    }
    return url.href;
  } catch (e) {
    if (e instanceof HopError) throw e;
    return bad("relay path", `"${value}" is not a URL`);
  }
}

function joinUrlPath(a: string, b: string): string {
  const parts = [...a.split("/"), ...b.split("/")].filter((s) => s !== "");
  return "/" + parts.map((s) => encodeURIComponent(decodeURIComponent(s))).join("/");
}

function parseIndex(v: string | undefined, bad: (k: string, p: string) => never): number {
  if (v === undefined) return 0;
  const t = v.trim().toLowerCase();
  if (t === "1" || t === "true" || t === "yes" || t === "on") return 0;
  if (t === "topdir") return 1;
  const m = /^topdir:(\d+)$/.exec(t);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 32) return Number(m[1]);
  if (t === "0" || t === "false" || t === "no" || t === "off") {
    return bad("index", `index = ${v}: the pre-0.7 relay scheme is not supported`);
  }
  return bad("index", `"${v}" is not one of 1, topdir, topdir:N`);
}

function parseChecksum(v: string | undefined, bad: (k: string, p: string) => never): string {
  if (v === undefined) return DEFAULTS.checksum;
  const t = v.trim().toLowerCase().replace(/-/g, "");
  if (/^(1|true|yes|on)$/.test(t)) return DEFAULTS.checksum;
  if (isFalse(t)) return bad("checksum", "hop always checks files; use a hash name or true");
  if (["sha512", "sha384", "sha256", "sha224", "sha1", "md5"].includes(t)) return t;
  return bad("checksum", `"${v}" is not a supported hash (sha512, sha256, sha1, md5, ...)`);
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

function parseSeconds(
  v: string | undefined,
  key: string,
  def: number,
  bad: (k: string, p: string) => never,
): number {
  if (v === undefined) return def;
  const s = parseDuration(v);
  if (s === undefined || s <= 0) return bad(key, `"${v}" is not a duration (30, 30s, 5m, 2h)`);
  return s;
}

function parseCount(v: string, key: string, bad: (k: string, p: string) => never): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < 1) {
    return bad(key, `"${v}" is not a whole number >= 1`);
  }
  return Number(v);
}

/**
 * Parses a size: a plain number is bytes; `k`, `M`, `G`, `T` (optionally
 * followed by `B` or `iB`) are powers of 1024.
 */
export function parseSize(
  v: string,
  key = "size",
  bad?: (k: string, p: string) => never,
): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m || Number(m[1]) <= 0) {
    if (bad) return bad(key, `"${v}" is not a size (200M, 1G, 50000)`);
    throw new UsageError(`${key}: "${v}" is not a size (200M, 1G, 50000)`);
  }
  const exp = ["", "k", "m", "g", "t"].indexOf(m[2].toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** exp);
}

/**
 * Compiles include/exclude rules. A value between slashes is one regular
 * expression; otherwise globs separated by commas or new lines. A glob with
 * no `/` matches a file name at any depth; one with `/` matches the whole
 * relative path. `*` stays within a name, `**` crosses folders.
 */
export function parseFilters(
  v: string | undefined,
  key = "include",
  bad?: (k: string, p: string) => never,
): PathFilter[] {
  if (v === undefined || v.trim() === "") return [];
  const t = v.trim();
  const fail = (p: string): never => {
    if (bad) return bad(key, p);
    throw new UsageError(`${key}: ${p}`);
  };
  if (t.length >= 2 && t.startsWith("/") && t.endsWith("/")) {
    try {
      return [{ source: t, re: new RegExp(t.slice(1, -1)) }];
    } catch (e) {
      return fail(`bad regular expression ${t}: ${(e as Error).message}`);
    }
  }
  return t.split(/[,\n]/).map((s) => s.trim()).filter((s) => s !== "").map((g) => ({
    source: g,
    re: globToRegExp(g),
  }));
}

/** Converts a glob to an anchored RegExp on `/`-separated relative paths. */
export function globToRegExp(glob: string): RegExp {
  const anchored = glob.includes("/");
  const g = glob.replace(/^\/+/, "");
  let out = "";
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === "*") {
      if (g[i + 1] === "*") {
        i++;
        if (g[i + 1] === "/") {
          i++;
          out += "(?:.*/)?";
        } else out += ".*";
      } else out += "[^/]*";
    } else if (c === "?") out += "[^/]";
    else if (c === "[") {
      const end = g.indexOf("]", i + 2);
      if (end < 0) out += "\\[";
      else {
        let cls = g.slice(i + 1, end);
        if (cls.startsWith("!")) cls = "^" + cls.slice(1);
        out += "[" + cls.replace(/\\/g, "\\\\") + "]";
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(anchored ? `^${out}(?:/.*)?$` : `(?:^|/)${out}(?:/.*)?$`);
}

/** True when `path` (relative, `/`-separated) passes the include/exclude rules. */
export function pathSelected(
  path: string,
  filters: { include: PathFilter[]; exclude: PathFilter[] },
): boolean {
  if (filters.include.length > 0 && !filters.include.some((f) => f.re.test(path))) return false;
  return !filters.exclude.some((f) => f.re.test(path));
}

/** Options of the one-off form: `hop relay sync ./folder file:///mnt/relay`. */
export interface OneOffOptions {
  local: string;
  relay: string;
  clientName?: string;
  mode?: RelayMode;
  hostname?: string;
}

/** Builds a folder config from a local folder and a relay URL or path. */
export function oneOffConfig(o: OneOffOptions): FolderConfig {
  let relayUrl: string;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(o.relay)) {
    let url: URL;
    try {
      url = new URL(o.relay);
    } catch {
      throw new UsageError(`"${o.relay}" is not a relay URL`, "Use file:///dir or ftp://host/dir.");
    }
    if (!["file:", "ftp:", "ftps:"].includes(url.protocol)) {
      throw new UsageError(
        `relay scheme ${url.protocol}// is not supported`,
        "Use file:///dir, ftp://host[:port]/dir or ftps://host[:port]/dir.",
      );
    }
    relayUrl = url.href;
  } else {
    relayUrl = pathToFileURL(resolve(o.relay)).href;
  }
  const url = new URL(relayUrl);
  return {
    name: o.local,
    origin: "command line",
    localPath: isAbsolute(o.local) ? o.local : resolve(o.local),
    relayUrl,
    user: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    clientName: o.clientName ?? o.hostname ?? hostname(),
    mode: o.mode ?? DEFAULTS.mode,
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
