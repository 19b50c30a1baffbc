/**
 * Helpers shared by the codecs: bytes to text (strict UTF-8, errors naming
 * the line), and splitting text into numbered lines.
 *
 * @module
 */
import { CodecError } from "./errors.ts";

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** What a decoder accepts: text, or bytes that must be valid UTF-8. */
export type CodecInput = string | Uint8Array;

/**
 * Returns `input` as text. Bytes must be valid UTF-8 (a byte order mark is
 * kept as a character); otherwise a {@linkcode CodecError} names the first bad line.
 */
export function toText(input: CodecInput, format: string, source: string): string {
  if (typeof input === "string") return input;
  try {
    return fatal.decode(input);
  } catch {
    let line = 1;
    let start = 0;
    for (let i = 0; i <= input.length; i++) {
      if (i === input.length || input[i] === 0x0a) {
        try {
          fatal.decode(input.subarray(start, i));
        } catch {
          break;
        }
        line++;
        start = i + 1;
      }
    }
    throw new CodecError(format, source, line, "not valid UTF-8 text");
  }
}

/** One line of a text, without its `\n`, with its 1-based number. */
export interface NumberedLine {
  text: string;
  line: number;
}

/**
 * Splits `text` into `\n`-separated lines. A final `\n` does not start an
 * extra empty line. (`"a\nb\n"` -> `a`, `b`; `"a\n\n"` -> `a`, ``.)
 */
export function splitLines(text: string): NumberedLine[] {
  if (text === "") return [];
  const parts = text.split("\n");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts.map((t, i) => ({ text: t, line: i + 1 }));
}

/** Parses a decimal integer written with ASCII digits (optional `-` when `signed`); null otherwise. */
export function parseIntStrict(s: string, signed = false): number | null {
  if (!(signed ? /^-?[0-9]+$/ : /^[0-9]+$/).test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Splits `s` into words separated by blanks; a word in double quotes may hold blanks,
 * with `\"` and `\\` inside it for a quote and a backslash (`a "b c" d` -> `a`, `b c`,
 * `d`). Returns null when a quote is not closed.
 */
export function splitWords(s: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === " " || s[i] === "\t") {
      i++;
      continue;
    }
    if (s[i] !== '"') {
      let j = i;
      while (j < s.length && s[j] !== " " && s[j] !== "\t") j++;
      out.push(s.slice(i, j));
      i = j;
      continue;
    }
    let word = "";
    i++;
    for (;;) {
      if (i >= s.length) return null;
      const c = s[i++];
      if (c === '"') break;
      if (c === "\\" && (s[i] === '"' || s[i] === "\\")) word += s[i++];
      else word += c;
    }
    out.push(word);
  }
  return out;
}

/**
 * Parses a size: a plain number is bytes; `k`, `M`, `G`, `T` (optionally followed by `B`
 * or `iB`) are powers of 1024 (`200M`, `1.5G`). Null when `v` is not a positive size.
 */
export function parseSizeText(v: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m || Number(m[1]) <= 0) return null;
  const exp = ["", "k", "m", "g", "t"].indexOf(m[2].toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** exp);
}
