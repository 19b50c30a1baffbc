/**
 * Escale page locks (`.P.lock`) as text. Escale writes
 * `lock%1.0\nowner: bob\nmode: r` (no final newline) and reads the `owner`
 * and `mode` lines; an older form holds just the owner's name. hop appends
 * its own lines after `mode:` (`acquired`, `host`, `pid`, `token`), which
 * Escale does not look at: they tell who holds the lock, since when, and the
 * random token lets a holder prove the lock on the relay is still its own.
 *
 * ```
 * lock%1.0
 * owner: bob
 * mode: w
 * acquired: 2026-11-22T19:04:33.123Z
 * host: box
 * pid: 4242
 * token: 9f0c...
 * ```
 *
 * `acquired` is written as an ISO 8601 UTC time; integer Unix milliseconds
 * are accepted on reading. Unknown `key: value` lines after `mode` are kept
 * in `extra`, in order.
 *
 * @module
 */
import { CodecError, EncodeError } from "./errors.ts";
import { type CodecInput, parseIntStrict, toText } from "./text.ts";

/** `w` while pushing, `r` while pulling. */
export type LockMode = "r" | "w";

/** A page lock. */
export interface Lock {
  /** Client name of the holder. */
  owner: string;
  /** Null only for the legacy one-line form, which has no mode. */
  mode: LockMode | null;
  /** When the lock was taken, Unix milliseconds (hop's line). */
  acquired?: number;
  /** Host name of the holder (hop's line). */
  host?: string;
  /** Process id of the holder (hop's line). */
  pid?: number;
  /** Random hex proving ownership (hop's line). */
  token?: string;
  /** Other `key: value` lines after `mode`, in order. */
  extra?: [key: string, value: string][];
}

/** The first line of a lock in the Escale 0.7 form. */
export const LOCK_HEADER = "lock%1.0";

const FORMAT = "Escale lock";
const OURS = ["acquired", "host", "pid", "token"] as const;

/**
 * Decodes a lock file. Throws {@linkcode CodecError} on malformed input.
 * A text not starting with `lock%` is the legacy form: one line (an optional
 * final newline is allowed), the owner's name.
 */
export function decodeLock(input: CodecInput, source: string): Lock {
  const text = toText(input, FORMAT, source);
  const fail = (line: number, problem: string): never => {
    throw new CodecError(FORMAT, source, line, problem);
  };
  const lines = text.split("\n");
  if (!lines[0].startsWith("lock%")) {
    if (lines.length === 2 && lines[1] === "") lines.pop();
    if (lines.length > 1) fail(2, "a legacy lock holds one line, the owner's name");
    if (lines[0].trim() === "") fail(1, "empty lock (no owner)");
    return { owner: lines[0], mode: null };
  }
  if (lines[0] !== LOCK_HEADER) fail(1, `unknown lock version ${JSON.stringify(lines[0])}`);
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  const fields: [string, string, number][] = [];
  lines.slice(1).forEach((l, i) => {
    const sep = l.indexOf(": ");
    if (sep <= 0) fail(i + 2, `expected 'key: value', got ${JSON.stringify(l)}`);
    fields.push([l.slice(0, sep), l.slice(sep + 2), i + 2]);
  });
  if (fields[0]?.[0] !== "owner") fail(2, "line 2 must be 'owner: <name>'");
  if (fields[1]?.[0] !== "mode") fail(3, "line 3 must be 'mode: r' or 'mode: w'");
  const owner = fields[0][1];
  if (owner === "") fail(2, "empty owner");
  const mode = fields[1][1];
  if (mode !== "r" && mode !== "w") fail(3, `mode must be r or w, got ${JSON.stringify(mode)}`);
  const lock: Lock = { owner, mode: mode as LockMode };
  const seen = new Set<string>();
  for (const [key, value, line] of fields.slice(2)) {
    if ((OURS as readonly string[]).includes(key) || key === "owner" || key === "mode") {
      if (seen.has(key)) fail(line, `duplicate '${key}' line`);
      seen.add(key);
    }
    switch (key) {
      case "acquired": {
        const ms = parseIntStrict(value) ??
          (/^\d{4}-\d\d-\d\dT/.test(value) ? Date.parse(value) : NaN);
        if (!Number.isFinite(ms)) {
          fail(line, `acquired is neither Unix ms nor an ISO time: ${JSON.stringify(value)}`);
        }
        lock.acquired = ms;
        break;
      }
      case "host":
        lock.host = value;
        break;
      case "pid": {
        const pid = parseIntStrict(value);
        if (pid === null) fail(line, `pid is not a number: ${JSON.stringify(value)}`);
        lock.pid = pid!;
        break;
      }
      case "token":
        if (!/^[0-9a-f]+$/.test(value)) fail(line, "token is not lowercase hex");
        lock.token = value;
        break;
      case "owner":
      case "mode":
        fail(line, `duplicate '${key}' line`);
        break;
      default:
        (lock.extra ??= []).push([key, value]);
    }
  }
  return lock;
}

/**
 * Encodes a lock: the Escale 0.7 form with hop's lines after `mode`, or the
 * legacy one-line form when `mode` is null (which can hold nothing else).
 * No final newline, as Escale writes it.
 */
export function encodeLock(lock: Lock): string {
  const bad = (problem: string): never => {
    throw new EncodeError(FORMAT, problem);
  };
  const clean = (s: string) => s !== "" && !/[\r\n]/.test(s) && !s.includes(": ");
  if (!clean(lock.owner) || lock.owner.trim() === "") {
    bad(`bad owner ${JSON.stringify(lock.owner)}`);
  }
  if (lock.mode === null) {
    if (lock.owner.startsWith("lock%")) bad("a legacy lock owner cannot start with 'lock%'");
    const extras = OURS.some((k) => lock[k] !== undefined) || (lock.extra?.length ?? 0) > 0;
    if (extras) bad("the legacy form (mode null) holds only the owner");
    return lock.owner;
  }
  if (lock.mode !== "r" && lock.mode !== "w") {
    bad(`mode must be r or w, got ${JSON.stringify(lock.mode)}`);
  }
  const lines = [LOCK_HEADER, `owner: ${lock.owner}`, `mode: ${lock.mode}`];
  if (lock.acquired !== undefined) {
    if (!Number.isSafeInteger(lock.acquired) || lock.acquired < 0) {
      bad(`bad acquired time ${lock.acquired}`);
    }
    lines.push(`acquired: ${new Date(lock.acquired).toISOString()}`);
  }
  if (lock.host !== undefined) {
    if (!clean(lock.host)) bad(`bad host ${JSON.stringify(lock.host)}`);
    lines.push(`host: ${lock.host}`);
  }
  if (lock.pid !== undefined) {
    if (!Number.isSafeInteger(lock.pid) || lock.pid < 0) bad(`bad pid ${lock.pid}`);
    lines.push(`pid: ${lock.pid}`);
  }
  if (lock.token !== undefined) {
    if (!/^[0-9a-f]+$/.test(lock.token)) bad("token must be lowercase hex");
    lines.push(`token: ${lock.token}`);
  }
  for (const [k, v] of lock.extra ?? []) {
    if (!clean(k) || [...OURS, "owner", "mode"].includes(k) || /[\r\n]/.test(v)) {
      bad(`bad extra line ${JSON.stringify(`${k}: ${v}`)}`);
    }
    lines.push(`${k}: ${v}`);
  }
  return lines.join("\n");
}
