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
 * Pure: text in, values out, and back, byte for byte for what Escale 0.7.13
 * writes. Escale's pre-0.5 placeholders (a bare `%y%m%d_%H%M%S` time) and
 * placeholders without a checksum (`checksum = no`) are refused as malformed.
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
}

/**
 * Decodes a placeholder file. Throws {@linkcode CodecError} (naming `source`
 * and the line) on malformed input.
 */
export function decodePlaceholder(input: CodecInput, source: string): Placeholder {
  const text = toText(input, FORMAT, source);
  const lines = text.split("\n");
  const end = lines.indexOf(PULLERS_LINE);
  if (!lines[0].startsWith("placeholder%")) {
    throw new CodecError(
      FORMAT,
      source,
      1,
      "it does not start with 'placeholder%' (a pre-0.5 Escale placeholder?)",
    );
  }
  if (end < 0) {
    throw new CodecError(FORMAT, source, lines.length, `no ${PULLERS_LINE} line`);
  }
  const meta = decodeMeta(lines.slice(0, end + 1).join("\n") + "\n", FORMAT, source);
  return { meta, pullers: lines.slice(end + 1).filter((l) => l !== "") };
}

/**
 * Encodes a placeholder as Escale writes it: the metadata block without its
 * final newline, then `\n<name>` per puller. Throws {@linkcode EncodeError}
 * for values the format cannot hold.
 */
export function encodePlaceholder(p: Placeholder): string {
  let out = encodeMeta(p.meta, FORMAT).slice(0, -1);
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
