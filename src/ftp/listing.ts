/**
 * Text the FTP engine sends about files: `ls -l` style LIST lines, MLSD/MLST fact
 * lines (RFC 3659 section 7), and the MDTM timestamp form. Times are UTC.
 *
 * @module
 */

import type { FtpFileInfo } from "./types.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const HALF_YEAR_MS = 182 * 24 * 3600 * 1000;

/** Facts the engine can emit in MLSx lines, in order. */
export const MLST_FACTS = ["type", "size", "modify", "perm", "unique"] as const;

/** RFC 3659 time-val: YYYYMMDDHHMMSS in UTC. */
export function timeVal(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
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
  return `${out} ${name}`;
}

/** True when a name can be put on a listing line without breaking it. */
export function listableName(name: string): boolean {
  return name.length > 0 && !/[\r\n\0]/.test(name);
}
