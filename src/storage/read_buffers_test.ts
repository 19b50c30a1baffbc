import assert from "node:assert/strict";
import {
  giveReadBuffer,
  MAX_READ_BUFFER,
  MIN_READ_BUFFER,
  readBufferSize,
  readerOpened,
  readQueueLimit,
  takeReadBuffer,
} from "./read_buffers.ts";

Deno.test("read buffers: 1 MB while few connections are open, smaller with many, back after", () => {
  assert.equal(readBufferSize(), MAX_READ_BUFFER);
  assert.equal(readQueueLimit(), 4 * MAX_READ_BUFFER);
  const closers = Array.from({ length: 200 }, () => readerOpened());
  try {
    assert.equal(readBufferSize(), MIN_READ_BUFFER);
    assert.ok(readQueueLimit() >= MIN_READ_BUFFER);
    assert.ok(readQueueLimit() * 200 <= 32 * 1024 * 1024, "a bounded total");
  } finally {
    for (const c of closers) c();
  }
  assert.equal(readBufferSize(), MAX_READ_BUFFER);
  closers[0](); // a second call does not count twice
  const five = Array.from({ length: 5 }, () => readerOpened());
  assert.equal(readBufferSize(), MAX_READ_BUFFER / 2);
  for (const c of five) c();
});

Deno.test("read buffers: a buffer given back is handed out again", () => {
  const a = takeReadBuffer(MIN_READ_BUFFER);
  assert.equal(a.byteLength, MIN_READ_BUFFER);
  giveReadBuffer(a);
  assert.equal(takeReadBuffer(MIN_READ_BUFFER), a);
  assert.notEqual(takeReadBuffer(MIN_READ_BUFFER), a);
});
