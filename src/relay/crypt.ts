/**
 * Relay encryption (hop-only relays): with `encryption` on, every index,
 * archive and deletion record is sealed with AES-256-GCM (WebCrypto) under a
 * key derived from the passphrase with scrypt. Names and checksums of files
 * are therefore never visible on the relay. Locks and client registrations
 * stay in clear (they hold client names only).
 *
 * - `.hop-crypt` (clear JSON) holds the scrypt parameters, the salt and a
 *   sealed check value: a wrong passphrase is found before anything is read
 *   or written.
 * - A small file is `HOPE1` + 12-byte nonce + ciphertext+tag; the relay file
 *   name is the associated data, so files cannot be swapped.
 * - An archive is `HOPS1` + 8-byte random prefix, then 64 KiB chunks, each
 *   sealed with nonce = prefix + chunk counter and associated data = name,
 *   counter and a last-chunk flag: truncation, reordering and splicing fail.
 *
 * {@linkcode encryptedIO} wraps a {@linkcode RelayIO} so the sync engine is
 * unchanged.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { randomBytes, scrypt } from "node:crypto";
import { HopError } from "../errors.ts";
import { CLIENT_PREFIX } from "./hopfiles.ts";
import type { RelayFile, RelayIO } from "./io.ts";

/** Relay file holding the key derivation parameters. */
export const CRYPT_FILE = ".hop-crypt";
const SMALL_MAGIC = "HOPE1";
const STREAM_MAGIC = "HOPS1";
const CHUNK = 64 * 1024;
const TAG = 16;
const CHECK_TEXT = "hop relay key check";

interface CryptFile {
  v: 1;
  kdf: "scrypt";
  N: number;
  r: number;
  p: number;
  salt: string;
  check: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function b64(b: Uint8Array): string {
  return btoa(String.fromCharCode(...b));
}

function unb64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function deriveKey(passphrase: string, f: CryptFile): Promise<CryptoKey> {
  return new Promise((resolve, reject) => {
    scrypt(
      passphrase.normalize("NFC"),
      unb64(f.salt),
      32,
      { N: f.N, r: f.r, p: f.p, maxmem: 256 * f.N * f.r },
      (err, raw) => {
        if (err) return reject(err);
        crypto.subtle.importKey("raw", new Uint8Array(raw), "AES-GCM", false, [
          "encrypt",
          "decrypt",
        ]).then(resolve, reject);
      },
    );
  });
}

async function seal(key: CryptoKey, iv: Uint8Array, aad: Uint8Array, data: Uint8Array) {
  return new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: iv as BufferSource, additionalData: aad as BufferSource },
      key,
      data as BufferSource,
    ),
  );
}

async function open(key: CryptoKey, iv: Uint8Array, aad: Uint8Array, data: Uint8Array) {
  return new Uint8Array(
    await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: iv as BufferSource, additionalData: aad as BufferSource },
      key,
      data as BufferSource,
    ),
  );
}

/** Seals a small file's bytes; `name` (the relay file name) is bound to it. */
export async function sealBytes(
  key: CryptoKey,
  name: string,
  data: Uint8Array,
): Promise<Uint8Array> {
  const iv = randomBytes(12);
  return concatBytes([enc.encode(SMALL_MAGIC), iv, await seal(key, iv, enc.encode(name), data)]);
}

/** Opens what {@linkcode sealBytes} made; a HopError when it is not, or was altered. */
export async function openBytes(
  key: CryptoKey,
  name: string,
  data: Uint8Array,
): Promise<Uint8Array> {
  if (dec.decode(data.subarray(0, 5)) !== SMALL_MAGIC) {
    throw new HopError(`relay file ${name} is not encrypted, but encryption is on`, {
      code: "sealed-damaged",
      hint:
        "A client without encryption wrote to this relay; give encrypted relays their own folder.",
    });
  }
  try {
    return await open(key, data.subarray(5, 17), enc.encode(name), data.subarray(17));
  } catch {
    throw new HopError(`relay file ${name} failed authentication: altered or damaged`, {
      code: "sealed-damaged",
      hint: "Nothing was written locally. Remove the file on the relay if it stays damaged.",
    });
  }
}

function chunkAad(name: string, counter: number, last: boolean): Uint8Array {
  return enc.encode(`${name}|${counter}|${last ? 1 : 0}`);
}

function chunkIv(prefix: Uint8Array, counter: number): Uint8Array {
  const iv = new Uint8Array(12);
  iv.set(prefix, 0);
  new DataView(iv.buffer).setUint32(8, counter);
  return iv;
}

/** Encrypts a stream in sealed chunks (see the module doc). */
export function sealStream(key: CryptoKey, name: string): TransformStream<Uint8Array, Uint8Array> {
  const prefix = randomBytes(8);
  let buf: Uint8Array = new Uint8Array(0);
  let counter = 0;
  let started = false;
  const head = (c: TransformStreamDefaultController<Uint8Array>) => {
    if (!started) {
      started = true;
      c.enqueue(concatBytes([enc.encode(STREAM_MAGIC), prefix]));
    }
  };
  return new TransformStream({
    async transform(chunk, c) {
      head(c);
      buf = buf.length ? concatBytes([buf, chunk]) : chunk;
      // keep at least one byte back so the last chunk is always sealed as last
      while (buf.length > CHUNK) {
        const piece = buf.subarray(0, CHUNK);
        buf = buf.subarray(CHUNK);
        c.enqueue(await seal(key, chunkIv(prefix, counter), chunkAad(name, counter, false), piece));
        counter++;
      }
    },
    async flush(c) {
      head(c);
      c.enqueue(await seal(key, chunkIv(prefix, counter), chunkAad(name, counter, true), buf));
    },
  });
}

/** Decrypts what {@linkcode sealStream} made; errors on any alteration or truncation. */
export function openStream(key: CryptoKey, name: string): TransformStream<Uint8Array, Uint8Array> {
  let buf: Uint8Array = new Uint8Array(0);
  let prefix: Uint8Array | null = null;
  let counter = 0;
  const fail = (why: string) =>
    new HopError(`relay archive ${name} ${why}`, {
      code: "sealed-damaged",
      hint: "Nothing was written locally; the update is retried on the next pass.",
    });
  const one = async (piece: Uint8Array, last: boolean) => {
    try {
      return await open(key, chunkIv(prefix!, counter), chunkAad(name, counter++, last), piece);
    } catch {
      throw fail("failed authentication: altered, truncated or damaged");
    }
  };
  return new TransformStream({
    async transform(chunk, c) {
      buf = buf.length ? concatBytes([buf, chunk]) : chunk;
      if (!prefix) {
        if (buf.length < 13) return;
        if (dec.decode(buf.subarray(0, 5)) !== STREAM_MAGIC) throw fail("is not encrypted");
        prefix = buf.slice(5, 13);
        buf = buf.subarray(13);
      }
      // a full sealed chunk followed by more bytes is not the last one
      while (buf.length > CHUNK + TAG) {
        c.enqueue(await one(buf.subarray(0, CHUNK + TAG), false));
        buf = buf.subarray(CHUNK + TAG);
      }
    },
    async flush(c) {
      if (!prefix) throw fail("is truncated");
      c.enqueue(await one(buf, true));
    },
  });
}

/** Names whose content is sealed: everything but locks, registrations and hop's own guards. */
export function isSealed(name: string): boolean {
  if (name === CRYPT_FILE || name.startsWith(CLIENT_PREFIX)) return false;
  if (name.startsWith(".hop-takeover-") || name.startsWith(".hop-tmp-")) return false;
  return !name.endsWith(".lock");
}

/**
 * Opens the key of an encrypted relay, creating `.hop-crypt` on first use.
 * A wrong passphrase is a HopError before anything else happens.
 */
export async function openRelayKey(io: RelayIO, passphrase: string): Promise<CryptoKey> {
  if (passphrase === "") {
    throw new HopError("encryption is on but the passphrase is empty", {
      hint: "Set `passphrase` (or `passphrase file`) in the configuration.",
    });
  }
  if (!(await io.stat(CRYPT_FILE))) {
    const f: CryptFile = {
      v: 1,
      kdf: "scrypt",
      N: 1 << 15,
      r: 8,
      p: 1,
      salt: b64(randomBytes(16)),
      check: "",
    };
    const key = await deriveKey(passphrase, f);
    f.check = b64(await sealBytes(key, CRYPT_FILE, enc.encode(CHECK_TEXT)));
    await io.createExclusive(CRYPT_FILE, enc.encode(JSON.stringify(f)));
  }
  let f: CryptFile;
  try {
    f = JSON.parse(dec.decode(await io.readBytes(CRYPT_FILE)));
    if (f.v !== 1 || f.kdf !== "scrypt" || !(f.N > 1) || f.N > 1 << 20) throw new Error("bad");
  } catch {
    throw new HopError(`relay file ${CRYPT_FILE} on ${io.label} is damaged`, {
      hint: "Without it the relay's encrypted files cannot be read.",
    });
  }
  const key = await deriveKey(passphrase, f);
  try {
    const text = dec.decode(await openBytes(key, CRYPT_FILE, unb64(f.check)));
    if (text !== CHECK_TEXT) throw new Error("check");
  } catch {
    throw new HopError(`wrong passphrase for the encrypted relay ${io.label}`, {
      hint: "Use the passphrase the other clients of this relay use. Nothing was changed.",
      exitCode: 1,
    });
  }
  return key;
}

/** A RelayIO that seals and opens file contents transparently (see {@linkcode isSealed}). */
export function encryptedIO(io: RelayIO, key: CryptoKey): RelayIO {
  return {
    label: io.label,
    list: () => io.list(),
    listClaims: () => io.listClaims(),
    stat: (name: string): Promise<RelayFile | null> => io.stat(name),
    async read(name) {
      const s = await io.read(name);
      // streams are archives, always written as streams (HOPS1)
      return isSealed(name) ? s.pipeThrough(openStream(key, name)) : s;
    },
    async readBytes(name) {
      const b = await io.readBytes(name);
      return isSealed(name) ? await openAny(key, name, b) : b;
    },
    async write(name, data) {
      if (!isSealed(name)) return await io.write(name, data);
      if (data instanceof Uint8Array) return await io.write(name, await sealBytes(key, name, data));
      await io.write(name, data.pipeThrough(sealStream(key, name)));
    },
    createExclusive: (name, data) => io.createExclusive(name, data),
    delete: (name) => io.delete(name),
    rename: (from, to) => io.rename(from, to),
    close: () => io.close(),
  };
}

/** Small files are written whole (HOPE1), archives as streams (HOPS1): read either way. */
async function openAny(key: CryptoKey, name: string, b: Uint8Array): Promise<Uint8Array> {
  if (dec.decode(b.subarray(0, 5)) === STREAM_MAGIC) {
    const out = new Response(new Blob([b as BlobPart]).stream().pipeThrough(openStream(key, name)));
    return new Uint8Array(await out.arrayBuffer());
  }
  return await openBytes(key, name, b);
}
