/**
 * The public codec API: pure text/bytes <-> typed value conversions for every
 * on-disk and on-relay format hop reads or writes.
 *
 * @module
 */
export { CodecError, EncodeError } from "./errors.ts";
export type { CodecInput } from "./text.ts";
export * from "./escale_index.ts";
