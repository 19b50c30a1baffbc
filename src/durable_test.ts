import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { HopError } from "./errors.ts";
import { fsyncEach, syncFolder } from "./durable.ts";
import { withTempDir } from "../tests/archive_helpers.ts";

Deno.test("durable: syncFolder and fsyncEach flush nested new files; a missing folder is an error", async () => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, "a", "b"), { recursive: true });
    await writeFile(join(dir, "top.txt"), "top");
    await writeFile(join(dir, "a", "b", "deep.txt"), "deep");
    const files = ["top.txt", "a/b/deep.txt"];
    await syncFolder(dir, files);
    // the fallback: every file, and every folder from `dir` down to each
    await fsyncEach(dir, files);
    await fsyncEach(dir, files.values());
    assert.equal(await readFile(join(dir, "a", "b", "deep.txt"), "utf8"), "deep");
    await assert.rejects(syncFolder(join(dir, "gone"), []), HopError);
    await assert.rejects(fsyncEach(dir, ["gone.txt"]), /ENOENT/);
  });
});
