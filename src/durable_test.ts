import assert from "node:assert/strict";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { HopError } from "./errors.ts";
import { fsyncEach, replaceFile, syncDir, syncFolder } from "./durable.ts";
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

Deno.test("durable: replaceFile swaps whole contents and leaves no temporary file; syncDir", async () => {
  await withTempDir(async (dir) => {
    const f = join(dir, "state.json");
    await replaceFile(f, "one");
    await replaceFile(f, new TextEncoder().encode("two, longer"));
    assert.equal(await readFile(f, "utf8"), "two, longer");
    assert.deepEqual(await readdir(dir), ["state.json"]);
    // a folder that is not there: the error, and the old file untouched
    await assert.rejects(replaceFile(join(dir, "gone", "x.json"), "x"), /ENOENT/);
    assert.equal(await readFile(f, "utf8"), "two, longer");
    await syncDir(dir);
    await assert.rejects(syncDir(join(dir, "gone")), /ENOENT/);
  });
});
