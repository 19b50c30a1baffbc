/**
 * File name policy of the FTP cluster and the %-encoding of names at rest.
 *
 * Policies (what a client may create):
 * - `strict`: ASCII letters, digits, `-`, `+`, `_`, `.` (the original default);
 * - `blanks`: the same plus the space (the original `-b`);
 * - `any`: any character except `/` and NUL (the original `-bb`).
 *
 * At rest (on the cluster server's disk, in link files), every character
 * outside the `strict` set is %-encoded as the uppercase hex of its UTF-8
 * bytes: `New Folder` -> `New%20Folder`, `%` -> `%25`, `#` -> `%23` (so no
 * stored name ends in `#`, the link file suffix), `é` -> `%C3%A9`.
 * Decoding never fails: names stored under a looser policy, or written by
 * hand (a stray `%`), stay readable and deletable.
 *
 * @example
 * ```ts
 * checkName("New Folder", "strict"); // "character ' ' is not allowed ..."
 * checkName("New Folder", "blanks"); // null (allowed)
 * encodeName("New Folder");          // "New%20Folder"
 * decodeName("New%20Folder");        // "New Folder"
 * ```
 *
 * @module
 */

/** Which names clients may create. */
export type NamePolicy = "strict" | "blanks" | "any";

/** All policies, loosest last. */
export const NAME_POLICIES: readonly NamePolicy[] = ["strict", "blanks", "any"];

/** Longest stored name in bytes, the `#` suffix of link files included (common file systems: 255). */
export const MAX_STORED_NAME_BYTES = 255;

const SAFE = /^[A-Za-z0-9\-+_.]$/;
const HEX = "0123456789ABCDEF";
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Checks a client-given name (one path segment, decoded form) against a policy.
 * Returns null when the name is acceptable, else the reason, to be sent with
 * `503 incompatible filename`.
 */
export function checkName(name: string, policy: NamePolicy): string | null {
  if (name === "") return "empty name";
  if (name === "." || name === "..") return `'${name}' is not a file name`;
  if (!name.isWellFormed()) return "name is not valid Unicode";
  for (const ch of name) {
    if (ch === "/") return "names cannot contain '/'";
    if (ch === "\0") return "names cannot contain NUL";
    if (policy === "any" || SAFE.test(ch) || (policy === "blanks" && ch === " ")) continue;
    const shown = ch < " " || ch === "\x7f"
      ? `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`
      : `'${ch}'`;
    const allowed = policy === "strict"
      ? "letters, digits, - + _ . only"
      : "letters, digits, space, - + _ . only";
    return `character ${shown} is not allowed (filename policy ${policy}: ${allowed})`;
  }
  if (nameTooLong(name)) {
    return `name too long (${
      storedNameBytes(name)
    } bytes stored, at most ${MAX_STORED_NAME_BYTES})`;
  }
  return null;
}

/** Bytes the stored form of `name` takes, with the `#` of its link file. */
export function storedNameBytes(name: string): number {
  return encoder.encode(encodeName(name)).length + 1;
}

/** True when the stored form of `name` is longer than {@linkcode MAX_STORED_NAME_BYTES}. */
export function nameTooLong(name: string): boolean {
  return storedNameBytes(name) > MAX_STORED_NAME_BYTES;
}

/** True when `name` passes {@linkcode checkName} under `policy`. */
export function isNameAllowed(name: string, policy: NamePolicy): boolean {
  return checkName(name, policy) === null;
}

/**
 * The at-rest form of a name: every character outside `A-Z a-z 0-9 - + _ .`
 * becomes `%XX` per UTF-8 byte. Total (never throws); lone surrogates, which
 * {@linkcode checkName} refuses, are encoded as U+FFFD.
 */
export function encodeName(name: string): string {
  let out = "";
  for (const ch of name) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const b of encoder.encode(ch)) out += "%" + HEX[b >> 4] + HEX[b & 15];
  }
  return out;
}

/**
 * The name a stored name stands for: `%XX` sequences are decoded as UTF-8.
 * Lenient by design: a `%` not followed by two hex digits, or escapes that do
 * not form valid UTF-8, are kept literally.
 */
export function decodeName(stored: string): string {
  if (!stored.includes("%")) return stored;
  let out = "";
  let i = 0;
  while (i < stored.length) {
    if (stored[i] !== "%" || !isHexPair(stored, i + 1)) {
      out += stored[i++];
      continue;
    }
    const start = i;
    const bytes: number[] = [];
    while (stored[i] === "%" && isHexPair(stored, i + 1)) {
      bytes.push(parseInt(stored.slice(i + 1, i + 3), 16));
      i += 3;
    }
    try {
      out += strictDecoder.decode(new Uint8Array(bytes));
    } catch {
      out += stored.slice(start, i);
    }
  }
  return out;
}

/** Encodes each segment of a `/`-separated relative path with {@linkcode encodeName}. */
export function encodePath(path: string): string {
  return path.split("/").map(encodeName).join("/");
}

/** Decodes each segment of a stored `/`-separated path with {@linkcode decodeName}. */
export function decodePath(stored: string): string {
  return stored.split("/").map(decodeName).join("/");
}

function isHexPair(s: string, at: number): boolean {
  return /^[0-9A-Fa-f]{2}$/.test(s.slice(at, at + 2));
}
