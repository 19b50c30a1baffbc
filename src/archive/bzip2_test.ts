import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HopError } from "../errors.ts";
import {
  closePool,
  compressBytes,
  compressStream,
  decompressBytes,
  decompressStream,
} from "./bzip2.ts";
import {
  collect,
  mixedBytes,
  randomBytes,
  sameBytes,
  streamOf,
  textBytes,
} from "../../tests/helpers/bzip2_data.ts";
import { liveWorkers } from "./pool.ts";
import { BlockSplitter } from "./bzip2_split.ts";

const compress = (data: Uint8Array, piece?: number, level?: number, workers?: number) =>
  collect(streamOf(data, piece).pipeThrough(compressStream({ level, workers })));
const decompress = (data: Uint8Array, piece?: number, source?: string) =>
  collect(streamOf(data, piece).pipeThrough(decompressStream({ source })));

/** Run `fn` with a temp dir, removed afterwards. */
async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "hop-bz2-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Count stream headers "BZh" followed by a digit and the block or end-of-stream magic. */
function countStreams(bz: Uint8Array): number {
  let n = 0;
  for (let i = 0; i + 10 <= bz.length; i++) {
    if (bz[i] === 0x42 && bz[i + 1] === 0x5a && bz[i + 2] === 0x68) {
      const m = Array.from(bz.subarray(i + 4, i + 10), (b) => b.toString(16).padStart(2, "0"))
        .join("");
      if (m === "314159265359" || m === "177245385090") n++;
    }
  }
  return n;
}

Deno.test("round trips: empty, 1 byte, block-size edges, many piece sizes", async () => {
  const size = 900000 - 19 - 8; // the most a chunk of plain data holds (bzip2_join.ts)
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["one byte", new Uint8Array([42])],
    ["exactly 900k", textBytes(900000)],
    ["900k - 1", randomBytes(899999)],
    ["900k + 1", randomBytes(900001)],
    ["one full block", randomBytes(size)],
    ["one full block + 1", textBytes(size + 1)],
  ];
  for (const [name, data] of cases) {
    for (const piece of [1 << 20, 4093]) {
      const bz = await compress(data, piece);
      assert.ok(sameBytes(await decompress(bz, piece), data), `${name}, pieces of ${piece}`);
      assert.ok(sameBytes(decompressBytes(bz), data), `${name}, decompressBytes`);
    }
    const bz = compressBytes(data);
    assert.ok(sameBytes(await decompress(bz, 7), data), `${name}, decompress in 7-byte pieces`);
  }
  closePool();
});

/** Number of blocks in each stream of `bz`. */
function blocksPerStream(bz: Uint8Array): number[] {
  const s = new BlockSplitter("t");
  s.push(bz);
  const counts: number[] = [];
  for (let j; (j = s.next(true));) {
    counts[j.stream] = (counts[j.stream] ?? 0) + 1;
  }
  return counts;
}

Deno.test("compressStream writes ONE stream, blocks cut where bzip2 cuts them", async () => {
  await inTemp(async (dir) => {
    for (const level of [9, 1]) {
      const data = textBytes(3 * level * 100000 + 5, level);
      const bz = await compress(data, 65536, level);
      assert.equal(countStreams(bz), 1);
      writeFileSync(join(dir, "d"), data);
      const native = execFileSync("bzip2", [`-${level}c`, join(dir, "d")], {
        maxBuffer: 1 << 26,
      });
      assert.deepEqual(blocksPerStream(bz), blocksPerStream(new Uint8Array(native)));
      const ratio = bz.length / native.length;
      assert.ok(Math.abs(ratio - 1) < 0.005, `${bz.length} vs ${native.length}`);
      assert.ok(sameBytes(await decompress(bz), data));
    }
  });
  closePool();
});

Deno.test("round trips of multi-MB random, text and long runs, levels 1 and 9", async () => {
  const runs = new Uint8Array(6_000_000);
  runs.fill(7, 0, 5_000_000); // one run far longer than a block: RLE, big expansion
  runs.fill(9, 5_000_000);
  for (const data of [randomBytes(3_000_000, 5), textBytes(4_000_000, 6), runs]) {
    for (const level of [1, 9]) {
      const bz = await compress(data, 100_000, level);
      assert.ok(sameBytes(await decompress(bz, 50_000), data), `level ${level}`);
    }
  }
  closePool();
});

Deno.test("compressBytes / decompressBytes round trip and read the stream format", async () => {
  for (const data of [new Uint8Array(0), textBytes(1000), mixedBytes(2_000_000)]) {
    const bz = compressBytes(data);
    assert.ok(sameBytes(decompressBytes(bz), data));
    assert.ok(sameBytes(await decompress(bz), data));
    assert.ok(sameBytes(decompressBytes(await compress(data)), data));
  }
  assert.throws(() => compressBytes(new Uint8Array(1), { level: 10 }), HopError);
  closePool();
});

Deno.test("interop: our output passes bzip2 -t and bzip2 -dc gives the input", async () => {
  await inTemp(async (dir) => {
    const data = mixedBytes(3_500_000, 3);
    for (const level of [9, 3]) {
      const file = join(dir, `ours${level}.bz2`);
      writeFileSync(file, await compress(data, 65536, level));
      execFileSync("bzip2", ["-t", file]);
      const out = execFileSync("bzip2", ["-dc", file], { maxBuffer: 1 << 28 });
      assert.ok(sameBytes(new Uint8Array(out), data), `level ${level}`);
    }
    // A reader that stops after the first stream (as Python 2, Java's commons-compress by
    // default) still gets everything: our output is one stream.
    const py = execFileSync("/usr/bin/python3", [
      "-c",
      "import bz2,sys; d=bz2.BZ2Decompressor(); o=d.decompress(open(sys.argv[1],'rb').read());" +
      "sys.stdout.write('%d %d %s' % (len(o), len(d.unused_data), d.eof))",
      join(dir, "ours9.bz2"),
    ], { encoding: "utf8" });
    assert.equal(py, `${data.length} 0 True`);
    const empty = join(dir, "empty.bz2");
    writeFileSync(empty, await compress(new Uint8Array(0)));
    assert.equal(execFileSync("bzip2", ["-dc", empty]).length, 0);
  });
  closePool();
});

Deno.test("interop: we read bzip2 -9/-1, pbzip2, lbzip2, Python bz2 and concatenations", async () => {
  await inTemp(async (dir) => {
    const data = mixedBytes(4_200_000, 11);
    const plain = join(dir, "data");
    writeFileSync(plain, data);
    const made: [string, Uint8Array][] = [];
    const tool = (name: string, cmd: string, args: string[]) =>
      made.push([name, new Uint8Array(execFileSync(cmd, args, { maxBuffer: 1 << 28 }))]);
    tool("bzip2 -9", "bzip2", ["-9c", plain]);
    tool("bzip2 -1", "bzip2", ["-1c", plain]);
    tool("pbzip2", "pbzip2", ["-9c", "-p2", plain]);
    tool("lbzip2", "lbzip2", ["-9c", "-n", "2", plain]);
    tool("python bz2", "/usr/bin/python3", [
      "-c",
      "import bz2,sys; sys.stdout.buffer.write(bz2.compress(open(sys.argv[1],'rb').read(), 9))",
      plain,
    ]);
    for (const [name, bz] of made) {
      assert.ok(sameBytes(await decompress(bz, 65536, name), data), name);
      assert.ok(sameBytes(await decompress(bz, 333, name), data), `${name}, small pieces`);
    }
    // Concatenated streams of different tools and levels, plus zero padding at the end.
    const cat = new Uint8Array([...made[0][1], ...made[1][1], ...made[3][1], 0, 0, 0, 0]);
    const want = new Uint8Array(data.length * 3);
    for (let i = 0; i < 3; i++) want.set(data, i * data.length);
    assert.ok(sameBytes(await decompress(cat), want), "concatenation");
  });
  closePool();
});

Deno.test("corrupt, truncated and foreign input give the typed error", async () => {
  const data = textBytes(2_500_000, 4);
  const bz = await compress(data);
  const single = compressBytes(textBytes(200_000), { level: 1 });
  const flip = (b: Uint8Array, at: number) => {
    const c = b.slice();
    c[at] ^= 0x10;
    return c;
  };
  const bad: [string, Uint8Array][] = [
    ["truncated in a block", bz.subarray(0, Math.floor(bz.length / 2))],
    ["truncated at the end", bz.subarray(0, bz.length - 3)],
    ["truncated header", bz.subarray(0, 3)],
    ["bit flip early", flip(bz, 200)],
    ["bit flip late", flip(bz, bz.length - 2000)],
    ["bit flip in the stored CRC", flip(single, single.length - 3)],
    ["not bzip2", new TextEncoder().encode("hello, this is not bzip2 at all")],
    ["empty", new Uint8Array(0)],
    ["garbage after the stream", new Uint8Array([...single, 1, 2, 3])],
  ];
  for (const [name, input] of bad) {
    await assert.rejects(
      () => decompress(input, 65536, "t.bz2"),
      (e: unknown) => e instanceof HopError && /^corrupt bzip2 data in t\.bz2: /.test(e.message),
      name,
    );
    assert.throws(
      () => decompressBytes(input, "t.bz2"),
      (e: unknown) => e instanceof HopError && /^corrupt bzip2 data in t\.bz2: /.test(e.message),
      name,
    );
  }
  closePool();
});

Deno.test("the compressed output of a slow writer keeps memory bounded (backpressure)", async () => {
  // 40 chunks of input; the reader takes its time. The writer must wait instead of
  // compressing everything ahead: count chunks accepted before the first read completes.
  const piece = 99_000;
  let produced = 0;
  const src = new ReadableStream<Uint8Array>({
    pull(c) {
      if (produced === 40) return c.close();
      produced++;
      c.enqueue(randomBytes(piece, produced));
    },
  }, { highWaterMark: 0 });
  const reader = src.pipeThrough(compressStream({ level: 1, workers: 2 })).getReader();
  const first = await reader.read();
  assert.ok(first.value && first.value.length > 0);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(produced <= 12, `produced ${produced} chunks ahead of the reader`);
  let bytes = first.value.length;
  for (let r = await reader.read(); !r.done; r = await reader.read()) bytes += r.value.length;
  assert.equal(produced, 40);
  assert.ok(bytes > 40 * piece);
  closePool();
});

Deno.test("read the output files of bzip2 from disk and compare with our bytes API", () => {
  // Same engine, no workers: decompressBytes on a native multi-block stream.
  const dir = mkdtempSync(join(tmpdir(), "hop-bz2-"));
  try {
    const data = randomBytes(1_500_000, 9);
    writeFileSync(join(dir, "r"), data);
    execFileSync("bzip2", ["-1", join(dir, "r")]);
    assert.ok(sameBytes(decompressBytes(new Uint8Array(readFileSync(join(dir, "r.bz2")))), data));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a reader that cancels midway frees the workers", async () => {
  const data = textBytes(8_000_000, 21);
  const bz = await compress(data);
  const reader = streamOf(bz, 65536).pipeThrough(decompressStream()).getReader();
  const first = await reader.read();
  assert.ok(first.value && first.value.length > 0);
  await reader.cancel();
  // Idle workers stop after 100 ms, or 2 s while some lane is still open (a lane an
  // earlier test's stream left open, on a runtime that does not cancel transformers).
  for (let waited = 0; liveWorkers() > 0 && waited < 10_000; waited += 100) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(liveWorkers(), 0, "the workers of the cancelled stream stopped");
  closePool();
});
