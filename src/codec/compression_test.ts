import assert from "node:assert/strict";
import { zstdCompressSync } from "node:zlib";
import {
  archiveFormat,
  COMPRESSIONS,
  decodeRelayFormat,
  encodeRelayFormat,
  parseCompression,
} from "./compression.ts";
import { CodecError, EncodeError } from "./errors.ts";
import { compressBytes } from "../archive/bzip2.ts";

function tarHead(name: string): Uint8Array {
  const h = new Uint8Array(512);
  h.set(new TextEncoder().encode(name), 0);
  h.set(new TextEncoder().encode("ustar\x0000"), 257);
  return h;
}

Deno.test("compression: settings are bzip2, zstd or none, in any case", () => {
  assert.deepEqual(COMPRESSIONS, ["bzip2", "zstd", "none"]);
  assert.equal(parseCompression("ZSTD"), "zstd");
  assert.equal(parseCompression(" none "), "none");
  assert.equal(parseCompression("bzip2"), "bzip2");
  for (const bad of ["gzip", "bz2", "", "zstd:19", "xz"]) {
    assert.equal(parseCompression(bad), undefined);
  }
});

Deno.test("compression: an archive's head tells its codec", () => {
  assert.equal(archiveFormat(new Uint8Array(zstdCompressSync(new Uint8Array(1000)))), "zstd");
  assert.equal(archiveFormat(compressBytes(new Uint8Array(1000))), "bzip2");
  assert.equal(archiveFormat(compressBytes(new Uint8Array(0))), "bzip2");
  assert.equal(archiveFormat(tarHead("docs/")), "none");
  // a tar whose first name starts like bzip2 is still a tar
  assert.equal(archiveFormat(tarHead("BZh91AY&SY.txt")), "none");
  // too short, or anything else
  assert.equal(archiveFormat(new TextEncoder().encode("BZh9")), undefined);
  assert.equal(archiveFormat(new Uint8Array([0x28, 0xb5, 0x2f])), undefined);
  assert.equal(archiveFormat(new TextEncoder().encode("gAAAAABl-fernet-token")), undefined);
  assert.equal(archiveFormat(tarHead("x").subarray(0, 261)), undefined);
  assert.equal(archiveFormat(new Uint8Array(0)), undefined);
});

Deno.test("compression: the relay record round-trips", () => {
  for (const compression of COMPRESSIONS) {
    const text = encodeRelayFormat({ compression });
    assert.deepEqual(JSON.parse(text), { v: 1, compression });
    assert.deepEqual(decodeRelayFormat(text), { compression });
    assert.deepEqual(decodeRelayFormat(new TextEncoder().encode(text)), { compression });
  }
  // fields a later version adds are kept out of the way
  assert.deepEqual(decodeRelayFormat('{"v":1,"compression":"none","note":"x"}'), {
    compression: "none",
  });
  assert.throws(
    () => encodeRelayFormat({ compression: "gzip" as "none" }),
    (e) => e instanceof EncodeError,
  );
});

Deno.test("compression: a damaged record, or one from a newer hop, is a clear error", () => {
  const damaged = [
    "",
    "{",
    "[]",
    "null",
    '"zstd"',
    '{"compression":"zstd"}',
    '{"v":0}',
    '{"v":1.5}',
  ];
  for (const text of damaged) {
    assert.throws(() => decodeRelayFormat(text, "relay/.hop-format"), (e) => {
      assert.ok(e instanceof CodecError, String(e));
      assert.match(
        e.message,
        /relay\/\.hop-format:1: malformed \.hop-format: not a hop relay record/,
      );
      assert.match(e.hint ?? "", /Remove/);
      return true;
    }, text);
  }
  const newer = [
    ['{"v":2,"compression":"zstd"}', /record version 2/],
    ['{"v":1,"compression":"brotli"}', /compression "brotli"/],
    ['{"v":1,"compression":"ZSTD"}', /compression "ZSTD"/],
    ['{"v":1}', /no compression named/],
  ] as const;
  for (const [text, says] of newer) {
    assert.throws(() => decodeRelayFormat(text), (e) => {
      assert.ok(e instanceof CodecError, String(e));
      assert.match(e.message, says);
      assert.match(e.message, /this hop build cannot read/);
      assert.match(e.hint ?? "", /update hop/);
      return true;
    }, text);
  }
  assert.throws(
    () => decodeRelayFormat(new Uint8Array([0xff, 0xfe])),
    (e) => e instanceof CodecError,
  );
});
