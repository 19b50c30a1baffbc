import assert from "node:assert/strict";
import { mkdir, readdir, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { HopError } from "../errors.ts";
import { pathProblem, readArchive, writeArchive, writeArchiveFile } from "./tar.ts";
import { extractArchive } from "./extract.ts";
import {
  bytesStream,
  CODECS,
  fileStream,
  listTree,
  LONG_NAME,
  makeSampleTree as makeTree,
  OLD,
  run,
  UTF8_NAME,
  withTempDir,
} from "../../tests/archive_helpers.ts";

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

for (const { name, codec } of CODECS) {
  Deno.test(`tar (${name}): round trip keeps paths, folders, modes, mtimes, contents`, async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, "src");
      const out = join(dir, "out");
      await mkdir(src);
      const files = await makeTree(src);
      const progress: number[] = [];
      const bytes = await collect(
        writeArchive({ root: src, files, onProgress: (p) => progress.push(p.files), ...codec }),
      );
      assert.deepEqual(progress, [1, 2, 3, 4, 5, 6, 7]); // files only, not the empty folder
      assert.equal(bytes[0], 0x42); // "BZh"
      assert.equal(bytes[1], 0x5a);

      const seen: string[] = [];
      for await (const e of readArchive(bytesStream(bytes), codec)) {
        seen.push(`${e.type}:${e.path}`);
        if (e.type === "file") {
          const data = new Uint8Array(await new Response(e.body).arrayBuffer());
          assert.equal(data.length, e.size);
        }
        assert.equal(e.mtime % 1, 0, "whole seconds");
      }
      // Each folder once, before its contents; files in the given order.
      assert.deepEqual(seen, [
        "file:hello.txt",
        "directory:sub",
        "file:sub/file with space.txt",
        "directory:sub/void",
        "directory:sub/deep",
        "directory:sub/deep/er",
        "file:sub/deep/er/empty",
        "file:sub/deep/run.sh",
        "directory:big",
        "file:big/blob.bin",
        "directory:été",
        `file:${UTF8_NAME}`,
        "directory:long",
        `directory:long/${"d".repeat(90)}`,
        `file:${LONG_NAME}`,
      ]);

      const res = await extractArchive(bytesStream(bytes), out, codec);
      assert.equal(res.files, 7);
      assert.equal(res.directories, 8);
      assert.equal(res.compressedBytes, bytes.length);
      const a = await listTree(src);
      const b = await listTree(out);
      assert.deepEqual([...b.keys()], [...a.keys()]);
      for (const [p, node] of a) assert.deepEqual(b.get(p), node, p);
      assert.equal(b.get("sub/deep/run.sh")!.mode, 0o755);
      assert.equal(b.get("sub/file with space.txt")!.mode, 0o600);
      assert.equal(b.get("sub/deep")!.mode, 0o750);
      assert.equal(b.get("hello.txt")!.mtime, OLD);
    });
  });

  Deno.test(`tar (${name}): readArchive skips bodies left unread`, async () => {
    await withTempDir(async (dir) => {
      const files = await makeTree(dir);
      const bytes = await collect(writeArchive({ root: dir, files, ...codec }));
      const bodies: ReadableStream<Uint8Array>[] = [];
      const paths: string[] = [];
      for await (const e of readArchive(bytesStream(bytes), codec)) {
        paths.push(e.path);
        bodies.push(e.body);
      }
      assert.equal(paths.length, 15);
      // The big file's body was skipped: reading it now is an error, not a hang.
      const big = bodies[paths.indexOf("big/blob.bin")];
      // A lambda: Bun throws at once from new Response() over an errored stream.
      await assert.rejects(async () => await new Response(big).arrayBuffer());
    });
  });

  Deno.test(`tar (${name}): writeArchiveFile renames into place, leaves no temp`, async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, "a.txt"), "a");
      const dest = join(dir, "out.tar.bz2");
      const res = await writeArchiveFile(dest, { root: dir, files: ["a.txt"], ...codec });
      assert.equal(res.files, 1);
      assert.equal(res.bytes, 1);
      const names: string[] = [];
      for await (const e of readArchive(await fileStream(dest), codec)) {
        names.push(e.path);
        await e.body.cancel();
      }
      assert.deepEqual(names, ["a.txt"]);
      // A failing write (missing file) leaves dest untouched and no temp file.
      await assert.rejects(
        writeArchiveFile(dest, { root: dir, files: ["a.txt", "missing"], ...codec }),
        (e: Error) => e instanceof HopError && /missing/.test(e.message),
      );
      assert.deepEqual((await readdir(dir)).sort(), ["a.txt", "out.tar.bz2"]);
      assert.equal(res.compressedBytes, (await stat(dest)).size);
    });
  });
}

Deno.test("tar: writeArchive refuses symlinks, unsafe paths, duplicates", async () => {
  const codec = CODECS[0].codec;
  await withTempDir(async (dir) => {
    await writeFile(join(dir, "real.txt"), "x");
    await symlink("real.txt", join(dir, "link.txt"));
    await mkdir(join(dir, "d"));
    await symlink("d", join(dir, "dirlink"));
    await writeFile(join(dir, "d", "f"), "f");
    await run("mkfifo", [join(dir, "fifo")]);
    const cases: [string[], RegExp][] = [
      [["link.txt"], /'link.txt': it is a symbolic link/],
      [["dirlink/f"], /'dirlink' is not a folder/],
      [["../x"], /'\.\.\/x' refused for the archive: path leaves the target folder/],
      [["/etc/passwd"], /absolute path/],
      [["real.txt", "real.txt"], /listed twice/],
      [["fifo"], /'fifo': not a regular file/],
    ];
    for (const [files, re] of cases) {
      await assert.rejects(
        collect(writeArchive({ root: dir, files, ...codec })),
        (e: Error) => e instanceof HopError && re.test(e.message),
        files.join(","),
      );
    }
  });
});

Deno.test("tar: pathProblem", () => {
  assert.equal(pathProblem("a/b c/d.txt"), undefined);
  assert.equal(pathProblem("été/日本"), undefined);
  assert.equal(pathProblem("../x"), "path leaves the target folder");
  assert.equal(pathProblem("a/../../x"), "path leaves the target folder");
  assert.equal(pathProblem("/abs"), "absolute path");
  assert.equal(pathProblem("a\\..\\x"), "path contains a backslash");
  assert.equal(pathProblem("a\0b"), "path contains a NUL character");
  assert.equal(pathProblem("C:/x"), "path starts with a drive letter");
  assert.equal(pathProblem("a//b"), "path has an empty or '.' component");
  assert.equal(pathProblem(""), "empty path");
});
