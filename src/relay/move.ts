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
 * them: a copy marks its target (`.hop-moving`: the source, and the name and
 * size of every file the copy writes) until it is verified. A run from the
 * same source resumes: a file already there whole and equal to the source's is
 * kept (read, not written again), the others are written, what the cut copy
 * wrote that the source no longer holds is removed, and so are its temporary
 * files. A target that changed since the cut (a file the copy did not write,
 * or one of another size: something used the half-made copy) is refused, and
 * nothing of it is removed.
 *
 * Each relay argument is an address, or the name of a section of the
 * configuration (`-c FILE`, default as `hop relay sync`): the section's relay,
 * reached with its own credentials and TLS/SSH options. The configuration is
 * never edited; the command prints the line to change.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { open, rename, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createTarPacker } from "modern-tar";
import "../archive/web_compat.ts";
import { readTar } from "../archive/tar.ts";
import { parseRelayName } from "../codec/escale_index.ts";
import { HopError, UsageError } from "../errors.ts";
import type { Reporter } from "../ui/report.ts";
import { checkName, TEMP_PREFIX } from "./backend/types.ts";
import { defaultConfigFile } from "./command.ts";
import {
  DEFAULTS,
  type FolderConfig,
  loadRelayConfig,
  oneOffConfig,
  type RelayConfig,
} from "./config.ts";
import { openRelayIO, type RelayFile, type RelayIO, relayOptions } from "./io.ts";
import { acquireLock, type HeldLock, type LockInfo } from "./lock.ts";

/** How to reach the storages named on the command line (the one-off form's options). */
export interface MoveStorageOptions {
  /** SFTP: the private key's text and the host key's fingerprint. */
  sshKey?: string;
  hostKey?: string;
  /** Accept any TLS certificate or SSH host key. */
  insecure?: boolean;
  /** rclone's configuration file. */
  rcloneConfig?: string;
  /** `-c FILE`: where relay arguments that name a section are looked up. */
  configFile?: string;
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
  /** migrate, restore: files a cut run had written right, kept as they were. */
  kept?: number;
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

/** A relay named on the command line: how to reach it, and the section that named it. */
interface RelayEnd {
  cfg: FolderConfig;
  section?: { file: string; name: string };
}

/** An address with a scheme (`sftp://`, `rclone:`), or a path written as one (`/`, `./`, `../`). */
const ADDRESS = /^([a-z][a-z0-9+.-]*:|\/|\.\.?(\/|$))/i;

/**
 * Resolves the relay arguments of a command: an address (a scheme, or a path starting with
 * `/`, `./` or `../`) as written; a bare name as the section of that name in the
 * configuration, else as an existing file or folder; else a usage error listing the
 * sections. The configuration is read once, on the first bare name.
 */
function relayResolver(o: MoveOptions): (arg: string) => Promise<RelayEnd> {
  let loaded: Promise<{ file: string; conf: RelayConfig } | undefined> | undefined;
  const config = () =>
    loaded ??= (async () => {
      const file = o.configFile ?? await defaultConfigFile();
      if (!file) return undefined;
      const conf = await loadRelayConfig(file);
      if (!o.configFile) o.reporter.info(`using ${file}`, { event: "config", file });
      for (const w of conf.warnings) o.reporter.warn(w, { event: "config" });
      return { file, conf };
    })();
  const address = (arg: string): RelayEnd => ({
    cfg: oneOffConfig({
      local: ".",
      relay: arg,
      sshKey: o.sshKey,
      hostKey: o.hostKey,
      insecureTls: o.insecure,
      rcloneConfig: o.rcloneConfig,
      clientName: OWNER,
    }),
  });
  return async (arg) => {
    if (ADDRESS.test(arg)) return address(arg);
    const exists = await stat(arg).then(() => true, () => false);
    // a broken default configuration does not stand in the way of a folder named as before
    const c = await config().catch((e) => {
      if (exists && !o.configFile) return undefined;
      throw e;
    });
    const f = c?.conf.folders.find((f) => f.name === arg);
    if (c && f) {
      if (exists) {
        o.reporter.info(
          `${arg}: the section [${arg}] of ${c.file} (the folder of that name is ./${arg})`,
        );
      }
      return { cfg: f, section: { file: c.file, name: arg } };
    }
    const bad = c?.conf.errors.find((e) => e.section === arg);
    if (c && bad) {
      throw new HopError(`[${arg}] of ${c.file} cannot be used: ${bad.error.message}`, {
        hint: bad.error.hint,
        cause: bad.error,
      });
    }
    if (exists) return address(arg);
    const names = c
      ? [...c.conf.folders.map((f) => f.name), ...c.conf.errors.map((e) => e.section)]
      : [];
    throw new UsageError(
      `${arg} is neither a section of ${c ? c.file : "a configuration (none given or found)"} ` +
        "nor an existing file or folder",
      `${
        c ? `Its sections: ${names.map((n) => `[${n}]`).join(", ")}. ` : ""
      }A relay is a section name, an address (sftp://..., s3://..., rclone:...) or a folder; ` +
        `for a new folder here write ./${arg}.`,
    );
  };
}

/** Opens the relay of `end`. */
async function openAt(end: RelayEnd, create: boolean): Promise<RelayIO> {
  return await openRelayIO(end.cfg.relayUrl, { ...relayOptions(end.cfg), create });
}

/** The configuration line that names the relay of `cfg`, as a section would write it. */
function relayLine(cfg: FolderConfig): string {
  return cfg.relayUrl.startsWith("file:")
    ? `relay path = ${fileURLToPath(cfg.relayUrl)}`
    : `host address = ${cfg.relayUrl}`;
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
          holderGone: leftByDeadMove,
          onStale: (stale) => {
            if (leftByDeadMove(stale)) {
              r.info(`${label}: took over the lock of page ${page} a killed move left`);
            }
            return Promise.resolve();
          },
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

/**
 * True for a lock a move of this host left when it was killed (its process is gone): the
 * next run takes it over at once rather than after the lock timeout.
 */
function leftByDeadMove(info: LockInfo): boolean {
  if (info.owner !== OWNER || info.host !== hostname() || !info.pid) return false;
  try {
    process.kill(info.pid, 0);
    return false;
  } catch (e) {
    return (e as { code?: string }).code === "ESRCH";
  }
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

/** What a mark says: the source, and the sizes each file of the copy may have (by name). */
interface Mark {
  from: string;
  /** Absent in a mark of hop before 2026-12 (the source's name alone). */
  files?: Record<string, number[]>;
}

function parseMark(text: string): Mark {
  try {
    const m = JSON.parse(text);
    if (typeof m?.from === "string") return m;
  } catch {
    // the older mark: the source's name alone
  }
  return { from: text.trim() };
}

/** A target as found: the relay files a cut copy left there (none: a fresh copy), by size. */
interface TargetState {
  there: Map<string, number>;
}

/**
 * Throws unless the target holds no relay file, or only what a cut copy from `origin` left
 * (its mark says so, and none of them changed since). Removes the cut copy's temporary files.
 */
async function checkTarget(to: RelayIO, origin: string): Promise<TargetState> {
  const there = await relayFiles(to);
  if (there.length === 0) return { there: new Map() };
  const mark = await to.stat(MARKER)
    ? parseMark(new TextDecoder().decode(await to.readBytes(MARKER)))
    : undefined;
  if (mark?.from !== origin) {
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
  const changed = mark.files ? there.filter((f) => !mark.files![f.name]?.includes(f.size)) : [];
  if (changed.length > 0) {
    throw new HopError(
      `${to.label} changed since the copy from ${origin} was cut: ${
        changed.slice(0, 3).map((f) => `${f.name} (${f.size} bytes)`).join(", ")
      }${changed.length > 3 ? ", ..." : ""} ${
        changed.length === 1 ? "is" : "are"
      } not what the copy wrote; nothing was removed`,
      {
        hint: "Something used the half-made copy (a client syncing through it?). Point it back " +
          "at the source, then empty the target and run the command again: the source is intact.",
      },
    );
  }
  for (const f of await to.list()) {
    if (f.name.startsWith(TEMP_PREFIX)) await to.delete(f.name);
  }
  return { there: new Map(there.map((f) => [f.name, f.size])) };
}

/** Marks `to` as the target of a copy from `origin` writing `files` (besides what is there). */
async function markTarget(
  to: RelayIO,
  origin: string,
  files: { name: string; size: number }[],
  t: TargetState,
): Promise<Record<string, number[]>> {
  const plan: Record<string, number[]> = {};
  for (const [name, size] of t.there) plan[name] = [size];
  for (const f of files) {
    const sizes = plan[f.name] ??= [];
    if (!sizes.includes(f.size)) sizes.push(f.size);
  }
  await writeMark(to, origin, plan);
  return plan;
}

async function writeMark(to: RelayIO, origin: string, plan: Record<string, number[]>) {
  await to.write(MARKER, new TextEncoder().encode(JSON.stringify({ from: origin, files: plan })));
}

/**
 * Whether the target already holds `name` as the source has it (a resumed copy): the target's
 * file is read and compared with `source`'s digest. False when it is not there or differs.
 */
async function alreadyThere(
  to: RelayIO,
  t: TargetState,
  name: string,
  size: number,
  source: () => Promise<{ sha: string; bytes: number }>,
): Promise<{ sha: string; bytes: number } | undefined> {
  if (t.there.get(name) !== size) return undefined;
  const mine = await digestOf(await to.read(name));
  const want = await source();
  return mine.sha === want.sha && mine.bytes === want.bytes ? want : undefined;
}

/** Removes what a cut copy wrote that this one did not (the source no longer holds it). */
async function dropLeftovers(to: RelayIO, t: TargetState, now: Set<string>): Promise<number> {
  let n = 0;
  for (const name of t.there.keys()) {
    if (!now.has(name)) {
      await to.delete(name);
      n++;
    }
  }
  return n;
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
  const lookup = relayResolver(o);
  const fromEnd = await lookup(from);
  const toEnd = await lookup(to);
  const src = await openAt(fromEnd, false);
  try {
    const dst = await openAt(toEnd, true);
    try {
      const files = await relayFiles(src);
      if (files.length === 0) {
        throw new HopError(`${src.label} holds no relay files: nothing to migrate`, {
          hint: "Check the source address (a relay has .0.index and .hop-client-* files).",
        });
      }
      const target = await checkTarget(dst, src.label);
      const release = await lockPages(src, files, src.label, o.lockWaitMs ?? 120_000, r);
      const copied = new Map<string, { sha: string; bytes: number }>();
      const written = new Map<string, { sha: string; bytes: number }>();
      let dropped = 0;
      try {
        // the listing again, under the locks: what no client changes until the end
        const listing = await relayFiles(src);
        const plan = await markTarget(dst, src.label, listing, target);
        for (const f of listing) {
          const kept = await alreadyThere(
            dst,
            target,
            f.name,
            f.size,
            async () => digestOf(await src.read(f.name)),
          );
          if (kept) {
            copied.set(f.name, kept);
            continue;
          }
          const h = hashing(await src.read(f.name));
          await dst.write(f.name, h.stream);
          const d = h.digest();
          copied.set(f.name, d);
          written.set(f.name, d);
          // a registration a client refreshed meanwhile: the mark learns its size
          if (!plan[f.name].includes(d.bytes)) {
            plan[f.name].push(d.bytes);
            await writeMark(dst, src.label, plan);
          }
        }
        await verify(dst, written, dst.label);
        dropped = await dropLeftovers(dst, target, new Set(copied.keys()));
        await dst.delete(MARKER);
      } finally {
        await release();
      }
      const bytes = [...copied.values()].reduce((s, d) => s + d.bytes, 0);
      const kept = copied.size - written.size;
      r.info(
        `relay migrate: ${copied.size} file(s), ${bytes} bytes copied from ${src.label} to ` +
          `${dst.label} and verified${resumed(target, kept, dropped)}; the source is ` +
          "unchanged: point the clients at the new relay, then remove the old one",
        {
          event: "migrate",
          files: copied.size,
          bytes,
          kept,
          from: src.label,
          to: dst.label,
        },
      );
      sayConfigChange(r, fromEnd, toEnd, o);
      return { files: copied.size, bytes, kept };
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

/** The words of a resumed copy: how many files the cut run had written right. */
function resumed(t: TargetState, kept: number, dropped: number): string {
  if (t.there.size === 0) return "";
  return ` (resumed a cut copy: ${kept} file(s) it wrote were kept as they were` +
    (dropped ? `, ${dropped} the source no longer holds removed` : "") + ")";
}

/**
 * After a migrate from a section: the line of the configuration to change, which hop never
 * edits (the user may keep the old relay, or other hosts read the same file).
 */
function sayConfigChange(r: Reporter, from: RelayEnd, to: RelayEnd, o: MoveOptions): void {
  if (!from.section) return;
  const { file, name } = from.section;
  const keys = [
    o.sshKey && !to.section ? "ssh key = FILE" : "",
    o.hostKey && !to.section ? `host key = ${o.hostKey}` : "",
  ].filter(Boolean);
  const line = relayLine(to.cfg);
  r.info(
    to.section
      ? `${file} is unchanged: [${name}] still names the old relay; to move its clients to ` +
        `the copy, give [${name}] the relay of [${to.section.name}] (${line}${
          to.cfg.user ? ", with its login" : ""
        }) in place of its ` +
        "relay lines, or sync them with that section"
      : `${file} is unchanged: to move the clients of [${name}] to the copy, replace its relay ` +
        `lines (host address, host directory, protocol, port) with: ${line}` +
        (keys.length ? `, and add ${keys.join(", ")}` : ""),
    { event: "config-change", file, section: name, line },
  );
}

/**
 * `hop relay backup RELAY FILE`: the relay's files as one tar archive (written to a
 * temporary name, read back and checked, then renamed to `file`).
 */
export async function backupRelay(from: string, file: string, o: MoveOptions): Promise<MoveResult> {
  const r = o.reporter;
  const src = await openAt(await relayResolver(o)(from), false);
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
  const names = new Map<string, number>();
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
      if (names.has(e.path)) throw notBackup(file, `${e.path} is in it twice`);
      names.set(e.path, e.size);
      await e.body.cancel();
    }
  } finally {
    await fh0.close();
  }
  if (names.size === 0) throw notBackup(file, "it holds no file");
  const dst = await openAt(await relayResolver(o)(to), true);
  try {
    const origin = `the backup ${resolve(file)}`;
    const target = await checkTarget(dst, origin);
    await markTarget(dst, origin, [...names].map(([name, size]) => ({ name, size })), target);
    const copied = new Map<string, { sha: string; bytes: number }>();
    const written = new Map<string, { sha: string; bytes: number }>();
    /** Files a cut run left that differ from the archive's: written in a second pass. */
    const again = new Set<string>();
    const pass = async (only?: Set<string>) => {
      const fh = await open(file, "r");
      try {
        for await (const e of readTar(fh.readableWebStream() as ReadableStream<Uint8Array>)) {
          if (only && !only.has(e.path)) {
            await e.body.cancel();
            continue;
          }
          if (!only && target.there.get(e.path) === e.size) {
            const kept = await alreadyThere(dst, target, e.path, e.size, () => digestOf(e.body));
            if (kept) copied.set(e.path, kept);
            else again.add(e.path);
            continue;
          }
          const h = hashing(e.body);
          await dst.write(e.path, h.stream);
          const d = h.digest();
          copied.set(e.path, d);
          written.set(e.path, d);
        }
      } finally {
        await fh.close();
      }
    };
    await pass();
    if (again.size > 0) await pass(again);
    await verify(dst, written, dst.label);
    const dropped = await dropLeftovers(dst, target, new Set(copied.keys()));
    await dst.delete(MARKER);
    const bytes = [...copied.values()].reduce((s, d) => s + d.bytes, 0);
    const kept = copied.size - written.size;
    r.info(
      `relay restore: ${copied.size} file(s), ${bytes} bytes from ${file} on ${dst.label} ` +
        `(verified)${resumed(target, kept, dropped)}`,
      { event: "restore", files: copied.size, bytes, kept, relay: dst.label, archive: file },
    );
    return { files: copied.size, bytes, kept };
  } finally {
    await dst.close();
  }
}

function notBackup(file: string, why: string): HopError {
  return new HopError(`${file} is not a relay backup: ${why}`, {
    hint: "Give the file hop relay backup wrote (a tar of the relay's files).",
  });
}
