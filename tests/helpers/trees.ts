/**
 * Folder trees in tests: what a tree holds, to compare before and after
 * (`snapshot`: every file's hash; `filesUnder`: every file's path;
 * `folderState`: one folder's entries), and writing a file into a tree
 * (`put`). Listings are sorted, never in readdir order.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
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
