/**
 * Tests of the persistent index files: a big `.P.index` goes through the worker pool and
 * comes out byte for byte as the main thread writes a small one; it reads back whole, and a
 * damaged one is refused naming the file.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compressBytes } from "../archive/bzip2.ts";
import {
  encodePersistentIndex,
  type IndexEntry,
  indexName,
  PLACEHOLDER,
} from "../codec/escale_index.ts";
import { openRelayIO } from "./io.ts";
import { readPersistentIndex, writePersistentIndex } from "./pages.ts";

/** `n` entries with sha512-like checksums: about 230 bytes each, 70 compressed. */
function entries(n: number): IndexEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    path: `d${i % 50}/f${i}.txt`,
    meta: {
      placeholder: PLACEHOLDER,
      pusher: "a",
      timestamp: 1_700_000_000 + i,
      checksum: createHash("sha512").update(String(i)).digest("hex"),
      extra: [["base", "-"]] as [string, string][],
    },
  }));
}

Deno.test("persistent index: a big one is written as the main thread would, and read back", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-pages-"));
  const io = await openRelayIO(pathToFileURL(dir).href);
  try {
    for (const n of [10, 20_000]) {
      const want = entries(n);
      await writePersistentIndex(io, "0", want);
      const bytes = await readFile(join(dir, indexName("0")));
      if (n > 10) assert.ok(bytes.length > 1 << 20, "the big index is past the pool threshold");
      const text = new TextEncoder().encode(encodePersistentIndex(want));
      assert.deepEqual(bytes, Buffer.from(compressBytes(text)));
      assert.deepEqual(await readPersistentIndex(io, "0"), want);
    }
    // damaged in the middle: refused, naming the file
    const bytes = await readFile(join(dir, indexName("0")));
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(join(dir, indexName("0")), bytes);
    await assert.rejects(readPersistentIndex(io, "0"), (e: Error) => {
      assert.match(e.message, /\.0\.index/);
      return true;
    });
  } finally {
    await io.close();
    await rm(dir, { recursive: true, force: true });
  }
});
