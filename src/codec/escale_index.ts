/**
 * Escale 0.7 index files as text: the update index (`.P.T.index`, plain) and
 * the persistent index (`.P.index`, the text inside its bzip2 envelope, which
 * this module does not handle), plus relay file names and topdir page names.
 * Pure: text in, values out, and back, byte for byte for what Escale writes.
 *
 * Layout (see shared/reference/escale-relay-format.md):
 * - an entry is a header line `<path> <N>` then exactly N characters of
 *   metadata. The header splits at its last run of whitespace. N counts
 *   Unicode code points (Python 3 `str` characters), which for the ASCII
 *   metadata Escale writes is also the byte count. N = 0: no metadata.
 * - metadata is `\n`-terminated lines: `placeholder%1.0`, then `key: value`
 *   lines (`pusher`, `timestamp`, `checksum`, any others kept in order), then
 *   `---pullers---`.
 * - an empty line or the end of the text ends the entries. An update index may
 *   then hold `---pullers---` and one puller name per line.
 * - the persistent index groups entries under `---group---` / `-----------`
 *   headers holding the lines that start with `placeholder` or `pusher`; an
 *   entry's N counts only its remaining lines.
 *
 * @example
 * ```ts
 * const idx = decodeUpdateIndex(text, ".0.1795372303.index");
 * idx.entries[0].meta?.checksum; // "6192..."
 * encodeUpdateIndex(idx) === text; // true for what Escale writes
 * ```
 *
 * @module
 */
import { CodecError, EncodeError } from "./errors.ts";
import { type CodecInput, parseIntStrict, toText } from "./text.ts";

/** Metadata of one file in an index. */
export interface EntryMeta {
  /** The whole first line, `placeholder%1.0` in Escale 0.7. */
  placeholder: string;
  /** Client name of the pusher. */
  pusher: string;
  /** File mtime in whole Unix seconds. */
  timestamp: number;
  /** Hex digest of the file (SHA-512 by default: 128 hex characters). */
  checksum: string;
  /** Other `key: value` lines, in their order. */
  extra: [key: string, value: string][];
  /**
   * Order of the `key: value` lines as read, when it is not the usual
   * `pusher, timestamp, checksum, ...extra`. Encoding follows it (keys it
   * does not name go last), so unusual layouts survive a round trip.
   * Absent in the usual case.
   */
  layout?: string[];
}

/** One file of an index. `meta` is null when the entry has no metadata (N = 0). */
export interface IndexEntry {
  /** Relative path, `/`-separated, as written in the index. */
  path: string;
  meta: EntryMeta | null;
}

/** An update index: its entries and the clients that consumed the update. */
export interface UpdateIndex {
  entries: IndexEntry[];
  pullers: string[];
}

/** The line that ends metadata and starts the pullers of an update index. */
export const PULLERS_LINE = "---pullers---";
/** Starts a group header in a persistent index. */
export const GROUP_START = "---group---";
/** Ends a group header in a persistent index. */
export const GROUP_END = "-----------";
/** The placeholder line Escale 0.7 writes. */
export const PLACEHOLDER = "placeholder%1.0";

const UPDATE = "Escale update index";
const PERSISTENT = "Escale persistent index";
const KNOWN = ["pusher", "timestamp", "checksum"] as const;
const HEADER = /^(.*\S)\s+([0-9]+)$/;

// ---------------------------------------------------------------- reading

class Cursor {
  pos = 0;
  line = 1;
  /**
   * The strings read last for the metadata fields that entries repeat, by field number
   * (see {@linkcode shared}): an equal one is reused, so 100,000 entries hold one copy.
   */
  #recent: string[] = [];
  /** The extra list of the entry before (see {@linkcode sharedExtra}). */
  #extra: [string, string][] = [];

  constructor(readonly text: string, readonly format: string, readonly source: string) {}

  /**
   * `text[from, to)` as a string; the one read last for `field` when equal. Fields: 0
   * placeholder, 1 pusher, then 2 + 2i and 3 + 2i the key and value of extra line i.
   */
  shared(field: number, from: number, to: number): string {
    const prev = this.#recent[field];
    if (prev !== undefined && prev.length === to - from && this.text.startsWith(prev, from)) {
      return prev;
    }
    const s = this.text.slice(from, to);
    this.#recent[field] = s;
    return s;
  }

  /**
   * `extra`, or the equal list of the entry before (frozen: entries share it). Its strings
   * come from {@linkcode shared}, so equal ones are the same strings.
   */
  sharedExtra(extra: [string, string][]): [string, string][] {
    const prev = this.#extra;
    if (
      prev.length === extra.length &&
      extra.every(([k, v], i) => prev[i][0] === k && prev[i][1] === v)
    ) {
      return prev;
    }
    for (const pair of extra) Object.freeze(pair);
    this.#extra = Object.freeze(extra) as [string, string][];
    return this.#extra;
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  /** The next line without its `\n` and its number; null at the end. */
  readLine(): { text: string; line: number } | null {
    if (this.atEnd()) return null;
    const line = this.line;
    const nl = this.text.indexOf("\n", this.pos);
    const end = nl < 0 ? this.text.length : nl;
    const text = this.text.slice(this.pos, end);
    this.pos = nl < 0 ? end : end + 1;
    if (nl >= 0) this.line++;
    return { text, line };
  }

  /** The next `n` characters (code points). */
  readChars(n: number, headerLine: number): string {
    const start = this.pos;
    let pos = start;
    for (let i = 0; i < n; i++) {
      if (pos >= this.text.length) {
        this.fail(headerLine, `entry announces ${n} characters of metadata, only ${i} remain`);
      }
      const c = this.text.charCodeAt(pos);
      const d = this.text.charCodeAt(pos + 1);
      pos += c >= 0xd800 && c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff ? 2 : 1;
    }
    const chunk = this.text.slice(start, pos);
    this.pos = pos;
    for (let i = 0; i < chunk.length; i++) if (chunk.charCodeAt(i) === 10) this.line++;
    return chunk;
  }

  fail(line: number, problem: string): never {
    throw new CodecError(this.format, this.source, line, problem);
  }
}

interface Line {
  text: string;
  line: number;
}

/** Splits a metadata block into numbered lines; it must end with `\n`. */
function blockLines(cur: Cursor, block: string, firstLine: number, headerLine: number): Line[] {
  if (!block.endsWith("\n")) {
    cur.fail(headerLine, "metadata does not end with a newline (wrong character count?)");
  }
  return block.slice(0, -1).split("\n").map((text, i) => ({ text, line: firstLine + i }));
}

/** Parses metadata lines (group lines already in front). */
function parseMeta(
  cur: Cursor,
  lines: Line[],
  headerLine: number,
  checksumOptional = false,
): EntryMeta {
  const first = lines[0];
  if (!first || !first.text.startsWith("placeholder")) {
    cur.fail(first?.line ?? headerLine, "metadata must start with a placeholder line");
  }
  const last = lines[lines.length - 1];
  if (lines.length < 2 || last.text !== PULLERS_LINE) {
    cur.fail(last.line, `metadata must end with ${PULLERS_LINE}`);
  }
  const known = new Map<string, string>();
  const extra: [string, string][] = [];
  const order: string[] = [];
  for (const { text, line } of lines.slice(1, -1)) {
    const sep = text.indexOf(": ");
    if (sep <= 0) {
      if (text === PULLERS_LINE) cur.fail(line, `text after ${PULLERS_LINE} inside metadata`);
      cur.fail(line, `expected 'key: value', got ${JSON.stringify(text)}`);
    }
    const key = text.slice(0, sep);
    const value = text.slice(sep + 2);
    if ((KNOWN as readonly string[]).includes(key)) {
      if (known.has(key)) cur.fail(line, `duplicate '${key}' line`);
      known.set(key, value);
    } else {
      extra.push([key, value]);
    }
    order.push(key);
  }
  for (const key of KNOWN) {
    if (known.has(key) || (key === "checksum" && checksumOptional)) continue;
    cur.fail(headerLine, `entry metadata has no '${key}' line`);
  }
  const tsLine = lines.find((l) => l.text.startsWith("timestamp: "))!;
  const timestamp = parseIntStrict(known.get("timestamp")!, true);
  if (timestamp === null) cur.fail(tsLine.line, "timestamp is not a whole number of seconds");
  const checksum = known.get("checksum") ?? "";
  if (known.has("checksum") && !/^[0-9A-Fa-f]+$/.test(checksum)) {
    cur.fail(lines.find((l) => l.text.startsWith("checksum: "))!.line, "checksum is not hex");
  }
  const meta: EntryMeta = {
    placeholder: first.text,
    pusher: known.get("pusher")!,
    timestamp,
    checksum,
    extra,
  };
  const usual = [...KNOWN.filter((k) => known.has(k)), ...extra.map(([k]) => k)];
  if (order.some((k, i) => k !== usual[i])) meta.layout = order;
  return meta;
}

/**
 * Decodes one metadata block on its own (`placeholder%1.0`, `key: value`
 * lines, `---pullers---`, each line `\n`-ended), as Escale's per-file
 * placeholders hold it (`escale_placeholder.ts`); `format` and `source` name
 * the file in errors. With `checksumOptional`, a block without a `checksum`
 * line (written with `checksum = no`) has checksum `""`. Throws
 * {@linkcode CodecError} on malformed input.
 */
export function decodeMeta(
  block: string,
  format: string,
  source: string,
  opts: { checksumOptional?: boolean } = {},
): EntryMeta {
  const cur = new Cursor(block, format, source);
  return parseMeta(cur, blockLines(cur, block, 1, 1), 1, opts.checksumOptional);
}

/**
 * A persistent index's group header in its usual form (a placeholder line, then
 * `pusher: NAME`): the strings every entry of the group shares.
 */
interface UsualGroup {
  placeholder: string;
  pusher: string;
}

/** The usual form of a group header, or null (its entries then go the general way). */
function usualGroup(group: Line[]): UsualGroup | null {
  if (group.length !== 2) return null;
  const [p, u] = group;
  if (!p.text.startsWith("placeholder") || !u.text.startsWith("pusher: ")) return null;
  return { placeholder: p.text, pusher: u.text.slice("pusher: ".length) };
}

/** True when `s` holds a UTF-16 surrogate (a code point that counts once for two units). */
function hasSurrogate(s: string): boolean {
  return /[\ud800-\udfff]/.test(s);
}

/**
 * The end (`\n`) of the line starting at `pos`, when it ends before `end`; else -1.
 */
function lineEnd(text: string, pos: number, end: number): number {
  const nl = text.indexOf("\n", pos);
  return nl < 0 || nl >= end ? -1 : nl;
}

/**
 * Reads the metadata block of `n` characters at the cursor when it has the
 * usual form: (without `group`: the placeholder line and `pusher: NAME`, else
 * those of the group), `timestamp: T`, `checksum: HEX`, other `key: value`
 * lines, `---pullers---`, no surrogate pair (so `n` counts UTF-16 units).
 * Builds no line list, no map: an index of 100,000 entries is read with
 * little more than its entries. Returns null, the cursor untouched, for
 * anything else: the general parser then reads the block (and says what is
 * wrong with it). The value is the one the general parser gives.
 */
function usualMeta(cur: Cursor, n: number, group: UsualGroup | null): EntryMeta | null {
  const t = cur.text;
  const start = cur.pos;
  const end = start + n;
  if (end > t.length) return null;
  let pos = start;
  let placeholder: string;
  let pusher: string;
  if (group) {
    placeholder = group.placeholder;
    pusher = group.pusher;
  } else {
    let nl = lineEnd(t, pos, end);
    if (nl < 0 || !t.startsWith("placeholder", pos)) return null;
    placeholder = cur.shared(0, pos, nl);
    pos = nl + 1;
    nl = lineEnd(t, pos, end);
    if (nl < 0 || !t.startsWith("pusher: ", pos)) return null;
    pusher = cur.shared(1, pos + "pusher: ".length, nl);
    if (hasSurrogate(placeholder) || hasSurrogate(pusher)) return null;
    pos = nl + 1;
  }
  let nl = lineEnd(t, pos, end);
  if (nl < 0 || !t.startsWith("timestamp: ", pos)) return null;
  const timestamp = parseIntStrict(t.slice(pos + "timestamp: ".length, nl), true);
  if (timestamp === null) return null;
  pos = nl + 1;
  nl = lineEnd(t, pos, end);
  if (nl < 0 || !t.startsWith("checksum: ", pos)) return null;
  const checksum = t.slice(pos + "checksum: ".length, nl);
  if (!/^[0-9A-Fa-f]+$/.test(checksum)) return null;
  pos = nl + 1;
  const extra: [string, string][] = [];
  for (;;) {
    nl = lineEnd(t, pos, end);
    if (nl < 0) return null;
    if (nl - pos === PULLERS_LINE.length && t.startsWith(PULLERS_LINE, pos)) break;
    const sep = t.indexOf(": ", pos);
    if (sep <= pos || sep >= nl) return null;
    const key = cur.shared(2 + 2 * extra.length, pos, sep);
    const value = cur.shared(3 + 2 * extra.length, sep + 2, nl);
    if ((KNOWN as readonly string[]).includes(key)) return null;
    if (hasSurrogate(key) || hasSurrogate(value)) return null;
    extra.push([key, value]);
    pos = nl + 1;
  }
  if (nl + 1 !== end) return null;
  let lines = 0;
  for (let i = start; i < end; i = t.indexOf("\n", i) + 1) lines++;
  cur.pos = end;
  cur.line += lines;
  return { placeholder, pusher, timestamp, checksum, extra: cur.sharedExtra(extra) };
}

/**
 * Reads one entry whose header is `head`; `group` lines go in front of its
 * metadata (`usual`: the same group in its usual form, when it has it).
 */
function readEntry(
  cur: Cursor,
  head: Line,
  group: Line[] | null,
  usual: UsualGroup | null = null,
): IndexEntry {
  const m = HEADER.exec(head.text);
  if (!m) cur.fail(head.line, `expected '<path> <length>', got ${JSON.stringify(head.text)}`);
  const n = parseIntStrict(m[2]);
  if (n === null) cur.fail(head.line, `metadata length ${m[2]} is too large`);
  const path = m[1];
  if (n === 0) return { path, meta: null };
  if (group === null || usual !== null) {
    const meta = usualMeta(cur, n, usual);
    if (meta) return { path, meta };
  }
  const firstLine = cur.line;
  const body = blockLines(cur, cur.readChars(n, head.line), firstLine, head.line);
  return { path, meta: parseMeta(cur, group ? [...group, ...body] : body, head.line) };
}

/**
 * Decodes an update index (`.P.T.index`). Puller names are the non-empty
 * lines after `---pullers---`: empty lines (a trailing `\n`, or the phantom
 * name the reference client writes back) are not names.
 * Throws {@linkcode CodecError} (naming `source` and the line) on malformed input.
 */
export function decodeUpdateIndex(input: CodecInput, source: string): UpdateIndex {
  const cur = new Cursor(toText(input, UPDATE, source), UPDATE, source);
  const entries: IndexEntry[] = [];
  const pullers: string[] = [];
  let ended = false;
  for (let l = cur.readLine(); l !== null; l = cur.readLine()) {
    if (l.text === PULLERS_LINE) {
      for (let p = cur.readLine(); p !== null; p = cur.readLine()) {
        if (p.text !== "") pullers.push(p.text);
      }
      break;
    }
    if (ended) {
      cur.fail(l.line, `only ${PULLERS_LINE} may follow the empty line ending the entries`);
    }
    if (l.text === "") ended = true;
    else entries.push(readEntry(cur, l, null));
  }
  return { entries, pullers };
}

/** What {@link decodeUpdateHead} reads of an update index. */
export interface UpdateIndexHead {
  /** Pusher of the first entry with metadata. */
  pusher: string | undefined;
  pullers: string[];
}

/**
 * Walks an update index's entries without building them: returns the pusher (of the first
 * entry with metadata, which is decoded in full), the pullers, and the offset where the
 * pullers section (or the end) starts.
 */
function scanUpdate(cur: Cursor): UpdateIndexHead & { entriesEnd: number } {
  let pusher: string | undefined;
  let entriesEnd = cur.text.length;
  const pullers: string[] = [];
  let ended = false;
  for (let at = cur.pos, l = cur.readLine(); l !== null; at = cur.pos, l = cur.readLine()) {
    if (l.text === PULLERS_LINE) {
      entriesEnd = at;
      for (let p = cur.readLine(); p !== null; p = cur.readLine()) {
        if (p.text !== "") pullers.push(p.text);
      }
      break;
    }
    if (ended) {
      cur.fail(l.line, `only ${PULLERS_LINE} may follow the empty line ending the entries`);
    }
    if (l.text === "") {
      ended = true;
      continue;
    }
    if (pusher === undefined) {
      pusher = readEntry(cur, l, null).meta?.pusher;
      continue;
    }
    const m = HEADER.exec(l.text);
    if (!m) cur.fail(l.line, `expected '<path> <length>', got ${JSON.stringify(l.text)}`);
    const n = parseIntStrict(m[2]);
    if (n === null) cur.fail(l.line, `metadata length ${m[2]} is too large`);
    cur.readChars(n, l.line);
  }
  return { pusher, pullers, entriesEnd };
}

/**
 * Decodes only the head of an update index: its pusher and pullers, without building its
 * entries (an update of 100,000 files holds 23 MB of them). Throws
 * {@linkcode CodecError} where the entries cannot be walked.
 */
export function decodeUpdateHead(input: CodecInput, source: string): UpdateIndexHead {
  const { pusher, pullers } = scanUpdate(
    new Cursor(toText(input, UPDATE, source), UPDATE, source),
  );
  return { pusher, pullers };
}

/**
 * An update index with its pullers section replaced by `pullers` (as
 * {@linkcode encodeUpdateIndex} writes it), its entries kept character for character.
 * Throws {@linkcode CodecError} on malformed input, {@linkcode EncodeError} for a bad name.
 */
export function withUpdatePullers(input: CodecInput, pullers: string[], source: string): string {
  const text = toText(input, UPDATE, source);
  const { entriesEnd } = scanUpdate(new Cursor(text, UPDATE, source));
  return text.slice(0, entriesEnd) + pullersText(pullers);
}

/**
 * Decodes the text of a persistent index (`.P.index` after bzip2): group
 * lines are put back in front of each entry's metadata. Entries come in file
 * order. Entries before the first group carry their whole metadata (this
 * module writes entries without metadata there).
 */
export function decodePersistentIndex(input: CodecInput, source: string): IndexEntry[] {
  const cur = new Cursor(toText(input, PERSISTENT, source), PERSISTENT, source);
  const entries: IndexEntry[] = [];
  let group: Line[] | null = null;
  let usual: UsualGroup | null = null;
  let ended = false;
  for (let l = cur.readLine(); l !== null; l = cur.readLine()) {
    if (ended) {
      if (l.text !== "") cur.fail(l.line, "text after the empty line ending the entries");
    } else if (l.text === "") {
      ended = true;
    } else if (l.text === GROUP_START) {
      group = [];
      for (;;) {
        const g = cur.readLine();
        if (g === null) return cur.fail(cur.line, `group header not closed by ${GROUP_END}`);
        if (g.text === GROUP_END) break;
        if (g.text === GROUP_START) cur.fail(g.line, `${GROUP_START} inside a group header`);
        group.push(g);
      }
      usual = usualGroup(group);
    } else {
      entries.push(readEntry(cur, l, group, usual));
    }
  }
  return entries;
}

// ---------------------------------------------------------------- writing
//
// An index of 100,000 entries is written field by field into UTF-8 chunks, and the usual
// entry allocates nothing on the way (no message, line, array or closure): what it would
// allocate is not collected before the whole index is written, and added up to several times
// the index's own size (23 MB for the update of 100,000 files).

function check(format: string, ok: boolean, problem: string): void {
  if (!ok) throw new EncodeError(format, problem);
}

function hasBreak(s: string): boolean {
  return /[\r\n]/.test(s);
}

/** Throws {@linkcode EncodeError} when `path` cannot head an entry (messages built only then). */
function checkPath(format: string, path: string): void {
  if (path === "" || hasBreak(path)) {
    throw new EncodeError(format, `path ${JSON.stringify(path)} is empty or holds a line break`);
  }
  if (/\s$/.test(path)) {
    throw new EncodeError(
      format,
      `path ${JSON.stringify(path)} ends with whitespace, which Escale would drop`,
    );
  }
}

/** Throws {@linkcode EncodeError} when `meta` holds a value the format cannot. */
function checkMeta(format: string, meta: EntryMeta, noChecksum = false): void {
  if (!meta.placeholder.startsWith("placeholder") || hasBreak(meta.placeholder)) {
    throw new EncodeError(format, `bad placeholder line ${JSON.stringify(meta.placeholder)}`);
  }
  if (meta.pusher === "" || hasBreak(meta.pusher)) {
    throw new EncodeError(format, `bad pusher ${JSON.stringify(meta.pusher)}`);
  }
  if (!Number.isSafeInteger(meta.timestamp)) {
    throw new EncodeError(format, `timestamp ${meta.timestamp} is not a whole number`);
  }
  if (noChecksum ? meta.checksum !== "" : !/^[0-9A-Fa-f]+$/.test(meta.checksum)) {
    throw new EncodeError(
      format,
      `checksum ${JSON.stringify(meta.checksum)} is not hex` + (noChecksum ? " nor empty" : ""),
    );
  }
  for (let i = 0; i < meta.extra.length; i++) {
    const k = meta.extra[i][0];
    const v = meta.extra[i][1];
    if (
      k === "" || k.includes(": ") || hasBreak(k) || (KNOWN as readonly string[]).includes(k)
    ) {
      throw new EncodeError(format, `bad extra key ${JSON.stringify(k)}`);
    }
    if (hasBreak(v)) throw new EncodeError(format, `value of ${k} holds a line break`);
  }
}

/** Counts code points, the unit of the header's N. */
function charCount(s: string): number {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The `key: value` pairs of `meta` in their order (layout first, then the rest). */
function keyedLines(format: string, meta: EntryMeta, noChecksum = false): [string, string][] {
  checkMeta(format, meta, noChecksum);
  const pending: [string, string][] = [
    ["pusher", meta.pusher],
    ["timestamp", String(meta.timestamp)],
  ];
  if (!noChecksum) pending.push(["checksum", meta.checksum]);
  for (const [k, v] of meta.extra) pending.push([k, v]);
  const out: [string, string][] = [];
  for (const key of meta.layout ?? []) {
    const i = pending.findIndex(([k]) => k === key);
    if (i >= 0) out.push(pending.splice(i, 1)[0]);
  }
  return [...out, ...pending];
}

/** Text written as UTF-8 into chunks of {@linkcode CHUNK_BYTES}. */
interface Utf8Writer {
  write(s: string): void;
  /** What was written, at least one chunk (empty for no text). */
  chunks(): Uint8Array[];
}

const CHUNK_BYTES = 1 << 16;
const encoder = new TextEncoder();

function utf8Writer(): Utf8Writer {
  const done: Uint8Array[] = [];
  let buf = new Uint8Array(CHUNK_BYTES);
  let at = 0;
  return {
    write(s: string): void {
      if (at + s.length * 3 > buf.length) {
        if (at > 0) done.push(buf.subarray(0, at));
        buf = new Uint8Array(Math.max(CHUNK_BYTES, s.length * 3));
        at = 0;
      }
      // ASCII byte by byte: no object per call
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          at += encoder.encodeInto(s.slice(i), buf.subarray(at)).written;
          return;
        }
        buf[at++] = c;
      }
    },
    chunks() {
      if (at > 0 || done.length === 0) done.push(buf.subarray(0, at));
      return done;
    },
  };
}

/** UTF-8 chunks as one text. */
function utf8Text(chunks: readonly Uint8Array[]): string {
  const decoder = new TextDecoder();
  let out = "";
  for (const c of chunks) out += decoder.decode(c, { stream: true });
  return out + decoder.decode();
}

const PUSHER = "\npusher: ";
const TIMESTAMP = "timestamp: ";
const CHECKSUM = "\nchecksum: ";
const SEP = ": ";

/**
 * Writes an entry: its header line `<path> <N>`, then its metadata block, with its
 * placeholder and pusher lines when `head` (update index form), else without (persistent
 * index form: its group holds them). No metadata: N = 0.
 */
function writeEntry(
  out: Utf8Writer,
  format: string,
  path: string,
  meta: EntryMeta | null,
  head: boolean,
): void {
  checkPath(format, path);
  if (meta?.layout) {
    const keyed = keyedLines(format, meta).filter(([k]) => head || k !== "pusher");
    writeLines(out, path, [
      ...(head ? [meta.placeholder] : []),
      ...keyed.map((kv) => kv.join(SEP)),
    ]);
    return;
  }
  if (!meta) {
    out.write(path);
    out.write(" 0\n");
    return;
  }
  checkMeta(format, meta);
  const time = String(meta.timestamp);
  const { extra } = meta;
  let n = TIMESTAMP.length + time.length + CHECKSUM.length + meta.checksum.length + 1 +
    PULLERS_LINE.length + 1;
  if (head) n += charCount(meta.placeholder) + PUSHER.length + charCount(meta.pusher) + 1;
  for (let i = 0; i < extra.length; i++) {
    n += charCount(extra[i][0]) + SEP.length + charCount(extra[i][1]) + 1;
  }
  out.write(path);
  out.write(" ");
  out.write(String(n));
  out.write("\n");
  if (head) {
    out.write(meta.placeholder);
    out.write(PUSHER);
    out.write(meta.pusher);
    out.write("\n");
  }
  out.write(TIMESTAMP);
  out.write(time);
  out.write(CHECKSUM);
  out.write(meta.checksum);
  out.write("\n");
  for (let i = 0; i < extra.length; i++) {
    out.write(extra[i][0]);
    out.write(SEP);
    out.write(extra[i][1]);
    out.write("\n");
  }
  out.write(PULLERS_LINE);
  out.write("\n");
}

/** Writes an entry whose metadata is `lines` then `---pullers---`, each `\n`-ended. */
function writeLines(out: Utf8Writer, path: string, lines: readonly string[]): void {
  const body = [...lines, PULLERS_LINE].map((l) => l + "\n").join("");
  out.write(`${path} ${charCount(body)}\n`);
  out.write(body);
}

/**
 * The metadata block of `meta` on its own, each line `\n`-ended (the inverse
 * of {@linkcode decodeMeta}); with `noChecksum`, without a `checksum` line
 * (`meta.checksum` must be `""`). Throws {@linkcode EncodeError} for values
 * the format cannot hold.
 */
export function encodeMeta(
  meta: EntryMeta,
  format: string,
  opts: { noChecksum?: boolean } = {},
): string {
  const keyed = keyedLines(format, meta, opts.noChecksum).map((kv) => kv.join(SEP));
  return [meta.placeholder, ...keyed, PULLERS_LINE].map((l) => l + "\n").join("");
}

/**
 * Encodes an update index: entries in their order, then, when there are
 * pullers, `---pullers---` and `\n<name>` for each (no final newline), as
 * Escale writes it. With no pullers no section is written.
 * Throws {@linkcode EncodeError} for values the format cannot hold.
 */
export function encodeUpdateIndex(idx: UpdateIndex): string {
  return utf8Text(encodeUpdateIndexBytes(idx));
}

/**
 * The text of {@linkcode encodeUpdateIndex} as UTF-8, in chunks of about 64 KB, written
 * without building the text: an update of 100,000 files is 23 MB. Throws
 * {@linkcode EncodeError} as that one does.
 *
 * @example
 * ```ts
 * const chunks = encodeUpdateIndexBytes({ entries, pullers: [] });
 * new Blob(chunks).size; // the text's length in bytes
 * ```
 */
export function encodeUpdateIndexBytes(idx: UpdateIndex): Uint8Array[] {
  const out = utf8Writer();
  for (const e of idx.entries) writeEntry(out, UPDATE, e.path, e.meta, true);
  out.write(pullersText(idx.pullers));
  return out.chunks();
}

/** The pullers section of an update index: `---pullers---` and `\n<name>` each; none when empty. */
function pullersText(pullers: readonly string[]): string {
  if (pullers.length === 0) return "";
  let out = PULLERS_LINE;
  for (const p of pullers) {
    check(UPDATE, p !== "" && !hasBreak(p), `bad puller name ${JSON.stringify(p)}`);
    out += "\n" + p;
  }
  return out;
}

/**
 * Encodes the text of a persistent index (to be bzip2-compressed by the
 * caller). Entries are grouped by (placeholder, pusher): groups in order of
 * first appearance, entries in their given order within a group, which is
 * how Escale's own output reads. Entries without metadata come first,
 * before any group. The `pusher` line moves to the group header, so a
 * `layout` placing it elsewhere is not kept (as with Escale).
 */
export function encodePersistentIndex(entries: readonly IndexEntry[]): string {
  return utf8Text(encodePersistentIndexBytes(entries));
}

/**
 * The text of {@linkcode encodePersistentIndex} as UTF-8, in chunks of about 64 KB, written
 * without building the text (a page of 100,000 files is 20 MB of it). Throws
 * {@linkcode EncodeError} as that one does.
 */
export function encodePersistentIndexBytes(entries: readonly IndexEntry[]): Uint8Array[] {
  const out = utf8Writer();
  // placeholder -> pusher -> its group; groups in order of first appearance
  const byHead = new Map<string, Map<string, IndexEntry[]>>();
  const groups: { placeholder: string; pusher: string; members: IndexEntry[] }[] = [];
  for (const e of entries) {
    if (!e.meta) {
      writeEntry(out, PERSISTENT, e.path, null, false);
      continue;
    }
    const { placeholder, pusher } = e.meta;
    let byPusher = byHead.get(placeholder);
    if (!byPusher) byHead.set(placeholder, byPusher = new Map());
    let members = byPusher.get(pusher);
    if (!members) {
      byPusher.set(pusher, members = []);
      groups.push({ placeholder, pusher, members });
    }
    members.push(e);
  }
  for (const g of groups) {
    out.write(`${GROUP_START}\n${g.placeholder}${PUSHER}${g.pusher}\n${GROUP_END}\n`);
    for (const e of g.members) writeEntry(out, PERSISTENT, e.path, e.meta, false);
  }
  return out.chunks();
}

// ---------------------------------------------------------------- names

/** What a relay file name stands for. */
export type RelayName =
  | { kind: "index"; page: string }
  | { kind: "update-index" | "update-data"; page: string; time: number }
  | { kind: "lock"; page: string };

/**
 * Classifies a relay file name: `.P.index`, `.P.T.index`, `.P.T.data`,
 * `.P.lock` (P without a dot, T an integer). Null for anything else.
 */
export function parseRelayName(name: string): RelayName | null {
  let m = /^\.([^./]+)\.(index|lock)$/.exec(name);
  if (m) return { kind: m[2] === "index" ? "index" : "lock", page: m[1] };
  m = /^\.([^./]+)\.([0-9]+)\.(index|data)$/.exec(name);
  if (!m) return null;
  const time = parseIntStrict(m[2]);
  if (time === null) return null;
  return { kind: m[3] === "index" ? "update-index" : "update-data", page: m[1], time };
}

function checkPage(page: string): void {
  check(
    "relay file name",
    /^[^./]+$/.test(page),
    `page name ${JSON.stringify(page)} is empty or holds '.' or '/'`,
  );
}

function checkTime(time: number): void {
  check(
    "relay file name",
    Number.isSafeInteger(time) && time >= 0,
    `update time ${time} is not a whole number >= 0`,
  );
}

/** `.P.index`, the persistent index of page P. */
export function indexName(page: string): string {
  checkPage(page);
  return `.${page}.index`;
}

/** `.P.T.index`, the update index of page P pushed at time T. */
export function updateIndexName(page: string, time: number): string {
  checkPage(page);
  checkTime(time);
  return `.${page}.${time}.index`;
}

/** `.P.T.data`, the update archive of page P pushed at time T. */
export function updateDataName(page: string, time: number): string {
  checkPage(page);
  checkTime(time);
  return `.${page}.${time}.data`;
}

/** `.P.lock`, the lock of page P. */
export function lockName(page: string): string {
  checkPage(page);
  return `.${page}.lock`;
}

/** The default page, and the page of files above the topdir levels. */
export const DEFAULT_PAGE = "0";

/**
 * The directory prefix that decides the page of `path` under topdir paging
 * with `levels` levels (`A/B` for `A/B/f`, levels 2), or null when the file
 * has fewer directory levels. Two prefixes mapping to one page name (`A_B`
 * vs `A/B`) collide; callers compare prefixes to detect that.
 */
export function pagePrefix(path: string, levels: number): string | null {
  if (levels < 1) return null;
  // the end of the `levels`-th directory, found without splitting (called for every file of
  // every pass: 100,000 files on a big folder)
  let end = -1;
  for (let i = 0; i < levels; i++) {
    end = path.indexOf("/", end + 1);
    if (end < 0) return null;
  }
  return path.slice(0, end);
}

/**
 * The page of `path` under topdir paging with `levels` levels: the first
 * `levels` directories joined with `_`, every `.` replaced by `_`; `0` when
 * the file has fewer levels (or `levels` is 0: single page).
 * `pageOf("A.x/B.y/C/f", 2)` -> `A_x_B_y`; `pageOf("A/f", 2)` -> `0`.
 */
export function pageOf(path: string, levels: number): string {
  const prefix = pagePrefix(path, levels);
  return prefix === null ? DEFAULT_PAGE : prefix.replaceAll("/", "_").replaceAll(".", "_");
}
