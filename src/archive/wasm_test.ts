import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HopError } from "../errors.ts";
import { BZIP2_WASM_SHA256 } from "./bzip2_wasm.ts";
import { randomBytes, sameBytes, textBytes } from "../../tests/helpers/bzip2_data.ts";
import {
  bzip2WasmBytes,
  compressBlock,
  decompressBlockBits,
  decompressSingleStream,
} from "./wasm.ts";

const npmWasm = fileURLToPath(
  new URL("../../node_modules/bzip2-wasm/bzip2-1.0.8/bzip2.wasm", import.meta.url),
);

Deno.test("the embedded bzip2.wasm equals node_modules' byte for byte", () => {
  const embedded = bzip2WasmBytes();
  const onDisk = new Uint8Array(readFileSync(npmWasm));
  assert.ok(sameBytes(embedded, onDisk), "re-run `deno task embed` after a bzip2-wasm bump");
  assert.equal(createHash("sha256").update(embedded).digest("hex"), BZIP2_WASM_SHA256);
});

Deno.test("compressBlock output is read by bzip2 and by decompressSingleStream", () => {
  const dir = mkdtempSync(join(tmpdir(), "hop-wasm-"));
  try {
    for (const data of [new Uint8Array(0), textBytes(300_000), randomBytes(1_000_000)]) {
      for (const level of [1, 9]) {
        const bz = compressBlock(data, level);
        assert.equal(String.fromCharCode(...bz.subarray(0, 4)), `BZh${level}`);
        assert.ok(sameBytes(decompressSingleStream(bz, "x"), data));
        writeFileSync(join(dir, "a.bz2"), bz);
        const back = execFileSync("bzip2", ["-dc", join(dir, "a.bz2")], { maxBuffer: 1 << 26 });
        assert.ok(sameBytes(new Uint8Array(back), data));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a block that expands ~45x is decompressed by growing the output buffer", () => {
  // bzip2 -9 packs ~45 MB of one byte into one block; the first output guess is 900 kB.
  const dir = mkdtempSync(join(tmpdir(), "hop-wasm-"));
  try {
    const n = 40_000_000;
    writeFileSync(join(dir, "z"), new Uint8Array(n));
    execFileSync("bzip2", ["-9", join(dir, "z")]);
    const bz = new Uint8Array(readFileSync(join(dir, "z.bz2")));
    // One block: from bit 32 to the end-of-stream magic, found by the splitter elsewhere;
    // here the stream is tiny, so find the end-of-stream magic by brute force.
    const bits = (p: number, k: number) => {
      let v = 0;
      for (let i = 0; i < k; i++, p++) v = v * 2 + ((bz[p >>> 3] >>> (7 - (p & 7))) & 1);
      return v;
    };
    let eos = -1;
    for (let p = 112; p + 48 <= bz.length * 8 && eos < 0; p++) {
      if (bits(p, 24) === 0x177245 && bits(p + 24, 24) === 0x385090) eos = p;
    }
    assert.ok(eos > 0);
    const out = decompressBlockBits(bz.subarray(4), 0, eos - 32, 9, "z.bz2", 900_000);
    assert.equal(out.length, n);
    assert.ok(out.every((b) => b === 0));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("corrupt data gives HopError naming the source", () => {
  const bz = compressBlock(textBytes(100_000), 9);
  const bad = bz.slice();
  bad[100] ^= 1;
  assert.throws(
    () => decompressSingleStream(bad, "idx.bz2"),
    (e: unknown) => e instanceof HopError && /^corrupt bzip2 data in idx\.bz2: /.test(e.message),
  );
  assert.throws(
    () => decompressSingleStream(bz.subarray(0, bz.length - 4), "idx.bz2"),
    (e: unknown) => e instanceof HopError && /unexpectedly/.test(e.message),
  );
});
