/**
 * Moving a relay: `hop relay migrate FROM TO` copies every file of a relay to
 * another storage (any two drivers: a folder, FTP(S), SFTP, WebDAV, S3, an
 * rclone remote), `hop relay backup RELAY FILE` writes them into one tar
 * archive, and `hop relay restore FILE RELAY` puts an archive's files into a
 * relay. Like `escalectl migrate`, the copy is made under the source's page
 * locks (taken as `hop-migrate`, refreshed while the copy runs), so no client
 * changes a page half-way; then every copied file is read back and checked
 * against the SHA-256 of what was read. The source is never changed (its
 * locks come and go): clients still pointed at it lose nothing, and it can be
 * removed by hand once they use the copy.
 *
 * What is copied: the pages' indexes, updates and data, client
 * registrations, deletion records, the encryption check — every file but page
 * locks, temporary files and takeover guards (which belong to one moment).
 * The target must hold no relay file (a relay in use there is never mixed
 * with or overwritten by this one), unless a cut run of the same copy left
 * them: a copy marks its target (`.hop-moving`, naming the source) until it
 * is verified, and a run from the same source writes everything again.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { resolve } from "node:path";
import { createTarPacker } from "modern-tar";
import "../archive/web_compat.ts";
import { readTar } from "../archive/tar.ts";
import { parseRelayName } from "../codec/escale_index.ts";
import { HopError } from "../errors.ts";
import type { Reporter } from "../ui/report.ts";
import { checkName, TEMP_PREFIX } from "./backend/types.ts";
import { DEFAULTS, oneOffConfig } from "./config.ts";
import { openRelayIO, type RelayFile, type RelayIO, relayOptions } from "./io.ts";
import { acquireLock, type HeldLock } from "./lock.ts";

/** How to reach the storages named on the command line (the one-off form's options). */
export interface MoveStorageOptions {
  /** SFTP: the private key's text and the host key's fingerprint. */
  sshKey?: string;
  hostKey?: string;
  /** Accept any TLS certificate or SSH host key. */
  insecure?: boolean;
  /** rclone's configuration file. */
  rcloneConfig?: string;
}

/** Options of the three commands. */
export interface MoveOptions extends MoveStorageOptions {
  reporter: Reporter;
  /** How long to wait for a page lock another client holds, ms (default 120 s). */
  lockWaitMs?: number;
}

/** What a copy did. */
export interface MoveResult {
  files: number;
  bytes: number;
}

/** The owner name of the locks a move takes. */
const OWNER = "hop-migrate";

/** The mark of a copy under way on its target: the source's name in it. */
const MARKER = ".hop-moving";

/** True for files that belong to one moment and are never copied. */
function transient(name: string): boolean {
  return name.startsWith(TEMP_PREFIX) || name.startsWith(".hop-takeover-") || name === MARKER ||
    parseRelayName(name)?.kind === "lock";
}

/** Opens the relay at `address` (a path or any storage address). */
async function openAt(address: string, o: MoveStorageOptions, create: boolean): Promise<RelayIO> {
  const cfg = oneOffConfig({
    local: ".",
    relay: address,
    sshKey: o.sshKey,
    hostKey: o.hostKey,
    insecureTls: o.insecure,
    rcloneConfig: o.rcloneConfig,
    clientName: OWNER,
  });
  return await openRelayIO(cfg.relayUrl, { ...relayOptions(cfg), create });
}

/** The files of `io` worth copying, by name. */
async function relayFiles(io: RelayIO): Promise<RelayFile[]> {
  return (await io.list()).filter((f) => !transient(f.name))
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * Takes the lock of every page of `files` on `io` (waiting up to `waitMs` for each that
 * another client holds) and keeps them fresh until the returned release is called.
 */
async function lockPages(
  io: RelayIO,
  files: RelayFile[],
  label: string,
  waitMs: number,
  r: Reporter,
): Promise<() => Promise<void>> {
  const pages = [
    ...new Set(files.flatMap((f) => {
      const n = parseRelayName(f.name);
      return n ? [n.page] : [];
    })),
  ].sort();
  const held: HeldLock[] = [];
  const releaseAll = async () => {
    for (const h of held.splice(0)) await h.release().catch(() => {});
  };
  try {
    for (const page of pages) {
      const deadline = Date.now() + waitMs;
      let told = false;
      for (;;) {
        const h = await acquireLock(io, page, {
          owner: OWNER,
          mode: "r",
          timeoutSeconds: DEFAULTS.lockTimeoutSeconds,
        });
        if (h) {
          held.push(h);
          break;
        }
        if (Date.now() > deadline) {
          throw new HopError(`page ${page} of ${label} stayed locked by another client`, {
            hint: "A client is syncing through it: run the command again when it is idle " +
              "(hop relay status shows the locks).",
          });
        }
        if (!told) {
          r.info(`${label}: page ${page} is locked by a client; waiting for it`);
          told = true;
        }
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
  } catch (e) {
    await releaseAll();
    throw e;
  }
  // refreshed well within the lock timeout, so no client takes a held page over
  const timer = setInterval(() => {
    for (const h of held) h.refresh().catch(() => {});
  }, 60_000);
  return async () => {
    clearInterval(timer);
    await releaseAll();
  };
}

/** A stream that hashes what passes; `digest()` once it ended. */
function hashing(stream: ReadableStream<Uint8Array>) {
  const h = createHash("sha256");
  let bytes = 0;
  const out = stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        h.update(chunk);
        bytes += chunk.byteLength;
        c.enqueue(chunk);
      },
    }),
  );
  return { stream: out, digest: () => ({ sha: h.digest("hex"), bytes }) };
}

/** SHA-256 and size of a whole stream. */
async function digestOf(
  stream: ReadableStream<Uint8Array>,
): Promise<{ sha: string; bytes: number }> {
  const h = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    h.update(chunk);
    bytes += chunk.byteLength;
  }
  return { sha: h.digest("hex"), bytes };
}

/**
 * Throws unless the target holds no relay file, or only what a cut copy from `origin` left
 * (its mark says so); then marks it as the target of this copy.
 */
async function claimTarget(to: RelayIO, origin: string): Promise<void> {
  const there = await relayFiles(to);
  if (there.length > 0) {
    const mark = await to.stat(MARKER) ? new TextDecoder().decode(await to.readBytes(MARKER)) : "";
    if (mark.trim() !== origin) {
      throw new HopError(
        `${to.label} already holds relay files (${there.slice(0, 3).map((f) => f.name).join(", ")}${
          there.length > 3 ? ", ..." : ""
        }): hop copies a relay only into an empty place`,
        {
          hint: "Give an empty folder, bucket or remote: a relay in use there would be mixed " +
            "with this one. Remove those files first if they are not needed.",
        },
      );
    }
  }
  await to.write(MARKER, new TextEncoder().encode(origin + "\n"));
}

/** Reads every file of `want` back from `to` and compares it with what was written. */
async function verify(
  to: RelayIO,
  want: Map<string, { sha: string; bytes: number }>,
  label: string,
): Promise<void> {
  for (const [name, w] of want) {
    const got = await digestOf(await to.read(name));
    if (got.sha !== w.sha || got.bytes !== w.bytes) {
      throw new HopError(
        `${name} on ${label} differs from the source after the copy (${got.bytes} bytes, ` +
          `expected ${w.bytes})`,
        { hint: "The storage changed or lost it: run the command again (the source is intact)." },
      );
    }
  }
}

/**
 * `hop relay migrate FROM TO`: copies the relay, verifies the copy, leaves the source as it
 * was. See the module doc.
 */
export async function migrateRelay(
  from: string,
  to: string,
  o: MoveOptions,
): Promise<MoveResult> {
  const r = o.reporter;
  const src = await openAt(from, o, false);
  try {
    const dst = await openAt(to, o, true);
    try {
      const files = await relayFiles(src);
      if (files.length === 0) {
        throw new HopError(`${src.label} holds no relay files: nothing to migrate`, {
          hint: "Check the source address (a relay has .0.index and .hop-client-* files).",
        });
      }
      await claimTarget(dst, src.label);
      const release = await lockPages(src, files, src.label, o.lockWaitMs ?? 120_000, r);
      const copied = new Map<string, { sha: string; bytes: number }>();
      try {
        // the listing again, under the locks: what no client changes until the end
        for (const f of await relayFiles(src)) {
          const h = hashing(await src.read(f.name));
          await dst.write(f.name, h.stream);
          copied.set(f.name, h.digest());
        }
        await verify(dst, copied, dst.label);
        await dst.delete(MARKER);
      } finally {
        await release();
      }
      const bytes = [...copied.values()].reduce((s, d) => s + d.bytes, 0);
      r.info(
        `relay migrate: ${copied.size} file(s), ${bytes} bytes copied from ${src.label} to ` +
          `${dst.label} and verified; the source is unchanged: point the clients at the new ` +
          "address, then remove the old relay",
        { event: "migrate", files: copied.size, bytes, from: src.label, to: dst.label },
      );
      return { files: copied.size, bytes };
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

/**
 * `hop relay backup RELAY FILE`: the relay's files as one tar archive (written to a
 * temporary name, read back and checked, then renamed to `file`).
 */
export async function backupRelay(from: string, file: string, o: MoveOptions): Promise<MoveResult> {
  const r = o.reporter;
  const src = await openAt(from, o, false);
  const tmp = `${file}.hop-part`;
  try {
    const files = await relayFiles(src);
    if (files.length === 0) {
      throw new HopError(`${src.label} holds no relay files: nothing to back up`, {
        hint: "Check the relay address (a relay has .0.index and .hop-client-* files).",
      });
    }
    const release = await lockPages(src, files, src.label, o.lockWaitMs ?? 120_000, r);
    const written = new Map<string, { sha: string; bytes: number }>();
    try {
      const { readable, controller } = createTarPacker();
      const fh = await open(tmp, "w");
      const saved = (async () => {
        try {
          for await (const chunk of readable) await fh.write(chunk);
          await fh.sync();
        } finally {
          await fh.close();
        }
      })();
      saved.catch(() => {});
      try {
        for (const f of await relayFiles(src)) {
          const h = hashing(await src.read(f.name));
          const body = controller.add({
            name: f.name,
            type: "file",
            size: f.size,
            mode: 0o644,
            mtime: new Date(Math.floor(f.mtimeMs / 1000) * 1000),
          });
          await h.stream.pipeTo(body);
          const d = h.digest();
          if (d.bytes !== f.size) {
            throw new HopError(`${f.name} changed size while it was read (${d.bytes}, ${f.size})`, {
              hint: "Run the backup again.",
            });
          }
          written.set(f.name, d);
        }
        controller.finalize();
      } catch (e) {
        controller.error(e);
        throw e;
      }
      await saved;
    } finally {
      await release();
    }
    // read back: every file whole, nothing else
    const seen = new Map<string, { sha: string; bytes: number }>();
    const fh = await open(tmp, "r");
    try {
      for await (const e of readTar(fh.readableWebStream() as ReadableStream<Uint8Array>)) {
        seen.set(e.path, await digestOf(e.body));
      }
    } finally {
      await fh.close();
    }
    for (const [name, d] of written) {
      const s = seen.get(name);
      if (!s || s.sha !== d.sha) {
        throw new HopError(`the archive ${file} does not hold ${name} as it was read`, {
          hint: "Check the disk it was written to, and run the backup again.",
        });
      }
    }
    await rename(tmp, file);
    const bytes = [...written.values()].reduce((s, d) => s + d.bytes, 0);
    r.info(
      `relay backup: ${written.size} file(s), ${bytes} bytes of ${src.label} in ${file} (checked)`,
      { event: "backup", files: written.size, bytes, relay: src.label, archive: file },
    );
    return { files: written.size, bytes };
  } finally {
    await rm(tmp, { force: true });
    await src.close();
  }
}

/**
 * `hop relay restore FILE RELAY`: an archive of `backupRelay` into a relay that holds none
 * of another relay's files; each file is read back and checked.
 */
export async function restoreRelay(file: string, to: string, o: MoveOptions): Promise<MoveResult> {
  const r = o.reporter;
  // the archive first: its names, and that it is whole
  const names = new Set<string>();
  const fh0 = await open(file, "r").catch((e) => {
    throw new HopError(`cannot read the archive ${file}: ${(e as Error).message}`, {
      hint: "Give the file hop relay backup wrote.",
    });
  });
  try {
    for await (const e of readTar(fh0.readableWebStream() as ReadableStream<Uint8Array>)) {
      if (e.type !== "file") throw notBackup(file, `${e.path} is not a file`);
      try {
        checkName(e.path);
      } catch {
        throw notBackup(file, `${JSON.stringify(e.path)} is not a relay file name`);
      }
      if (transient(e.path)) throw notBackup(file, `${e.path} is a lock or a temporary file`);
      names.add(e.path);
      await e.body.cancel();
    }
  } finally {
    await fh0.close();
  }
  if (names.size === 0) throw notBackup(file, "it holds no file");
  const dst = await openAt(to, o, true);
  try {
    await claimTarget(dst, `the backup ${resolve(file)}`);
    const written = new Map<string, { sha: string; bytes: number }>();
    const fh = await open(file, "r");
    try {
      for await (const e of readTar(fh.readableWebStream() as ReadableStream<Uint8Array>)) {
        const h = hashing(e.body);
        await dst.write(e.path, h.stream);
        written.set(e.path, h.digest());
      }
    } finally {
      await fh.close();
    }
    await verify(dst, written, dst.label);
    await dst.delete(MARKER);
    const bytes = [...written.values()].reduce((s, d) => s + d.bytes, 0);
    r.info(
      `relay restore: ${written.size} file(s), ${bytes} bytes from ${file} on ${dst.label} ` +
        "(verified)",
      { event: "restore", files: written.size, bytes, relay: dst.label, archive: file },
    );
    return { files: written.size, bytes };
  } finally {
    await dst.close();
  }
}

function notBackup(file: string, why: string): HopError {
  return new HopError(`${file} is not a relay backup: ${why}`, {
    hint: "Give the file hop relay backup wrote (a tar of the relay's files).",
  });
}
