/**
 * Per-file access modifiers of a synced folder, Escale's (`escalectl
 * access`): `r` (readable: the file may be pushed) and `w` (writable: the
 * relay's versions may be written over it, and other clients' deletions
 * applied to it), each `+` (allowed), `-` (refused) or `?` (unset: allowed).
 * Escale keeps them in a Python dbm file in its cache folder; hop keeps them
 * in the folder's `.hop/access.json` (`{"v":1,"files":{"a.txt":"r-w?"}}`),
 * so they hold for every relay that folder syncs with.
 *
 * @example
 * ```ts
 * const t = await readAccess("/home/alice/docs");
 * setModifiers(t, "notes.txt", parseModifiers("r-"));
 * await writeAccess("/home/alice/docs", t);
 * mayPush(t, "notes.txt"); // false
 * ```
 *
 * @module
 */
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { HopError, UsageError } from "../errors.ts";
import { STATE_DIR, stateDir } from "./scan.ts";

/** One modifier: true `+`, false `-`, null `?` (unset). */
export type Modifier = boolean | null;

/** A file's modifiers; a missing key is unset. */
export interface Access {
  r?: boolean;
  w?: boolean;
}

/** path -> modifiers (only paths with a modifier set). */
export type AccessTable = Record<string, Access>;

const FILE = "access.json";

/** The access file of a folder. */
export function accessFile(root: string): string {
  return join(root, STATE_DIR, FILE);
}

/** Reads a folder's modifiers (none when none were set). A damaged file is an error. */
export async function readAccess(root: string): Promise<AccessTable> {
  const file = accessFile(root);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return Object.create(null);
  }
  try {
    const parsed = JSON.parse(text);
    if (parsed?.v === 1 && parsed.files && typeof parsed.files === "object") {
      const out: AccessTable = Object.create(null);
      for (const [p, m] of Object.entries(parsed.files)) {
        if (typeof m !== "string") continue;
        const mods = parseModifiers(m);
        const a: Access = {};
        if (typeof mods.r === "boolean") a.r = mods.r;
        if (typeof mods.w === "boolean") a.w = mods.w;
        out[p] = a;
      }
      return out;
    }
  } catch {
    // reported below
  }
  throw new HopError(`the access modifiers file ${file} is damaged`, {
    hint: "Remove it (every file is then readable and writable again) and set the " +
      "modifiers again with hop relay access.",
  });
}

/** Writes a folder's modifiers atomically (the file goes when none is left). */
export async function writeAccess(root: string, table: AccessTable): Promise<void> {
  await stateDir(root);
  const files: Record<string, string> = Object.create(null); // `__proto__` is a path too
  for (const [p, a] of Object.entries(table)) {
    if (a.r !== undefined || a.w !== undefined) files[p] = formatAccess(a);
  }
  const file = accessFile(root);
  if (Object.keys(files).length === 0) {
    await rm(file, { force: true });
    return;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ v: 1, files }));
  await rename(tmp, file);
}

/**
 * Parses modifiers as escalectl does: `r+`, `w-`, `r?`, `r-w+`; a letter
 * alone means `+`. The file's `r?w+` form reads the same way.
 */
export function parseModifiers(text: string): Partial<Record<"r" | "w", Modifier>> {
  const out: Partial<Record<"r" | "w", Modifier>> = {};
  const re = /([rw])([+\-?]?)/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m || m[1] in out) {
      throw new UsageError(
        `bad access modifiers '${text}'`,
        "Give r or w, each followed by + (allow), - (refuse) or ? (unset), such as r- or r+w-.",
      );
    }
    out[m[1] as "r" | "w"] = m[2] === "-" ? false : m[2] === "?" ? null : true;
    at = re.lastIndex;
  }
  if (at === 0) throw new UsageError(`bad access modifiers '${text}'`, "Give r- or w+, say.");
  return out;
}

/** Applies parsed modifiers to `path` (`?` unsets). */
export function setModifiers(
  table: AccessTable,
  path: string,
  mods: Partial<Record<"r" | "w", Modifier>>,
): Access {
  const a: Access = { ...table[path] };
  for (const k of ["r", "w"] as const) {
    if (!(k in mods)) continue;
    if (mods[k] === null) delete a[k];
    else a[k] = mods[k] as boolean;
  }
  if (a.r === undefined && a.w === undefined) delete table[path];
  else table[path] = a;
  return a;
}

/** `r?w-`, as escalectl prints them. */
export function formatAccess(a: Access | undefined): string {
  const f = (m: boolean | undefined) => (m === undefined ? "?" : m ? "+" : "-");
  return `r${f(a?.r)}w${f(a?.w)}`;
}

/** The file may be pushed (not `r-`). */
export function mayPush(table: AccessTable | undefined, path: string): boolean {
  return table?.[path]?.r !== false;
}

/** The relay's versions and deletions may be applied to the file (not `w-`). */
export function mayWrite(table: AccessTable | undefined, path: string): boolean {
  return table?.[path]?.w !== false;
}
