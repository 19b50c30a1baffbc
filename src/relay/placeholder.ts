/**
 * Escale's default relay scheme (a section with no `index` line, Escale's
 * "placeholder" scheme): one pass of sync for one folder. The relay mirrors
 * the folder tree (`../codec/escale_placeholder.ts`): `dir/name` is a file's
 * content while it waits to be pulled, `dir/.name.placeholder` its metadata
 * (kept), `dir/.name.lock` a lock held during a transfer.
 *
 * As Escale 0.7.13 does it, read from its `relay/relay.py` and
 * `manager/manager.py`:
 * - push: lock the file (`mode: w`), write the placeholder (pusher, mtime in
 *   whole seconds, SHA-512 of the plain file, no pullers), then the content
 *   (encrypted whole when `encryption` is on), release the lock;
 * - pull: the files whose content is on the relay and not locked; lock
 *   (`mode: r`), read the content, remove it from the relay, append this
 *   client to the placeholder's pullers, release the lock; the local file
 *   gets the placeholder's mtime.
 *
 * Where hop differs, so that no edit is lost: decisions are by content
 * (`reconcile.ts`, as in the index scheme) rather than by mtime — when both
 * sides changed a file, the relay's version takes the name and the local one
 * becomes a conflict copy that is pushed as a new file; a push never
 * replaces a placeholder this client did not agree with. A relay version this
 * client never got and can no longer fetch (another client pulled it) is
 * asked for again by removing its placeholder, which is how Escale itself
 * asks (`releasePlace`): every holder then pushes it anew. The content is
 * removed once `puller count` clients (default 1) pulled it, not at the
 * first pull. Locks are created exclusively, and every lock held by another
 * client is named on each pass (a client that stopped in a transfer leaves
 * one; Escale 0.7.13 over FTP does when it pulls a file in a folder before
 * its first push in a process). Deletions are not propagated (Escale has no
 * way to say one).
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdir, readFile, rename, rm, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import {
  decodePlaceholder,
  encodePlaceholder,
  lockFileName,
  parsePlaceholderName,
  type Placeholder,
  placeholderFileName,
} from "../codec/escale_placeholder.ts";
import { PLACEHOLDER } from "../codec/escale_index.ts";
import { decodeLock, encodeLock } from "../codec/lock.ts";
import { explainError, HopError } from "../errors.ts";
import { collect } from "../storage/streams.ts";
import { type Driver, type Entry, joinPath, parentOf } from "../storage/types.ts";
import { pathSelected } from "./config.ts";
import { escaleDecrypt, escaleEncrypt } from "./escale_crypt.ts";
import { entryBase } from "./pages.ts";
import { keepLocalAsCopy, localPathProblem, localSum, pathState, settle } from "./pull.ts";
import { conflictName, decideIncoming, type RelayVersion } from "./reconcile.ts";
import { isHiddenPath, type LocalFile, scanFolder, STATE_DIR, wholeMs } from "./scan.ts";
import { saveState, setBase } from "./state.ts";
import { emptyPassResult, type PassResult, type SyncContext } from "./sync.ts";

/** One path of the relay: which of its three files are there. */
export interface RelayPath {
  path: string;
  file?: Entry;
  placeholder?: Entry;
  lock?: Entry;
}

/**
 * Lists the relay tree: every path with a content, placeholder or lock file;
 * `other` gets every other file of the synced folders (hidden names: temp
 * files, other tools' files) with its path.
 */
export async function listTree(
  tree: Driver,
  other?: (path: string, e: Entry) => void,
): Promise<Map<string, RelayPath>> {
  const out = new Map<string, RelayPath>();
  const walk = async (dir: string) => {
    for (const e of await tree.list(dir)) {
      if (e.isDir) {
        // hidden folders are never synced (nor are what other tools keep there)
        if (!e.name.startsWith(".")) await walk(joinPath(dir, e.name));
        continue;
      }
      const n = parsePlaceholderName(e.name);
      if (n.kind === "other") {
        other?.(joinPath(dir, e.name), e);
        continue;
      }
      const path = joinPath(dir, n.kind === "file" ? e.name : n.target);
      let p = out.get(path);
      if (!p) out.set(path, p = { path });
      p[n.kind] = e;
    }
  };
  await walk("");
  return out;
}

/** The relay path of `path`'s placeholder or lock (`side`: `placeholderFileName`, `lockFileName`). */
export function sidePath(path: string, side: (name: string) => string): string {
  const slash = path.lastIndexOf("/");
  return path.slice(0, slash + 1) + side(path.slice(slash + 1));
}

/**
 * The relay version a placeholder describes; `content`: the checksum of its
 * content as read, for a placeholder that has none (`checksum = no`, pre-0.5).
 */
function versionOf(path: string, p: Placeholder, content = ""): RelayVersion {
  const m = p.meta;
  return {
    checksum: m.checksum || content,
    timestamp: m.timestamp,
    pusher: m.pusher,
    base: entryBase({ path, meta: m }),
  };
}

/** The placeholder of `path` (null when there is none); malformed: a CodecError. */
export async function readPlaceholder(
  ctx: SyncContext,
  path: string,
): Promise<Placeholder | null> {
  const name = sidePath(path, placeholderFileName);
  let bytes: Uint8Array;
  try {
    bytes = await collect(await ctx.tree!.read(name));
  } catch (e) {
    if ((e as { kind?: string }).kind === "missing") return null;
    throw e;
  }
  return decodePlaceholder(bytes, `${ctx.tree!.label}/${name}`);
}

/** Takes the lock of `path` for this client; false when another client holds it. */
export async function lockPath(ctx: SyncContext, path: string, mode: "r" | "w"): Promise<boolean> {
  const text = encodeLock({
    owner: ctx.cfg.clientName,
    mode,
    acquired: ctx.now(),
    host: hostname(),
    pid: process.pid,
    token: randomBytes(8).toString("hex"),
  });
  // a new file's folder is made first (exclusive creates need their folder)
  if (mode === "w" && path.includes("/")) await ctx.tree!.mkdir(parentOf(path));
  return await ctx.tree!.createExclusive(
    sidePath(path, lockFileName),
    new TextEncoder().encode(text),
  );
}

/** Releases the lock of `path`. */
export async function unlockPath(ctx: SyncContext, path: string): Promise<void> {
  await ctx.tree!.delete(sidePath(path, lockFileName));
}

/**
 * Removes the lock of `r` when it is older than `lock timeout` (its holder
 * crashed: Escale's own locks never expire); true when it did.
 */
async function dropStaleLock(ctx: SyncContext, r: RelayPath): Promise<boolean> {
  if (!r.lock?.mtimeMs) return false;
  const ageS = (ctx.now() - r.lock.mtimeMs) / 1000;
  if (!(ageS > ctx.cfg.lockTimeoutSeconds)) return false;
  ctx.reporter.warn(
    `${ctx.cfg.name}: ${r.path}: took over the lock of ${await lockHolder(ctx, r)}, older than ` +
      `lock timeout (${ctx.cfg.lockTimeoutSeconds} s)`,
    { event: "lock-taken-over", path: r.path },
  );
  await ctx.tree!.delete(sidePath(r.path, lockFileName));
  r.lock = undefined;
  return true;
}

/** A lock of this scheme as status and audit show it: its holder, mode and age. */
export interface HeldLock {
  owner: string;
  mode: "r" | "w" | null;
  host?: string;
  pid?: number;
  /** From the lock file's mtime, when the relay gives one. */
  ageSeconds?: number;
}

/** Reads the lock of `r`; null when it is gone or cannot be read. */
export async function readPathLock(ctx: SyncContext, r: RelayPath): Promise<HeldLock | null> {
  const name = sidePath(r.path, lockFileName);
  try {
    const l = decodeLock(await collect(await ctx.tree!.read(name)), name);
    const ageSeconds = r.lock?.mtimeMs
      ? Math.round((ctx.now() - r.lock.mtimeMs) / 1000)
      : undefined;
    return { owner: l.owner, mode: l.mode, host: l.host, pid: l.pid, ageSeconds };
  } catch {
    return null;
  }
}

/** Who holds the lock of `path`, for messages. */
async function lockHolder(ctx: SyncContext, r: RelayPath): Promise<string> {
  const l = await readPathLock(ctx, r);
  if (!l) return "another client";
  const age = l.ageSeconds !== undefined ? `, for ${l.ageSeconds} s` : "";
  return `${l.owner} (${l.mode ?? "legacy"}${age})`;
}

/**
 * Writes a placeholder as `pullers` plus this client, and removes the
 * content once `puller count` clients (the pusher not counted) pulled it.
 */
async function consume(ctx: SyncContext, path: string, p: Placeholder): Promise<boolean> {
  const pullers = p.pullers.includes(ctx.cfg.clientName)
    ? p.pullers
    : [...p.pullers, ctx.cfg.clientName];
  const done = new Set(pullers.filter((n) => n !== p.meta.pusher)).size >=
    (ctx.cfg.pullerCount ?? 1);
  // Escale's order: the content goes first, then the placeholder names the puller
  if (done) await ctx.tree!.delete(path);
  await ctx.tree!.write(
    sidePath(path, placeholderFileName),
    new TextEncoder().encode(encodePlaceholder({ ...p, pullers })),
  );
  return done;
}

/** Reads a relay file's content into `dest` (decrypted), returning its checksum. */
async function fetchContent(ctx: SyncContext, path: string, dest: string): Promise<string> {
  const { cfg } = ctx;
  const hash = createHash(cfg.checksum);
  await mkdir(dirname(dest), { recursive: true });
  if (cfg.cipher) {
    const plain = escaleDecrypt(cfg.cipher, await collect(await ctx.tree!.read(path)), path);
    hash.update(plain);
    await writeFile(dest, plain);
    return hash.digest("hex");
  }
  const src = Readable.fromWeb(await ctx.tree!.read(path) as WebReadableStream<Uint8Array>);
  const out = createWriteStream(dest, { flags: "wx", mode: 0o644 });
  await new Promise<void>((resolve, reject) => {
    src.on("data", (c: Uint8Array) => hash.update(c));
    src.once("error", reject);
    out.once("error", reject);
    out.once("finish", resolve);
    src.pipe(out);
  });
  return hash.digest("hex");
}

/** One pass of the placeholder scheme: pull, then push (as Escale orders them). */
export async function placeholderPass(
  ctx: SyncContext,
  opts: { signal?: AbortSignal } = {},
): Promise<PassResult> {
  const { cfg, reporter } = ctx;
  const out = emptyPassResult();
  const step = async (what: string, fn: () => Promise<void>) => {
    if (opts.signal?.aborted) return;
    try {
      await fn();
    } catch (e) {
      const err = explainError(e);
      if (!err) throw e;
      out.errors++;
      reporter.warn(`${cfg.name}: ${what}: ${err.message}`, { event: "error", hint: err.hint });
      if (err.hint) reporter.debug?.(`${cfg.name}: ${err.hint}`);
    }
  };
  /** Paths whose lock this pass named. */
  const named = new Set<string>();
  const busy = async (r: RelayPath) => {
    out.busy++;
    named.add(r.path);
    reporter.warn(`${cfg.name}: ${r.path} is locked by ${await lockHolder(ctx, r)}; skipped`, {
      event: "locked",
      path: r.path,
    });
  };
  let relay = await listTree(ctx.tree!);
  reporter.debug?.(`${cfg.name}: ${ctx.tree!.label} holds ${relay.size} path(s)`, 2);
  if (cfg.mode !== "upload") {
    for (const r of [...relay.values()].sort((a, b) => a.path < b.path ? -1 : 1)) {
      if (!r.file || isHiddenPath(r.path) || !pathSelected(r.path, cfg)) continue;
      await step(`pulling ${r.path}`, async () => {
        const problem = localPathProblem(r.path);
        if (problem) throw new HopError(`refused relay path ${r.path}: ${problem}`);
        if (r.lock && !(await dropStaleLock(ctx, r))) return await busy(r);
        const p = await readPlaceholder(ctx, r.path);
        if (!p) {
          throw new HopError(`${r.path} has no placeholder (its metadata) on the relay`, {
            hint: "Its pusher did not finish (or is an Escale older than 0.5); it is left alone.",
          });
        }
        if (p.meta.pusher === cfg.clientName || p.pullers.includes(cfg.clientName)) return;
        const r2 = await pullOne(ctx, r, p);
        if (r2 === "busy") return await busy(r);
        if (r2) {
          out.pulled++;
          if (r2.copy) out.conflicts.push(r2.copy);
        }
      });
    }
    await saveState(cfg.localPath, ctx.state);
    relay = await listTree(ctx.tree!);
  }
  if (cfg.mode !== "download" && !opts.signal?.aborted) {
    const scan = await scanFolder(
      cfg.localPath,
      cfg,
      (n) => reporter.progress({ label: "scanning", files: n }),
    );
    reporter.close();
    for (const f of scan.values()) {
      await step(`pushing ${f.path}`, async () => {
        const r = relay.get(f.path) ?? { path: f.path };
        const res = await pushOne(ctx, r, f);
        if (res === "busy") return await busy(r);
        if (res === "pushed") out.pushed++;
        if (res === "asked") {
          reporter.info(
            `${cfg.name}: ${f.path}: the relay names a version this client never got and can ` +
              "no longer fetch; asked for it again (a version changed here is kept as a conflict copy)",
            { event: "missing", path: f.path },
          );
        }
      });
      if (opts.signal?.aborted) break;
    }
    await ctx.cache.save(scan);
  } else {
    await ctx.cache.save();
  }
  await saveState(cfg.localPath, ctx.state);
  // a lock nothing above touched is named too, every pass: a client that crashed in a
  // transfer (Escale's locks never expire) leaves one, and it blocks that file for everyone
  for (const r of relay.values()) {
    if (!r.lock || named.has(r.path) || opts.signal?.aborted) continue;
    out.busy++;
    reporter.warn(`${cfg.name}: ${r.path} is locked by ${await lockHolder(ctx, r)}`, {
      event: "locked",
      path: r.path,
      hint: `Its holder may have stopped in a transfer; the lock is taken over once older than ` +
        `lock timeout (${cfg.lockTimeoutSeconds} s) when this client moves that file, and ` +
        "`hop cleanup` removes it then.",
    });
  }
  return out;
}

/** Pulls one file whose content is on the relay; null when nothing was written. */
async function pullOne(
  ctx: SyncContext,
  r: RelayPath,
  listed: Placeholder,
): Promise<{ copy?: string } | null | "busy"> {
  const { cfg, reporter } = ctx;
  const loc = await localSum(ctx, r.path);
  if (loc.blocked) {
    throw new HopError(`cannot pull ${r.path}: a folder or link of that name is in the way`, {
      hint: "Move it away; the file is pulled on a later pass.",
    });
  }
  const version = versionOf(r.path, listed);
  const conservative = cfg.mode === "conservative";
  if (decideIncoming(version, pathState(ctx, r.path, loc.sum), conservative) === "agree") {
    // the same content is here already: this client counts as having pulled it
    if (!(await lockPath(ctx, r.path, "r"))) return "busy";
    try {
      const p = await readPlaceholder(ctx, r.path);
      if (p && p.meta.checksum === listed.meta.checksum) await consume(ctx, r.path, p);
    } finally {
      await unlockPath(ctx, r.path);
    }
    settle(ctx, r.path, version);
    return null;
  }
  if (!(await lockPath(ctx, r.path, "r"))) return "busy";
  const staging = join(cfg.localPath, STATE_DIR, `staging-${randomBytes(6).toString("hex")}`);
  try {
    // what was listed may have changed before the lock was ours
    const p = await readPlaceholder(ctx, r.path);
    if (!p || !(await ctx.tree!.stat(r.path))) return null;
    const staged = join(staging, "file");
    const sum = await fetchContent(ctx, r.path, staged);
    const v = versionOf(r.path, p, sum);
    if (p.meta.checksum !== "" && sum !== p.meta.checksum) {
      throw new HopError(
        `${r.path} on the relay does not match its placeholder's checksum (pushed by ${p.meta.pusher})`,
        { hint: "It was left on the relay; its pusher should push it again." },
      );
    }
    // decided on what is here now
    const now = await localSum(ctx, r.path);
    const action = decideIncoming(v, pathState(ctx, r.path, now.sum), conservative);
    let copy: string | undefined;
    let target = r.path;
    if (action === "keep-write") copy = await keepLocalAsCopy(ctx, r.path);
    else if (action === "copy-incoming") {
      for (let n = 1;; n++) {
        target = conflictName(r.path, p.meta.pusher, p.meta.timestamp, n);
        if (!(await lstat(join(cfg.localPath, target)).catch(() => null))) break;
      }
      copy = target;
    }
    if (action !== "agree") {
      const abs = join(cfg.localPath, target);
      await ensureFolder(cfg.localPath, target);
      await utimes(staged, p.meta.timestamp, p.meta.timestamp);
      await rename(staged, abs);
      const st = await lstat(abs);
      ctx.cache.remember({ path: target, size: st.size, mtimeMs: wholeMs(st.mtimeMs) }, sum);
    }
    await consume(ctx, r.path, p);
    settle(ctx, r.path, v);
    reporter.info(`${cfg.name}: pulled ${r.path}`, { event: "pulled", path: r.path });
    if (copy) {
      reporter.warn(
        action === "copy-incoming"
          ? `conflict on ${r.path}: kept yours (conservative mode); ${p.meta.pusher}'s version is ${copy}`
          : `conflict on ${r.path}: both sides changed it; ${p.meta.pusher}'s version reached ` +
            `the relay first and keeps the name, yours is now ${copy}`,
        { event: "conflict", path: r.path, copy, theirs: p.meta.pusher },
      );
    }
    return { copy };
  } finally {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
    await unlockPath(ctx, r.path);
  }
}

/** Creates the parent folders of `path` under `root`, refusing links and files on the way. */
async function ensureFolder(root: string, path: string): Promise<void> {
  const parts = path.split("/").slice(0, -1);
  let cur = root;
  for (const part of parts) {
    cur = join(cur, part);
    const st = await lstat(cur).catch(() => null);
    if (!st) await mkdir(cur);
    else if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new HopError(`cannot write ${path}: ${cur} is not a folder`, {
        hint: "Move that file or link away; the file is pulled on a later pass.",
      });
    }
  }
}

/** Pushes one local file when the relay should get it. */
async function pushOne(
  ctx: SyncContext,
  r: RelayPath,
  f: LocalFile,
): Promise<"pushed" | "busy" | "asked" | "nothing"> {
  const { cfg } = ctx;
  const sum = await ctx.cache.checksum(f);
  const base = Object.hasOwn(ctx.state.base, f.path) ? ctx.state.base[f.path] : undefined;
  if (r.lock && !(await dropStaleLock(ctx, r))) return "busy";
  const p = r.placeholder ? await readPlaceholder(ctx, f.path) : null;
  // the version the placeholder names; one without checksum (`checksum = no`, pre-0.5) is
  // known by its mtime alone, as Escale knows it: the same mtime as this file unchanged
  // since this client last agreed is this file's version; older than this file changed
  // since, the version it was changed from (Escale pushes a file newer than the relay's)
  const mtimeS = Math.floor(f.mtimeMs / 1000);
  const named = !p
    ? ""
    : p.meta.checksum !== ""
    ? p.meta.checksum
    : p.meta.timestamp === mtimeS && (base ?? sum) === sum
    ? sum
    : p.meta.timestamp < mtimeS && base !== undefined && sum !== base
    ? base
    : "";
  if (p && named === sum) {
    if (base !== sum) setBase(ctx.state, f.path, sum);
    return "nothing";
  }
  const wanted = ctx.state.wanted?.[f.path];
  // this client asked for another version (below): its own unchanged one is not sent meanwhile
  if (!p && wanted !== undefined && sum === base) return "nothing";
  if (p && named !== base) {
    // the relay names a version this client did not agree with
    if (r.file) return "nothing"; // pulled (or reported) by the pull step
    if (cfg.mode === "conservative" || cfg.mode === "upload") return "nothing";
    // Gone from the relay (another client pulled it): ask for it again by removing its
    // placeholder, as Escale does, so that its holders push it anew; a version changed here
    // is kept as a conflict copy, pushed as a new file.
    if (!(await lockPath(ctx, f.path, "w"))) return "busy";
    try {
      const again = await readPlaceholder(ctx, f.path);
      if (!again || again.meta.checksum !== p.meta.checksum || await ctx.tree!.stat(f.path)) {
        return "nothing";
      }
      if (sum !== base) await keepLocalAsCopy(ctx, f.path);
      (ctx.state.wanted ??= {})[f.path] = p.meta.checksum;
      await ctx.tree!.delete(sidePath(f.path, placeholderFileName));
    } finally {
      await unlockPath(ctx, f.path);
    }
    return "asked";
  }
  if (!(await lockPath(ctx, f.path, "w"))) return "busy";
  try {
    const again = r.placeholder || !p ? await readPlaceholder(ctx, f.path) : p;
    if ((again?.meta.checksum ?? null) !== (p?.meta.checksum ?? null)) return "nothing";
    const abs = join(cfg.localPath, f.path);
    const meta = {
      placeholder: PLACEHOLDER,
      pusher: cfg.clientName,
      timestamp: Math.floor(f.mtimeMs / 1000),
      checksum: sum,
      extra: [["base", base ?? "-"]] as [string, string][],
    };
    // Escale's order: the placeholder, then the content, under the lock
    await ctx.tree!.write(
      sidePath(f.path, placeholderFileName),
      new TextEncoder().encode(encodePlaceholder({ meta, pullers: [] })),
    );
    if (cfg.cipher) {
      await ctx.tree!.write(f.path, escaleEncrypt(cfg.cipher, await readFile(abs)));
    } else {
      await ctx.tree!.write(f.path, Readable.toWeb(createReadStream(abs)) as ReadableStream);
    }
    setBase(ctx.state, f.path, sum);
    ctx.reporter.info(`${cfg.name}: pushed ${f.path}`, { event: "pushed", path: f.path });
    return "pushed";
  } finally {
    await unlockPath(ctx, f.path);
  }
}
