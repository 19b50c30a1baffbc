/**
 * The serve lease of an FTP cluster root (`.hop/serve.lease`) as text: which
 * `hop cluster serve` holds the root, since when, and when it last renewed it.
 *
 * ```
 * hop-serve-lease 1
 * host: box
 * instance: 3f9a0c1d2e4b
 * pid: 4242
 * process-start: 1234567
 * started: 2026-11-22T19:04:33.123Z
 * renewed: 2026-11-22T19:09:03.456Z
 * ttl: 30000
 * token: 9f0c...
 * ```
 *
 * `instance` names the host boot and PID namespace the holder runs in (so a
 * reader knows whether `pid` means anything to it); `process-start` is the
 * holder's start time as the kernel counts it (clock ticks since boot), to
 * tell a reused pid from the holder, or `-` when unknown. `ttl` is how long
 * (ms) after `renewed` the lease stays live without a renewal. `token` is
 * random hex that only the holder knows. Unknown `key: value` lines are kept
 * in `extra`, in order, and written back.
 *
 * @module
 */
import { CodecError, EncodeError } from "./errors.ts";
import { type CodecInput, parseIntStrict, splitLines, toText } from "./text.ts";

/** A serve lease. */
export interface ServeLease {
  /** Host name of the holder. */
  host: string;
  /** Boot and PID namespace of the holder (lowercase hex). */
  instance: string;
  pid: number;
  /** Kernel start time of the holder process (clock ticks since boot), or null. */
  processStart: number | null;
  /** When the holder started serving (Unix ms). */
  started: number;
  /** When the holder last renewed the lease (Unix ms). */
  renewed: number;
  /** How long the lease stays live after `renewed` (ms). */
  ttl: number;
  /** Random lowercase hex only the holder knows. */
  token: string;
  /** Lines this version does not know, in order. */
  extra: [key: string, value: string][];
}

/** The first line of a lease. */
export const LEASE_HEADER = "hop-serve-lease 1";

const FORMAT = "cluster serve lease";
const KEYS = [
  "host",
  "instance",
  "pid",
  "process-start",
  "started",
  "renewed",
  "ttl",
  "token",
] as const;

/** Decodes a lease. Throws {@linkcode CodecError} on malformed input. */
export function decodeLease(input: CodecInput, source: string): ServeLease {
  const text = toText(input, FORMAT, source);
  const fail = (line: number, problem: string): never => {
    throw new CodecError(FORMAT, source, line, problem);
  };
  const lines = splitLines(text);
  if (lines.length === 0) fail(1, "empty file");
  if (lines[0].text !== LEASE_HEADER) {
    fail(1, `expected ${JSON.stringify(LEASE_HEADER)}, got ${JSON.stringify(lines[0].text)}`);
  }
  const got = new Map<string, { value: string; line: number }>();
  const extra: [string, string][] = [];
  for (const { text: l, line } of lines.slice(1)) {
    const sep = l.indexOf(": ");
    if (sep <= 0) fail(line, `expected 'key: value', got ${JSON.stringify(l)}`);
    const key = l.slice(0, sep);
    const value = l.slice(sep + 2);
    if (!(KEYS as readonly string[]).includes(key)) {
      extra.push([key, value]);
      continue;
    }
    if (got.has(key)) fail(line, `duplicate '${key}' line`);
    got.set(key, { value, line });
  }
  const need = (key: (typeof KEYS)[number]) => {
    const v = got.get(key);
    return v ?? fail(lines.length, `no '${key}' line`);
  };
  const int = (key: (typeof KEYS)[number]) => {
    const { value, line } = need(key);
    return parseIntStrict(value) ?? fail(line, `${key} is not a whole number`);
  };
  const time = (key: (typeof KEYS)[number]) => {
    const { value, line } = need(key);
    const ms = /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(value) ? Date.parse(value) : NaN;
    return Number.isFinite(ms) ? ms : fail(line, `${key} is not an ISO time in UTC`);
  };
  const hex = (key: (typeof KEYS)[number]) => {
    const { value, line } = need(key);
    return /^[0-9a-f]{4,128}$/.test(value) ? value : fail(line, `${key} is not lowercase hex`);
  };
  const host = need("host");
  if (host.value === "") fail(host.line, "empty host");
  const start = need("process-start");
  return {
    host: host.value,
    instance: hex("instance"),
    pid: int("pid"),
    processStart: start.value === "-"
      ? null
      : parseIntStrict(start.value) ?? fail(start.line, "process-start is not a whole number"),
    started: time("started"),
    renewed: time("renewed"),
    ttl: int("ttl"),
    token: hex("token"),
    extra,
  };
}

/** Encodes a lease (every line `\n`-terminated). */
export function encodeLease(lease: ServeLease): string {
  const bad = (problem: string): never => {
    throw new EncodeError(FORMAT, problem);
  };
  const whole = (n: number, what: string) =>
    Number.isSafeInteger(n) && n >= 0 ? String(n) : bad(`${what} ${n} is not a whole number`);
  const hex = (s: string, what: string) =>
    /^[0-9a-f]{4,128}$/.test(s) ? s : bad(`${what} must be lowercase hex`);
  const time = (ms: number, what: string) =>
    Number.isFinite(ms) && ms >= 0 ? new Date(ms).toISOString() : bad(`bad ${what} time`);
  if (lease.host === "" || /[\r\n]/.test(lease.host)) bad(`bad host ${JSON.stringify(lease.host)}`);
  const lines = [
    LEASE_HEADER,
    `host: ${lease.host}`,
    `instance: ${hex(lease.instance, "instance")}`,
    `pid: ${whole(lease.pid, "pid")}`,
    `process-start: ${
      lease.processStart === null ? "-" : whole(lease.processStart, "process-start")
    }`,
    `started: ${time(lease.started, "started")}`,
    `renewed: ${time(lease.renewed, "renewed")}`,
    `ttl: ${whole(lease.ttl, "ttl")}`,
    `token: ${hex(lease.token, "token")}`,
  ];
  for (const [k, v] of lease.extra) {
    if (
      k === "" || /[\r\n]/.test(k + v) || k.includes(": ") ||
      (KEYS as readonly string[]).includes(k)
    ) {
      bad(`bad extra line ${JSON.stringify(`${k}: ${v}`)}`);
    }
    lines.push(`${k}: ${v}`);
  }
  return lines.join("\n") + "\n";
}
