/**
 * The public codec API: pure text/bytes <-> typed value conversions for every
 * on-disk and on-relay format hop reads or writes. Decoders take a `string`
 * or UTF-8 `Uint8Array` plus a `source` name and throw `CodecError` (source,
 * 1-based line) on malformed input; encoders throw `EncodeError` for values
 * the format cannot hold.
 *
 * @module
 */
export { CodecError, EncodeError } from "./errors.ts";
export type { CodecInput } from "./text.ts";
export * from "./compression.ts";
export * from "./escale_index.ts";
export * from "./lease.ts";
export * from "./lock.ts";
export * from "./names.ts";
export * from "./link.ts";
export * from "./passwd.ts";
export * from "./queue_job.ts";
