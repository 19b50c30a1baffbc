import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChunkCutter, StreamJoiner } from "./bzip2_join.ts";
import { BlockSplitter } from "./bzip2_split.ts";
import { randomBytes, sameBytes, textBytes } from "../../tests/helpers/bzip2_data.ts";
import { compressBlock, decompressSingleStream } from "./wasm.ts";

function blocks(bz: Uint8Array): number {
  const s = new BlockSplitter("t");
  s.push(bz);
  let n = 0;
  while (s.next(true)) n++;
  return n;
}

/** Bytes whose RLE1 form is 6/5 of their size: "aaaab" repeated (a run of 4 costs 5). */
function fourRuns(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i % 5 === 4 ? 98 : 97 + ((i / 5) & 1) * 2;
  return out;
}

Deno.test("ChunkCutter cuts exactly where one bzip2 block is full", () => {
  const runs = new Uint8Array(4_000_000);
  for (let i = 0; i < runs.length; i++) runs[i] = (i / 300) & 0xff; // runs longer than 255
  for (const level of [1, 9]) {
    const sets: [Uint8Array, number][] = [
      [randomBytes(2_000_000), 16],
      [fourRuns(2_000_000), 16],
      [textBytes(2_000_000), 16],
    ];
    // 300 bytes of a run cost 10 symbols: only level 1 fills a block with 4 MB of them.
    if (level === 1) sets.push([runs, 1200]);
    for (const [data, extra] of sets) {
      const c = new ChunkCutter(level, Infinity);
      const n = c.fit(data, 0, 0);
      assert.ok(n > 0 && n < data.length);
      assert.equal(blocks(compressBlock(data.subarray(0, n), level)), 1, `level ${level}`);
      // Not much room was wasted: a few more bytes make bzip2 start a second block.
      assert.equal(blocks(compressBlock(data.subarray(0, n + extra), level)), 2, `level ${level}`);
    }
  }
  // The 4-runs data cuts at 5/6 of the block size; a cap on bytes applies to long runs.
  const c = new ChunkCutter(9);
  const n = c.fit(fourRuns(2_000_000), 0, 0);
  assert.ok(Math.abs(n - 899973 * 5 / 6) < 10, `${n}`);
  assert.equal(new ChunkCutter(9, 5000).fit(new Uint8Array(10000), 0, 0), 5000);
  // fit() continues across pieces of input.
  const d = randomBytes(1_000_000, 3);
  const c2 = new ChunkCutter(9);
  const first = c2.fit(d.subarray(0, 500_000), 0, 0);
  const second = c2.fit(d, 500_000, first);
  assert.equal(first + second, new ChunkCutter(9).fit(d, 0, 0));
});

Deno.test("StreamJoiner splices single-block streams into one stream bzip2 reads", () => {
  const dir = mkdtempSync(join(tmpdir(), "hop-join-"));
  try {
    const chunks = [textBytes(150_000, 1), randomBytes(77_777, 2), textBytes(5, 3), fourRuns(9)];
    for (const level of [9, 2]) {
      const j = new StreamJoiner(level);
      const parts = chunks.map((c) => j.push(compressBlock(c, level)));
      parts.push(j.end());
      const bz = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        bz.set(p, at);
        at += p.length;
      }
      const want = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      at = 0;
      for (const c of chunks) {
        want.set(c, at);
        at += c.length;
      }
      assert.equal(blocks(bz), 4);
      assert.ok(sameBytes(decompressSingleStream(bz, "t"), want));
      writeFileSync(join(dir, "j.bz2"), bz);
      execFileSync("bzip2", ["-t", join(dir, "j.bz2")]);
      const native = execFileSync("bzip2", ["-dc", join(dir, "j.bz2")], { maxBuffer: 1 << 24 });
      assert.ok(sameBytes(new Uint8Array(native), want));
    }
    // No input at all: the same 14-byte empty stream bzip2 writes.
    assert.deepEqual(new StreamJoiner(9).end(), compressBlock(new Uint8Array(0), 9));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a stream of several blocks is passed through as a stream of its own", () => {
  const j = new StreamJoiner(1);
  const a = textBytes(1000, 1);
  const big = randomBytes(250_000, 2); // 3 blocks at level 1
  const parts = [j.push(compressBlock(a, 1)), j.push(compressBlock(big, 1))];
  parts.push(j.push(compressBlock(a, 1)), j.end());
  const bz = new Uint8Array(parts.flatMap((p) => [...p]));
  const s = new BlockSplitter("t");
  s.push(bz);
  const streams = new Set<number>();
  for (let b; (b = s.next(true));) streams.add(b.stream);
  assert.equal(streams.size, 3);
});
