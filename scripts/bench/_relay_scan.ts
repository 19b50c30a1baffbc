/**
 * Child process of the relay benchmark: the local half of a sync pass alone
 * (walk + checksum-cache lookup of every file, as a push plans it), printing
 * one JSON line `{files, filesRead, seconds}`. `filesRead` is the cache's own
 * count of files whose content was read and hashed.
 *
 * Usage: deno run -A scripts/bench/_relay_scan.ts FOLDER
 *
 * @module
 */
import process from "node:process";
import { openChecksumCache, scanFolder } from "../../src/relay/scan.ts";

const root = process.argv[2];
const started = performance.now();
const files = await scanFolder(root, { include: [], exclude: [] });
const cache = await openChecksumCache(root, "sha512");
for (const f of files.values()) await cache.checksum(f);
await cache.save(files);
console.log(JSON.stringify({
  files: files.size,
  filesRead: cache.filesRead,
  seconds: (performance.now() - started) / 1000,
}));
