import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HopError } from "../errors.ts";
import { BlockDecoder, type BlockJob, BlockSplitter } from "./bzip2_split.ts";
import { mixedBytes, randomBytes, sameBytes } from "../../tests/helpers/bzip2_data.ts";
import { kernel } from "./wasm.ts";

/** bzip2 -<level> of `data`, by the Debian tool. */
function nativeBzip2(data: Uint8Array, level: number): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "hop-split-"));
  try {
    writeFileSync(join(dir, "d"), data);
    execFileSync("bzip2", [`-${level}`, join(dir, "d")]);
    return new Uint8Array(readFileSync(join(dir, "d.bz2")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every bit position of a magic in `bz`, by a plain bit-by-bit search. */
function bruteMagics(bz: Uint8Array): number[] {
  const found: number[] = [];
  let hi = 0; // top 16 bits of the 48-bit window
  let lo = 0; // low 32 bits
  for (let p = 0; p < bz.length * 8; p++) {
    const bit = (bz[p >>> 3] >>> (7 - (p & 7))) & 1;
    hi = ((hi << 1) | (lo >>> 31)) & 0xffff;
    lo = ((lo << 1) | bit) >>> 0;
    if (p >= 47) {
      if ((hi === 0x3141 && lo === 0x59265359) || (hi === 0x1772 && lo === 0x45385090)) {
        found.push(p - 47);
      }
    }
  }
  return found;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function split(bz: Uint8Array, piece: number): BlockJob[] {
  const s = new BlockSplitter("t.bz2");
  const jobs: BlockJob[] = [];
  for (let at = 0; at < bz.length; at += piece) {
    s.push(bz.subarray(at, at + piece));
    for (let j; (j = s.next(false));) jobs.push(j);
  }
  for (let j; (j = s.next(true));) jobs.push(j);
  return jobs;
}

Deno.test("the splitter finds the same block boundaries as a bit-by-bit search", () => {
  const data = randomBytes(2_400_000, 3);
  const bz = nativeBzip2(data, 1); // ~24 blocks at arbitrary bit offsets
  const magics = bruteMagics(bz);
  for (const piece of [bz.length, 65536, 1000, 13]) {
    const jobs = split(bz, piece);
    assert.equal(jobs.length, magics.length - 1, `pieces of ${piece}`);
    for (let i = 0; i < jobs.length; i++) {
      const start = jobs[i].offset * 8 + jobs[i].bitOffset;
      assert.equal(start, magics[i]);
      assert.equal(start + jobs[i].bitLength, magics[i + 1]);
    }
    assert.ok(jobs[jobs.length - 1].streamCrc !== undefined);
  }
  const offsets = new Set(split(bz, bz.length).map((j) => j.bitOffset));
  assert.ok(offsets.size >= 5, `blocks at bit offsets ${[...offsets]}`);
});

Deno.test("blocks decompress independently and the decoder checks the stream CRC", () => {
  const data = mixedBytes(2_000_000, 8);
  const bz = nativeBzip2(data, 2);
  const jobs = split(bz, 4096);
  assert.ok(jobs.length >= 5);
  const dec = new BlockDecoder("t.bz2");
  const parts: Uint8Array[] = [];
  for (const j of jobs) {
    const r = kernel().decompressBlock(j.bytes, j.bitOffset, j.bitLength, j.level, 1000);
    assert.ok(typeof r !== "number", `block at ${j.offset}`);
    parts.push(dec.accept(j, r)!);
  }
  dec.finish();
  assert.ok(sameBytes(concat(parts), data));

  // A wrong block CRC in the splitter's view breaks the stream's combined CRC.
  const dec2 = new BlockDecoder("t.bz2");
  assert.throws(() => {
    for (const j of jobs) {
      const r = kernel().decompressBlock(j.bytes, j.bitOffset, j.bitLength, j.level, 1000);
      dec2.accept({ ...j, crc: j === jobs[3] ? j.crc ^ 1 : j.crc }, r as Uint8Array);
    }
  }, (e: unknown) => e instanceof HopError && /CRC mismatch/.test(e.message));
});

Deno.test("a block cut at a false magic match is merged with the next and decoded", () => {
  const data = randomBytes(1_000_000, 12);
  const bz = nativeBzip2(data, 1);
  const jobs = split(bz, bz.length);
  // Cut block 2 in two at an arbitrary bit, as a false magic match inside it would.
  const j = jobs[2];
  const cutAt = 123_457;
  const aEnd = j.bitOffset + cutAt;
  const a: BlockJob = { ...j, bitLength: cutAt };
  const b: BlockJob = {
    ...j,
    bytes: j.bytes.slice(aEnd >>> 3),
    bitOffset: aEnd & 7,
    bitLength: j.bitLength - cutAt,
    crc: 0x12345678,
    offset: j.offset + (aEnd >>> 3),
  };
  const withCut = [...jobs.slice(0, 2), a, b, ...jobs.slice(3)];
  const dec = new BlockDecoder("t.bz2");
  const out: Uint8Array[] = [];
  let nulls = 0;
  for (const job of withCut) {
    const r = kernel().decompressBlock(job.bytes, job.bitOffset, job.bitLength, job.level, 1);
    const o = typeof r === "number" ? dec.accept(job, undefined, r) : dec.accept(job, r);
    if (o) out.push(o);
    else nulls++;
  }
  dec.finish();
  assert.equal(nulls, 1);
  assert.ok(sameBytes(concat(out), data));
});

Deno.test("a false end-of-stream match (not followed by a header) is skipped", () => {
  // Build: a real stream, then bytes that contain the end-of-stream magic followed by junk,
  // placed inside what the splitter must treat as one block: the scan must go on.
  const s = new BlockSplitter("t.bz2");
  const bz = nativeBzip2(randomBytes(50_000, 2), 9);
  // Corrupt: insert a false EOS magic + junk in the middle of the only block.
  const mid = 2000;
  const fake = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90, 1, 2, 3, 4, 0xee, 0xee, 0xee, 0xee, 0xee];
  const input = new Uint8Array([...bz.subarray(0, mid), ...fake, ...bz.subarray(mid)]);
  s.push(input);
  const jobs: BlockJob[] = [];
  for (let j; (j = s.next(true));) jobs.push(j);
  assert.equal(jobs.length, 1, "the fake end of stream did not end the stream");
  assert.equal(jobs[0].bitLength, bruteMagics(input).at(-1)! - 32);
});

Deno.test("scanning for block magics is fast (prints MB/s)", () => {
  const bz = nativeBzip2(randomBytes(12_000_000, 77), 9);
  const t = performance.now();
  const jobs = split(bz, 1 << 16);
  const ms = performance.now() - t;
  console.log(
    `split ${(bz.length / 1e6).toFixed(1)} MB into ${jobs.length} blocks: ` +
      `${ms.toFixed(0)} ms, ${(bz.length / 1e3 / ms).toFixed(0)} MB/s`,
  );
  assert.equal(jobs.length, 14);
  assert.ok(ms < 1500, `${ms} ms`);
});

Deno.test("a stream longer than any real block without a boundary is an error, not a hang", () => {
  const s = new BlockSplitter("t.bz2");
  s.push(new Uint8Array([0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0, 0, 0, 0]));
  assert.throws(() => {
    for (let i = 0; i < 64; i++) {
      s.push(randomBytes(1 << 20, i + 1));
      s.next(false);
    }
  }, (e: unknown) => e instanceof HopError && /no block boundary/.test(e.message));
});
