/**
 * Text the FTP engine sends about files: `ls -l` style LIST lines, MLSD/MLST fact
 * lines (RFC 3659 section 7), and the MDTM timestamp form. Times are UTC.
 *
 * @module
 */

import type { FtpFileInfo } from "./types.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const HALF_YEAR_MS = 182 * 24 * 3600 * 1000;

/**
 * Facts the engine can emit in MLSx lines, in order: RFC 3659's, and the owner, group
 * and permission bits as proftpd and pure-ftpd give them (`UNIX.*`), which FileZilla and
 * lftp show and keep.
 */
export const MLST_FACTS = [
  "type",
  "size",
  "modify",
  "perm",
  "unique",
  "UNIX.mode",
  "UNIX.owner",
  "UNIX.group",
] as const;

/** RFC 3659 time-val: YYYYMMDDHHMMSS in UTC. */
export function timeVal(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/** RFC 3659 time-val `YYYYMMDDHHMMSS[.sss]` (UTC) -> ms; NaN when malformed. */
export function parseTimeVal(s: string): number {
  const m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d{1,3}))?$/.exec(s);
  if (!m) return NaN;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return NaN;
  return Date.UTC(y, mo - 1, d, h, mi, se, m[7] ? Number(m[7].padEnd(3, "0")) : 0);
}

function modeString(info: FtpFileInfo): string {
  const mode = info.mode ?? (info.type === "dir" ? 0o755 : 0o644);
  let s = info.type === "dir" ? "d" : "-";
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (mode >> shift) & 7;
    s += (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") + (bits & 1 ? "x" : "-");
  }
  return s;
}

/**
 * One `ls -l` style line (no line end).
 *
 * @example listLine({ name: "a", type: "file", size: 3, mtime: 0, owner: "joe" }, 0)
 * // "-rw-r--r-- 1 joe      joe             3 Jan 01 00:00 a"
 */
export function listLine(info: FtpFileInfo, now: number): string {
  const date = dateColumn(info.mtime, Math.abs(now - info.mtime) < HALF_YEAR_MS);
  return `${modeString(info)} 1 ${ownerColumns(info)} ${
    String(info.size).padStart(12)
  } ${date} ${info.name}`;
}

/** Widest time value a `Date` holds (ms either side of the epoch). */
const MAX_DATE_MS = 8.64e15;

/** Bytes a LIST chunk of {@linkcode listChunks} holds before it is handed on. */
export const LIST_CHUNK_BYTES = 64 * 1024;

/**
 * The LIST text of `entries` as UTF-8, in chunks of about `chunkBytes`: the bytes of
 * {@linkcode listLine} of each entry with CRLF after it, written straight into the chunks
 * (no string per line, nothing encoded twice). The mode, owner and date columns are
 * encoded once per distinct value. Lazy: a chunk is made when the one before was taken,
 * so a huge directory is never one big buffer.
 */
export function* listChunks(
  entries: readonly FtpFileInfo[],
  now: number,
  chunkBytes: number = LIST_CHUNK_BYTES,
): Generator<Uint8Array> {
  const encoder = new TextEncoder();
  const dates = new Map<number, Uint8Array>();
  const heads = new Map<string | undefined, Map<string | undefined, Map<number, Uint8Array>>>();
  let buf = new Uint8Array(chunkBytes + 1024);
  let pos = 0;
  for (let i = 0; i < entries.length; i++) {
    const info = entries[i];
    const mtime = info.mtime;
    if (!(Math.abs(mtime) <= MAX_DATE_MS)) {
      // NaN or no date: the line as listLine writes it
      const line = listLine(info, now) + "\r\n";
      if (buf.length - pos < line.length * 3) {
        if (pos > 0) yield buf.subarray(0, pos);
        buf = new Uint8Array(Math.max(chunkBytes, line.length * 3) + 1024);
        pos = 0;
      }
      pos += encoder.encodeInto(line, buf.subarray(pos)).written;
    } else {
      const recent = Math.abs(now - mtime) < HALF_YEAR_MS;
      // a Date drops the fraction of a ms toward zero, then the minute starts below
      const minute = Math.floor(Math.trunc(mtime) / 60_000);
      const dateKey = recent ? minute * 2 + 1 : minute * 2;
      let date = dates.get(dateKey);
      if (date === undefined) {
        date = encoder.encode(` ${dateColumn(minute * 60_000, recent)} `);
        dates.set(dateKey, date);
      }
      const isDir = info.type === "dir";
      // modeString reads the low nine bits only
      const modeKey = ((info.mode ?? (isDir ? 0o755 : 0o644)) & 0o777) | (isDir ? 0o1000 : 0);
      let groups = heads.get(info.owner);
      if (groups === undefined) heads.set(info.owner, groups = new Map());
      let modes = groups.get(info.group);
      if (modes === undefined) groups.set(info.group, modes = new Map());
      let head = modes.get(modeKey);
      if (head === undefined) {
        head = encoder.encode(`${modeString(info)} 1 ${ownerColumns(info)} `);
        modes.set(modeKey, head);
      }
      const size = padSize(info.size);
      const name = info.name;
      const most = head.length + size.length + date.length + name.length * 3 + 2;
      if (buf.length - pos < most) {
        if (pos > 0) yield buf.subarray(0, pos);
        buf = new Uint8Array(Math.max(chunkBytes, most) + 1024);
        pos = 0;
      }
      // short pieces: copied byte by byte (faster than a set() call each)
      for (let k = 0; k < head.length; k++) buf[pos++] = head[k];
      for (let k = 0; k < size.length; k++) buf[pos++] = size.charCodeAt(k); // ASCII
      for (let k = 0; k < date.length; k++) buf[pos++] = date[k];
      let k = 0;
      for (; k < name.length; k++) {
        const c = name.charCodeAt(k);
        if (c >= 0x80) break;
        buf[pos++] = c;
      }
      if (k < name.length) {
        pos += encoder.encodeInto(k === 0 ? name : name.slice(k), buf.subarray(pos)).written;
      }
      buf[pos++] = 13;
      buf[pos++] = 10;
    }
    if (pos >= chunkBytes) {
      yield buf.subarray(0, pos);
      buf = new Uint8Array(chunkBytes + 1024);
      pos = 0;
    }
  }
  if (pos > 0) yield buf.subarray(0, pos);
}

const SPACES = "            ";

function padSize(size: number): string {
  const s = String(size);
  return s.length >= 12 ? s : SPACES.slice(s.length) + s;
}

/** The owner and group columns of a LIST line. */
function ownerColumns(info: FtpFileInfo): string {
  const owner = (info.owner ?? "ftp").replace(/\s/g, "_");
  const group = (info.group ?? owner).replace(/\s/g, "_");
  return `${owner.padEnd(8)} ${group.padEnd(8)}`;
}

/** `Mon DD HH:MM` (recent) or `Mon DD  YYYY`. */
function dateColumn(ms: number, recent: boolean): string {
  const d = new Date(ms);
  const day = String(d.getUTCDate()).padStart(2, "0");
  const when = recent
    ? `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`
    : ` ${d.getUTCFullYear()}`;
  return `${MONTHS[d.getUTCMonth()]} ${day} ${when}`;
}

/** The RFC 3659 `perm` fact for an entry, given whether the user may write. */
export function permFact(info: FtpFileInfo, readOnly: boolean): string {
  if (info.perm !== undefined) return info.perm;
  if (info.type === "dir") return readOnly ? "el" : "elcmdfp";
  return readOnly ? "r" : "rwadf";
}

/**
 * One MLSx fact line: `fact=value;...; name` (no leading space, no line end).
 * `typeOverride` gives `cdir`/`pdir` for MLST of a directory itself.
 */
export function mlsxLine(
  info: FtpFileInfo,
  name: string,
  facts: ReadonlySet<string>,
  readOnly: boolean,
): string {
  let out = "";
  if (facts.has("type")) out += `type=${info.type === "dir" ? "dir" : "file"};`;
  if (facts.has("size")) out += `size=${info.size};`;
  if (facts.has("modify")) out += `modify=${timeVal(info.mtime)};`;
  if (facts.has("perm")) out += `perm=${permFact(info, readOnly)};`;
  if (facts.has("unique") && info.unique) out += `unique=${info.unique};`;
  if (facts.has("UNIX.mode")) out += unixModeFact(info);
  if (facts.has("UNIX.owner") && info.owner) out += `UNIX.owner=${factWord(info.owner)};`;
  if (facts.has("UNIX.group") && (info.group ?? info.owner)) {
    out += `UNIX.group=${factWord(info.group ?? info.owner!)};`;
  }
  return `${out} ${name}`;
}

/**
 * {@linkcode mlsxLine} of each entry under its own name, in order (the same text): for
 * MLSD of big directories. The facts asked for are looked up once, the `modify` time
 * is made once per distinct second, owner and group words once per distinct name.
 */
export function mlsxLines(
  entries: readonly FtpFileInfo[],
  facts: ReadonlySet<string>,
  readOnly: boolean,
): string[] {
  const type = facts.has("type");
  const size = facts.has("size");
  const modify = facts.has("modify");
  const perm = facts.has("perm");
  const unique = facts.has("unique");
  const unixMode = facts.has("UNIX.mode");
  const unixOwner = facts.has("UNIX.owner");
  const unixGroup = facts.has("UNIX.group");
  const times = new Map<number, string>();
  const words = new Map<string, string>();
  const word = (s: string) => {
    let w = words.get(s);
    if (w === undefined) words.set(s, w = factWord(s));
    return w;
  };
  const out = new Array<string>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const info = entries[i];
    const isDir = info.type === "dir";
    let line = "";
    if (type) line += isDir ? "type=dir;" : "type=file;";
    if (size) line += `size=${info.size};`;
    if (modify) {
      const ms = info.mtime;
      let t: string | undefined;
      if (Math.abs(ms) <= MAX_DATE_MS) {
        // a Date drops the fraction of a ms toward zero, then the second starts below
        const second = Math.floor(Math.trunc(ms) / 1000);
        t = times.get(second);
        if (t === undefined) times.set(second, t = timeVal(second * 1000));
      } else t = timeVal(ms);
      line += `modify=${t};`;
    }
    if (perm) line += `perm=${permFact(info, readOnly)};`;
    if (unique && info.unique) line += `unique=${info.unique};`;
    if (unixMode) line += unixModeFact(info);
    if (unixOwner && info.owner) line += `UNIX.owner=${word(info.owner)};`;
    const group = info.group ?? info.owner;
    if (unixGroup && group) line += `UNIX.group=${word(group)};`;
    out[i] = `${line} ${info.name}`;
  }
  return out;
}

function factWord(s: string): string {
  return s.replace(/[;=\s]/g, "_");
}

function unixModeFact(info: FtpFileInfo): string {
  const mode = info.mode ?? (info.type === "dir" ? 0o755 : 0o644);
  return `UNIX.mode=0${(mode & 0o7777).toString(8).padStart(3, "0")};`;
}

/**
 * The entries in the order of their names' UTF-16 code units (as `<` compares them;
 * equal names keep their order). Unique names, the usual case, are sorted as strings
 * without a comparator, several times faster than with one under Bun.
 */
export function sortByName<T extends { name: string }>(entries: readonly T[]): T[] {
  const byName = new Map<string, T>();
  for (const e of entries) byName.set(e.name, e);
  if (byName.size !== entries.length) {
    return entries.slice().sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }
  const names = [...byName.keys()].sort();
  const out = new Array<T>(names.length);
  for (let i = 0; i < names.length; i++) out[i] = byName.get(names[i])!;
  return out;
}

/** True when a name can be put on a listing line without breaking it. */
export function listableName(name: string): boolean {
  return name.length > 0 && !/[\r\n\0]/.test(name);
}
