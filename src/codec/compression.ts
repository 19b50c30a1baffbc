/**
 * The compression of relay update archives, as bytes: which codec an archive's first bytes
 * show (bzip2, zstd, or a plain tar), and hop's relay record `.hop-format` (JSON
 * `{"v":1,"compression":"zstd"}`) that says which one a hop-only relay's clients write.
 * No record means bzip2: what Escale reads and every older hop writes.
 *
 * @module
 */
import { CodecError, EncodeError } from "./errors.ts";
import { type CodecInput, toText } from "./text.ts";

/** How update archives are compressed: `bzip2` (Escale's, the default), `zstd` or `none`. */
export type Compression = "bzip2" | "zstd" | "none";

/** Every compression, the default first. */
export const COMPRESSIONS: readonly Compression[] = ["bzip2", "zstd", "none"];

/** The compression a setting names (case-insensitive), or undefined for any other text. */
export function parseCompression(text: string): Compression | undefined {
  const t = text.trim().toLowerCase();
  return (COMPRESSIONS as readonly string[]).includes(t) ? t as Compression : undefined;
}

/** Bytes of an archive's head {@linkcode archiveFormat} needs to decide (a tar header's magic). */
export const FORMAT_HEAD_BYTES = 263;

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_BLOCK = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]; // pi: a block follows
const BZIP2_END = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90]; // sqrt(pi): an empty stream

function at(head: Uint8Array, off: number, bytes: number[]): boolean {
  return head.length >= off + bytes.length && bytes.every((b, i) => head[off + i] === b);
}

/**
 * The compression an archive's first bytes show: bzip2 (`BZh1`..`BZh9` then a block or the
 * end-of-stream marker), zstd (its frame magic), or `none` (a tar header: `ustar` at byte
 * 257). `undefined` when the bytes are none of these; give at least
 * {@linkcode FORMAT_HEAD_BYTES} bytes, or the whole archive when it is shorter.
 */
export function archiveFormat(head: Uint8Array): Compression | undefined {
  // a tar first: its first name may start with anything, even bzip2's magic
  if (at(head, 257, [0x75, 0x73, 0x74, 0x61, 0x72])) return "none";
  if (at(head, 0, ZSTD_MAGIC)) return "zstd";
  if (
    at(head, 0, [0x42, 0x5a, 0x68]) && head[3] >= 0x31 && head[3] <= 0x39 &&
    (at(head, 4, BZIP2_BLOCK) || at(head, 4, BZIP2_END))
  ) return "bzip2";
  return undefined;
}

/** Relay file of hop's relay record. */
export const FORMAT_FILE = ".hop-format";

/** The record's format version this build writes and reads. */
export const FORMAT_VERSION = 1;

/** What a hop-only relay records about its archives. */
export interface RelayFormat {
  compression: Compression;
}

/** The record's text. */
export function encodeRelayFormat(f: RelayFormat): string {
  if (!COMPRESSIONS.includes(f.compression)) {
    throw new EncodeError(FORMAT_FILE, `unknown compression ${JSON.stringify(f.compression)}`);
  }
  return JSON.stringify({ v: FORMAT_VERSION, compression: f.compression });
}

/**
 * Reads a record. A record this build cannot read (a newer version, a compression it does
 * not know) is a {@linkcode CodecError} saying to update hop; damage says to remove it.
 */
export function decodeRelayFormat(input: CodecInput, source = FORMAT_FILE): RelayFormat {
  const text = toText(input, FORMAT_FILE, source);
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    rec = undefined;
  }
  const r = rec as { v?: unknown; compression?: unknown } | undefined;
  if (!r || typeof r !== "object" || typeof r.v !== "number" || !Number.isInteger(r.v) || r.v < 1) {
    throw new CodecError(
      FORMAT_FILE,
      source,
      1,
      "not a hop relay record",
      `Remove ${source} only if no client uses zstd or none on this relay; otherwise restore ` +
        `it as {"v":1,"compression":"zstd"} (or "none").`,
    );
  }
  const newer = (what: string) =>
    new CodecError(
      FORMAT_FILE,
      source,
      1,
      `${what}: this hop build cannot read this relay's archives`,
      "A newer hop wrote this relay: update hop (the same version as the relay's other " +
        "clients). Nothing was read or written.",
    );
  if (r.v > FORMAT_VERSION) throw newer(`record version ${r.v}`);
  if (typeof r.compression !== "string") throw newer("no compression named");
  const c = parseCompression(r.compression);
  if (c === undefined || c !== r.compression) {
    throw newer(`compression ${JSON.stringify(r.compression)}`);
  }
  return { compression: c };
}
