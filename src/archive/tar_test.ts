import assert from "node:assert/strict";
import { readdirSync, readlinkSync } from "node:fs";
import { mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { HopError } from "../errors.ts";
import {
  createTarParser,
  pathProblem,
  readArchive,
  readTar,
  type TarEntryHeader,
  writeArchive,
  writeArchiveFile,
  writeTar,
} from "./tar.ts";
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

/** What a {@link createTarParser} visitor saw: headers, and each body as its pieces. */
interface Visited {
  header: TarEntryHeader;
  pieces: Uint8Array[];
  ended: boolean;
}

/** Feeds `tar` to a parser `step` bytes at a time (the whole at once without `step`). */
function visitTar(tar: Uint8Array, step = tar.length): Visited[] {
  const seen: Visited[] = [];
  const parser = createTarParser({
    entry: (header) => seen.push({ header, pieces: [], ended: false }),
    data: (bytes) => seen.at(-1)!.pieces.push(bytes),
    end: () => (seen.at(-1)!.ended = true),
  });
  for (let pos = 0; pos < tar.length; pos += step) parser.push(tar.subarray(pos, pos + step));
  parser.end();
  return seen;
}

function joined(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of pieces) (out.set(p, off), off += p.length);
  return out;
}

Deno.test("tar parser: same entries and bodies whatever the buffers, views without copies", async () => {
  await withTempDir(async (dir) => {
    const files = await makeTree(dir);
    const tar = await collect(writeTar({ root: dir, files }));
    const whole = visitTar(tar);
    assert.deepEqual(
      whole.map((v) => `${v.header.type}:${v.header.path}:${v.header.size}`).slice(0, 3),
      ["file:hello.txt:12", "directory:sub:0", "file:sub/file with space.txt:6"],
    );
    // Pax and long names come whole.
    assert.ok(whole.some((v) => v.header.path === UTF8_NAME));
    assert.ok(whole.some((v) => v.header.path === LONG_NAME));
    for (const v of whole) {
      assert.ok(v.ended, v.header.path);
      // In one buffer, a body is one view into it (none when empty).
      assert.equal(v.pieces.length, v.header.size ? 1 : 0, v.header.path);
      for (const p of v.pieces) assert.equal(p.buffer, tar.buffer, "a view, not a copy");
      if (v.header.type === "file") {
        const data = await readFile(join(dir, ...v.header.path.split("/")));
        assert.deepEqual(v.pieces[0] ?? new Uint8Array(0), new Uint8Array(data));
      }
    }
    // Buffers cutting headers, bodies and padding anywhere give the same entries (byte by
    // byte: without the big file).
    const small = await collect(
      writeTar({ root: dir, files: files.filter((f) => f !== "big/blob.bin") }),
    );
    for (
      const [data, step] of [[small, 1], [tar, 7], [tar, 511], [tar, 512], [tar, 4196]] as const
    ) {
      const ref = data === tar ? whole : visitTar(small);
      const cut = visitTar(data, step);
      assert.deepEqual(cut.map((v) => v.header), ref.map((v) => v.header), `step ${step}`);
      for (const [i, v] of ref.entries()) {
        assert.ok(cut[i].ended);
        assert.deepEqual(joined(cut[i].pieces), joined(v.pieces), `${v.header.path} (${step})`);
      }
    }
  });
});

Deno.test("tar: writeTar gathers small files into big pieces (one write each downstream)", async () => {
  await withTempDir(async (dir) => {
    const files: string[] = [];
    for (let i = 0; i < 600; i++) {
      files.push(`f${i}.txt`);
      await writeFile(join(dir, `f${i}.txt`), `file ${i}\n`);
    }
    const pieces: Uint8Array[] = [];
    for await (const p of writeTar({ root: dir, files })) pieces.push(p);
    // 600 headers and 600 padded bodies (614,400 bytes) and the end blocks, in pieces of at
    // least 256 KB but the last: the packer alone yields 1,800 pieces
    assert.ok(pieces.length <= 3, `${pieces.length} pieces`);
    for (const p of pieces.slice(0, -1)) assert.ok(p.length >= 256 * 1024, `${p.length} bytes`);
    const seen = visitTar(joined(pieces));
    assert.deepEqual(seen.map((v) => v.header.path), files);
    assert.equal(new TextDecoder().decode(joined(seen[599].pieces)), "file 599\n");
  });
});

Deno.test("tar: writeTar closes the file it is in when aborted or cancelled mid-body", async () => {
  await withTempDir(async (dir) => {
    const big = join(dir, "big.bin");
    await writeFile(big, new Uint8Array(1 << 20));
    // this process's descriptors open on big.bin (other tests may open files meanwhile)
    const open = () =>
      readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === big;
        } catch {
          return false; // closed since the listing
        }
      }).length;
    const stop = new AbortController();
    const cut = writeTar({ root: dir, files: ["big.bin"], signal: stop.signal }).getReader();
    assert.equal((await cut.read()).done, false);
    assert.equal(open(), 1, "big.bin is open between pieces");
    stop.abort(new Error("upload cut"));
    assert.equal(open(), 0);
    await assert.rejects(cut.read(), /upload cut/);
    const cancelled = writeTar({ root: dir, files: ["big.bin"] }).getReader();
    assert.equal((await cancelled.read()).done, false);
    assert.equal(open(), 1);
    await cancelled.cancel();
    assert.equal(open(), 0);
  });
});

Deno.test("tar parser: GNU and pax long names of GNU tar", async () => {
  await withTempDir(async (dir) => {
    const long = `${"a".repeat(150)}/${"b".repeat(120)}.txt`;
    await mkdir(join(dir, "src", "a".repeat(150)), { recursive: true });
    await writeFile(join(dir, "src", long), "gnu long name");
    for (const format of ["gnu", "pax"]) {
      const out = join(dir, `${format}.tar`);
      await run("tar", [`--format=${format}`, "-cf", out, "-C", join(dir, "src"), long]);
      const seen = visitTar(new Uint8Array(await readFile(out)), 100);
      assert.deepEqual(seen.map((v) => v.header.path), [long], format);
      assert.equal(new TextDecoder().decode(joined(seen[0].pieces)), "gnu long name");
    }
  });
});

Deno.test("tar parser: truncated or damaged tar is a clear error; a visitor's own error passes", async () => {
  await withTempDir(async (dir) => {
    const files = await makeTree(dir);
    const tar = await collect(writeTar({ root: dir, files }));
    const corrupt = (e: Error) =>
      e instanceof HopError && /the archive is corrupt or truncated/.test(e.message) &&
      /send it again/.test(e.hint ?? "");
    // cut in a body, in a header, and before the end-of-archive blocks
    const blob = visitTar(tar).findIndex((v) => v.header.path === "big/blob.bin");
    assert.ok(blob > 0);
    for (const cut of [tar.length - 1024, 512 + 100, 4096 * 3, tar.length - 1024 - 600]) {
      assert.throws(() => visitTar(tar.subarray(0, cut), 1000), corrupt, `cut at ${cut}`);
    }
    // a flipped byte in the first header fails its checksum
    const bad = tar.slice();
    bad[10] ^= 0x20;
    assert.throws(() => visitTar(bad), (e: Error) => corrupt(e) && /checksum/i.test(e.message));
    // readTar reports the same, from its iteration
    await assert.rejects(async () => {
      for await (const e of readTar(bytesStream(tar.subarray(0, tar.length - 1024 - 600)))) {
        await e.body.cancel();
      }
    }, corrupt);
    // an error thrown by the visitor is not mistaken for a damaged archive
    const mine = new Error("disk full");
    const parser = createTarParser({
      entry() {},
      data() {
        throw mine;
      },
      end() {},
    });
    assert.throws(() => parser.push(tar), (e) => e === mine);
  });
});

Deno.test("tar: readTar hands bodies that span buffers on, whole", async () => {
  await withTempDir(async (dir) => {
    const files = await makeTree(dir);
    const tar = await collect(writeTar({ root: dir, files }));
    for (const chunk of [333, 64 * 1024]) {
      let n = 0;
      for await (const e of readTar(bytesStream(tar, chunk))) {
        const data = new Uint8Array(await new Response(e.body).arrayBuffer());
        assert.equal(data.length, e.size, e.path);
        if (e.type === "file") {
          assert.deepEqual(data, new Uint8Array(await readFile(join(dir, ...e.path.split("/")))));
          n++;
        }
      }
      assert.equal(n, 7);
    }
  });
});
