/**
 * The relay maintenance verbs, hop's equivalents of Escale's `escalectl`
 * ones, for index relays (an `index` line): `fix` (Escale's `recover`:
 * rebuild page indexes from this client's folder), `suspend` / `resume`
 * (page locks under the name `<client>-suspend`, which regular clients, hop
 * and Escale, wait for and never take over), `list-pending` (local files
 * their page index does not name yet: what a push would send) and `rebase`
 * (the relay's content becomes a subfolder of a new root: index, pending
 * update and hop's deletion records and requests rewritten); and `access`
 * (per-file modifiers of a folder, see `access.ts`).
 *
 * @example
 * ```ts
 * await relaySuspend({ configFile: "escale.conf", pages: ["0"], reporter });
 * await relayFix({ configFile: "escale.conf", reporter }); // under the suspension
 * await relayResume({ configFile: "escale.conf", reporter });
 * ```
 *
 * @module
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { compressorFor } from "../archive/codecs.ts";
import { extractArchive } from "../archive/extract.ts";
import { pathProblem, writeArchive } from "../archive/tar.ts";
import { indexName, lockName, pageOf } from "../codec/escale_index.ts";
import { HopError } from "../errors.ts";
import type { Reporter } from "../ui/report.ts";
import { rebuildIndex, repairPage } from "./audit.ts";
import { formatAccess, parseModifiers, readAccess, setModifiers, writeAccess } from "./access.ts";
import { type FolderSource, forEachFolder, resolveFolders } from "./command.ts";
import type { FolderConfig } from "./config.ts";
import { acquireLock, type HeldLock, readLock, SUSPEND_SUFFIX, withLock } from "./lock.ts";
import {
  readPersistentIndex,
  readUpdateIndex,
  viewRelay,
  writePersistentIndex,
  writeUpdateIndex,
} from "./pages.ts";
import {
  readClients,
  readRequests,
  readTombstones,
  registerClient,
  writeRequests,
  writeTombstones,
} from "./hopfiles.ts";
import { repairCutWork } from "./pullers.ts";
import { isHiddenPath, type LocalFile, scanFolder } from "./scan.ts";
import type { SyncContext } from "./sync.ts";

/** Default of `--wait`: how long fix and suspend wait for pages other clients hold. */
export const WAIT_SECONDS = 120;

/** What the maintenance verbs share: where, which pages, how long to wait for locks. */
export interface MaintainOptions extends FolderSource {
  reporter: Reporter;
  /** `--page P`: only these pages (default: see each verb). */
  pages?: string[];
  /** Seconds to wait for pages other clients hold (default {@linkcode WAIT_SECONDS}). */
  waitSeconds?: number;
  /** Poll interval while waiting, ms (tests). */
  pollMs?: number;
}

/** Throws for a section of Escale's placeholder scheme, which has no pages. */
function indexOnly(cfg: FolderConfig, verb: string): void {
  if (cfg.scheme === "index") return;
  throw new HopError(
    `${cfg.name}: hop relay ${verb} works on index relays only, and this section has no ` +
      "`index` line (Escale's placeholder scheme: one placeholder file per file, no pages, " +
      "no page index or lock)",
    {
      code: "placeholder-relay",
      hint:
        "fix, suspend, resume, list-pending and rebase work where every client has `index = 1` " +
        "or `index = topdir`, as escalectl's do; hop relay sync works on both schemes.",
    },
  );
}

/**
 * Runs `work` on each folder; a folder that fails is reported and the others
 * still run. Throws at the end when one failed (its own error when it was the
 * only folder).
 */
async function eachFolder(
  opts: MaintainOptions,
  verb: string,
  work: (ctx: SyncContext) => Promise<void>,
): Promise<void> {
  const failed: [string, HopError][] = [];
  let folders = 0;
  await forEachFolder(opts, opts.reporter, async (ctx) => {
    folders++;
    try {
      indexOnly(ctx.cfg, verb);
      await work(ctx);
    } catch (e) {
      if (!(e instanceof HopError)) throw e;
      failed.push([ctx.cfg.name, e]);
    }
  });
  if (failed.length === 0) return;
  if (folders === 1) throw failed[0][1];
  for (const [name, e] of failed) {
    opts.reporter.warn(`${name}: ${e.message}`, { event: "error", folder: name, hint: e.hint });
  }
  throw new HopError(
    `hop relay ${verb} failed for ${failed.length} of ${folders} folder(s): ` +
      failed.map(([n]) => n).join(", "),
    { hint: "See the messages above." },
  );
}

/** This client's files, by page, with progress while scanning. */
async function localByPage(ctx: SyncContext): Promise<Map<string, LocalFile[]>> {
  const { cfg, reporter } = ctx;
  const scan = await scanFolder(
    cfg.localPath,
    cfg,
    (n) => reporter.progress({ label: "scanning", files: n }),
  );
  reporter.close();
  const out = new Map<string, LocalFile[]>();
  for (const f of scan.values()) {
    const p = pageOf(f.path, cfg.pageDepth);
    let l = out.get(p);
    if (!l) out.set(p, l = []);
    l.push(f);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** "w lock of bob on box, 12 s old" */
async function holderOf(ctx: SyncContext, page: string): Promise<string> {
  const l = await readLock(ctx.lockIo, page, ctx.now);
  if (!l) return "nobody (released)";
  return `${l.info.owner || "?"}${l.info.host ? ` on ${l.info.host}` : ""} (${
    l.info.mode ?? "legacy"
  } lock, ${Math.round(l.ageSeconds)} s old)`;
}

/**
 * Takes the `w` locks of `pages` as `owner`, waiting (at most `waitSeconds`)
 * for the pages other clients hold, and saying who holds them. A stale lock
 * is taken over as sync does (a cut push rolled back); pages already
 * suspended by `owner` (a `-suspend` name) count as taken, in `own`. Returns
 * the locks taken and the pages it gave up on, with their holders.
 */
async function takePages(
  ctx: SyncContext,
  pages: string[],
  owner: string,
  opts: MaintainOptions,
): Promise<{ held: Map<string, HeldLock>; own: string[]; gaveUp: Map<string, string> }> {
  const { cfg, reporter } = ctx;
  const wait = opts.waitSeconds ?? WAIT_SECONDS;
  const deadline = Date.now() + wait * 1000;
  const held = new Map<string, HeldLock>();
  const own: string[] = [];
  let left = [...pages];
  const told = new Set<string>();
  for (;;) {
    const still: string[] = [];
    for (const page of left) {
      const got = await acquireLock(ctx.lockIo, page, {
        owner,
        mode: "w",
        timeoutSeconds: cfg.lockTimeoutSeconds,
        now: ctx.now,
        onStale: async (stale) => {
          await repairCutWork(ctx.io, page, stale.mode);
        },
      });
      if (got) {
        held.set(page, got);
        continue;
      }
      const l = await readLock(ctx.lockIo, page, ctx.now);
      // a suspend lock of this very name is already ours; a regular one is a sync that runs
      if (l?.info.owner === owner && owner.endsWith(SUSPEND_SUFFIX)) {
        own.push(page);
        continue;
      }
      still.push(page);
      if (!told.has(page)) {
        told.add(page);
        reporter.info(
          `${cfg.name}: page ${page} is locked by ${await holderOf(ctx, page)}; ` +
            `waiting up to ${wait} s`,
          { event: "waiting", folder: cfg.name, page, owner: l?.info.owner ?? null },
        );
      }
    }
    left = still;
    if (left.length === 0 || Date.now() >= deadline) break;
    await sleep(opts.pollMs ?? 1000);
  }
  const gaveUp = new Map<string, string>();
  for (const p of left) gaveUp.set(p, await holderOf(ctx, p));
  return { held, own, gaveUp };
}

/** One page `hop relay fix` wrote. */
export interface FixedPage {
  folder: string;
  page: string;
  /** Entries written: this client's files, then those of the pending update kept. */
  files: number;
  fromUpdate: number;
  /** Updates removed (half-written or not pullable). */
  updatesRemoved: number;
}

/**
 * `hop relay fix`: for each page this client has files in (or the pages
 * asked for), under the page's `w` lock (or this client's suspend lock),
 * removes half-written and unpullable updates and writes `.P.index` from the
 * local folder plus the entries of the update kept (see `rebuildIndex`).
 * Pages of the relay this folder has no file in are left alone.
 */
export async function relayFix(opts: MaintainOptions): Promise<FixedPage[]> {
  const { reporter } = opts;
  const out: FixedPage[] = [];
  await eachFolder(opts, "fix", async (ctx) => {
    const { cfg } = ctx;
    const local = await localByPage(ctx);
    const pages = opts.pages ?? [...local.keys()].sort();
    const none = pages.filter((p) => !local.has(p));
    for (const p of none) {
      reporter.warn(
        `${cfg.name}: page ${p}: no file of ${cfg.localPath} belongs to it; left alone`,
        { event: "fix-skipped", folder: cfg.name, page: p },
      );
    }
    const todo = pages.filter((p) => local.has(p));
    if (todo.length === 0) {
      if (none.length === 0) {
        reporter.info(`${cfg.name}: ${cfg.localPath} has no file to index; nothing written`, {
          event: "fix-nothing",
          folder: cfg.name,
        });
      }
      return;
    }
    // checksums first (with progress): the pages are then rewritten quickly under their locks
    const total = todo.reduce((n, p) => n + local.get(p)!.length, 0);
    let done = 0;
    for (const p of todo) {
      for (const f of local.get(p)!) {
        await ctx.cache.checksum(f);
        if (++done % 100 === 0 || done === total) {
          reporter.progress({ label: "checksums", files: done, totalFiles: total });
        }
      }
    }
    reporter.close();
    await ctx.cache.save();
    const scan = new Map<string, LocalFile>();
    for (const p of todo) for (const f of local.get(p)!) scan.set(f.path, f);
    // pages this client suspended are fixed under that suspension, the others under their lock
    const suspendName = cfg.clientName + SUSPEND_SUFFIX;
    const suspended = new Set<string>();
    for (const p of todo) {
      if ((await readLock(ctx.lockIo, p, ctx.now))?.info.owner === suspendName) suspended.add(p);
    }
    const { held, gaveUp } = await takePages(
      ctx,
      todo.filter((p) => !suspended.has(p)),
      cfg.clientName,
      opts,
    );
    const failed: string[] = [];
    for (const page of todo) {
      if (gaveUp.has(page)) continue;
      const before = viewRelay(await ctx.io.list()).pages.get(page)?.updates.length ?? 0;
      const work = async () => {
        const kept = await repairPage(ctx, page);
        await rebuildIndex(ctx, page, scan, kept);
        return kept;
      };
      const lock = held.get(page);
      let kept;
      try {
        kept = lock ? await withLock(lock, cfg.lockTimeoutSeconds, work) : await work();
      } catch (e) {
        if (!(e instanceof HopError)) throw e;
        failed.push(page);
        reporter.warn(`${cfg.name}: page ${page}: ${e.message}`, { event: "error", page });
        continue;
      }
      const after = viewRelay(await ctx.io.list()).pages.get(page)?.updates.length ?? 0;
      const mine = local.get(page)!.length;
      const fromUpdate = kept.filter((e) => !scan.has(e.path)).length;
      const f: FixedPage = {
        folder: cfg.name,
        page,
        files: mine + fromUpdate,
        fromUpdate,
        updatesRemoved: before - after,
      };
      out.push(f);
      reporter.info(
        `${cfg.name}: page ${page}: wrote ${indexName(page)}: ${mine} file(s) of ` +
          `${cfg.localPath}` +
          (fromUpdate ? ` and ${fromUpdate} of the pending update` : "") +
          (f.updatesRemoved ? `; removed ${f.updatesRemoved} broken update(s)` : ""),
        { event: "fixed", ...f },
      );
    }
    if (gaveUp.size > 0 || failed.length > 0) {
      throw new HopError(
        `${gaveUp.size + failed.length} page(s) not fixed: ` +
          [...[...gaveUp].map(([p, who]) => `${p} (locked by ${who})`), ...failed].join(", "),
        {
          hint: "Run hop relay fix again once the holder is done (--wait SECONDS waits " +
            "longer), or suspend the pages first (hop relay suspend --page P).",
        },
      );
    }
  });
  return out;
}

/** The pages of the relay (with an index, an update or a lock), sorted. */
async function relayPages(ctx: SyncContext): Promise<string[]> {
  const view = viewRelay(await ctx.io.list());
  return [...view.pages.values()]
    .filter((v) => v.index || v.updates.length > 0 || v.lock)
    .map((v) => v.page)
    .sort();
}

/** What `hop relay suspend` or `resume` did to one page. */
export interface SuspendResult {
  folder: string;
  page: string;
  /**
   * suspend: `suspended`, `already` (by this client), `busy` (gave up waiting);
   * resume: `resumed`, `not-suspended`, `other` (locked by another client).
   */
  outcome: "suspended" | "already" | "busy" | "resumed" | "not-suspended" | "other";
  /** The holder, for `busy` and `other`. */
  holder?: string;
}

/**
 * `hop relay suspend`: takes the `w` lock of each page (default: every page
 * of the relay) as `<client>-suspend` and leaves it there: neither hop nor
 * Escale clients push or pull those pages until `hop relay resume`. Pages
 * other clients hold are waited for, at most `waitSeconds`; then it throws,
 * saying who holds them (the pages suspended stay so).
 */
export async function relaySuspend(opts: MaintainOptions): Promise<SuspendResult[]> {
  const { reporter } = opts;
  const out: SuspendResult[] = [];
  await eachFolder(opts, "suspend", async (ctx) => {
    const { cfg } = ctx;
    const pages = opts.pages ?? await relayPages(ctx);
    if (pages.length === 0) {
      reporter.info(`${cfg.name}: the relay has no page yet; nothing to suspend`, {
        event: "suspend-nothing",
        folder: cfg.name,
      });
      return;
    }
    const name = cfg.clientName + SUSPEND_SUFFIX;
    const { held, own, gaveUp } = await takePages(ctx, pages, name, opts);
    for (const page of pages) {
      const r: SuspendResult = held.has(page)
        ? { folder: cfg.name, page, outcome: "suspended" }
        : own.includes(page)
        ? { folder: cfg.name, page, outcome: "already" }
        : { folder: cfg.name, page, outcome: "busy", holder: gaveUp.get(page) };
      out.push(r);
      if (r.outcome === "busy") continue;
      reporter.info(
        `${cfg.name}: page ${page} ${
          r.outcome === "suspended" ? "suspended" : "was already suspended"
        } (locked as ${name})`,
        { event: "suspend", ...r },
      );
    }
    if (gaveUp.size > 0) {
      throw new HopError(
        `${gaveUp.size} page(s) not suspended after ${opts.waitSeconds ?? WAIT_SECONDS} s: ` +
          [...gaveUp].map(([p, who]) => `${p} (locked by ${who})`).join(", "),
        {
          hint: "The other pages are suspended. Run hop relay suspend again (it keeps those) " +
            "once the holder is done, or with a longer --wait SECONDS.",
        },
      );
    }
  });
  return out;
}

/**
 * `hop relay resume`: releases the locks `hop relay suspend` (or
 * `escalectl suspend`) took under this client's name, on the pages asked for
 * or every page; another client's lock is left alone and named.
 */
export async function relayResume(opts: MaintainOptions): Promise<SuspendResult[]> {
  const { reporter } = opts;
  const out: SuspendResult[] = [];
  await eachFolder(opts, "resume", async (ctx) => {
    const { cfg } = ctx;
    const name = cfg.clientName + SUSPEND_SUFFIX;
    const view = viewRelay(await ctx.lockIo.list());
    const pages = opts.pages ??
      [...view.pages.values()].filter((v) => v.lock).map((v) => v.page).sort();
    let resumed = 0;
    for (const page of pages) {
      const l = await readLock(ctx.lockIo, page, ctx.now);
      let r: SuspendResult;
      if (l?.info.owner === name) {
        await ctx.lockIo.delete(lockName(page));
        resumed++;
        r = { folder: cfg.name, page, outcome: "resumed" };
        reporter.info(`${cfg.name}: page ${page} resumed (released ${name}'s lock)`, {
          event: "resume",
          ...r,
        });
      } else if (l) {
        r = { folder: cfg.name, page, outcome: "other", holder: await holderOf(ctx, page) };
        if (opts.pages) {
          reporter.warn(
            `${cfg.name}: page ${page} is locked by ${r.holder}, not suspended by ${name}; ` +
              "left alone",
            { event: "resume", ...r },
          );
        }
      } else {
        r = { folder: cfg.name, page, outcome: "not-suspended" };
        reporter.info(`${cfg.name}: page ${page} was not suspended`, { event: "resume", ...r });
      }
      out.push(r);
    }
    if (resumed === 0 && !opts.pages) {
      reporter.info(`${cfg.name}: no page is suspended by ${name}; nothing to resume`, {
        event: "resume-nothing",
        folder: cfg.name,
      });
    }
  });
  return out;
}

/** Local files of one page that its index does not name. */
export interface PendingPage {
  folder: string;
  page: string;
  /** The files (or, with `dirs`, their folders; `.` is the top). */
  paths: string[];
  /** The page has no index on the relay (every file of it is pending). */
  noIndex: boolean;
}

/**
 * `hop relay list-pending`: for each page this client has files in (or the
 * pages asked for), the local files `.P.index` does not name yet: what a
 * push would send as new (changed files are not listed, as in Escale).
 * Nothing is changed, no lock taken. Folders in download mode push nothing
 * and are skipped, saying so.
 */
export async function relayListPending(
  opts: MaintainOptions & { dirs?: boolean },
): Promise<PendingPage[]> {
  const { reporter } = opts;
  const out: PendingPage[] = [];
  await eachFolder(opts, "list-pending", async (ctx) => {
    const { cfg } = ctx;
    if (cfg.mode === "download") {
      reporter.info(`${cfg.name}: download mode pushes nothing; skipped`, {
        event: "pending-skipped",
        folder: cfg.name,
      });
      return;
    }
    const local = await localByPage(ctx);
    const view = viewRelay(await ctx.io.list());
    let count = 0;
    for (const page of opts.pages ?? [...local.keys()].sort()) {
      const files = local.get(page) ?? [];
      const noIndex = !view.pages.get(page)?.index;
      const named = new Set(
        (noIndex ? [] : await readPersistentIndex(ctx.io, page)).map((e) => e.path),
      );
      const pending = files.map((f) => f.path).filter((p) => !named.has(p));
      if (pending.length === 0) continue;
      const paths = opts.dirs
        ? [...new Set(pending.map((p) => p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "."))]
        : pending;
      count += pending.length;
      const r: PendingPage = { folder: cfg.name, page, paths, noIndex };
      out.push(r);
      reporter.info(
        `${cfg.name}: page ${page}: ${pending.length} file(s) not in ${indexName(page)}` +
          (noIndex ? " (the page has no index)" : "") +
          (opts.dirs ? `, in ${paths.length} folder(s)` : ""),
        { event: "pending", ...r },
      );
      for (const p of paths) reporter.info(`  ${p}`);
    }
    if (count === 0) {
      reporter.info(`${cfg.name}: every local file is in its page index; nothing pending`, {
        event: "pending-none",
        folder: cfg.name,
      });
    }
  });
  return out;
}

/** What `hop relay rebase` rewrote on one relay. */
export interface RebaseResult {
  folder: string;
  /** The new top folder of every path. */
  path: string;
  /** Entries of the page index, of the pending update (0: none), deletion records, requests. */
  indexed: number;
  update: number;
  deletions: number;
  requests: number;
}

/** `a/b/` -> `a/b`; throws for a path that cannot be a relative folder of synced files. */
export function rebasePath(raw: string): string {
  const path = raw.replace(/^\.\/+/, "").replace(/\/+$/, "");
  const problem = path === "" ? "empty path" : pathProblem(path);
  if (problem || isHiddenPath(path)) {
    throw new HopError(
      `cannot rebase into '${raw}': ${problem ?? "a hidden (dot) folder is never synced"}`,
      {
        code: "usage",
        exitCode: 2,
        hint: "Give a relative folder such as `docs` or `team/docs`, the folder the relay's " +
          "files go into.",
      },
    );
  }
  return path;
}

/**
 * `hop relay rebase PATH` (Escale's `rebase`): under the page lock (or this
 * client's suspension), prefixes every path of the page index, of the pending
 * update (its index and archive) and of hop's deletion records and requests
 * with `PATH/`, so that the relay's content becomes the subfolder PATH of a new
 * root. Refused for topdir indexes, as Escale does (each top folder is a page
 * there), and while hop clients' sends are on the relay. The local folders are
 * left alone: each client then points `local path` at the folder above (hop
 * clients' registrations forget their folder, so that they may).
 */
export async function relayRebase(
  opts: MaintainOptions & { path: string },
): Promise<RebaseResult[]> {
  const { reporter } = opts;
  const path = rebasePath(opts.path);
  const out: RebaseResult[] = [];
  await eachFolder(opts, "rebase", async (ctx) => {
    const { cfg, io } = ctx;
    if (cfg.pageDepth !== 0) {
      throw new HopError(
        `${cfg.name}: hop relay rebase cannot add a folder above the files of a topdir index ` +
          "(`index = topdir`): each top folder is a page of its own, and all would move into one " +
          "(escalectl rebase refuses it too)",
        { hint: "Rebase works on relays with `index = 1`." },
      );
    }
    const page = "0";
    const v = viewRelay(await io.list()).pages.get(page);
    if (!v?.index && !v?.updates.length) {
      reporter.info(`${cfg.name}: the relay holds no file yet; nothing to rebase`, {
        event: "rebase-nothing",
        folder: cfg.name,
      });
      return;
    }
    if (v.sends?.length) {
      throw new HopError(
        `${cfg.name}: hop clients are sending files asked for (${v.sends.length} send(s) on the ` +
          "relay); rebasing now would strand them",
        {
          hint:
            "Run hop relay sync on every hop client until hop relay status shows no send, then rebase.",
        },
      );
    }
    const suspended = (await readLock(ctx.lockIo, page, ctx.now))?.info.owner ===
      cfg.clientName + SUSPEND_SUFFIX;
    const { held, gaveUp } = suspended
      ? { held: new Map<string, HeldLock>(), gaveUp: new Map<string, string>() }
      : await takePages(ctx, [page], cfg.clientName, opts);
    if (gaveUp.size > 0) {
      throw new HopError(`page ${page} is locked by ${gaveUp.get(page)}; nothing rebased`, {
        hint: "Run it again once the holder is done (--wait SECONDS waits longer), or " +
          "suspend the page first (hop relay suspend).",
      });
    }
    const work = async (): Promise<RebaseResult> => {
      const r: RebaseResult = {
        folder: cfg.name,
        path,
        indexed: 0,
        update: 0,
        deletions: 0,
        requests: 0,
      };
      const moved = (p: string) => `${path}/${p}`;
      // the update first: a cut run leaves paths the index does not name, which audit reports
      for (const u of viewRelay(await io.list()).pages.get(page)?.updates ?? []) {
        if (!u.index || !u.data) continue;
        const idx = await readUpdateIndex(io, page, u.time);
        const tmp = await mkdtemp(join(tmpdir(), "hop-rebase-"));
        try {
          const got = await extractArchive(await io.read(u.data.name), join(tmp, path), {
            maxRatio: 1e9,
            fresh: true,
            sync: false,
          });
          const files = got.entries.filter((e) => e.type === "file").map((e) => moved(e.path));
          await io.write(
            u.data.name,
            writeArchive({
              root: tmp,
              files,
              compress: () => compressorFor(cfg.compression ?? "bzip2"),
            }),
          );
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
        await writeUpdateIndex(io, page, u.time, {
          entries: idx.entries.map((e) => ({ ...e, path: moved(e.path) })),
          pullers: idx.pullers,
        });
        r.update += idx.entries.length;
      }
      const index = await readPersistentIndex(io, page);
      await writePersistentIndex(io, page, index.map((e) => ({ ...e, path: moved(e.path) })));
      ctx.indexCache.delete(page);
      r.indexed = index.length;
      const nowS = Math.floor(ctx.now() / 1000);
      const tombs = await readTombstones(io, page);
      if (Object.keys(tombs).length > 0) {
        const t = Object.fromEntries(Object.entries(tombs).map(([p, x]) => [moved(p), x]));
        await writeTombstones(io, page, t, nowS);
        r.deletions = Object.keys(tombs).length;
      }
      // hop clients come back from the folder above: their registrations forget the folder
      for (const c of await readClients(io, viewRelay(await io.list()).clients)) {
        if (c.folder === undefined) continue;
        delete c.folder;
        await registerClient(io, c);
      }
      const reqs = await readRequests(io, page);
      if (Object.keys(reqs).length > 0) {
        const q = Object.fromEntries(Object.entries(reqs).map(([p, x]) => [moved(p), x]));
        await writeRequests(io, page, q, nowS);
        r.requests = Object.keys(reqs).length;
      }
      return r;
    };
    const lock = held.get(page);
    const r = lock ? await withLock(lock, cfg.lockTimeoutSeconds, work) : await work();
    out.push(r);
    reporter.info(
      `${cfg.name}: the relay's files are now under ${path}/: ${r.indexed} index entr(ies)` +
        (r.update ? `, ${r.update} file(s) of the pending update` : "") +
        (r.deletions ? `, ${r.deletions} deletion record(s)` : "") +
        (r.requests ? `, ${r.requests} request(s)` : "") +
        `; now point \`local path\` of every client at the folder that holds ${path}/`,
      { event: "rebased", ...r },
    );
  });
  return out;
}

/** What `hop relay access` found or set for one file. */
export interface AccessResult {
  folder: string;
  path: string;
  /** `r?w-` as escalectl prints it. */
  modifiers: string;
  r: boolean | null;
  w: boolean | null;
}

/**
 * `hop relay access [MODIFIERS] FILE`: shows (no modifiers) or sets the
 * access modifiers of a file of a configured folder (see `access.ts`). The
 * folder is the section whose local path holds FILE; nothing on the relay is
 * read or written.
 */
export async function relayAccess(
  opts: FolderSource & { reporter: Reporter; file: string; modifiers?: string },
): Promise<AccessResult> {
  const { reporter } = opts;
  const mods = opts.modifiers === undefined ? undefined : parseModifiers(opts.modifiers);
  const abs = resolve(opts.file);
  const { folders } = await resolveFolders(opts, reporter);
  const holders = folders.filter((f) => {
    const rel = relative(f.localPath, abs);
    return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
  });
  const roots = [...new Set(holders.map((f) => f.localPath))];
  if (roots.length === 0) {
    throw new HopError(`${abs} is in none of the synced folders`, {
      code: "usage",
      exitCode: 2,
      hint: `The folders: ${folders.map((f) => f.localPath).join(", ")}.`,
    });
  }
  if (roots.length > 1) {
    throw new HopError(`${abs} is in several synced folders: ${roots.join(", ")}`, {
      code: "usage",
      exitCode: 2,
      hint: "Pick one with --section NAME.",
    });
  }
  const cfg = holders[0];
  const path = relative(cfg.localPath, abs).split(sep).join("/");
  if (isHiddenPath(path)) {
    throw new HopError(`${path} has a hidden (dot) name: sync never touches it`, {
      code: "usage",
      exitCode: 2,
    });
  }
  const table = await readAccess(cfg.localPath);
  const known = Object.hasOwn(table, path);
  if (mods) {
    const exists = await stat(abs).then((s) => s.isFile(), () => false);
    if (!exists && !known) {
      throw new HopError(`cannot find the file ${abs}`, {
        code: "not-found",
        hint: "Give a file of the folder (a path from here, or absolute).",
      });
    }
    setModifiers(table, path, mods);
    await writeAccess(cfg.localPath, table);
  }
  const a = Object.hasOwn(table, path) ? table[path] : undefined;
  const r: AccessResult = {
    folder: cfg.name,
    path,
    modifiers: formatAccess(a),
    r: a?.r ?? null,
    w: a?.w ?? null,
  };
  const says = [
    r.r === false ? "never pushed" : "pushed",
    r.w === false ? "never written or deleted by sync" : "written and deleted by sync",
  ].join(", ");
  reporter.info(`${cfg.name}: ${path}: ${r.modifiers} (${says})`, { event: "access", ...r });
  return r;
}
