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
  const d = new Date(info.mtime);
  const day = String(d.getUTCDate()).padStart(2, "0");
  const recent = Math.abs(now - info.mtime) < HALF_YEAR_MS;
  const when = recent
    ? `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`
    : ` ${d.getUTCFullYear()}`;
  const owner = (info.owner ?? "ftp").replace(/\s/g, "_");
  const group = (info.group ?? owner).replace(/\s/g, "_");
  return `${modeString(info)} 1 ${owner.padEnd(8)} ${group.padEnd(8)} ${
    String(info.size).padStart(12)
  } ${MONTHS[d.getUTCMonth()]} ${day} ${when} ${info.name}`;
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
  if (facts.has("UNIX.mode")) {
    const mode = info.mode ?? (info.type === "dir" ? 0o755 : 0o644);
    out += `UNIX.mode=0${(mode & 0o7777).toString(8).padStart(3, "0")};`;
  }
  const word = (s: string) => s.replace(/[;=\s]/g, "_");
  if (facts.has("UNIX.owner") && info.owner) out += `UNIX.owner=${word(info.owner)};`;
  if (facts.has("UNIX.group") && (info.group ?? info.owner)) {
    out += `UNIX.group=${word(info.group ?? info.owner!)};`;
  }
  return `${out} ${name}`;
}

/** True when a name can be put on a listing line without breaking it. */
export function listableName(name: string): boolean {
  return name.length > 0 && !/[\r\n\0]/.test(name);
}
