/**
 * Tests of Escale's encryption: the Fernet spec's own token, a Blowfish-OFB
 * vector made with Python's `cryptography` (what Escale uses), round trips,
 * refusals, and the relay sniffing that runs before anything is written.
 * `tests/escale_crypt_interop_test.ts` exchanges relays with Escale itself.
 *
 * @module
 */
import assert from "node:assert/strict";
import { HopError } from "../errors.ts";
import {
  blowfishDecrypt,
  blowfishEncrypt,
  escaleEncryptedIO,
  fernetDecrypt,
  fernetEncrypt,
  relayEncryption,
} from "./escale_crypt.ts";
import type { RelayFile, RelayIO } from "./io.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const KEY = te.encode("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");

Deno.test("Fernet: the spec's token, round trips, tampering refused", () => {
  const spec = te.encode(
    "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
  );
  assert.equal(td.decode(fernetDecrypt(KEY, spec, "t")), "hello");
  for (const n of [0, 1, 15, 16, 17, 100_000]) {
    const data = new Uint8Array(n).map((_, i) => i * 7);
    const tok = fernetEncrypt(KEY, data);
    assert.match(td.decode(tok.subarray(0, 6)), /^gAAAAA/);
    assert.deepEqual(fernetDecrypt(te.encode(td.decode(KEY) + "\n"), tok, "t"), data);
  }
  const tok = fernetEncrypt(KEY, te.encode("x"));
  tok[20] = tok[20] === 65 ? 66 : 65;
  assert.throws(() => fernetDecrypt(KEY, tok, ".0.1.data"), /failed authentication/);
  assert.throws(() => fernetDecrypt(KEY, te.encode("BZh91AY"), ".0.1.data"), /not a Fernet token/);
  const other = te.encode("m3r-9qY6P4cA2rP8l8V3s1bQmJ3Ykz0cM1h3c2h2Y2E=");
  assert.throws(() => fernetDecrypt(other, fernetEncrypt(KEY, te.encode("x")), "t"), HopError);
});

Deno.test("Blowfish-OFB: Python cryptography's bytes, round trips", () => {
  const key = te.encode("0123456789abcdef\n");
  const python = Uint8Array.from(
    "01020304050607081b90c997278f5dfea20ddcbe019d028b6a017003f3e4a64124c3daafc3".match(/../g)!,
    (h) => parseInt(h, 16),
  );
  assert.equal(td.decode(blowfishDecrypt(key, python, "t")), "BZh91AY&SY hello blowfish ofb");
  for (const n of [0, 7, 8, 9, 4096]) {
    const data = new Uint8Array(n).map((_, i) => i);
    const c = blowfishEncrypt(key, data);
    assert.equal(c.length, n + 8);
    assert.deepEqual(blowfishDecrypt(key, c, "t"), data);
  }
});

function memoryIO(files: Map<string, Uint8Array>): RelayIO {
  const file = (name: string): RelayFile => ({ name, size: files.get(name)!.length, mtimeMs: 0 });
  return {
    label: "memory",
    list: () => Promise.resolve([...files.keys()].map(file)),
    listClaims: () => Promise.resolve([]),
    stat: (n) => Promise.resolve(files.has(n) ? file(n) : null),
    read: (n) => Promise.resolve(new Blob([files.get(n)! as BlobPart]).stream()),
    readBytes: (n) => Promise.resolve(files.get(n)!),
    write: async (n, d) => {
      files.set(
        n,
        d instanceof Uint8Array ? d : new Uint8Array(await new Response(d).arrayBuffer()),
      );
    },
    createExclusive: (n, d) => Promise.resolve(files.has(n) ? false : (files.set(n, d), true)),
    delete: (n) => Promise.resolve(void files.delete(n)),
    rename: (a, b) => Promise.resolve(void (files.set(b, files.get(a)!), files.delete(a))),
    close: () => Promise.resolve(),
  };
}

Deno.test("Escale-encrypted relay IO: archives sealed, indexes clear; the relay is recognised", async () => {
  const files = new Map<string, Uint8Array>();
  const raw = memoryIO(files);
  const fernet = { name: "fernet" as const, key: KEY };
  const io = escaleEncryptedIO(raw, fernet);
  await io.write(".0.5.data", new Blob([te.encode("BZh9 archive")]).stream());
  await io.write(".0.5.index", te.encode("plain index"));
  files.set(".1.6.data", te.encode("a lone leftover archive"));
  assert.match(td.decode(files.get(".0.5.data")!), /^gAAAAA/);
  assert.equal(td.decode(files.get(".0.5.index")!), "plain index");
  assert.equal(
    td.decode(await new Response(await io.read(".0.5.data")).arrayBuffer()),
    "BZh9 archive",
  );
  assert.equal(await relayEncryption(raw, await raw.list()), "fernet");
  const bf = { name: "blowfish" as const, key: te.encode("a blowfish key") };
  files.set(".0.5.data", blowfishEncrypt(bf.key, te.encode("BZh91AY")));
  assert.equal(await relayEncryption(raw, await raw.list(), bf), "blowfish");
  assert.equal(await relayEncryption(raw, await raw.list()), "unknown");
  files.set(".0.5.data", te.encode("BZh91AY"));
  assert.equal(await relayEncryption(raw, await raw.list(), bf), "none");
  files.delete(".0.5.data");
  assert.equal(await relayEncryption(raw, await raw.list()), undefined);
  files.set(".hop-crypt", te.encode("{}"));
  assert.equal(await relayEncryption(raw, await raw.list()), "hop");
});
