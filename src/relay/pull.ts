/**
 * Pulling one page: consume its update under the page's `r` lock (extract
 * into a staging folder under `.hop/` with the safe extractor, verify every
 * file's checksum, then rename it into place and set its mtime), decide each
 * file with `reconcile.ts` (both sides changed: the incoming version takes
 * the name and the local one becomes a conflict copy, which this client
 * reports and pushes as a new file), register as a puller, and remove the
 * update once everyone expected consumed it. Also the application of other
 * clients' deletions.
 *
 * Nothing is ever written outside the folder: index paths are checked before
 * anything is extracted, the extractor refuses unsafe entries, and no parent
 * folder on the way may be a symbolic link.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { lstat, mkdir, rename, rm, statfs, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { extractArchive, type ExtractedEntry } from "../archive/extract.ts";
import { mayWrite } from "./access.ts";
import { syncDir, syncFolder } from "../durable.ts";
import { pathProblem } from "../archive/tar.ts";
import { type IndexEntry, pageOf } from "../codec/escale_index.ts";
import { HopError } from "../errors.ts";
import { formatBytes } from "../ui/report.ts";
import { abortable, counted } from "./abortable.ts";
import { stepProgress } from "./progress.ts";
import { readTombstones } from "./hopfiles.ts";
import {
  conflictName,
  decideIncoming,
  type IncomingAction,
  type PathState,
  type RelayVersion,
} from "./reconcile.ts";
import { lockPage, withLock } from "./lock.ts";
import {
  addUpdatePuller,
  entryBase,
  type PageView,
  readIndexCached,
  readUpdateIndex,
  type UpdateFiles,
} from "./pages.ts";
import { expectedFromListing, readUpdateHead, removeUpdate, updateComplete } from "./pullers.ts";
import type { RelayFile } from "./io.ts";
import { isHiddenPath, type LocalFile, STATE_DIR, wholeMs } from "./scan.ts";
import { dropBase, setBase } from "./state.ts";
import type { SyncContext } from "./sync.ts";
import {
  BadUpdateError,
  isContentFault,
  isTransient,
  type QuarantineRecord,
  quarantineUpdate,
} from "./quarantine.ts";

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
  /** The update was bad and this client moved it aside (see `quarantine.ts`). */
  quarantined?: { record: QuarantineRecord; name: string };
}

/** Why an index path may not be written locally, or undefined when it may. */
export function localPathProblem(path: string): string | undefined {
  const p = pathProblem(path);
  if (p) return p;
  if (isHiddenPath(path)) return "hidden name (sync never writes hidden files)";
  if (/[\r\n]/.test(path)) return "line break in the name";
  return undefined;
}

/** Why a client refuses an update's entries (a path it may not write, no metadata), if it does. */
export function entryProblem(entries: IndexEntry[]): string | undefined {
  for (const e of entries) {
    const why = localPathProblem(e.path);
    if (why) return `it names ${JSON.stringify(e.path)}: ${why}`;
    if (!e.meta) return `its entry ${JSON.stringify(e.path)} has no metadata`;
  }
  return undefined;
}

/**
 * The local state of a path: its checksum, or why it is not a regular file. `absent` (from
 * {@linkcode absentFolders}) answers for a path whose folder is missing without a look.
 */
export async function localSum(
  ctx: SyncContext,
  path: string,
  absent?: (folder: string) => boolean,
): Promise<{ sum?: string; file?: LocalFile; blocked?: boolean }> {
  if (absent?.(folderOf(path))) return {};
  const st = lstatSync(join(ctx.cfg.localPath, path), { throwIfNoEntry: false });
  if (!st) return {};
  if (!st.isFile()) return { blocked: true };
  const file = { path, size: st.size, mtimeMs: wholeMs(st.mtimeMs) };
  return { sum: await ctx.cache.checksum(file), file };
}

/**
 * Whether a relative folder is missing under `root` ("" is root itself, never missing): each
 * folder is looked at once, so a first pull of 100,000 files into an empty folder costs a look
 * per folder, not per file. A snapshot: what is decided on it is checked again when placing.
 */
function absentFolders(root: string): (folder: string) => boolean {
  const memo = new Map<string, boolean>();
  const absent = (dir: string): boolean => {
    let v = memo.get(dir);
    if (v === undefined) {
      const slash = dir.lastIndexOf("/");
      try {
        v = (slash >= 0 && absent(dir.slice(0, slash))) ||
          lstatSync(join(root, dir), { throwIfNoEntry: false }) === undefined;
      } catch {
        v = false; // not a folder, or not readable: the path itself is looked at
      }
      memo.set(dir, v);
    }
    return v;
  };
  return (folder) => folder !== "" && absent(folder);
}

/**
 * Splits moves into whole folders and single files: for each file, the highest of its folders
 * missing under `root` now; such a folder goes whole unless a file in it is to be a conflict
 * copy. `rest` keeps the other files in their order.
 */
function wholeFolders<M extends { p: Planned }>(
  root: string,
  moves: M[],
): { whole: Map<string, M[]>; rest: M[] } {
  const absent = absentFolders(root);
  const whole = new Map<string, M[]>();
  const topOf = new Map<M, string>();
  const spoiled = new Set<string>();
  for (const m of moves) {
    const parts = m.p.entry.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!absent(dir)) continue;
      topOf.set(m, dir);
      if (m.p.action === "copy-incoming") spoiled.add(dir);
      let g = whole.get(dir);
      if (!g) whole.set(dir, g = []);
      g.push(m);
      break;
    }
  }
  for (const top of spoiled) whole.delete(top);
  const rest = moves.filter((m) => !whole.has(topOf.get(m) ?? "\0"));
  return { whole, rest };
}

/** The folder of a relative path ("" for one at the top). */
function folderOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "" : path.slice(0, slash);
}

/**
 * Creates the parent folders of `path` under root, refusing links and files on the way;
 * `known` holds the folders already found or made (relative), so each is looked at once, and
 * `made` gets those this call created (empty until something is placed in them).
 */
function ensureParents(root: string, path: string, known: Set<string>, made: Set<string>): void {
  const slash = path.lastIndexOf("/");
  // the folder already seen: so were all above it (most files of an update)
  if (slash < 0 || known.has(path.slice(0, slash))) return;
  const parts = path.split("/").slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const rel = parts.slice(0, i).join("/");
    if (known.has(rel)) continue;
    const cur = join(root, rel);
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st) {
      mkdirSync(cur);
      made.add(rel);
    } else if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new HopError(`cannot write ${path}: ${cur} is not a folder`, {
        hint: "Move that file or link away; the update is retried on the next pass.",
      });
    }
    known.add(rel);
  }
}

interface Planned {
  entry: IndexEntry;
  action: Exclude<IncomingAction, "agree">;
  /** Local file as seen when planning (to detect a change before replacing it). */
  seen?: LocalFile;
}

/** The relay version an index or update entry describes (entries with metadata only). */
export function versionOf(e: IndexEntry): RelayVersion {
  const m = e.meta!;
  return { checksum: m.checksum, timestamp: m.timestamp, pusher: m.pusher, base: entryBase(e) };
}

/** What this client knows of `path`, its local checksum being `local`. */
export function pathState(ctx: SyncContext, path: string, local: string | undefined): PathState {
  const st = ctx.state;
  return {
    local,
    base: Object.hasOwn(st.base, path) ? st.base[path] : undefined,
    wanted: st.wanted && Object.hasOwn(st.wanted, path) ? st.wanted[path] : undefined,
    unconfirmed: st.unconfirmed?.[pageOf(path, ctx.cfg.pageDepth)]?.[path]?.checksum,
  };
}

/**
 * Records that this client now has `r` for `path`: its new base; a version
 * it was waiting for arrived; a version it pushed is confirmed when an Escale
 * client sent the same content back, and forgotten when replaced.
 */
export function settle(ctx: SyncContext, path: string, r: RelayVersion): void {
  setBase(ctx.state, path, r.checksum);
  if (ctx.state.wanted) delete ctx.state.wanted[path];
  const u = ctx.state.unconfirmed?.[pageOf(path, ctx.cfg.pageDepth)];
  if (u && Object.hasOwn(u, path) && (u[path].checksum !== r.checksum || r.base === undefined)) {
    forgetUnconfirmed(ctx, path);
  }
}

/**
 * True when the version this client last agreed on for `path` is `checksum` and nothing waits
 * on the path (no version asked for, no push of it unconfirmed): deciding it against a relay
 * version of that checksum can only agree, which changes nothing, or find a local change,
 * which the push step finds too. A first pull of 100,000 files looks at none of them again.
 */
export function agreedOn(ctx: SyncContext, path: string, checksum: string): boolean {
  const st = ctx.state;
  if (!Object.hasOwn(st.base, path) || st.base[path] !== checksum) return false;
  if (st.wanted && Object.hasOwn(st.wanted, path)) return false;
  const u = st.unconfirmed?.[pageOf(path, ctx.cfg.pageDepth)];
  return !(u && Object.hasOwn(u, path));
}

/** Stops waiting for an Escale client to confirm this client's version of `path`. */
export function forgetUnconfirmed(ctx: SyncContext, path: string): void {
  const page = pageOf(path, ctx.cfg.pageDepth);
  const u = ctx.state.unconfirmed?.[page];
  if (!u || !Object.hasOwn(u, path)) return;
  delete u[path];
  if (Object.keys(u).length === 0) delete ctx.state.unconfirmed![page];
}

/**
 * Renames the local file at `path` to its conflict copy (this client's name
 * and the file's mtime); returns the copy's path. When a copy of that name
 * already holds the same content, the local file is just removed.
 */
export async function keepLocalAsCopy(ctx: SyncContext, path: string): Promise<string> {
  const root = ctx.cfg.localPath;
  const abs = join(root, path);
  const st = await lstat(abs);
  if (!st.isFile()) {
    throw new HopError(`cannot keep ${path} as a conflict copy: it is not a regular file`, {
      hint: "Move it away; the relay's version is then fetched on the next pass.",
    });
  }
  const file = { path, size: st.size, mtimeMs: wholeMs(st.mtimeMs) };
  const sum = await ctx.cache.checksum(file);
  for (let n = 1;; n++) {
    const copy = conflictName(path, ctx.cfg.clientName, Math.floor(st.mtimeMs / 1000), n);
    const there = await lstat(join(root, copy)).catch(() => null);
    if (there) {
      if (!there.isFile()) continue;
      const other = { path: copy, size: there.size, mtimeMs: wholeMs(there.mtimeMs) };
      if ((await ctx.cache.checksum(other)) !== sum) continue;
      await unlink(abs);
      return copy;
    }
    await rename(abs, join(root, copy));
    ctx.cache.remember({ ...file, path: copy }, sum);
    return copy;
  }
}

/**
 * Consumes the update of a page if this client should. An update whose
 * content every client would refuse is moved aside (see `quarantine.ts`), so
 * the page is free for a new update; any other failure is thrown.
 */
export async function pullPage(ctx: SyncContext, view: PageView): Promise<PullResult> {
  const upd = view.updates.find((u) => u.index && u.data);
  if (!upd) {
    return {
      files: 0,
      bytes: 0,
      conflicts: [],
      skipped: view.updates.length ? "incomplete" : "none",
    };
  }
  let pusher: string | undefined;
  try {
    return await pullUpdate(ctx, view, upd, (p) => pusher = p);
  } catch (e) {
    if (!isContentFault(e)) throw e;
    const q = await quarantineUpdate(ctx, view.page, upd, e as Error, pusher);
    if (!q.record) {
      ctx.reporter.debug?.(
        `${ctx.cfg.name}: page ${view.page}: bad update not moved aside: ${q.notDone}`,
      );
      throw e;
    }
    return { files: 0, bytes: 0, conflicts: [], quarantined: { record: q.record, name: q.name! } };
  }
}

async function pullUpdate(
  ctx: SyncContext,
  view: PageView,
  upd: UpdateFiles,
  saw: (pusher: string | undefined) => void,
): Promise<PullResult> {
  const res: PullResult = { files: 0, bytes: 0, conflicts: [] };
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
  saw(pusher);
  if (first.pullers.includes(cfg.clientName)) return { ...res, skipped: "consumed" };
  if (pusher === cfg.clientName) return { ...res, skipped: "own" };
  const held = await lockPage(ctx, view.page, "r");
  if (!held) return { ...res, skipped: "busy" };
  return await withLock(held, cfg.lockTimeoutSeconds, async () => {
    if (!(await io.stat(upd.index!.name)) || !(await io.stat(upd.data!.name))) {
      return { ...res, skipped: "none" as const };
    }
    const idx = await readUpdateIndex(io, view.page, upd.time);
    if (idx.pullers.includes(cfg.clientName)) return { ...res, skipped: "consumed" as const };
    const got = await pullEntries(ctx, view.page, upd.index!.name, upd.data!, idx.entries);
    res.files = got.files;
    res.bytes = got.bytes;
    res.conflicts = got.conflicts;
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

/**
 * Takes the entries of an update (or of a send) whose archive is `data`,
 * decided one by one against the local folder; `source` names the list in
 * messages. Refuses the whole list if one path may not be written here.
 */
export async function pullEntries(
  ctx: SyncContext,
  page: string,
  source: string,
  data: RelayFile,
  entries: IndexEntry[],
): Promise<PullResult> {
  const { cfg, io } = ctx;
  const res: PullResult = { files: 0, bytes: 0, conflicts: [] };
  const why = entryProblem(entries);
  if (why) {
    throw new BadUpdateError(`${source} on ${io.label} is refused: ${why}`, {
      hint: "Something other than an Escale or hop client wrote that relay file; its pusher " +
        "should push again.",
    });
  }
  for (const e of entries) {
    if (pageOf(e.path, cfg.pageDepth) !== page) {
      ctx.reporter.warn(
        `${source}: ${e.path} belongs to page ${
          pageOf(e.path, cfg.pageDepth)
        } with this client's index setting; check that every client uses the same \`index\``,
      );
    }
  }
  const plan: Planned[] = [];
  const conservative = cfg.mode === "conservative";
  const absent = absentFolders(cfg.localPath);
  for (const e of entries) {
    if (!mayWrite(ctx.access, e.path)) continue; // `w-` (hop relay access): left as it is
    const r = versionOf(e);
    const loc = await localSum(ctx, e.path, absent);
    if (loc.blocked) {
      plan.push({ entry: e, action: "copy-incoming" });
      continue;
    }
    const d = decideIncoming(r, pathState(ctx, e.path, loc.sum), conservative);
    if (d === "agree") settle(ctx, e.path, r);
    else plan.push({ entry: e, action: d, seen: loc.file });
  }
  if (plan.length > 0) await placeFiles(ctx, page, data.name, data.size, plan, res);
  return res;
}

/** A free conflict-copy name for an incoming version (conservative mode keeps the local file). */
async function freeIncomingCopy(
  ctx: SyncContext,
  path: string,
  client: string,
  mtimeSeconds: number,
): Promise<string> {
  for (let n = 1;; n++) {
    const copy = conflictName(path, client, mtimeSeconds, n);
    if (!(await lstat(join(ctx.cfg.localPath, copy)).catch(() => null))) return copy;
  }
}

async function placeFiles(
  ctx: SyncContext,
  page: string,
  dataName: string,
  dataSize: number,
  plan: Planned[],
  res: PullResult,
): Promise<void> {
  const root = ctx.cfg.localPath;
  const conservative = ctx.cfg.mode === "conservative";
  const staging = join(root, STATE_DIR, `staging-${randomBytes(6).toString("hex")}`);
  const wanted = new Set(plan.map((p) => p.entry.path));
  const failures: string[] = [];
  // what the archive itself lacks, apart from what could not be placed here
  const bad: string[] = [];
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
      // the archive itself is bad (corrupt, truncated, unsafe, failed authentication),
      // unless the network, the relay's storage or the local disk failed
      if (isTransient(e) || ctx.signal?.aborted) throw e;
      throw new BadUpdateError(`${dataName}: ${(e as Error).message}`, {
        cause: e,
        hint: "The update's archive is damaged; ask its pusher to push again.",
      });
    });
    res.files = 0;
    const moves: { p: Planned; got: ExtractedEntry }[] = [];
    for (const p of plan) {
      const path = p.entry.path;
      const got = staged.get(path);
      if (!got) {
        bad.push(`${path}: missing from ${dataName}`);
        continue;
      }
      if (got.checksum !== p.entry.meta!.checksum) {
        bad.push(`${path}: checksum of the archived file does not match the index`);
        // out of staging: a folder moved whole below carries good files only
        rmSync(join(staging, path), { force: true });
        continue;
      }
      moves.push({ p, got });
    }
    // Durable per update, not per file: the staged data is flushed once before any of it
    // replaces a local file, and the renames once before the update is marked consumed.
    if (moves.length > 0) await syncFolder(staging, moves.map((m) => m.p.entry.path));
    const known = new Set<string>();
    const made = new Set<string>();
    const placed: string[] = [];
    const placedOne = (p: Planned, got: ExtractedEntry, target: string) => {
      // the size and mtime just given to it (whole seconds)
      ctx.cache.remember(
        { path: target, size: got.size, mtimeMs: got.mtime * 1000 },
        got.checksum!,
      );
      placed.push(target);
      settle(ctx, p.entry.path, versionOf(p.entry));
      res.files++;
    };
    // A folder missing here goes in whole, with all its files: one rename, not one a file (a
    // first pull). Its files cannot be local changes, so each is a plain write.
    const { whole, rest: single } = wholeFolders(root, moves);
    for (const [top, group] of whole) {
      try {
        ensureParents(root, top, known, made);
        renameSync(join(staging, top), join(root, top));
      } catch {
        single.push(...group); // something is there now, or in the way: file by file
        continue;
      }
      for (const { p, got } of group) placedOne(p, got, p.entry.path);
    }
    for (const { p, got } of single) {
      const path = p.entry.path;
      const meta = p.entry.meta!;
      let copy: string | undefined;
      let target = path;
      let action = p.action;
      try {
        // the local file may have changed since the plan was made: decide again on what is
        // there (nothing, in a folder made by this loop)
        const cur = made.has(folderOf(path))
          ? undefined
          : lstatSync(join(root, path), { throwIfNoEntry: false });
        const changed = !cur || !p.seen || cur.size !== p.seen.size ||
          wholeMs(cur.mtimeMs) !== p.seen.mtimeMs;
        if (!cur && action !== "copy-incoming") action = "write";
        else if (cur && action === "write") action = conservative ? "copy-incoming" : "keep-write";
        else if (action === "overwrite" && changed) action = "keep-write";
        if (action === "keep-write") {
          copy = await keepLocalAsCopy(ctx, path);
          placed.push(copy);
        } else if (action === "copy-incoming") {
          target = await freeIncomingCopy(ctx, path, meta.pusher, meta.timestamp);
          copy = target;
        }
        ensureParents(root, target, known, made);
        renameSync(join(staging, path), join(root, target));
      } catch (e) {
        failures.push(`${path}: ${(e as Error).message}`);
        continue;
      }
      placedOne(p, got, target);
      if (copy) {
        res.conflicts.push(copy);
        const theirs = meta.pusher;
        ctx.reporter.warn(
          action === "copy-incoming"
            ? `conflict on ${path}: kept yours (conservative mode); ${theirs}'s version is ${copy}`
            : `conflict on ${path}: both sides changed it; ${theirs}'s version reached the ` +
              `relay first and keeps the name, yours is now ${copy}`,
          { event: "conflict", path, copy, page, theirs },
        );
      }
    }
    if (placed.length > 0) await syncFolder(root, placed);
  } finally {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
    ctx.reporter.close();
  }
  if (bad.length > 0) {
    throw new BadUpdateError(
      `page ${page}: ${dataName} does not match its index: ${bad.slice(0, 5).join("; ")}`,
      { hint: "The update is damaged; ask its pusher to push again." },
    );
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
  // a path back in the index was sent again since (Escale restores what it finds missing)
  const indexed = view.index
    ? new Set((await readIndexCached(ctx, view.page, view.index)).map((e) => e.path))
    : new Set<string>();
  for (const [path, t] of Object.entries(tombs)) {
    if (t.by === ctx.cfg.clientName || localPathProblem(path) || indexed.has(path)) continue;
    if (!mayWrite(ctx.access, path)) continue; // `w-` (hop relay access): never deleted here
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
  // the unlinks are made durable before the state that records them is written: else a crash
  // could bring a file back that the state says was deleted, and it would be pushed again
  for (const dir of new Set(out.deleted.map((p) => dirname(join(ctx.cfg.localPath, p))))) {
    await syncDir(dir);
  }
  ctx.state.seen[view.deleted.name] = view.deleted.mtimeMs;
  return out;
}
