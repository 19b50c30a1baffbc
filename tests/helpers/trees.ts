/**
 * Folder trees in tests: what a tree holds, to compare before and after
 * (`snapshot`: every file's hash; `mtimes`: every file's mtime; `filesUnder`:
 * every file's path; `folderState`: one folder's entries; `assertSameFiles`:
 * two trees alike, byte for byte with mtimes), and writing a file into a
 * tree (`put`). Listings are sorted, never in readdir order.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";

/** path -> sha512 of every file under `root` whose path has no hidden (`.`) part. */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string) => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const d of entries) {
      if (d.name.startsWith(".")) continue;
      if (d.isDirectory()) await walk(join(dir, d.name), prefix + d.name + "/");
      else {
        out[prefix + d.name] = createHash("sha512").update(await readFile(join(dir, d.name)))
          .digest("hex");
      }
    }
  };
  await walk(root, "");
  return out;
}

/** path -> mtime (whole seconds) of every file `snapshot` lists. */
export async function mtimes(root: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of Object.keys(await snapshot(root))) {
    out[p] = Math.floor((await stat(join(root, p))).mtimeMs / 1000);
  }
  return out;
}

/** Both trees hold the same files (as `snapshot` sees them), byte for byte, with the same mtimes. */
export async function assertSameFiles(a: string, b: string, what: string): Promise<void> {
  assert.deepEqual(await snapshot(b), await snapshot(a), `${what}: contents`);
  assert.deepEqual(await mtimes(b), await mtimes(a), `${what}: mtimes`);
}

/** Every file under `dir` (paths relative to it, sorted). */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  }
  return out.sort();
}

/** Every entry of one folder (files and folders): `"dir"` or the sha256 of the file's bytes. */
export async function folderState(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const names = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  for (const d of names) {
    out[d.name] = d.isDirectory()
      ? "dir"
      : createHash("sha256").update(await readFile(join(dir, d.name))).digest("hex");
  }
  return out;
}

/** Writes `content` at `path` under `root` (making its folders), with mtime `mtime` (seconds) when given. */
export async function put(
  root: string,
  path: string,
  content: string | Uint8Array,
  mtime?: number,
): Promise<void> {
  const file = join(root, path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
  if (mtime !== undefined) await utimes(file, mtime, mtime);
}
