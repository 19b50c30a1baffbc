/**
 * A relay on any storage driver: the flat relay folder is the driver's root.
 * Exclusive creates (page locks) use the claim folders of `exclusive.ts`
 * wherever the driver makes folders atomically (folder, FTP, SFTP, WebDAV
 * servers that refuse an existing collection), so clients of every one of
 * those kinds sharing one storage exclude each other; elsewhere (S3, rclone
 * remotes, WebDAV servers that accept MKCOL twice) they use the driver's own
 * exclusive create (`If-None-Match: *` where honoured, else the listing
 * scheme of `../../storage/exclusive.ts`).
 *
 * @module
 */
import { collect } from "../../storage/streams.ts";
import { type Driver, type Entry, StorageError } from "../../storage/types.ts";
import { type ClaimOps, claimState, createExclusive, deleteWithClaim } from "./exclusive.ts";
import { checkName, CLAIM_SUFFIX, type RelayBackend, type RelayFile } from "./types.ts";

/** The relay view of `d`; `claimGraceMs`: how long a claim folder without its file is tolerated (default 60 s). */
export function relayOnDriver(d: Driver, opts: { claimGraceMs?: number } = {}): RelayBackend {
  const claims = claimState(opts.claimGraceMs);
  const file = (e: Entry): RelayFile => {
    if (e.mtimeMs === null) {
      throw new StorageError(
        "unsupported",
        `relay ${d.label}: the server tells no mtime of ${e.name}`,
        {
          hint:
            "Relays need modification times: over FTP, a server with MLST or MDTM (most have them).",
        },
      );
    }
    return { name: e.name, size: e.size, mtimeMs: e.mtimeMs };
  };
  const stat = async (name: string) => {
    checkName(name);
    const e = await d.stat(name);
    return e && !e.isDir ? file(e) : null;
  };
  const ops: ClaimOps = {
    mkdir: (n) => d.mkdir(n),
    rmdir: (n) => d.rmdir(n),
    exists: async (n) => (await stat(n)) !== null,
    writeAtomic: async (n, data) => void await d.write(n, data),
    unlink: async (n) => void await d.delete(n),
  };
  return {
    label: d.label,
    list: async () => (await d.list("")).filter((e) => !e.isDir).map(file),
    async listClaims() {
      if (!d.caps.atomicMkdir) return [];
      return (await d.list(""))
        .filter((e) => e.isDir && e.name.endsWith(CLAIM_SUFFIX))
        .map((e) => ({ name: e.name, size: 0, mtimeMs: e.mtimeMs ?? NaN }));
    },
    stat,
    read(name) {
      checkName(name);
      return d.read(name);
    },
    async readBytes(name) {
      checkName(name);
      return await collect(await d.read(name));
    },
    async write(name, data) {
      checkName(name);
      await d.write(name, data);
    },
    async createExclusive(name, data) {
      checkName(name);
      if (d.caps.atomicMkdir) return await createExclusive(ops, claims, name, data);
      return await d.createExclusive(name, data);
    },
    async delete(name) {
      checkName(name);
      if (d.caps.atomicMkdir) await deleteWithClaim(ops, name);
      else await d.delete(name);
    },
    async rename(from, to) {
      checkName(from);
      checkName(to);
      if (!d.rename) {
        throw new StorageError("unsupported", `relay ${d.label}: the storage cannot rename`);
      }
      await d.rename(from, to);
    },
    async setMtime(name, mtimeMs) {
      checkName(name);
      if (!d.setMtime) {
        throw new StorageError(
          "unsupported",
          `relay ${d.label}: the storage cannot set modification times`,
        );
      }
      await d.setMtime(name, mtimeMs);
    },
    close: () => d.close(),
  };
}
