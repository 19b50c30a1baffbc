/**
 * Pushing one page under its `w` lock: pick the local files that are new or
 * changed against the relay's persistent index (checksums from the cache),
 * and the files this client deleted since it last agreed with the relay;
 * stream a tar.bz2 (or the folder's `compression`) of at most about
 * `maxpagesize` bytes of files (`.P.T.data`), then write `.P.T.index`, then the merged `.P.index` and the
 * deletion records. Files beyond `maxpagesize` wait for the next update.
 *
 * Each pushed entry carries `base: <checksum>` (the version the pusher
 * changed, `-` for a new file), so a receiving hop client can tell a plain
 * update from a conflict. Escale readers keep unknown keys.
 *
 * @module
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { compressorFor } from "../archive/codecs.ts";
import { writeArchive } from "../archive/tar.ts";
import {
  type IndexEntry,
  pageOf,
  PLACEHOLDER,
  updateDataName,
  updateIndexName,
} from "../codec/escale_index.ts";
import { HopError } from "../errors.ts";
import { abortable, stoppedError } from "./abortable.ts";
import { stepProgress } from "./progress.ts";
import { pathSelected } from "./config.ts";
import { mayPush } from "./access.ts";
import {
  readRequests,
  readTombstones,
  type SendRequest,
  type Tombstone,
  writeRequests,
  writeTombstones,
} from "./hopfiles.ts";
import { lockPage, pageLockTakenOver, readLock, withLock } from "./lock.ts";
import {
  byPath,
  entryBase,
  type PageView,
  readIndexCached,
  readPersistentIndex,
  readUpdateIndex,
  viewRelay,
  writePersistentIndex,
  writeUpdateIndex,
} from "./pages.ts";
import {
  expectedFromListing,
  HEAD_SETTLE_MS,
  readUpdateHead,
  removeUpdate,
  updateComplete,
  updatePusher,
} from "./pullers.ts";
import { parseClientFileName } from "./hopfiles.ts";
import type { RelayFile } from "./io.ts";
import { pathState, settle, versionOf } from "./pull.ts";
import { decideIndexed } from "./reconcile.ts";
import { isHiddenPath, type LocalFile, wholeMs } from "./scan.ts";
import { dropBase, setBase } from "./state.ts";
import type { SyncContext } from "./sync.ts";

/** What a push of one page did. */
export interface PushResult {
  files: number;
  bytes: number;
  deleted: string[];
  /** Changed files left for a later update (beyond maxpagesize or the relay quota). */
  waiting: number;
  /** Nothing could be pushed: the relay quota would be exceeded. */
  quotaWait?: boolean;
  skipped?: "busy" | "pending-update" | "nothing";
}

interface Change {
  file: LocalFile;
  sum: string;
  /** Checksum this client last agreed on, null for a new file. */
  base: string | null;
}

const byPageMemo = new WeakMap<Map<string, LocalFile>, Map<string, LocalFile[]>>();

/** Files of `page` in the local scan (grouped once per scan). */
function localOfPage(ctx: SyncContext, scan: Map<string, LocalFile>, page: string): LocalFile[] {
  let groups = byPageMemo.get(scan);
  if (!groups) {
    groups = new Map();
    for (const f of scan.values()) {
      const p = pageOf(f.path, ctx.cfg.pageDepth);
      let list = groups.get(p);
      if (!list) groups.set(p, list = []);
      list.push(f);
    }
    byPageMemo.set(scan, groups);
  }
  return groups.get(page) ?? [];
}

/**
 * Computes what this client would push on a page, against a persistent
 * index, its deletion records and its requests. A local file is pushed when
 * the relay still has the version this client last agreed on (or none);
 * an entry the relay changed since is never replaced (`requests.ts` fetches
 * it, and keeps a conflicting local file as a copy). An entry taken out of
 * the index for the Escale clients to send (`requests.ts`) is left to them;
 * one taken out with no record (Escale's "missing" requests) is pushed
 * again by the clients that hold it.
 */
export async function planPush(
  ctx: SyncContext,
  page: string,
  scan: Map<string, LocalFile>,
  index: IndexEntry[],
  tombs: Record<string, Tombstone>,
  requests: Record<string, SendRequest>,
): Promise<{
  changes: Change[];
  deletions: { path: string; checksum: string }[];
  /** Every `base` entry of the page is in `index` with its checksum (after planning). */
  agreed: boolean;
}> {
  const idx = byPath(index);
  const changes: Change[] = [];
  for (const f of localOfPage(ctx, scan, page)) {
    if (!mayPush(ctx.access, f.path)) continue; // `r-` (hop relay access): never pushed
    const sum = await ctx.cache.checksum(f);
    const base = Object.hasOwn(ctx.state.base, f.path) ? ctx.state.base[f.path] : undefined;
    const ie = idx.get(f.path);
    if (ie?.meta) {
      const r = versionOf(ie);
      const d = decideIndexed(r, pathState(ctx, f.path, sum));
      if (d === "agree") settle(ctx, f.path, r);
      else if (d === "push") changes.push({ file: f, sum, base: base ?? null });
      continue;
    }
    const q = Object.hasOwn(requests, f.path) ? requests[f.path] : undefined;
    if (q) {
      // taken out for an Escale client to send (or send back): only an edit of it is pushed
      if (sum !== q.checksum && base === q.checksum) {
        changes.push({ file: f, sum, base: base ?? null });
      }
      continue;
    }
    if (tombs[f.path]?.checksum === sum) continue; // deleted elsewhere, kept here on purpose
    changes.push({ file: f, sum, base: base ?? null });
  }
  const deletions: { path: string; checksum: string }[] = [];
  let agreed = true;
  for (const [path, sum] of Object.entries(ctx.state.base)) {
    if (pageOf(path, ctx.cfg.pageDepth) !== page) continue;
    const ie = idx.get(path);
    if (
      scan.has(path) || isHiddenPath(path) || !pathSelected(path, ctx.cfg) ||
      !mayPush(ctx.access, path) // an `r-` file gone here: its deletion is not pushed either
    ) {
      if (ie?.meta?.checksum !== sum) agreed = false;
      continue;
    }
    if (!ie) dropBase(ctx.state, path);
    else if (ie.meta?.checksum === sum) deletions.push({ path, checksum: sum });
    else agreed = false;
  }
  return { changes, deletions, agreed };
}

/**
 * True when a push of `page` would find nothing to do, decided without
 * reading its `.P.index` (a second and 100 MB on 100,000 files): the index
 * is the version `base` was last found to agree with, every local file of
 * the page still has its base checksum, and no file of the base is gone.
 */
async function unchangedSinceAgreed(
  ctx: SyncContext,
  index: RelayFile,
  page: string,
  scan: Map<string, LocalFile>,
): Promise<boolean> {
  const a = ctx.state.agreed?.[page];
  if (!a || a.mtimeMs !== index.mtimeMs || a.size !== index.size) return false;
  if (a.pageDepth !== ctx.cfg.pageDepth) return false;
  // read so soon after it was written that a rewrite could keep its mtime (whole seconds on FTP)
  if (!(a.readAt >= a.mtimeMs + HEAD_SETTLE_MS)) return false;
  const { base } = ctx.state;
  for (const f of localOfPage(ctx, scan, page)) {
    if (!Object.hasOwn(base, f.path)) return false;
    // a cache hit costs no promise (100,000 unchanged files on a rescan)
    if (base[f.path] !== (ctx.cache.lookup(f) ?? await ctx.cache.checksum(f))) return false;
  }
  for (const path in base) {
    if (scan.has(path) || pageOf(path, ctx.cfg.pageDepth) !== page) continue;
    if (!isHiddenPath(path) && pathSelected(path, ctx.cfg)) return false;
  }
  return true;
}

/** Pushes a page's local changes if it has no pending update. */
export async function pushPage(
  ctx: SyncContext,
  view: PageView | undefined,
  page: string,
  scan: Map<string, LocalFile>,
): Promise<PushResult> {
  const res: PushResult = { files: 0, bytes: 0, deleted: [], waiting: 0 };
  const { io, cfg } = ctx;
  if (view && view.updates.length > 0 && !(await clearPendingUpdate(ctx, view))) {
    return { ...res, skipped: "pending-update" };
  }
  if (view?.index && (await unchangedSinceAgreed(ctx, view.index, page, scan))) {
    return { ...res, skipped: "nothing" };
  }
  const index = view?.index ? await readIndexCached(ctx, page, view.index) : [];
  const tombs = view?.deleted ? await readTombstones(io, page) : {};
  const requests = view?.requests ? await readRequests(io, page) : {};
  let plan = await planPush(ctx, page, scan, index, tombs, requests);
  if (view?.index && plan.agreed) {
    (ctx.state.agreed ??= {})[page] = {
      mtimeMs: view.index.mtimeMs,
      size: view.index.size,
      pageDepth: cfg.pageDepth,
      readAt: ctx.indexCache.get(page)!.readAt,
    };
  }
  if (scan.size === 0 && plan.deletions.length > 0) {
    ctx.reporter.warn(
      `${cfg.localPath} is empty: the deletion of ${plan.deletions.length} file(s) is not pushed`,
      { event: "deletions-held", page },
    );
    plan = { ...plan, deletions: [] };
  }
  if (plan.changes.length === 0 && plan.deletions.length === 0) {
    return { ...res, skipped: "nothing" };
  }
  const held = await lockPage(ctx, page, "w");
  if (!held) return { ...res, skipped: "busy" };
  return await withLock(held, cfg.lockTimeoutSeconds, async () => {
    const fresh = viewRelay(await io.list()).pages.get(page);
    if (fresh && fresh.updates.length > 0) return { ...res, skipped: "pending-update" as const };
    // the relay may have moved since planning: plan again on what is there now
    const freshIndex = await readPersistentIndex(io, page);
    const freshTombs = await readTombstones(io, page);
    const freshRequests = await readRequests(io, page);
    const again = await planPush(ctx, page, scan, freshIndex, freshTombs, freshRequests);
    const deletions = plan.deletions.length === 0 ? [] : again.deletions;
    const batch: Change[] = [];
    let size = 0;
    let room = Infinity;
    if (cfg.diskQuota !== undefined) {
      room = cfg.diskQuota - (await io.list()).reduce((n, f) => n + f.size, 0);
    }
    let bound = 0;
    for (const c of again.changes) {
      if (batch.length > 0 && size >= cfg.maxPageSize) break;
      // compressors may grow incompressible data a little: count what an archive could take
      const need = Math.ceil(c.file.size * 1.01) + 4096;
      if (bound + need > room) {
        if (batch.length === 0) {
          res.quotaWait = true;
          ctx.reporter.warn(
            `page ${page}: relay quota reached (${Math.max(0, room)} bytes free, ` +
              `${c.file.path} needs up to ${need}): waiting for other clients to consume updates`,
            { event: "quota", page },
          );
        }
        break;
      }
      bound += need;
      batch.push(c);
      size += c.file.size;
    }
    res.waiting = again.changes.length - batch.length;
    if (batch.length === 0 && deletions.length === 0) return res;
    const time = held.acquired;
    const entries = new Map(freshIndex.map((e) => [e.path, e]));
    const pushed: IndexEntry[] = [];
    if (batch.length > 0) {
      const dataName = updateDataName(page, time);
      if (ctx.signal?.aborted) throw stoppedError();
      const upload = new AbortController();
      await io.write(
        dataName,
        abortable(
          writeArchive({
            root: cfg.localPath,
            files: batch.map((c) => c.file.path),
            compress: () => compressorFor(cfg.compression ?? "bzip2"),
            signal: upload.signal,
            onProgress: (p) =>
              stepProgress(ctx, "push", page, {
                files: p.files,
                totalFiles: batch.length,
                bytes: p.bytes,
                totalBytes: size,
              }),
          }),
          ctx.signal,
        ),
      ).catch((e) => {
        upload.abort(e); // the packer stops and closes its files
        throw e;
      });
      ctx.reporter.close();
      for (const c of batch) {
        // synchronous: one call per pushed file, no promise each (100,000 small files)
        let st;
        try {
          st = statSync(join(cfg.localPath, c.file.path));
        } catch {
          st = undefined;
        }
        if (!st || st.size !== c.file.size || wholeMs(st.mtimeMs) !== c.file.mtimeMs) {
          await io.delete(dataName);
          throw new HopError(`${c.file.path} changed while page ${page} was being pushed`, {
            hint: "Nothing was published; the push is retried on the next pass.",
          });
        }
      }
      for (const c of batch) {
        const e: IndexEntry = {
          path: c.file.path,
          meta: {
            placeholder: PLACEHOLDER,
            pusher: cfg.clientName,
            timestamp: Math.floor(c.file.mtimeMs / 1000),
            checksum: c.sum,
            extra: [["base", c.base ?? "-"]],
          },
        };
        pushed.push(e);
        entries.set(e.path, e);
        res.bytes += c.file.size;
      }
      // a long upload may have outlived the lock: publish nothing unless it is still ours
      await held.verify();
      await writeUpdateIndex(io, page, time, { entries: pushed, pullers: [] });
      // known without reading it back on the next passes (nobody else writes it under our lock)
      const written = await io.stat(updateIndexName(page, time));
      if (written) {
        (ctx.state.heads ??= {})[written.name] = {
          mtimeMs: written.mtimeMs,
          size: written.size,
          readAt: ctx.now(),
          pusher: cfg.clientName,
          pullers: [],
        };
      }
      res.files = batch.length;
    }
    for (const d of deletions) entries.delete(d.path);
    await writePersistentIndex(io, page, [...entries.values()]);
    const nowS = Math.floor(ctx.now() / 1000);
    let tombsChanged = false;
    let requestsChanged = false;
    // a path in the index again is no longer deleted, nor asked for
    for (const path of entries.keys()) {
      if (Object.hasOwn(freshTombs, path)) {
        delete freshTombs[path];
        tombsChanged = true;
      }
      if (Object.hasOwn(freshRequests, path)) {
        delete freshRequests[path];
        requestsChanged = true;
      }
    }
    if (requestsChanged) await writeRequests(io, page, freshRequests, nowS);
    for (const d of deletions) {
      freshTombs[d.path] = { checksum: d.checksum, time: nowS, by: cfg.clientName };
      tombsChanged = true;
    }
    if (tombsChanged) await writeTombstones(io, page, freshTombs, nowS);
    for (const e of pushed) {
      setBase(ctx.state, e.path, e.meta!.checksum);
      if (ctx.state.wanted) delete ctx.state.wanted[e.path];
    }
    for (const d of deletions) dropBase(ctx.state, d.path);
    // with Escale clients on the relay, what they will make of this update is checked later
    if (pushed.length > 0 && (await escalePresent(ctx, freshIndex))) {
      const u = (ctx.state.unconfirmed ??= {})[page] ??= {};
      for (const e of pushed) u[e.path] = { checksum: e.meta!.checksum, time };
    }
    res.deleted = deletions.map((d) => d.path);
    ctx.indexCache.delete(page);
    return res;
  });
}

/**
 * True when clients other than hop's may pull from this relay: an entry of
 * the page was pushed by one (no `base:` line), or the `puller count` this
 * folder sets asks for more pullers than the hop clients registered besides
 * this one (the README asks to count the Escale clients in it).
 */
async function escalePresent(ctx: SyncContext, index: IndexEntry[]): Promise<boolean> {
  if (index.some((e) => e.meta && entryBase(e) === undefined)) return true;
  const listing = await ctx.io.list();
  const expected = await expectedFromListing(
    ctx.io,
    listing.filter((f) => parseClientFileName(f.name) !== null),
    Math.floor(ctx.now() / 1000),
    ctx.cfg.clientExpirySeconds,
  );
  expected.delete(ctx.cfg.clientName);
  return ctx.cfg.pullerCount !== undefined && ctx.cfg.pullerCount > expected.size;
}

/**
 * Removes a page's pending update when nobody needs it any more: a complete
 * update every expected client consumed (after a registration expired or was
 * forgotten), or the leftovers of a cut push or removal (half an update under a
 * lock taken over, or under none). Works under the page's `w` lock. True when
 * the page is free for a new update.
 */
export async function clearPendingUpdate(ctx: SyncContext, view: PageView): Promise<boolean> {
  const { io, cfg } = ctx;
  const nowMs = ctx.now();
  const complete = view.updates.find((u) => u.index && u.data);
  let removable = false;
  if (complete) {
    const head = await readUpdateHead(
      io,
      view.page,
      complete.time,
      complete.index!,
      ctx.state.heads ??= {},
      nowMs,
    );
    const listing = await io.list();
    const expected = await expectedFromListing(
      io,
      listing.filter((f) => parseClientFileName(f.name) !== null),
      Math.floor(nowMs / 1000),
      cfg.clientExpirySeconds,
    );
    removable = updateComplete(head.pusher, head.pullers, expected, cfg.pullerCount);
  } else if (view.lock) {
    // a push in progress, unless its lock is stale or its process gone: then lockPage takes
    // the lock over and rolls the cut push back
    const found = await readLock(ctx.lockIo, view.page, ctx.now);
    removable = found !== null && pageLockTakenOver(ctx, found);
  } else {
    // half an update and no lock: what a cut push or a cut removal left (hop and Escale write
    // and remove updates under the page's lock), cleared under this client's `w` lock at once
    removable = true;
  }
  if (!removable) return false;
  const held = await lockPage(ctx, view.page, "w");
  if (!held) return false;
  return await withLock(held, cfg.lockTimeoutSeconds, async () => {
    const fresh = viewRelay(await io.list()).pages.get(view.page);
    for (const u of fresh?.updates ?? []) {
      if (complete && u.time === complete.time) {
        const idx = await readUpdateIndex(io, view.page, u.time);
        const listing = await io.list();
        const expected = await expectedFromListing(
          io,
          listing.filter((f) => parseClientFileName(f.name) !== null),
          Math.floor(nowMs / 1000),
          cfg.clientExpirySeconds,
        );
        if (!updateComplete(updatePusher(idx.entries), idx.pullers, expected, cfg.pullerCount)) {
          return false;
        }
        await removeUpdate(io, view.page, u.time);
        ctx.reporter.info(
          `page ${view.page}: removed update ${u.time}, consumed by everyone expected`,
        );
      } else if (!complete && !(u.index && u.data)) {
        for (const f of [u.index, u.data]) if (f) await io.delete(f.name);
        ctx.reporter.info(`page ${view.page}: removed the leftovers of a cut push (${u.time})`);
      } else {
        return false;
      }
    }
    return true;
  });
}
