import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lentChunks } from "../ftp/data.ts";
import { MAX_READ_BUFFER, readBufferSize, readerOpened } from "./read_buffers.ts";
import { concatBytes } from "../bytes.ts";
import { fileReadStream } from "./streams.ts";

Deno.test("fileReadStream: chunks are lent, a chunk given back is read into again", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "hop-streams-"));
  try {
    const data = new Uint8Array(600 * 1024).map((_, i) => i * 7);
    await fsp.writeFile(join(dir, "f"), data);
    const reader = fileReadStream(await fsp.open(join(dir, "f"), "r")).getReader();
    const first = await reader.read();
    assert.ok(!first.done);
    const firstBytes = first.value.slice();
    const giveBack = lentChunks.get(first.value);
    assert.ok(giveBack, "the chunk is lent");
    giveBack();
    const got = [firstBytes];
    let reused = false;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      reused ||= r.value.buffer === first.value.buffer;
      got.push(r.value.slice());
      lentChunks.get(r.value)?.();
    }
    assert.ok(reused, "a buffer given back is read into again");
    assert.deepEqual(concatBytes(got), data);
  } finally {
    await fsp.rm(dir, { recursive: true });
  }
});

Deno.test("fileReadStream: an open stream counts as a reader until its end or cancel", async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), "hop-streams-"));
  try {
    await fsp.writeFile(join(dir, "f"), new Uint8Array(10));
    const others = Array.from({ length: 3 }, () => readerOpened());
    try {
      const before = readBufferSize();
      const a = fileReadStream(await fsp.open(join(dir, "f"), "r"));
      const b = fileReadStream(await fsp.open(join(dir, "f"), "r"));
      assert.equal(readBufferSize(), MAX_READ_BUFFER / 2, "five readers share the budget");
      for await (const _ of a) { /* to its end */ }
      await b.cancel();
      assert.equal(readBufferSize(), before);
    } finally {
      for (const c of others) c();
    }
  } finally {
    await fsp.rm(dir, { recursive: true });
  }
});
