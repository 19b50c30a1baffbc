/**
 * Pulling one page: consume its update under the page's `r` lock (extract
 * into a staging folder under `.hop/` with the safe extractor, verify every
 * file's checksum, then rename it into place and set its mtime), detect
 * conflicts (both sides changed since they last agreed: keep both, the
 * incoming one renamed `name.conflict-<pusher>-<date>.ext`), register as a
 * puller, and remove the update once everyone expected consumed it. Also the
 * application of other clients' deletions.
 *
 * Nothing is ever written outside the folder: index paths are checked before
 * anything is extracted, the extractor refuses unsafe entries, and no parent
 * folder on the way may be a symbolic link.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, renameSync } from "node:fs";
import { lstat, mkdir, rm, statfs, unlink } from "node:fs/promises";
import { join } from "node:path";
import { extractArchive, type ExtractedEntry } from "../archive/extract.ts";
import { syncFolder } from "../durable.ts";
import { pathProblem } from "../archive/tar.ts";
import { type IndexEntry, pageOf } from "../codec/escale_index.ts";
import { HopError } from "../errors.ts";
import { formatBytes } from "../ui/report.ts";
import { abortable, counted } from "./abortable.ts";
import { stepProgress } from "./progress.ts";
import { readTombstones } from "./hopfiles.ts";
import { acquireLock, withLock } from "./lock.ts";
import {
  addUpdatePuller,
  entryBase,
  type PageView,
  readPersistentIndex,
  readUpdateIndex,
  writePersistentIndex,
} from "./pages.ts";
import { pathSelected } from "./config.ts";
import { expectedFromListing, readUpdateHead, removeUpdate, updateComplete } from "./pullers.ts";
import { isHiddenPath, type LocalFile, STATE_DIR, wholeMs } from "./scan.ts";
import { dropBase, setBase } from "./state.ts";
import type { SyncContext } from "./sync.ts";

/** Bytes kept free on the local disk when extracting. */
const DISK_RESERVE = 64 * 1024 * 1024;

/** Bytes an extraction into `dir` may write (the free space less a reserve), and the free space. */
async function spaceFor(dir: string): Promise<{ room: number; free: number } | undefined> {
  try {
    const s = await statfs(dir);
    const free = s.bavail * s.bsize;
    return { room: Math.max(1, free - DISK_RESERVE), free };
  } catch {
    return undefined;
  }
}

/** What a pull of one page did. */
export interface PullResult {
  files: number;
  bytes: number;
  conflicts: string[];
  /** Why nothing was pulled, when nothing was. */
  skipped?: "busy" | "consumed" | "own" | "none" | "incomplete";
  /** The update was removed after this pull (everyone consumed it). */
  removed?: boolean;
  /** Files deleted by a hop client that a client unaware of deletions sent again: ignored. */
  resentDeleted?: number;
}

/** `dir/name.conflict-<client>-<YYYYMMDD-HHMMSS>.ext` for `dir/name.ext`. */
export function conflictName(path: string, client: string, date: Date): string {
  const stamp = date.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  const dot = base.lastIndexOf(".");
  const safeClient = client.replace(/[^A-Za-z0-9_-]/g, "_");
  const tag = `.conflict-${safeClient}-${stamp}`;
  return dot > 0 ? `${dir}${base.slice(0, dot)}${tag}${base.slice(dot)}` : `${dir}${base}${tag}`;
}

/** Why an index path may not be written locally, or undefined when it may. */
export function localPathProblem(path: string): string | undefined {
  const p = pathProblem(path);
  if (p) return p;
  if (isHiddenPath(path)) return "hidden name (sync never writes hidden files)";
  if (/[\r\n]/.test(path)) return "line break in the name";
  return undefined;
}

/** The local state of a path: its checksum, or why it is not a regular file. */
async function localSum(
  ctx: SyncContext,
  path: string,
): Promise<{ sum?: string; file?: LocalFile; blocked?: boolean }> {
  const st = lstatSync(join(ctx.cfg.localPath, path), { throwIfNoEntry: false });
  if (!st) return {};
  if (!st.isFile()) return { blocked: true };
  const file = { path, size: st.size, mtimeMs: wholeMs(st.mtimeMs) };
  return { sum: await ctx.cache.checksum(file), file };
}

/**
 * Creates the parent folders of `path` under root, refusing links and files on the way;
 * `known` holds the folders already found or made (relative), so each is looked at once.
 */
function ensureParents(root: string, path: string, known: Set<string>): void {
  const parts = path.split("/").slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const rel = parts.slice(0, i).join("/");
    if (known.has(rel)) continue;
    const cur = join(root, rel);
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st) mkdirSync(cur);
    else if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new HopError(`cannot write ${path}: ${cur} is not a folder`, {
        hint: "Move that file or link away; the update is retried on the next pass.",
      });
    }
    known.add(rel);
  }
}

type Action = "write" | "overwrite" | "conflict";

interface Planned {
  entry: IndexEntry;
  action: Action;
  /** Local file as seen when planning (to detect a change before replacing it). */
  seen?: LocalFile;
}

/**
 * Decides what to do with an incoming entry, given the local checksum `l`,
 * the agreed base `b` and the pusher's base `pb` (undefined: not hop-pushed).
 */
export function decide(
  r: string,
  l: string | undefined,
  b: string | undefined,
  pb: string | null | undefined,
  conservative: boolean,
): Action | "agree" {
  if (l === r) return "agree";
  if (l === undefined) return "write";
  if (!conservative && l === b && (pb === undefined || pb === l)) return "overwrite";
  return "conflict";
}

/** Consumes the update of a page if this client should. */
export async function pullPage(ctx: SyncContext, view: PageView): Promise<PullResult> {
  const res: PullResult = { files: 0, bytes: 0, conflicts: [] };
  const upd = view.updates.find((u) => u.index && u.data);
  if (!upd) return { ...res, skipped: view.updates.length ? "incomplete" : "none" };
  const { io, cfg } = ctx;
  const first = await readUpdateHead(
    io,
    view.page,
    upd.time,
    upd.index!,
    ctx.state.heads ??= {},
    ctx.now(),
  );
  const pusher = first.pusher;
  if (first.pullers.includes(cfg.clientName)) return { ...res, skipped: "consumed" };
  if (pusher === cfg.clientName) return { ...res, skipped: "own" };
  const held = await acquireLock(ctx.lockIo, view.page, {
    owner: cfg.clientName,
    mode: "r",
    timeoutSeconds: cfg.lockTimeoutSeconds,
    now: ctx.now,
  });
  if (!held) return { ...res, skipped: "busy" };
  return await withLock(held, cfg.lockTimeoutSeconds, async () => {
    if (!(await io.stat(upd.index!.name)) || !(await io.stat(upd.data!.name))) {
      return { ...res, skipped: "none" as const };
    }
    const idx = await readUpdateIndex(io, view.page, upd.time);
    if (idx.pullers.includes(cfg.clientName)) return { ...res, skipped: "consumed" as const };
    for (const e of idx.entries) {
      const why = localPathProblem(e.path);
      if (why) {
        throw new HopError(
          `update ${upd.index!.name} on ${io.label} names ${JSON.stringify(e.path)}: ${why}; ` +
            "the update is refused",
          { hint: "Something other than an Escale or hop client wrote that relay file." },
        );
      }
      if (!e.meta) {
        throw new HopError(`update ${upd.index!.name}: entry ${e.path} has no metadata`, {
          hint: "The update is refused; ask its pusher to push again.",
        });
      }
      if (pageOf(e.path, cfg.pageDepth) !== view.page) {
        ctx.reporter.warn(
          `${upd.index!.name}: ${e.path} belongs to page ${
            pageOf(e.path, cfg.pageDepth)
          } with this client's index setting; check that every client uses the same \`index\``,
        );
      }
    }
    const plan: Planned[] = [];
    const conservative = cfg.mode === "conservative";
    const tombs = await readTombstones(io, view.page);
    for (const e of idx.entries) {
      const r = e.meta!.checksum;
      if (tombs[e.path]?.checksum === r && entryBase(e) === undefined) {
        // a client unaware of deletions (Escale) sent a deleted file again: keep it deleted
        res.resentDeleted = (res.resentDeleted ?? 0) + 1;
        continue;
      }
      const loc = await localSum(ctx, e.path);
      if (loc.blocked) {
        plan.push({ entry: e, action: "conflict" });
        continue;
      }
      const d = decide(r, loc.sum, ctx.state.base[e.path], entryBase(e), conservative);
      if (d === "agree") setBase(ctx.state, e.path, r);
      else plan.push({ entry: e, action: d, seen: loc.file });
    }
    if (plan.length > 0) {
      await placeFiles(ctx, view.page, upd.data!.name, upd.data!.size, plan, res, pusher);
    }
    // register as a puller: re-read under the lock and merge, never drop a name
    await held.verify();
    const pullers = await addUpdatePuller(io, view.page, upd.time, cfg.clientName);
    const listing = await io.list();
    const clients = listing.filter((f) => f.name.startsWith(".hop-client-"));
    const expected = await expectedFromListing(
      io,
      clients,
      Math.floor(ctx.now() / 1000),
      cfg.clientExpirySeconds,
    );
    if (updateComplete(pusher, pullers, expected, cfg.pullerCount)) {
      await removeUpdate(io, view.page, upd.time);
      res.removed = true;
    }
    return res;
  });
}

async function placeFiles(
  ctx: SyncContext,
  page: string,
  dataName: string,
  dataSize: number,
  plan: Planned[],
  res: PullResult,
  pusher: string | undefined,
): Promise<void> {
  const root = ctx.cfg.localPath;
  const staging = join(root, STATE_DIR, `staging-${randomBytes(6).toString("hex")}`);
  const wanted = new Set(plan.map((p) => p.entry.path));
  const failures: string[] = [];
  try {
    await mkdir(staging, { recursive: true });
    // progress in archive bytes read: what the pass's total counts
    let read = 0;
    const report = () =>
      stepProgress(ctx, "pull", page, {
        files: res.files,
        totalFiles: plan.length,
        bytes: read,
        totalBytes: dataSize,
      });
    report();
    const source = counted(await ctx.io.read(dataName), (n) => {
      read += n;
      report();
    });
    const space = await spaceFor(staging);
    const metas = new Map(plan.map((p) => [p.entry.path, p.entry.meta!]));
    const staged = new Map<string, ExtractedEntry>();
    await extractArchive(abortable(source, ctx.signal), staging, {
      filter: (p) => wanted.has(p),
      compressedSize: dataSize,
      // Real data can compress beyond any fixed ratio (bzip2 turns 50 MB of zeros into 81
      // bytes): the bound is the free space, less a reserve, so a bomb never fills the disk.
      maxRatio: 1e9,
      maxBytes: space?.room,
      // the staging folder is new: files go in under their names, hashed as they are written,
      // with the index's mtime; flushed below, before they replace anything
      fresh: true,
      checksum: ctx.cfg.checksum,
      mtimeOf: (p) => metas.get(p)?.timestamp,
      sync: false,
      onEntry: (e) => {
        if (e.type === "file") {
          staged.set(e.path, e);
          res.bytes += e.size;
          res.files++;
          report();
        }
      },
    }).catch((e) => {
      // the bound that stopped it is the free space: the disk is full, not the archive bad
      if (space && (e as Error).message?.includes(`${space.room} bytes allowed`)) {
        throw new HopError(
          `not enough free space for page ${page} in ${root}: ${
            formatBytes(space.free)
          } free, the update holds more, and hop keeps ${formatBytes(DISK_RESERVE)} free`,
          {
            code: "disk-full",
            cause: e,
            hint: "Free some space on that disk (df -h shows it); nothing was written in the " +
              "folder, and the update is pulled on a later pass.",
          },
        );
      }
      throw e;
    });
    res.files = 0;
    const date = new Date(ctx.now());
    const moves: { p: Planned; got: ExtractedEntry; target: string; action: Action }[] = [];
    for (const p of plan) {
      const path = p.entry.path;
      const got = staged.get(path);
      if (!got) {
        failures.push(`${path}: missing from ${dataName}`);
        continue;
      }
      if (got.checksum !== p.entry.meta!.checksum) {
        failures.push(`${path}: checksum of the archived file does not match the index`);
        continue;
      }
      let action = p.action;
      if (action === "overwrite" && p.seen) {
        // the local file changed since we planned: keep it, the incoming one becomes a copy
        const now = lstatSync(join(root, path), { throwIfNoEntry: false });
        if (!now || now.size !== p.seen.size || wholeMs(now.mtimeMs) !== p.seen.mtimeMs) {
          action = "conflict";
        }
      }
      if (action === "write" && lstatSync(join(root, path), { throwIfNoEntry: false })) {
        action = "conflict";
      }
      const target = action === "conflict" ? conflictName(path, pusher ?? "relay", date) : path;
      moves.push({ p, got, target, action });
    }
    // Durable per update, not per file: the staged data is flushed once before any of it
    // replaces a local file, and the renames once before the update is marked consumed.
    if (moves.length > 0) await syncFolder(staging, moves.map((m) => m.p.entry.path));
    const known = new Set<string>();
    const placed: string[] = [];
    for (const { p, got, target, action } of moves) {
      const path = p.entry.path;
      try {
        ensureParents(root, target, known);
        renameSync(join(staging, path), join(root, target));
        // the size and mtime just given to it (whole seconds)
        ctx.cache.remember(
          { path: target, size: got.size, mtimeMs: got.mtime * 1000 },
          got.checksum!,
        );
      } catch (e) {
        failures.push(`${path}: ${(e as Error).message}`);
        continue;
      }
      placed.push(target);
      setBase(ctx.state, path, p.entry.meta!.checksum);
      res.files++;
      if (action === "conflict") {
        res.conflicts.push(target);
        ctx.reporter.warn(
          `conflict on ${path}: both sides changed it; kept yours, theirs is ${target}`,
          { event: "conflict", path, copy: target, page },
        );
      }
    }
    if (placed.length > 0) await syncFolder(root, placed);
  } finally {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
    ctx.reporter.close();
  }
  if (failures.length > 0) {
    throw new HopError(
      `page ${page}: ${failures.length} file(s) of ${dataName} not pulled: ${
        failures.slice(0, 5).join("; ")
      }`,
      { hint: "Nothing damaged was written; the update is retried on the next pass." },
    );
  }
}

/** What applying deletions did. */
export interface DeletionResult {
  deleted: string[];
  kept: string[];
}

/** Applies other clients' deletions of a page to unchanged local files. */
export async function applyDeletions(ctx: SyncContext, view: PageView): Promise<DeletionResult> {
  const out: DeletionResult = { deleted: [], kept: [] };
  if (!view.deleted || ctx.state.seen[view.deleted.name] === view.deleted.mtimeMs) return out;
  const tombs = await readTombstones(ctx.io, view.page);
  for (const [path, t] of Object.entries(tombs)) {
    if (t.by === ctx.cfg.clientName || localPathProblem(path)) continue;
    const loc = await localSum(ctx, path);
    if (loc.sum === undefined) {
      if (!loc.blocked) dropBase(ctx.state, path);
      continue;
    }
    if (loc.sum !== t.checksum || ctx.cfg.mode === "conservative") {
      out.kept.push(path);
      continue;
    }
    await unlink(join(ctx.cfg.localPath, path));
    dropBase(ctx.state, path);
    out.deleted.push(path);
  }
  ctx.state.seen[view.deleted.name] = view.deleted.mtimeMs;
  return out;
}

/**
 * Escale's "missing" mechanism, which lets a client that joined late get
 * files pushed before it registered: entries of `.P.index` this client never
 * had (absent locally, not in its base, not in the pending update, selected
 * by its filters, not deleted) are removed from the index under the page
 * lock, so that the clients holding them send them again. Returns their paths,
 * or null when the page was busy (nothing checked).
 */
export async function requestMissing(
  ctx: SyncContext,
  view: PageView,
  index: IndexEntry[],
): Promise<string[] | null> {
  const { cfg, io } = ctx;
  const pending = new Set<string>();
  for (const u of view.updates) {
    if (u.index) {
      for (const e of (await readUpdateIndex(io, view.page, u.time)).entries) pending.add(e.path);
    }
  }
  const tombs = view.deleted ? await readTombstones(io, view.page) : {};
  const isMissing = async (e: IndexEntry) => {
    if (pending.has(e.path) || e.path in ctx.state.base || tombs[e.path]) return false;
    if (localPathProblem(e.path) || !pathSelected(e.path, cfg)) return false;
    if (e.meta?.pusher === cfg.clientName) return false;
    return (await lstat(join(cfg.localPath, e.path)).catch(() => null)) === null;
  };
  const candidates: IndexEntry[] = [];
  for (const e of index) if (await isMissing(e)) candidates.push(e);
  if (candidates.length === 0) return [];
  const held = await acquireLock(ctx.lockIo, view.page, {
    owner: cfg.clientName,
    mode: "w",
    timeoutSeconds: cfg.lockTimeoutSeconds,
    now: ctx.now,
  });
  if (!held) return null;
  return await withLock(held, cfg.lockTimeoutSeconds, async () => {
    const fresh = await readPersistentIndex(io, view.page);
    const keep: IndexEntry[] = [];
    const removed: string[] = [];
    for (const e of fresh) {
      if (await isMissing(e)) removed.push(e.path);
      else keep.push(e);
    }
    if (removed.length > 0) await writePersistentIndex(io, view.page, keep);
    return removed;
  });
}
