/**
 * One pass of relay sync for one folder, in Escale 0.7's order: list the
 * relay, recover this client's own locks (first pass), register as a puller,
 * pull every page with an update, apply other clients' deletions, then push
 * every page with local changes. Each page is its own step: a failure on one
 * page is reported and the others go on.
 *
 * @example
 * ```ts
 * const ctx = await openSync(cfg, reporter);
 * try { await syncPass(ctx, { first: true }); } finally { await closeSync(ctx); }
 * ```
 *
 * @module
 */
import { hostname } from "node:os";
import { readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { type Compression, FORMAT_FILE } from "../codec/compression.ts";
import {
  type IndexEntry,
  lockName,
  pageOf,
  pagePrefix,
  parseRelayName,
} from "../codec/escale_index.ts";
import { errorCode, explainError, HopError } from "../errors.ts";
import type { Reporter } from "../ui/report.ts";
import type { FolderConfig } from "./config.ts";
import {
  clientFileName,
  parseClientFileName,
  readClients,
  readRelayFormat,
  recordRelayFormat,
  registerClient,
} from "./hopfiles.ts";
import { CRYPT_FILE, encryptedIO, openRelayKey } from "./crypt.ts";
import { escaleEncryptedIO, relayEncryption } from "./escale_crypt.ts";
import { openRelayIO, type RelayFile, type RelayIO, relayOptions } from "./io.ts";
import { openRelayDriver, relayOnDriver } from "./backend/mod.ts";
import { TEMP_PREFIX } from "./backend/types.ts";
import type { Driver } from "../storage/types.ts";
import { placeholderPass } from "./placeholder.ts";
import { type AccessTable, readAccess } from "./access.ts";
import { isSuspendLock, readLock } from "./lock.ts";
import { processHere } from "./local_lock.ts";
import { type RelayView, viewRelay } from "./pages.ts";
import { applyDeletions, pullPage, type PullResult } from "./pull.ts";
import type { QuarantineRecord } from "./quarantine.ts";
import type { PassTotals } from "./progress.ts";
import { expectedFromListing, pruneUpdateHeads, readUpdateHead, repairCutWork } from "./pullers.ts";
import { pushPage, type PushResult } from "./push.ts";
import { settlePage } from "./requests.ts";
import { answerRequests, takeSends } from "./sends.ts";
import {
  type ChecksumCache,
  type LocalFile,
  openChecksumCache,
  scanFolder,
  STATE_DIR,
} from "./scan.ts";
import { loadState, saveState, type SyncState } from "./state.ts";

/**
 * How long an exclusive-create claim without its file (left by a client
 * killed between the two steps) blocks a page. Creating a lock takes well
 * under a second; a later writer is caught by the lock's read-back check.
 */
export const CLAIM_GRACE_MS = 15_000;

/** Everything a pass works with, for one folder and its relay. */
export interface SyncContext {
  cfg: FolderConfig;
  io: RelayIO;
  /**
   * Where locks are taken and refreshed: on FTP a second connection, so that a
   * lock stays fresh while a long transfer holds the first one.
   */
  lockIo: RelayIO;
  reporter: Reporter;
  state: SyncState;
  cache: ChecksumCache;
  /** Clock in ms (injectable for tests). */
  now: () => number;
  /** Persistent indexes read, by page, with the relay mtime they were read at. */
  indexCache: Map<string, { mtimeMs: number; size: number; readAt: number; entries: IndexEntry[] }>;
  /** Pages whose topdir name collision was already reported. */
  warnedCollisions: Set<string>;
  /** Paths whose unpushed conflicting change (upload, conservative modes) was reported. */
  warnedHeld: Set<string>;
  /** Aborted by Ctrl-C: transfers in progress stop, nothing is published. */
  signal?: AbortSignal;
  /** This client's name was checked not to belong to another folder or host. */
  nameChecked?: boolean;
  /** What the pass in progress pulls and pushes in all, for progress across pages. */
  pass?: { pull?: PassTotals; push?: PassTotals };
  /** Escale's placeholder scheme (no `index` line): the relay's storage, a tree of folders. */
  tree?: Driver;
  /** The folder's access modifiers (`hop relay access`), read again each pass. */
  access?: AccessTable;
  /** A placeholder relay's pass said that it ignores the access modifiers. */
  accessWarned?: boolean;
}

/** Totals of one pass. */
export interface PassResult {
  pulled: number;
  pushed: number;
  deletedLocally: number;
  deletionsPushed: number;
  conflicts: string[];
  /** Pages skipped because another client held the lock. */
  busy: number;
  /** Pages whose step failed (each reported as a warning). */
  errors: number;
  /** Bad updates this pass moved aside (see `quarantine.ts`). */
  quarantined?: number;
  /** Changed files waiting for a later update. */
  waiting: number;
  /** Why updates stay on the relay: each says which pullers an update waits for. */
  waits: string[];
  /** Files and bytes this pass set out to move (pulls: the updates' archives; pushes: changes). */
  planned?: { pullBytes: number; pushFiles: number; pushBytes: number };
}

/** Opens the relay and the local state of a folder. */
export async function openSync(
  cfg: FolderConfig,
  reporter: Reporter,
  opts: {
    io?: RelayIO;
    now?: () => number;
    /** Leave `.hop/staging-*` alone (admin commands: a sync may be running on the folder). */
    keepStaging?: boolean;
  } = {},
): Promise<SyncContext> {
  try {
    const st = await stat(cfg.localPath);
    if (!st.isDirectory()) throw new Error("not a folder");
  } catch (e) {
    throw new HopError(`local folder ${cfg.localPath} is not usable: ${(e as Error).message}`, {
      hint: `Create it, or fix "local path" (${cfg.origin}).`,
    });
  }
  // staging folders left by a pull that was cut (the process killed): never reused
  const hopDir = join(cfg.localPath, STATE_DIR);
  for (const n of opts.keepStaging ? [] : await readdir(hopDir).catch(() => [] as string[])) {
    if (n.startsWith("staging-")) await rm(join(hopDir, n), { recursive: true, force: true });
  }
  let io: RelayIO;
  let lockIo: RelayIO;
  let tree: Driver | undefined;
  if (cfg.scheme === "placeholder") {
    if (cfg.passphrase !== undefined) {
      throw new HopError(
        `${cfg.origin}: \`encryption = hop\` works with Escale's index scheme only, and this ` +
          "section has no `index` line (Escale's placeholder scheme)",
        {
          hint: "Add `index = 1` on every client of this relay, or use Escale's encryption " +
            "(`encryption = yes` with a Fernet key), which both schemes know.",
        },
      );
    }
    // a tree of folders, not one flat folder: the pass works on the storage itself
    tree = await openRelayDriver(cfg.relayUrl, relayOptions(cfg));
    io = lockIo = relayOnDriver(tree);
  } else {
    const backendOpts = { ...relayOptions(cfg), claimGraceMs: CLAIM_GRACE_MS };
    io = opts.io ?? await openRelayIO(cfg.relayUrl, backendOpts);
    lockIo = io;
    if (!opts.io && !cfg.relayUrl.startsWith("file:")) {
      try {
        lockIo = await openRelayIO(cfg.relayUrl, backendOpts);
      } catch (e) {
        await io.close().catch(() => {});
        throw e;
      }
    }
    try {
      // decided before anything is written: the relay's compression and encryption must be
      // the configured ones (a look or a repair writes no archive: any compression will do)
      const listing = await io.list();
      await checkRelayCompression(cfg, io, listing, !opts.keepStaging);
      await checkRelayEncryption(cfg, io, listing);
      if (cfg.passphrase !== undefined) {
        io = encryptedIO(io, await openRelayKey(io, cfg.passphrase));
      } else if (cfg.cipher) io = escaleEncryptedIO(io, cfg.cipher);
    } catch (e) {
      await io.close().catch(() => {});
      if (lockIo !== io) await lockIo.close().catch(() => {});
      throw e;
    }
  }
  const state = await loadState(cfg.localPath, cfg.relayUrl, cfg.clientName);
  const cache = await openChecksumCache(cfg.localPath, cfg.checksum);
  cache.share(state.base);
  return {
    cfg,
    io,
    lockIo,
    reporter,
    state,
    cache,
    now: opts.now ?? Date.now,
    indexCache: new Map(),
    warnedCollisions: new Set(),
    warnedHeld: new Set(),
    tree,
  };
}

/**
 * Throws, before anything is written, when the relay's archives are
 * encrypted otherwise than the folder's configuration says (hop's own
 * scheme, Escale's Fernet or Blowfish, or none).
 */
async function checkRelayEncryption(
  cfg: FolderConfig,
  io: RelayIO,
  listing: RelayFile[],
): Promise<void> {
  const found = await relayEncryption(io, listing, cfg.cipher);
  if (found === undefined) return;
  const want = cfg.passphrase !== undefined ? "hop" : cfg.cipher?.name ?? "none";
  if (found === want) return;
  const says: Record<string, string> = {
    none: "not encrypted",
    hop: "encrypted with hop's own scheme (`encryption = hop`)",
    fernet: "encrypted with Escale's Fernet (`encryption = yes` or `fernet`)",
    blowfish: "encrypted with Escale's Blowfish",
    unknown: "encrypted in a way hop does not recognise (Blowfish with another passphrase?)",
  };
  throw new HopError(
    `relay ${io.label} is ${says[found]}, but ${cfg.origin} says ${
      want === "none" ? "no encryption" : `encryption = ${want}`
    }`,
    {
      hint: "Nothing was written. Use the `encryption` and `passphrase` the other clients of " +
        "this relay use.",
    },
  );
}

/**
 * Throws, before anything is written, when this client would write archives the relay's
 * other clients cannot read: the relay records another compression (`.hop-format`), or it
 * has none recorded (bzip2: Escale's, or older hop clients') and is already in use while
 * this folder says zstd or none. The first client of an unused relay records its
 * compression when it is not bzip2. `writer` false (a look or a repair): only a record this
 * build cannot read stops it.
 */
async function checkRelayCompression(
  cfg: FolderConfig,
  io: RelayIO,
  listing: RelayFile[],
  writer: boolean,
): Promise<void> {
  const want = cfg.compression ?? "bzip2";
  const mismatch = (found: Compression) =>
    new HopError(
      `relay ${io.label} records compression = ${found} (${FORMAT_FILE}), but ${cfg.origin} ` +
        `says ${cfg.compression ? `compression = ${want}` : "bzip2 (no `compression`)"}`,
      {
        code: "compression-mismatch",
        hint: `Nothing was written. Use the relay's compression on every client: ${
          cfg.origin === "command line"
            ? `--compression ${found}`
            : `\`compression = ${found}\` in ${cfg.origin}`
        }.`,
      },
    );
  const rec = await readRelayFormat(io, listing);
  if (rec) {
    if (writer && rec.compression !== want) throw mismatch(rec.compression);
    return;
  }
  if (want === "bzip2" || !writer) return;
  const own = clientFileName(cfg.clientName);
  const used = listing.find((f) => {
    if (f.name === own || f.name === CRYPT_FILE || f.name.startsWith(TEMP_PREFIX)) return false;
    const n = parseRelayName(f.name);
    return n ? n.kind !== "lock" : f.name.startsWith(".hop-");
  });
  if (used) {
    throw new HopError(
      `relay ${io.label} is already used with bzip2 (it holds ${used.name} and records no ` +
        `compression), but ${cfg.origin} says compression = ${want}`,
      {
        code: "compression-mismatch",
        hint: "Nothing was written. Escale clients and hop clients before this option read " +
          "bzip2 only: remove `compression` to use this relay, or give every client a new, " +
          `empty relay folder with compression = ${want}.`,
      },
    );
  }
  if (await recordRelayFormat(io, { compression: want })) return;
  // another client recorded it first
  const raced = await readRelayFormat(io, await io.list());
  if (raced && raced.compression !== want) throw mismatch(raced.compression);
}

/** Between pages, the state is written at most this often (the pass's end always writes it). */
const STATE_SAVE_MS = 2_000;

/** Saves the local state and closes the relay. */
export async function closeSync(ctx: SyncContext): Promise<void> {
  try {
    await saveState(ctx.cfg.localPath, ctx.state);
  } finally {
    await ctx.io.close();
    if (ctx.lockIo !== ctx.io) await ctx.lockIo.close();
  }
}

/**
 * Recovers this client's own locks left by a previous run: a `w` lock means a
 * push was cut (its partial update is rolled back), an `r` lock is released.
 * Also removes temp files of atomic writes nobody touched for long.
 * A lock of a live process of the same name on this host is left alone.
 */
export async function recoverOwnLocks(ctx: SyncContext, view: RelayView): Promise<string[]> {
  const done: string[] = [];
  // temp files of atomic writes cut by a crash: nobody wrote to them for long
  const staleMs = Math.max(2 * ctx.cfg.lockTimeoutSeconds * 1000, 3600_000);
  for (const f of view.files) {
    if (f.name.startsWith(TEMP_PREFIX) && ctx.now() - f.mtimeMs > staleMs) {
      await ctx.io.delete(f.name);
      done.push(`removed the stale temp file ${f.name}`);
    }
  }
  for (const p of view.pages.values()) {
    if (!p.lock) continue;
    const found = await readLock(ctx.io, p.page, ctx.now);
    if (!found || (found.info.owner !== ctx.cfg.clientName && found.info.owner !== "")) continue;
    if (processHere(found.info) === "running") continue;
    const undone = await repairCutWork(ctx.io, p.page, found.info.mode);
    for (const d of undone) done.push(`page ${p.page}: ${d}`);
    await ctx.io.delete(lockName(p.page));
    done.push(`page ${p.page}: released this client's ${found.info.mode ?? "legacy"} lock`);
  }
  return done;
}

/**
 * Registers (or refreshes, hourly) this client as a puller, unless it only
 * uploads. First (and before each refresh) checks that its name is not
 * registered by another folder or host: two folders under one name would
 * take each other's updates for their own and never receive them.
 */
export async function ensureRegistered(ctx: SyncContext, view: RelayView): Promise<void> {
  const { cfg } = ctx;
  const name = clientFileName(cfg.clientName);
  const mine = view.clients.find((f) => f.name === name);
  const fresh = mine !== undefined && ctx.now() - mine.mtimeMs < 3600_000;
  if (mine && (!ctx.nameChecked || !fresh)) {
    const [rec] = await readClients(ctx.io, [mine]);
    const nowS = Math.floor(ctx.now() / 1000);
    const live = rec && nowS - rec.seen < cfg.clientExpirySeconds;
    if (live && (rec.host !== hostname() || (rec.folder && rec.folder !== cfg.localPath))) {
      throw new HopError(
        `client name "${cfg.clientName}" is already registered on ${ctx.io.label} by ${
          rec.folder ?? "a folder"
        } on ${rec.host} (seen ${nowS - rec.seen} s ago)`,
        {
          code: "client-name-taken",
          hint: `Give this folder a name of its own (\`client name = ...\` in ${cfg.origin}, or ` +
            `--client-name); if that folder moved here or is gone for good, first run: ` +
            `hop relay forget ${cfg.clientName}`,
        },
      );
    }
  }
  ctx.nameChecked = true;
  if (cfg.mode === "upload" || fresh) return;
  const nowS = Math.floor(ctx.now() / 1000);
  await registerClient(ctx.io, {
    name: cfg.clientName,
    mode: cfg.mode,
    host: hostname(),
    registered: nowS,
    seen: nowS,
    folder: cfg.localPath,
  });
}

/** The totals of a pass that has done nothing yet. */
export function emptyPassResult(): PassResult {
  return {
    pulled: 0,
    pushed: 0,
    deletedLocally: 0,
    deletionsPushed: 0,
    conflicts: [],
    busy: 0,
    errors: 0,
    waiting: 0,
    waits: [],
  };
}

/** Runs one pass; `first` adds the recovery of own locks. */
export async function syncPass(
  ctx: SyncContext,
  opts: { first?: boolean; signal?: AbortSignal } = {},
): Promise<PassResult> {
  const { cfg, reporter } = ctx;
  const out = emptyPassResult();
  const step = async (what: string, fn: () => Promise<void>) => {
    if (opts.signal?.aborted) return;
    try {
      await fn();
    } catch (e) {
      if (opts.signal?.aborted) {
        reporter.info(`${cfg.name}: ${what}: stopped (Ctrl-C); nothing of it was published`, {
          event: "interrupted",
          step: what,
        });
        return;
      }
      const err = explainError(e);
      if (!err) throw e;
      out.errors++;
      reporter.warn(`${cfg.name}: ${what}: ${err.message}`, {
        event: "error",
        code: errorCode(err),
        hint: err.hint,
      });
      if (err.hint) reporter.debug?.(`${cfg.name}: ${err.hint}`);
    }
  };
  ctx.access = await readAccess(cfg.localPath);
  if (ctx.tree) {
    if (Object.keys(ctx.access).length > 0 && !ctx.accessWarned) {
      ctx.accessWarned = true;
      reporter.warn(
        `${cfg.name}: the access modifiers of ${cfg.localPath} (hop relay access) apply to ` +
          "index relays only; this relay (no `index` line) ignores them",
      );
    }
    return await placeholderPass(ctx, opts);
  }
  const reportedBusy = new Set<string>();
  const listed = await ctx.io.list();
  reporter.debug?.(`${cfg.name}: ${ctx.io.label} lists ${listed.length} file(s)`, 2);
  let view = viewRelay(listed);
  if (opts.first) {
    for (const d of await recoverOwnLocks(ctx, view)) reporter.info(`${cfg.name}: ${d}`);
    view = viewRelay(await ctx.io.list());
  }
  if (ctx.state.heads) pruneUpdateHeads(ctx.state.heads, view.files);
  await ensureRegistered(ctx, view);
  if (cfg.mode !== "upload") {
    const pulls = await pullTotals(ctx, view);
    ctx.pass = { pull: pulls.totals };
    for (const p of view.pages.values()) {
      if (p.updates.length === 0) continue;
      if (p.updates.length > 1) {
        reporter.warn(
          `${cfg.name}: page ${p.page} has ${p.updates.length} updates; using the oldest`,
        );
      }
      await step(`pulling page ${p.page}`, async () => {
        const r = await pullPage(ctx, p);
        pulls.totals.files += r.files;
        pulls.totals.bytes += pulls.sizes.get(p.page) ?? 0;
        if (r.skipped) {
          reporter.debug?.(`${cfg.name}: page ${p.page}: nothing to pull: ${PULL_SKIP[r.skipped]}`);
        }
        if (r.skipped === "busy") {
          out.busy++;
          await reportBusy(ctx, p.page, reportedBusy);
        }
        if (r.quarantined) {
          out.quarantined = (out.quarantined ?? 0) + 1;
          reportQuarantined(ctx, r.quarantined.record, r.quarantined.name);
        }
        out.pulled += r.files;
        out.conflicts.push(...r.conflicts);
        if (r.files > 0 || r.conflicts.length > 0) {
          reporter.info(`${cfg.name}: pulled ${r.files} file(s) of page ${p.page}`, {
            event: "pulled",
            page: p.page,
            files: r.files,
            bytes: r.bytes,
            removed: r.removed ?? false,
          });
        }
      });
      await saveState(cfg.localPath, ctx.state, { atMostEveryMs: STATE_SAVE_MS });
    }
    view = viewRelay(await ctx.io.list());
    for (const p of view.pages.values()) {
      if (!p.sends) continue;
      await step(`taking what was sent on page ${p.page}`, async () => {
        const r = await takeSends(ctx, p);
        if (r.skipped === "busy") {
          out.busy++;
          await reportBusy(ctx, p.page, reportedBusy);
        }
        out.pulled += r.files;
        out.conflicts.push(...r.conflicts);
        if (r.files > 0) {
          reporter.info(`${cfg.name}: took ${r.files} file(s) sent on page ${p.page}`, {
            event: "pulled",
            page: p.page,
            files: r.files,
            bytes: r.bytes,
          });
        }
      });
    }
    view = viewRelay(await ctx.io.list());
    for (const p of view.pages.values()) {
      await step(`deletions of page ${p.page}`, async () => {
        const r = await applyDeletions(ctx, p);
        out.deletedLocally += r.deleted.length;
        for (const d of r.deleted) {
          reporter.info(`${cfg.name}: deleted ${d} (deleted on another client)`, {
            event: "deleted",
            path: d,
          });
        }
        for (const k of r.kept) {
          reporter.warn(`${cfg.name}: ${k} was deleted elsewhere but changed here: kept`);
        }
      });
    }
  }
  {
    view = viewRelay(await ctx.io.list());
    // Asking for files costs other clients a push: never because this client could not
    // write them (a failed pull, a read-only or full folder).
    const unwritable = cfg.mode === "upload"
      ? "upload mode"
      : out.errors > 0
      ? "a pull failed this pass"
      : await unwritableWhy(cfg.localPath);
    const canWrite = unwritable === undefined;
    if (!canWrite && cfg.mode !== "upload") {
      reporter.debug?.(`${cfg.name}: not asking for files this client lacks: ${unwritable}`);
    }
    for (const p of view.pages.values()) {
      await step(`settling page ${p.page}`, async () => {
        const r = await settlePage(ctx, p, canWrite);
        if (r.busy) {
          out.busy++;
          await reportBusy(ctx, p.page, reportedBusy);
        }
        out.conflicts.push(...r.conflicts);
        if (r.asked.length > 0) {
          reporter.info(
            `${cfg.name}: page ${p.page}: asked for ${r.asked.length} file(s) this client lacks ` +
              "(the relay's version, whose update is gone) to be sent again",
            { event: "missing", page: p.page, files: r.asked.length },
          );
        }
        if (r.echoed.length > 0) {
          reporter.info(
            `${cfg.name}: page ${p.page}: asked the Escale clients to send back ` +
              `${r.echoed.length} file(s) they consumed, to compare contents`,
            { event: "echo", page: p.page, files: r.echoed.length },
          );
        }
        if (r.restored.length > 0) {
          reporter.info(
            `${cfg.name}: page ${p.page}: no Escale client answered for ${r.restored.length} ` +
              "file(s); their entries are back in the index",
            { event: "echo-timeout", page: p.page, files: r.restored.length },
          );
        }
        for (const h of r.held) {
          if (ctx.warnedHeld.has(h)) continue;
          ctx.warnedHeld.add(h);
          reporter.warn(
            `${cfg.name}: ${h} changed on the relay and here; ${
              canWrite ? `${cfg.mode} mode` : `this pass cannot write here (${unwritable}), so it`
            } keeps yours unpushed`,
            { event: "held", path: h },
          );
        }
      });
    }
  }
  if (cfg.mode !== "download") {
    if (opts.signal?.aborted) return out;
    view = viewRelay(await ctx.io.list());
    const scan = await scanFolder(
      cfg.localPath,
      cfg,
      (n) => reporter.progress({ label: "scanning", files: n }),
    );
    reporter.close();
    ctx.pass = { push: await pushTotals(ctx, scan) };
    const pages = new Set<string>();
    const prefixes = new Map<string, Set<string>>();
    for (const f of scan.keys()) {
      const page = pageOfPath(ctx, f);
      pages.add(page);
      const prefix = pagePrefix(f, cfg.pageDepth);
      if (prefix === null) continue;
      let set = prefixes.get(page);
      if (!set) prefixes.set(page, set = new Set());
      set.add(prefix);
    }
    for (const [page, set] of prefixes) {
      if (set.size > 1 && !ctx.warnedCollisions.has(page)) {
        ctx.warnedCollisions.add(page);
        reporter.warn(
          `${cfg.name}: folders ${[...set].map((p) => p + "/").join(", ")} share page ${page} ` +
            "(topdir names collide); they are synced together in that page",
          { event: "page-collision", page },
        );
      }
    }
    for (const p of Object.keys(ctx.state.base)) pages.add(pageOfPath(ctx, p));
    for (const page of [...pages].sort()) {
      const pv = view.pages.get(page);
      if (pv?.requests) {
        await step(`sending what was asked for on page ${page}`, async () => {
          const n = await answerRequests(ctx, pv, scan);
          if (n > 0) {
            reporter.info(`${cfg.name}: page ${page}: sent ${n} file(s) other clients asked for`, {
              event: "sent",
              page,
              files: n,
            });
          }
        });
      }
      await step(`pushing page ${page}`, async () => {
        const r = await pushPage(ctx, view.pages.get(page), page, scan);
        ctx.pass!.push!.files += r.files;
        ctx.pass!.push!.bytes += r.bytes;
        if (r.skipped && r.skipped !== "nothing") {
          reporter.debug?.(`${cfg.name}: page ${page}: not pushed: ${PUSH_SKIP[r.skipped]}`);
        }
        if (r.skipped === "busy") {
          out.busy++;
          await reportBusy(ctx, page, reportedBusy);
        }
        out.pushed += r.files;
        out.deletionsPushed += r.deleted.length;
        out.waiting += r.waiting;
        if (r.files > 0 || r.deleted.length > 0) {
          reporter.info(
            `${cfg.name}: pushed ${r.files} file(s)${
              r.deleted.length ? ` and ${r.deleted.length} deletion(s)` : ""
            } on page ${page}${r.waiting ? ` (${r.waiting} more wait for the next update)` : ""}`,
            { event: "pushed", page, files: r.files, bytes: r.bytes, deleted: r.deleted.length },
          );
        }
      });
      await saveState(cfg.localPath, ctx.state, { atMostEveryMs: STATE_SAVE_MS });
    }
    await ctx.cache.save(scan);
  } else {
    await ctx.cache.save();
  }
  await saveState(cfg.localPath, ctx.state);
  ctx.pass = undefined;
  reporter.close();
  if (!opts.signal?.aborted) {
    // the last listing still holds when this pass published nothing since
    const published = out.pushed + out.deletionsPushed > 0;
    out.waits = await pendingWaits(ctx, published ? await ctx.io.list() : view.files);
  }
  return out;
}

/** Says, once (by the client that moved it), that a bad update was moved aside, and what to do. */
function reportQuarantined(ctx: SyncContext, r: QuarantineRecord, name: string): void {
  const pusher = r.pusher ?? "its pusher";
  ctx.reporter.warn(
    `${ctx.cfg.name}: page ${r.page}: the update pushed by ${r.pusher ?? "?"} at ${r.time} ` +
      `cannot be pulled by any client (${r.reason}); it was moved aside to ${name} on ` +
      `${ctx.io.label}, and the page takes new updates again. ${pusher} should push again (a hop or ` +
      "Escale client does by itself: the files the page's index names and nobody received " +
      "are asked for); `hop cleanup` removes the moved files, `hop audit` lists them",
    { event: "quarantined", ...r, files: name },
  );
}

/** Why a page was not pulled, for `-v`. */
const PULL_SKIP: Record<NonNullable<PullResult["skipped"]>, string> = {
  busy: "another client holds its lock",
  consumed: "this client consumed its update already",
  own: "the update is this client's",
  none: "no update",
  incomplete: "its update is incomplete (being pushed, or cut)",
};

/** Why a page with changes was not pushed, for `-v`. */
const PUSH_SKIP: Record<NonNullable<PushResult["skipped"]>, string> = {
  busy: "another client holds its lock",
  "pending-update": "an update is still pending on it (one at a time per page)",
  nothing: "nothing changed",
};

/**
 * What the pulls of a pass will read in all: the archives of the updates
 * this client has not consumed and did not push (their relay sizes).
 */
async function pullTotals(
  ctx: SyncContext,
  view: RelayView,
): Promise<{ totals: PassTotals; sizes: Map<string, number> }> {
  const sizes = new Map<string, number>();
  for (const p of view.pages.values()) {
    const upd = p.updates.find((u) => u.index && u.data);
    if (!upd) continue;
    const head = await readUpdateHead(
      ctx.io,
      p.page,
      upd.time,
      upd.index!,
      ctx.state.heads ??= {},
      ctx.now(),
    ).catch(() => null); // an unreadable update is reported by its step
    if (!head || head.pusher === ctx.cfg.clientName) continue;
    if (head.pullers.includes(ctx.cfg.clientName)) continue;
    sizes.set(p.page, upd.data!.size);
  }
  let totalBytes = 0;
  for (const n of sizes.values()) totalBytes += n;
  return { totals: { files: 0, bytes: 0, totalBytes }, sizes };
}

/** What the pushes of a pass may send in all: the files changed since they last agreed. */
async function pushTotals(ctx: SyncContext, scan: Map<string, LocalFile>): Promise<PassTotals> {
  const t = { files: 0, bytes: 0, totalFiles: 0, totalBytes: 0 };
  for (const f of scan.values()) {
    // a cache hit costs no promise (100,000 unchanged files on a rescan)
    const sum = ctx.cache.lookup(f) ?? await ctx.cache.checksum(f);
    if (ctx.state.base[f.path] === sum) continue;
    t.totalFiles++;
    t.totalBytes += f.size;
  }
  return t;
}

/**
 * Whether files can be written into the folder: undefined when they can,
 * else why not (read-only, permission, full), found by writing a probe file.
 */
async function unwritableWhy(folder: string): Promise<string | undefined> {
  // hidden (never synced), in the folder itself: .hop/ may be writable when the folder is not
  const probe = join(folder, `.hop-probe-${process.pid}`);
  try {
    await writeFile(probe, "");
    await rm(probe, { force: true });
    return undefined;
  } catch (e) {
    return explainError(e)?.message ?? (e as Error).message;
  }
}

/**
 * The updates still on the relay that this client pushed or consumed, with
 * the pullers each waits for (named when registered; else how many more
 * `puller count` asks for).
 */
async function pendingWaits(ctx: SyncContext, listing: RelayFile[]): Promise<string[]> {
  const { cfg, io } = ctx;
  const view = viewRelay(listing);
  const out: string[] = [];
  let expected: Set<string> | undefined;
  for (const p of view.pages.values()) {
    const upd = p.updates.find((u) => u.index && u.data);
    if (!upd) continue;
    // an update that cannot be read was reported by the pass's steps
    const head = await readUpdateHead(
      io,
      p.page,
      upd.time,
      upd.index!,
      ctx.state.heads ??= {},
      ctx.now(),
    ).catch(() => null);
    if (!head) continue;
    const mine = head.pusher === cfg.clientName;
    if (!mine && !head.pullers.includes(cfg.clientName)) continue;
    expected ??= await expectedFromListing(
      io,
      listing.filter((f) => parseClientFileName(f.name) !== null),
      Math.floor(ctx.now() / 1000),
      cfg.clientExpirySeconds,
    );
    const consumed = new Set(head.pullers.filter((n) => n !== "" && n !== head.pusher));
    const missing = [...expected].filter((n) => n !== head.pusher && !consumed.has(n)).sort();
    const more = Math.max(0, (cfg.pullerCount ?? 1) - consumed.size - missing.length);
    if (missing.length === 0 && more === 0) continue;
    const whose = mine ? "this client's update" : `the update of ${head.pusher ?? "?"}`;
    const who = [
      ...(missing.length ? [missing.join(", ")] : []),
      ...(more ? [`${more} more puller(s) (puller count = ${cfg.pullerCount ?? 1})`] : []),
    ].join(" and ");
    out.push(`${whose} on page ${p.page} waits for pullers: ${who}`);
  }
  return out;
}

/**
 * Says, once per page and pass, who holds the lock that kept this client off
 * a page and for how long: a client that crashed holding it (Escale does, on
 * some relay states) is visible on every pass until the lock times out and is
 * taken over.
 */
async function reportBusy(ctx: SyncContext, page: string, reported: Set<string>): Promise<void> {
  if (reported.has(page)) return;
  reported.add(page);
  const l = await readLock(ctx.lockIo, page, ctx.now).catch(() => null);
  if (!l) return;
  const age = Math.round(l.ageSeconds);
  const limit = ctx.cfg.lockTimeoutSeconds;
  const left = isSuspendLock(l.info)
    ? "suspended for maintenance until `hop relay resume` (or `escalectl resume`) releases it"
    : Number.isFinite(limit)
    ? `taken over in ${Math.max(0, Math.round(limit - l.ageSeconds))} s (lock timeout ${limit} s)`
    : "never taken over (lock timeout = no)";
  ctx.reporter.warn(
    `${ctx.cfg.name}: page ${page} is locked (${l.info.mode ?? "legacy"}) by ${
      l.info.owner || "?"
    }${l.info.host ? ` on ${l.info.host}` : ""} for ${age} s; ${left}`,
    { event: "locked", page, owner: l.info.owner, mode: l.info.mode, ageSeconds: age },
  );
}

function pageOfPath(ctx: SyncContext, path: string): string {
  return pageOf(path, ctx.cfg.pageDepth);
}
