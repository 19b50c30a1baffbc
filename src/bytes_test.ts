import assert from "node:assert/strict";
import { concatBytes } from "./bytes.ts";

Deno.test("concatBytes: parts in order, a fresh buffer of their total length", () => {
  const a = new Uint8Array([1, 2]);
  const b = new Uint8Array([3, 4, 5]).subarray(1);
  const out = concatBytes([a, new Uint8Array(0), b]);
  assert.deepEqual([...out], [1, 2, 4, 5]);
  assert.equal(out.byteOffset, 0);
  assert.equal(out.buffer.byteLength, 4);
  assert.deepEqual(concatBytes([]), new Uint8Array(0));
});
