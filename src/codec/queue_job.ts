/**
 * Jobs of the cluster queue as text: one job a line, the first word its type.
 *
 * ```
 * upload <path> <uid> <size> <mtime> [node,node,...]
 * replicate <link> <size> <mtime> [node,...]
 * delete <link> [node,...]
 * ```
 *
 * - `upload`: the cluster server holds an uploaded file at `path` (its
 *   staging path, relative to the cluster root); the store worker copies it
 *   to nodes (`nodes`, or its own choice when empty) and writes the link.
 * - `replicate`: copy the data of link file `link` to more nodes (`nodes`,
 *   or up to the wanted copy count when empty).
 * - `delete`: remove the node data named by link file `link` (a link moved
 *   into `.deleted/`), on `nodes` only when given, else on every copy.
 * - `size` and `mtime` (Unix seconds) let a worker drop a stale job: the
 *   file changed (uploaded again) since the job was queued.
 *
 * Paths and node keys are opaque strings (hop uses at-rest relative paths);
 * in the line, `%`, `,`, blanks and control characters are %-encoded
 * (UTF-8 bytes), so any path fits in one field. Reading also accepts the
 * original cluster's word `store` for `upload` and `remove` for `delete`.
 *
 * @module
 */
import { CodecError, EncodeError } from "./errors.ts";
import { isNodeKey } from "./link.ts";
import { type CodecInput, parseIntStrict, splitLines, toText } from "./text.ts";

/** A job of the cluster queue. */
export type QueueJob =
  | { type: "upload"; path: string; uid: number; size: number; mtime: number; nodes: string[] }
  | { type: "replicate"; link: string; size: number; mtime: number; nodes: string[] }
  | { type: "delete"; link: string; nodes: string[] };

/** The job types. */
export type QueueJobType = QueueJob["type"];

const FORMAT = "queue job";
const ALIASES: Record<string, QueueJobType> = {
  upload: "upload",
  store: "upload",
  replicate: "replicate",
  delete: "delete",
  remove: "delete",
};
const FIELDS: Record<QueueJobType, number> = { upload: 5, replicate: 4, delete: 2 };
const HEX = "0123456789ABCDEF";
const encoder = new TextEncoder();
const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** %-encodes `%`, `,`, characters up to U+0020 and U+007F. */
export function escapeField(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c > 0x20 && c !== 0x7f && ch !== "%" && ch !== ",") {
      out += ch;
      continue;
    }
    for (const b of encoder.encode(ch)) out += "%" + HEX[b >> 4] + HEX[b & 15];
  }
  return out;
}

/** Reverses {@linkcode escapeField}; null when an escape is malformed or the field holds a raw blank. */
export function unescapeField(s: string): string | null {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x20\x7f]/.test(s)) return null;
  if (!s.includes("%")) return s;
  const parts = s.split(/(%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*)/);
  let out = "";
  for (const [i, part] of parts.entries()) {
    if (i % 2 === 0) {
      if (part.includes("%")) return null;
      out += part;
      continue;
    }
    const bytes = new Uint8Array(part.length / 3);
    for (let k = 0; k < bytes.length; k++) {
      bytes[k] = parseInt(part.slice(3 * k + 1, 3 * k + 3), 16);
    }
    try {
      out += fatal.decode(bytes);
    } catch {
      return null;
    }
  }
  return out;
}

/** Decodes one job line (`line` is its 1-based number in `source`, for errors). */
export function decodeJob(text: string, source: string, line = 1): QueueJob {
  const fail = (problem: string): never => {
    throw new CodecError(FORMAT, source, line, problem);
  };
  const f = text.split(" ");
  const type = Object.hasOwn(ALIASES, f[0])
    ? ALIASES[f[0]]
    : fail(`unknown job type ${JSON.stringify(f[0])}`);
  const want = FIELDS[type];
  if (f.length !== want && f.length !== want + 1) {
    fail(`a ${type} job has ${want} or ${want + 1} fields, got ${f.length}`);
  }
  const str = (i: number, what: string) => {
    const v = unescapeField(f[i]);
    return v === null || v === "" ? fail(`bad ${what} ${JSON.stringify(f[i])}`) : v;
  };
  const num = (i: number, what: string, signed = false) =>
    parseIntStrict(f[i], signed) ?? fail(`${what} is not a whole number: ${JSON.stringify(f[i])}`);
  const nodes = f.length === want + 1
    ? f[want].split(",").map((n) => {
      const key = unescapeField(n);
      return key !== null && isNodeKey(key) ? key : fail(`bad node ${JSON.stringify(n)}`);
    })
    : [];
  switch (type) {
    case "upload":
      return {
        type,
        path: str(1, "path"),
        uid: num(2, "uid"),
        size: num(3, "size"),
        mtime: num(4, "mtime", true),
        nodes,
      };
    case "replicate":
      return {
        type,
        link: str(1, "link path"),
        size: num(2, "size"),
        mtime: num(3, "mtime", true),
        nodes,
      };
    case "delete":
      return { type, link: str(1, "link path"), nodes };
  }
}

/** Encodes one job as a line (no `\n`). Throws {@linkcode EncodeError} on values a line cannot hold. */
export function encodeJob(job: QueueJob): string {
  const bad = (problem: string): never => {
    throw new EncodeError(FORMAT, problem);
  };
  const str = (s: string, what: string) =>
    s !== "" && s.isWellFormed() ? escapeField(s) : bad(`bad ${what} ${JSON.stringify(s)}`);
  const num = (n: number, what: string, signed = false) =>
    Number.isSafeInteger(n) && (signed || n >= 0)
      ? String(n)
      : bad(`${what} ${n} is not a whole number`);
  let fields: string[];
  switch (job.type) {
    case "upload":
      fields = [
        str(job.path, "path"),
        num(job.uid, "uid"),
        num(job.size, "size"),
        num(job.mtime, "mtime", true),
      ];
      break;
    case "replicate":
      fields = [str(job.link, "link path"), num(job.size, "size"), num(job.mtime, "mtime", true)];
      break;
    case "delete":
      fields = [str(job.link, "link path")];
      break;
    default:
      return bad(`unknown job type ${JSON.stringify((job as { type: unknown }).type)}`);
  }
  if (job.nodes.length > 0) {
    fields.push(
      job.nodes.map((n) => isNodeKey(n) ? escapeField(n) : bad(`bad node ${JSON.stringify(n)}`))
        .join(","),
    );
  }
  return [job.type, ...fields].join(" ");
}

/** Decodes a file of jobs, one a line; empty lines are skipped. */
export function decodeJobs(input: CodecInput, source: string): QueueJob[] {
  return splitLines(toText(input, FORMAT, source))
    .filter((l) => l.text !== "")
    .map((l) => decodeJob(l.text, source, l.line));
}

/** Encodes jobs, one a line, each ending with `\n`. */
export function encodeJobs(jobs: readonly QueueJob[]): string {
  return jobs.map((j) => encodeJob(j) + "\n").join("");
}
