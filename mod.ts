/**
 * hop as a library: the codecs, the tar.bz2 engine, relay sync, the FTP server
 * engine and the FTP cluster, as the `hop` command uses them.
 *
 * @example Round-trip an Escale update index
 * ```ts
 * import { decodeUpdateIndex, encodeUpdateIndex } from "./mod.ts";
 * const idx = decodeUpdateIndex(text, ".0.1795372303.index");
 * idx.pullers.push("bob");
 * const again = encodeUpdateIndex(idx);
 * ```
 *
 * @example Write and extract a tar.bz2 on the parallel WebAssembly bzip2 engine
 * ```ts
 * import { extractArchive, writeArchiveFile } from "./mod.ts";
 * await writeArchiveFile("out.tar.bz2", { root: "tree", files: ["a.txt", "sub/b.bin"] });
 * ```
 *
 * @example Serve a folder over FTP
 * ```ts
 * import { serveFolder } from "./mod.ts";
 * const srv = await serveFolder({ root: "/srv/node", port: 2122, user: "node", password: "pw" });
 * await srv.close();
 * ```
 *
 * @module
 */

// Errors every part of hop throws.
export { HopError, UsageError } from "./src/errors.ts";

// Codecs: pure bytes <-> values for every format hop reads or writes.
export * from "./src/codec/mod.ts";

// The archive engine.
export {
  closePool,
  compressBytes,
  compressStream,
  decompressBytes,
  decompressStream,
} from "./src/archive/bzip2.ts";
export {
  type ArchiveEntry,
  readArchive,
  writeArchive,
  writeArchiveFile,
  type WriteArchiveOptions,
} from "./src/archive/tar.ts";
export {
  extractArchive,
  type ExtractOptions,
  type ExtractResult,
  UnsafeEntryError,
} from "./src/archive/extract.ts";

// Relay sync.
export { openBackend, type RelayBackend, type RelayFile } from "./src/relay/backend/mod.ts";
export {
  relayForget,
  relayStatus,
  type RelaySyncOptions,
  type RelaySyncSummary,
  runRelaySync,
} from "./src/relay/command.ts";

// FTP server engine and the plain folder node.
export { serveFolder, type ServeFolderOptions, startFtpServer } from "./src/ftp/node_serve.ts";
export type {
  FtpAuthorizer,
  FtpFileInfo,
  FtpFileSystem,
  FtpSiteHandler,
  FtpUpload,
  FtpUser,
} from "./src/ftp/types.ts";

// The FTP cluster.
export {
  type ClusterServer,
  serveCluster,
  type ServeClusterOptions,
  storeClusterOnce,
} from "./src/cluster/serve.ts";
export { addUser, deleteUser, listUsers, setPassword } from "./src/cluster/users.ts";

// Output for people and scripts.
export { createReporter, type Reporter } from "./src/ui/report.ts";
