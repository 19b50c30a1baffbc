import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { archiveFormat, COMPRESSIONS } from "../codec/compression.ts";
import { HopError } from "../errors.ts";
import { compressorFor, decompressAny } from "./codecs.ts";
import { extractArchive } from "./extract.ts";
import { readArchive, writeArchive } from "./tar.ts";
import {
  bytesStream,
  listTree,
  makeSampleTree,
  run,
  withTempDir,
} from "../../tests/archive_helpers.ts";

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

for (const c of COMPRESSIONS) {
  Deno.test(`codecs (${c}): written, told by its first bytes, read and extracted back`, async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, "src");
      await mkdir(src);
      const files = await makeSampleTree(src);
      const bytes = await collect(
        writeArchive({ root: src, files, compress: () => compressorFor(c) }),
      );
      assert.equal(archiveFormat(bytes), c);
      // read without being told, in small pieces (the head may come a few bytes at a time)
      const seen: string[] = [];
      for await (const e of readArchive(bytesStream(bytes, 7))) {
        seen.push(e.path);
        await new Response(e.body).arrayBuffer();
      }
      assert.ok(seen.includes("big/blob.bin"), seen.join(","));
      const out = join(dir, "out");
      const res = await extractArchive(bytesStream(bytes), out);
      assert.equal(res.files, 7);
      const a = await listTree(src);
      const b = await listTree(out);
      assert.deepEqual([...b.keys()], [...a.keys()]);
      for (const [p, node] of a) assert.deepEqual(b.get(p), node, p);
    });
  });
}

Deno.test("codecs: hop's tar.zst and tar are what GNU tar and the zstd CLI read", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await mkdir(src);
    const files = await makeSampleTree(src);
    const list = (await run("sh", ["-c", `cd '${src}' && find . -type f | sort`])).trim();
    for (const [c, filter] of [["zstd", "zstd -dc"], ["none", "cat"]] as const) {
      const archive = join(dir, `a.${c}`);
      await writeFile(
        archive,
        await collect(writeArchive({ root: src, files, compress: () => compressorFor(c) })),
      );
      const out = join(dir, `out-${c}`);
      await mkdir(out);
      await run("sh", ["-c", `${filter} < '${archive}' | tar -xf - -C '${out}'`]);
      assert.equal(
        (await run("sh", ["-c", `cd '${out}' && find . -type f | sort`])).trim(),
        list,
        c,
      );
      await run("diff", ["-r", src, out]);
    }
  });
});

Deno.test("codecs: unknown, empty, corrupt and cut input is a clear error", async () => {
  const bad = async (bytes: Uint8Array, says: RegExp) => {
    await assert.rejects(
      collect(bytesStream(bytes).pipeThrough(decompressAny({ source: "x.data" }))),
      (e: Error) => says.test(e.message),
      says.source,
    );
  };
  await bad(new TextEncoder().encode("hello, not an archive at all"), /^x\.data is not an archive/);
  await bad(new Uint8Array(0), /^x\.data is empty/);
  const plain = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
  const zst = await collect(bytesStream(plain).pipeThrough(compressorFor("zstd")));
  assert.equal(archiveFormat(zst), "zstd");
  // a damaged frame (its block headers), and a cut one, are errors of the stream
  const corrupt = zst.slice();
  corrupt.fill(0xff, 6, 64);
  await bad(corrupt, /^corrupt zstd data in x\.data: /);
  await bad(zst.subarray(0, zst.length - 100), /^corrupt zstd data in x\.data: /);
  // and through the archive reader (this one is no tar either): a HopError on the archive
  await assert.rejects(
    (async () => {
      for await (const _ of readArchive(bytesStream(zst.subarray(0, zst.length - 100)))) {
        // reading on
      }
    })(),
    (e: Error) => e instanceof HopError && /corrupt/.test(e.message),
  );
  assert.deepEqual(
    await collect(bytesStream(zst).pipeThrough(decompressAny())),
    plain,
  );
});
