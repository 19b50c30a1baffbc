/**
 * Tests of the local scan and the persistent checksum cache.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseFilters } from "./config.ts";
import { fileChecksum, openChecksumCache, scanFolder } from "./scan.ts";

async function tree(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "hop-scan-"));
  await mkdir(join(dir, "a/b"), { recursive: true });
  await mkdir(join(dir, ".git"), { recursive: true });
  await writeFile(join(dir, "top.txt"), "top");
  await writeFile(join(dir, "a/b/deep.md"), "deep");
  await writeFile(join(dir, "a/.hidden"), "h");
  await writeFile(join(dir, ".git/config"), "g");
  await writeFile(join(dir, "a/skip.tmp"), "t");
  await symlink("/etc/passwd", join(dir, "link"));
  return dir;
}

Deno.test("scan skips hidden names, links and excluded files", async () => {
  const dir = await tree();
  try {
    const files = await scanFolder(dir, { include: [], exclude: parseFilters("*.tmp") });
    assert.deepEqual([...files.keys()], ["a/b/deep.md", "top.txt"]);
    assert.equal(files.get("top.txt")!.size, 3);
    const only = await scanFolder(dir, { include: parseFilters("*.md"), exclude: [] });
    assert.deepEqual([...only.keys()], ["a/b/deep.md"]);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("checksum cache: an unchanged file is not read again", async () => {
  const dir = await tree();
  try {
    const files = await scanFolder(dir, { include: [], exclude: [] });
    const c1 = await openChecksumCache(dir, "sha512");
    const sum = await c1.checksum(files.get("top.txt")!);
    assert.equal(sum, createHash("sha512").update("top").digest("hex"));
    for (const f of files.values()) await c1.checksum(f);
    assert.equal(c1.filesRead, 3);
    await c1.save(files);
    const c2 = await openChecksumCache(dir, "sha512");
    for (const f of files.values()) await c2.checksum(f);
    assert.equal(c2.filesRead, 0);
    // a change of content with a new mtime is read again
    await writeFile(join(dir, "top.txt"), "TOP!");
    await utimes(join(dir, "top.txt"), 1000, 1000);
    const again = await scanFolder(dir, { include: [], exclude: [] });
    assert.equal(
      await c2.checksum(again.get("top.txt")!),
      createHash("sha512").update("TOP!").digest("hex"),
    );
    assert.equal(c2.filesRead, 1);
    // dropped entries: a file gone from the scan leaves the cache
    again.delete("a/b/deep.md");
    await c2.save(again);
    const saved = JSON.parse(await readFile(join(dir, ".hop/checksums-sha512.json"), "utf8"));
    assert.deepEqual(Object.keys(saved.files).sort(), ["a/skip.tmp", "top.txt"]);
    assert.equal(
      await fileChecksum(join(dir, "a/b/deep.md"), "sha256"),
      createHash("sha256").update("deep").digest("hex"),
    );
  } finally {
    await rm(dir, { recursive: true });
  }
});
