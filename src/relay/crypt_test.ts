/**
 * Tests of relay encryption: sealed streams and files, wrong passphrase, tampering.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encryptedIO, openRelayKey, openStream, sealStream } from "./crypt.ts";
import { openBackend } from "./backend/mod.ts";

async function roundTrip(key: CryptoKey, data: Uint8Array, pieces: number) {
  const src = new ReadableStream<Uint8Array>({
    start(c) {
      const step = Math.max(1, Math.ceil(data.length / pieces));
      for (let at = 0; at < data.length; at += step) c.enqueue(data.slice(at, at + step));
      c.close();
    },
  });
  const sealed = new Uint8Array(
    await new Response(src.pipeThrough(sealStream(key, "n"))).arrayBuffer(),
  );
  const back = new Uint8Array(
    await new Response(new Blob([sealed]).stream().pipeThrough(openStream(key, "n")))
      .arrayBuffer(),
  );
  return { sealed, back };
}

Deno.test("sealed streams round-trip at chunk edges and refuse truncation and tampering", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-crypt-"));
  try {
    const key = await openRelayKey(await openBackend(dir), "correct horse");
    for (const n of [0, 1, 65535, 65536, 65537, 200_000]) {
      const data = crypto.getRandomValues(new Uint8Array(Math.min(n, 65536)));
      const big = new Uint8Array(n);
      for (let i = 0; i < n; i += data.length || 1) {
        big.set(data.subarray(0, Math.min(data.length, n - i)), i);
      }
      const { sealed, back } = await roundTrip(key, big, 7);
      assert.deepEqual(back, big, `size ${n}`);
      if (n === 200_000) {
        const cut = sealed.slice(0, 13 + 65552); // a whole first chunk, the rest gone
        await assert.rejects(
          () =>
            new Response(new Blob([cut]).stream().pipeThrough(openStream(key, "n"))).arrayBuffer(),
          /failed authentication/,
        );
        const bad = sealed.slice();
        bad[100] ^= 1;
        await assert.rejects(
          () =>
            new Response(new Blob([bad]).stream().pipeThrough(openStream(key, "n"))).arrayBuffer(),
          /failed authentication/,
        );
        await assert.rejects(
          () =>
            new Response(new Blob([sealed]).stream().pipeThrough(openStream(key, "other")))
              .arrayBuffer(),
          /failed authentication/,
        );
      }
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("wrong passphrase is refused; sealed files hide names; locks stay clear", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-crypt-"));
  try {
    const io = await openBackend(dir);
    const key = await openRelayKey(io, "s3cret");
    await assert.rejects(() => openRelayKey(io, "guess"), /wrong passphrase/);
    const eio = encryptedIO(io, key);
    await eio.write(".0.index", new TextEncoder().encode("secret/path.txt 0\n"));
    await eio.write(".0.lock", new TextEncoder().encode("lock%1.0\nowner: a\nmode: w"));
    const raw = await readFile(join(dir, ".0.index"));
    assert.ok(!new TextDecoder().decode(raw).includes("secret"));
    assert.equal(new TextDecoder().decode(await eio.readBytes(".0.index")), "secret/path.txt 0\n");
    assert.equal(await readFile(join(dir, ".0.lock"), "utf8"), "lock%1.0\nowner: a\nmode: w");
    // a clear file where a sealed one is expected is an error, not data
    await writeFile(join(dir, ".1.index"), "plain");
    await assert.rejects(() => eio.readBytes(".1.index"), /not encrypted/);
    // files cannot be swapped between names
    await writeFile(join(dir, ".2.index"), raw);
    await assert.rejects(() => eio.readBytes(".2.index"), /failed authentication/);
    assert.ok((await readdir(dir)).includes(".hop-crypt"));
  } finally {
    await rm(dir, { recursive: true });
  }
});
