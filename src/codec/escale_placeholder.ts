/**
 * Escale's default relay scheme (no `index` line, Escale's "placeholder"
 * scheme) as text and names. The relay mirrors the folder tree: a file
 * `dir/name` travels as `dir/name` (its content, removed once pulled),
 * beside it `dir/.name.placeholder` (its metadata, kept forever) and, during
 * a transfer, `dir/.name.lock` (a lock in `lock.ts`'s form).
 *
 * A placeholder holds one metadata block as in the index scheme, without its
 * final newline, then `\n<client>` for each client that pulled that version:
 *
 * ```
 * placeholder%1.0
 * pusher: alice
 * timestamp: 1577934245
 * checksum: 6192...(128 hex)
 * ---pullers---
 * bob
 * ```
 *
 * Escale's older forms are read with Escale's meaning (its `relay/info.py`
 * `parse_metadata`) and written back as they were: a client with `checksum =
 * no` writes no `checksum` line; before 0.5 a placeholder was a bare UTC time
 * `%y%m%d_%H%M%S` (years 1969 to 2068), then one puller a line, with no
 * pusher and no checksum (`escalectl recover`'s "old format").
 *
 * Pure: text in, values out, and back, byte for byte for what Escale 0.7.13
 * writes.
 *
 * @module
 */
import { decodeMeta, encodeMeta, type EntryMeta, PULLERS_LINE } from "./escale_index.ts";
import { CodecError, EncodeError } from "./errors.ts";
import { type CodecInput, toText } from "./text.ts";

const FORMAT = "Escale placeholder";

/** A file's placeholder: the metadata of the version last pushed, and who pulled it. */
export interface Placeholder {
  meta: EntryMeta;
  /** Clients that pulled this version, in order (empty names dropped). */
  pullers: string[];
  /**
   * One of Escale's older forms (absent for the usual one): `no-checksum`,
   * written with `checksum = no` (`meta.checksum` is `""`); `pre-0.5`, a bare
   * time (`meta.placeholder`, `meta.pusher` and `meta.checksum` are `""`).
   * Such a version is known by its mtime alone, as Escale knows it.
   */
  form?: "no-checksum" | "pre-0.5";
}

/** `%y%m%d_%H%M%S`, Escale's former timestamp format (UTC). */
const FORMER = /^(\d\d)(\d\d)(\d\d)_(\d\d)(\d\d)(\d\d)$/;

/** Whole Unix seconds of a former-format time, or null when it is not one. */
function decodeFormerTime(text: string): number | null {
  const m = FORMER.exec(text);
  if (!m) return null;
  const [yy, mo, d, h, mi, sec] = m.slice(1).map(Number);
  // Python's %y: 69-99 are 1969-1999, 00-68 are 2000-2068
  const year = yy >= 69 ? 1900 + yy : 2000 + yy;
  const t = new Date(Date.UTC(year, mo - 1, d, h, mi, sec));
  const same = t.getUTCFullYear() === year && t.getUTCMonth() === mo - 1 &&
    t.getUTCDate() === d && t.getUTCHours() === h && t.getUTCMinutes() === mi &&
    t.getUTCSeconds() === sec;
  return same ? t.getTime() / 1000 : null;
}

function encodeFormerTime(seconds: number): string {
  const t = new Date(seconds * 1000);
  const year = t.getUTCFullYear();
  if (!Number.isSafeInteger(seconds) || year < 1969 || year > 2068) {
    throw new EncodeError(FORMAT, `time ${seconds} is outside what %y%m%d_%H%M%S can hold`);
  }
  const two = (n: number) => String(n).padStart(2, "0");
  return two(year % 100) + two(t.getUTCMonth() + 1) + two(t.getUTCDate()) + "_" +
    two(t.getUTCHours()) + two(t.getUTCMinutes()) + two(t.getUTCSeconds());
}

/**
 * Decodes a placeholder file, in any of Escale's forms. Throws
 * {@linkcode CodecError} (naming `source` and the line) on malformed input.
 */
export function decodePlaceholder(input: CodecInput, source: string): Placeholder {
  const text = toText(input, FORMAT, source);
  const lines = text.split("\n");
  const pullersOf = (from: number) => lines.slice(from).filter((l) => l !== "");
  if (!lines[0].includes("%")) {
    // Escale's former form (it tells them apart by the `%` of the first line)
    const timestamp = decodeFormerTime(lines[0]);
    if (timestamp === null) {
      throw new CodecError(
        FORMAT,
        source,
        1,
        `expected 'placeholder%<version>' or a time '%y%m%d_%H%M%S', got ${
          JSON.stringify(lines[0])
        }`,
      );
    }
    const meta = { placeholder: "", pusher: "", timestamp, checksum: "", extra: [] };
    return { meta, pullers: pullersOf(1), form: "pre-0.5" };
  }
  if (!lines[0].startsWith("placeholder%")) {
    throw new CodecError(FORMAT, source, 1, "it does not start with 'placeholder%'");
  }
  const end = lines.indexOf(PULLERS_LINE);
  if (end < 0) {
    throw new CodecError(FORMAT, source, lines.length, `no ${PULLERS_LINE} line`);
  }
  const block = lines.slice(0, end + 1).join("\n") + "\n";
  const meta = decodeMeta(block, FORMAT, source, { checksumOptional: true });
  const p: Placeholder = { meta, pullers: pullersOf(end + 1) };
  if (!lines.slice(1, end).some((l) => l.startsWith("checksum: "))) p.form = "no-checksum";
  return p;
}

/**
 * Encodes a placeholder as Escale writes it: the metadata block without its
 * final newline (or the bare time of the pre-0.5 form), then `\n<name>` per
 * puller. Throws {@linkcode EncodeError} for values the format cannot hold.
 */
export function encodePlaceholder(p: Placeholder): string {
  let out: string;
  if (p.form === "pre-0.5") {
    const m = p.meta;
    if (m.placeholder !== "" || m.pusher !== "" || m.checksum !== "" || m.extra.length) {
      throw new EncodeError(FORMAT, "a pre-0.5 placeholder holds a time and pullers only");
    }
    out = encodeFormerTime(m.timestamp);
  } else {
    const noChecksum = p.form === "no-checksum";
    out = encodeMeta(p.meta, FORMAT, { noChecksum }).slice(0, -1);
  }
  for (const name of p.pullers) {
    if (name === "" || /[\r\n]/.test(name)) {
      throw new EncodeError(FORMAT, `bad puller name ${JSON.stringify(name)}`);
    }
    out += "\n" + name;
  }
  return out;
}

/** What a relay file name stands for in this scheme (the last path segment). */
export type PlaceholderName =
  | { kind: "file" }
  | { kind: "placeholder" | "lock"; target: string }
  | { kind: "other" };

/**
 * Classifies a file name of a placeholder relay: `.NAME.placeholder`,
 * `.NAME.lock`, a regular file (no leading dot), or any other hidden name
 * (temporary files, other tools' files), which the scheme ignores.
 */
export function parsePlaceholderName(name: string): PlaceholderName {
  if (!name.startsWith(".")) return name === "" ? { kind: "other" } : { kind: "file" };
  for (const kind of ["placeholder", "lock"] as const) {
    const suffix = `.${kind}`;
    if (name.length > suffix.length + 1 && name.endsWith(suffix)) {
      const target = name.slice(1, -suffix.length);
      if (!target.startsWith(".")) return { kind, target };
    }
  }
  return { kind: "other" };
}

/** `.NAME.placeholder` for file name `name` (a last path segment). */
export function placeholderFileName(name: string): string {
  return `.${name}.placeholder`;
}

/** `.NAME.lock` for file name `name` (a last path segment). */
export function lockFileName(name: string): string {
  return `.${name}.lock`;
}
