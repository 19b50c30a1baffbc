/**
 * Escale 0.7's encryption of a relay (`encryption = yes | fernet | blowfish`,
 * its `escale/encryption/`): in the index scheme each update archive
 * (`.P.T.data`) is encrypted as a whole; indexes, locks and everything else
 * stay in clear.
 *
 * - Fernet (`yes`, `fernet`): the passphrase is a Fernet key (32 bytes,
 *   URL-safe base64); the file is one Fernet token (version 0x80, time, IV,
 *   AES-128-CBC with PKCS7 padding, HMAC-SHA256), in URL-safe base64 with
 *   padding, as Python's `cryptography` writes it. Built on node:crypto.
 * - Blowfish (`blowfish`): the passphrase bytes are the key (4 to 56 bytes);
 *   the file is an 8-byte random IV, then the data in OFB mode. The block
 *   cipher is `egoroof-blowfish` (node:crypto has no Blowfish under Deno).
 *
 * Files are encrypted and decrypted whole in memory, as Escale does.
 * {@linkcode escaleEncryptedIO} wraps a {@linkcode RelayIO}; {@linkcode relayEncryption}
 * tells what an existing archive on a relay is encrypted with, so nothing is
 * written before the configuration is found to match the relay.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { Blowfish } from "egoroof-blowfish";
import { archiveFormat, FORMAT_HEAD_BYTES } from "../codec/compression.ts";
import { parseRelayName } from "../codec/escale_index.ts";
import { HopError } from "../errors.ts";
import { type EscaleCipher, fernetKeyBytes } from "./config.ts";
import { parseSendName } from "./hopfiles.ts";
import type { RelayFile, RelayIO } from "./io.ts";

function b64url(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_");
}

function unb64url(s: string): Uint8Array {
  const t = s.replace(/\s+/g, "").replaceAll("-", "+").replaceAll("_", "/");
  return Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
}

function fernetKeys(key: Uint8Array): { sign: Uint8Array; enc: Uint8Array } {
  const k = fernetKeyBytes(key);
  if (!k) {
    throw new HopError("the Fernet passphrase is not a key (32 bytes in URL-safe base64)", {
      hint: "Use the key the other Escale clients of this relay use.",
    });
  }
  return { sign: k.subarray(0, 16), enc: k.subarray(16) };
}

/** Encrypts `data` as one Fernet token (its base64 text, as bytes). */
export function fernetEncrypt(key: Uint8Array, data: Uint8Array, nowMs = Date.now()): Uint8Array {
  const { sign, enc } = fernetKeys(key);
  const iv = randomBytes(16);
  const head = new Uint8Array(9);
  head[0] = 0x80;
  new DataView(head.buffer).setBigUint64(1, BigInt(Math.floor(nowMs / 1000)));
  const c = createCipheriv("aes-128-cbc", enc, iv);
  const body = concatBytes([head, iv, c.update(data), c.final()]);
  const mac = createHmac("sha256", sign).update(body).digest();
  return new TextEncoder().encode(b64url(concatBytes([body, mac])));
}

/** Decrypts a Fernet token; a HopError when it is not one or fails authentication. */
export function fernetDecrypt(key: Uint8Array, token: Uint8Array, name: string): Uint8Array {
  const { sign, enc } = fernetKeys(key);
  let raw: Uint8Array;
  try {
    raw = unb64url(new TextDecoder().decode(token));
  } catch {
    raw = new Uint8Array(0);
  }
  const bad = (why: string) =>
    new HopError(`relay archive ${name} ${why}`, {
      hint: "Nothing was written locally. Check that every client of this relay uses the same " +
        "`encryption` and `passphrase`.",
    });
  if (raw.length < 1 + 8 + 16 + 16 + 32 || raw[0] !== 0x80 || (raw.length - 57) % 16 !== 0) {
    throw bad("is not a Fernet token");
  }
  const body = raw.subarray(0, raw.length - 32);
  const mac = createHmac("sha256", sign).update(body).digest();
  if (!timingSafeEqual(mac, raw.subarray(raw.length - 32))) {
    throw bad("failed authentication (another passphrase, or altered)");
  }
  const d = createDecipheriv("aes-128-cbc", enc, body.subarray(9, 25));
  try {
    return concatBytes([d.update(body.subarray(25)), d.final()]);
  } catch {
    throw bad("has bad padding");
  }
}

/** Blowfish in OFB mode: the same operation encrypts and decrypts. */
function blowfishOfb(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const bf = new Blowfish(key, Blowfish.MODE.ECB, Blowfish.PADDING.NULL);
  const out = new Uint8Array(data.length);
  let block: Uint8Array = iv;
  for (let i = 0; i < data.length; i += 8) {
    block = bf.encode(block).subarray(0, 8);
    const n = Math.min(8, data.length - i);
    for (let j = 0; j < n; j++) out[i + j] = data[i + j] ^ block[j];
  }
  return out;
}

/** Encrypts as Escale's Blowfish cipher does: an 8-byte random IV, then OFB. */
export function blowfishEncrypt(key: Uint8Array, data: Uint8Array): Uint8Array {
  const iv = randomBytes(8);
  return concatBytes([iv, blowfishOfb(key, iv, data)]);
}

/** Decrypts what {@linkcode blowfishEncrypt} (or Escale) wrote. */
export function blowfishDecrypt(key: Uint8Array, data: Uint8Array, name: string): Uint8Array {
  if (data.length < 8) {
    throw new HopError(`relay archive ${name} is too short to be Blowfish-encrypted`, {
      hint: "Nothing was written locally; the update is retried on the next pass.",
    });
  }
  return blowfishOfb(key, data.subarray(0, 8), data.subarray(8));
}

/** True for the files Escale encrypts: update archives (and hop's sends, archives alike). */
export function isEscaleEncrypted(name: string): boolean {
  return parseRelayName(name)?.kind === "update-data" || parseSendName(name)?.kind === "data";
}

/** Encrypts a file's content with the folder's cipher. */
export function escaleEncrypt(c: EscaleCipher, data: Uint8Array): Uint8Array {
  return c.name === "fernet" ? fernetEncrypt(c.key, data) : blowfishEncrypt(c.key, data);
}

/** Decrypts a file's content with the folder's cipher. */
export function escaleDecrypt(c: EscaleCipher, data: Uint8Array, name: string): Uint8Array {
  return c.name === "fernet"
    ? fernetDecrypt(c.key, data, name)
    : blowfishDecrypt(c.key, data, name);
}

async function streamBytes(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** A RelayIO whose update archives are encrypted the Escale way; everything else passes. */
export function escaleEncryptedIO(io: RelayIO, c: EscaleCipher): RelayIO {
  return {
    label: io.label,
    list: () => io.list(),
    listClaims: () => io.listClaims(),
    stat: (name: string): Promise<RelayFile | null> => io.stat(name),
    async read(name) {
      if (!isEscaleEncrypted(name)) return await io.read(name);
      const plain = escaleDecrypt(c, await streamBytes(await io.read(name)), name);
      return new Blob([plain as BlobPart]).stream();
    },
    async readBytes(name) {
      const b = await io.readBytes(name);
      return isEscaleEncrypted(name) ? escaleDecrypt(c, b, name) : b;
    },
    async write(name, data) {
      if (!isEscaleEncrypted(name)) return await io.write(name, data);
      const plain = data instanceof Uint8Array ? data : await streamBytes(data);
      await io.write(name, escaleEncrypt(c, plain));
    },
    createExclusive: (name, data) => io.createExclusive(name, data),
    delete: (name) => io.delete(name),
    rename: (from, to) => io.rename(from, to),
    close: () => io.close(),
  };
}

/** What an update archive on the relay is encrypted with. */
export type RelayEncryption = "none" | "fernet" | "blowfish" | "hop" | "unknown";

/**
 * Looks at the relay before anything is written: hop's own key file, else
 * the first bytes of the complete updates' archives (bzip2, zstd or tar in clear, a Fernet token,
 * hop's sealed stream, or Blowfish, recognised when `cipher` is Blowfish and
 * decrypts it to `BZh`): the first archive recognised decides, so that one damaged
 * archive (moved aside by the pull that reads it) does not hide the others; `unknown`
 * when none is. Undefined when the relay holds no archive to judge by.
 */
export async function relayEncryption(
  io: RelayIO,
  listing: RelayFile[],
  cipher?: EscaleCipher,
): Promise<RelayEncryption | undefined> {
  if (listing.some((f) => f.name === ".hop-crypt")) return "hop";
  // a complete update's archive (a lone archive may be the leftover of a cut push)
  const names = new Set(listing.map((f) => f.name));
  const archives = listing.filter((f) =>
    parseRelayName(f.name)?.kind === "update-data" && f.size > 0 &&
    names.has(f.name.replace(/\.data$/, ".index"))
  );
  let found: RelayEncryption | undefined;
  for (const data of archives) {
    let head: Uint8Array;
    try {
      head = await firstBytes(io, data.name, FORMAT_HEAD_BYTES);
    } catch {
      continue; // consumed meanwhile
    }
    const text = new TextDecoder("latin1").decode(head);
    // in clear: any archive hop writes (a damaged bzip2 one too: pulling it says what is wrong)
    if (text.startsWith("BZh") || archiveFormat(head) !== undefined) return "none";
    if (text.startsWith("HOPS1") || text.startsWith("HOPE1")) return "hop";
    if (text.startsWith("gAAAAA")) return "fernet";
    if (cipher?.name === "blowfish" && head.length >= 11) {
      const p = blowfishOfb(cipher.key, head.subarray(0, 8), head.subarray(8, 11));
      if (new TextDecoder("latin1").decode(p) === "BZh") return "blowfish";
    }
    found = "unknown";
  }
  return found;
}

async function firstBytes(io: RelayIO, name: string, n: number): Promise<Uint8Array> {
  const reader = (await io.read(name)).getReader();
  const parts: Uint8Array[] = [];
  let got = 0;
  try {
    while (got < n) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      got += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return concatBytes(parts).subarray(0, n);
}
