/**
 * `hop audit` for relays: compares each page's persistent index, its updates
 * and the local folder, and says what is wrong — updates lost (an update
 * index without its archive or the reverse, files an update names that its
 * archive lacks), pages with two updates, files that cannot be read (garbled
 * index, bad archive, damaged registration or deletion records), updates
 * every client refuses (unsafe paths, entries without metadata), bad updates
 * moved aside (`quarantine.ts`), lock
 * holders and their age, clients not seen for long, unknown files, and how
 * the local folder differs from the index.
 *
 * With `repair`, under the page's `w` lock: half updates are removed; an
 * update that cannot be pulled (bad archive, garbled update index, files
 * missing from its archive) is removed; of two updates the oldest complete
 * one is kept; and the page's persistent index is rebuilt from this client's
 * folder (as `escalectl fix` did) plus the kept update's entries. Nothing
 * local is changed. Files other clients hold and this one does not drop out
 * of the rebuilt index, so their holders send them again: nothing is lost.
 *
 * @example
 * ```ts
 * const findings = await auditRelay({ configFile: "escale.conf", repair: true, reporter });
 * console.table(findings.map((f) => ({ kind: f.kind, page: f.page, detail: f.detail })));
 * ```
 *
 * @module
 */
import { readArchive } from "../archive/tar.ts";
import {
  type IndexEntry,
  indexName,
  pageOf,
  parseRelayName,
  PLACEHOLDER,
} from "../codec/escale_index.ts";
import { HopError } from "../errors.ts";
import type { Reporter } from "../ui/report.ts";
import { CLAIM_SUFFIX, TEMP_PREFIX } from "./backend/types.ts";
import type { FolderSource } from "./command.ts";
import { forEachFolder } from "./command.ts";
import { pathSelected } from "./config.ts";
import { CRYPT_FILE } from "./crypt.ts";
import { clientFileName, DELETED_PREFIX, readClients, readTombstones } from "./hopfiles.ts";
import { acquireLock, isSuspendLock, readLock, withLock } from "./lock.ts";
import {
  byPath,
  type PageView,
  readPersistentIndex,
  readUpdateIndex,
  viewRelay,
  writePersistentIndex,
} from "./pages.ts";
import { auditPlaceholders } from "./placeholder_maint.ts";
import { removeUpdate, repairCutWork } from "./pullers.ts";
import { isHiddenPath, type LocalFile, scanFolder } from "./scan.ts";
import type { SyncContext } from "./sync.ts";
import { entryProblem } from "./pull.ts";
import { describeQuarantined, listQuarantined } from "./quarantine.ts";

/** What a finding is about. */
export type AuditKind =
  | "update-lost" // update index without archive, archive without index, files missing from it
  | "two-updates" // a page with more than one update
  | "unreadable" // garbled index, bad archive, damaged registration or deletion records
  | "lock" // a page lock: holder, mode, age (a warning once beyond the timeout)
  | "client" // a registered client not seen for long (a warning once expired)
  | "unknown-file" // a relay file neither Escale nor hop writes
  | "quarantined" // a bad update a pull moved aside (`hop cleanup` removes it)
  | "local-missing" // in the index, not in the local folder (nor pending, nor deleted)
  | "local-differs" // local checksum differs from the index (would be pushed or pulled)
  | "local-unindexed" // a local file the index does not name (would be pushed)
  | "data-without-placeholder" // placeholder scheme: a content with no placeholder
  | "placeholder-without-data"; // placeholder scheme: a version nobody pulled, content gone

/** How bad a finding is. */
export type AuditSeverity = "info" | "warning" | "error";

/** One finding of {@linkcode auditRelay}. */
export interface AuditFinding {
  folder: string;
  kind: AuditKind;
  severity: AuditSeverity;
  page?: string;
  /** The relay file concerned, when one is. */
  name?: string;
  detail: string;
  /** For `local-*`: how many files, and the first few paths. */
  count?: number;
  paths?: string[];
  /** Lock age or time since a client was seen, in seconds. */
  ageSeconds?: number;
  /** Holder of a lock. */
  owner?: string;
  /** True when `repair` fixed it; a string says why it could not. */
  repaired?: true | string;
}

/** Options of {@linkcode auditRelay}. */
export interface AuditOptions extends FolderSource {
  /** Fix what can be fixed (see the module doc). */
  repair?: boolean;
  reporter: Reporter;
  /** A client not seen for this long is reported (default one day). */
  quietSeconds?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

const SAMPLE = 10;

/**
 * Runs `hop audit` on every folder of the source; each finding is also
 * reported as one line (event `audit`). With `repair`, findings that were
 * fixed carry `repaired: true`.
 */
export async function auditRelay(opts: AuditOptions): Promise<AuditFinding[]> {
  const { reporter } = opts;
  const out: AuditFinding[] = [];
  await forEachFolder(opts, reporter, async (ctx) => {
    const found = await auditFolder(ctx, { quietSeconds: opts.quietSeconds });
    if (opts.repair && ctx.tree) {
      reporter.info(
        `${ctx.cfg.name}: Escale's default scheme has no page index to rebuild; ` +
          "`hop cleanup` removes stale locks and rolls back cut pushes",
      );
    } else if (opts.repair) await repairFolder(ctx, found);
    for (const f of found) {
      out.push(f);
      const fix = f.repaired === true
        ? " [repaired]"
        : f.repaired
        ? ` [not repaired: ${f.repaired}]`
        : "";
      const line = `${f.folder}: ${f.severity} ${f.kind}${
        f.page !== undefined ? ` page ${f.page}` : ""
      }: ${f.detail}${fix}`;
      if (f.severity === "info") reporter.info(line, { event: "audit", ...f });
      else reporter.warn(line, { event: "audit", ...f });
    }
  }, { now: opts.now });
  return out;
}

/** True for names an Escale client or hop writes on a relay. */
function knownName(name: string): boolean {
  return parseRelayName(name) !== null || name.startsWith(".hop-") || name === CRYPT_FILE ||
    name.startsWith(TEMP_PREFIX) || name.startsWith(DELETED_PREFIX);
}

/** Audits one folder's relay (the context is open); changes nothing. */
export async function auditFolder(
  ctx: SyncContext,
  opts: { quietSeconds?: number } = {},
): Promise<AuditFinding[]> {
  const { cfg, io } = ctx;
  const out: AuditFinding[] = [];
  const add = (f: Omit<AuditFinding, "folder">) => out.push({ folder: cfg.name, ...f });
  if (ctx.tree) {
    await auditPlaceholders(ctx, add);
    return out;
  }
  const nowMs = ctx.now();
  const nowS = Math.floor(nowMs / 1000);
  const view = viewRelay(await io.list());

  for (const f of view.files) {
    if (!knownName(f.name) && !f.name.endsWith(CLAIM_SUFFIX)) {
      add({
        kind: "unknown-file",
        severity: "info",
        name: f.name,
        detail: `${f.name} (${f.size} bytes) is neither an Escale nor a hop file; sync ignores it`,
      });
    }
  }

  for (const q of await listQuarantined(view.files, io)) {
    add({
      kind: "quarantined",
      severity: "warning",
      page: q.page,
      name: q.files.map((f) => f.name).join(", "),
      detail: `${describeQuarantined(q)} (\`hop cleanup\` removes it)`,
    });
  }

  // clients
  const clients = await readClients(io, view.clients);
  for (const cf of view.clients) {
    if (!clients.some((c) => cf.name === clientFileName(c.name))) {
      add({
        kind: "unreadable",
        severity: "warning",
        name: cf.name,
        detail: `registration ${cf.name} is damaged: that client is not waited for`,
      });
    }
  }
  const quiet = opts.quietSeconds ?? 86400;
  for (const c of clients) {
    const age = nowS - c.seen;
    if (age < quiet) continue;
    const expired = age >= cfg.clientExpirySeconds;
    add({
      kind: "client",
      severity: expired ? "warning" : "info",
      name: c.name,
      ageSeconds: age,
      detail: `client ${c.name} (${c.mode}, ${c.host}) not seen for ${days(age)}` +
        (expired ? ": expired, no longer waited for (`hop cleanup` removes it)" : ""),
    });
  }

  // pages
  const scan = await scanFolder(cfg.localPath, cfg);
  const localByPage = new Map<string, LocalFile[]>();
  for (const f of scan.values()) {
    const p = pageOf(f.path, cfg.pageDepth);
    let l = localByPage.get(p);
    if (!l) localByPage.set(p, l = []);
    l.push(f);
  }
  const pages = new Set([...view.pages.keys(), ...localByPage.keys()]);
  for (const page of [...pages].sort()) {
    const v = view.pages.get(page) ?? { page, updates: [] };
    await auditPage(ctx, v, localByPage.get(page) ?? [], add, nowMs);
  }
  return out;
}

function days(s: number): string {
  return s >= 86400 ? `${Math.floor(s / 86400)} day(s)` : `${Math.round(s / 3600)} hour(s)`;
}

async function auditPage(
  ctx: SyncContext,
  v: PageView,
  local: LocalFile[],
  add: (f: Omit<AuditFinding, "folder">) => void,
  nowMs: number,
): Promise<void> {
  const { cfg, io } = ctx;
  const page = v.page;
  if (v.lock) {
    const l = await readLock(ctx.lockIo, page, ctx.now);
    if (l) {
      // a suspend lock never times out: `hop relay resume` releases it
      const stale = l.ageSeconds > cfg.lockTimeoutSeconds && !isSuspendLock(l.info);
      add({
        kind: "lock",
        severity: stale ? "warning" : "info",
        page,
        name: v.lock.name,
        owner: l.info.owner,
        ageSeconds: Math.round(l.ageSeconds),
        detail:
          `${l.info.mode ?? "legacy"} lock held by ${l.info.owner || "?"}${
            l.info.host ? ` on ${l.info.host}` : ""
          } for ${Math.round(l.ageSeconds)} s` +
          (stale
            ? ` (beyond the ${cfg.lockTimeoutSeconds} s timeout: \`hop cleanup\` removes it)`
            : ""),
      });
    }
  }
  let index: IndexEntry[] | null = [];
  if (v.index) {
    try {
      index = await readPersistentIndex(io, page);
    } catch (e) {
      index = null;
      add({
        kind: "unreadable",
        severity: "error",
        page,
        name: indexName(page),
        detail: `${indexName(page)} cannot be read: ${(e as Error).message}`,
      });
    }
  }
  if (v.updates.length > 1) {
    add({
      kind: "two-updates",
      severity: "error",
      page,
      detail: `page ${page} has ${v.updates.length} updates (${
        v.updates.map((u) => u.time).join(", ")
      }); clients wait instead of pushing`,
    });
  }
  const pending = new Set<string>();
  for (const u of v.updates) {
    const half = !(u.index && u.data);
    if (half) {
      const f = (u.index ?? u.data)!;
      const age = Math.round((nowMs - f.mtimeMs) / 1000);
      const writing = v.lock && age <= cfg.lockTimeoutSeconds;
      add({
        kind: "update-lost",
        severity: writing ? "info" : "error",
        page,
        name: f.name,
        ageSeconds: age,
        detail: `${f.name} without its ${u.index ? "archive" : "index"}` +
          (writing ? " (a push may be in progress)" : ""),
      });
      continue;
    }
    let entries: IndexEntry[];
    try {
      entries = (await readUpdateIndex(io, page, u.time)).entries;
    } catch (e) {
      add({
        kind: "unreadable",
        severity: "error",
        page,
        name: u.index!.name,
        detail: `${u.index!.name} cannot be read: ${(e as Error).message}`,
      });
      continue;
    }
    for (const e of entries) pending.add(e.path);
    const hostile = entryProblem(entries);
    if (hostile) {
      add({
        kind: "unreadable",
        severity: "error",
        page,
        name: u.index!.name,
        detail: `${u.index!.name} is refused by every client: ${hostile}; the next pull moves ` +
          "it aside (`hop audit --repair` removes it)",
      });
      continue;
    }
    const inArchive = new Set<string>();
    try {
      for await (const a of readArchive(await io.read(u.data!.name))) {
        if (a.type === "file") inArchive.add(a.path);
      }
    } catch (e) {
      add({
        kind: "unreadable",
        severity: "error",
        page,
        name: u.data!.name,
        detail: `${u.data!.name} cannot be read: ${(e as Error).message}`,
      });
      continue;
    }
    const lost = entries.filter((e) => !inArchive.has(e.path)).map((e) => e.path);
    if (lost.length > 0) {
      add({
        kind: "update-lost",
        severity: "error",
        page,
        name: u.data!.name,
        count: lost.length,
        paths: lost.slice(0, SAMPLE),
        detail: `${lost.length} file(s) named by ${u.index!.name} are not in ${u.data!.name}`,
      });
    }
  }
  if (v.deleted) {
    try {
      await readTombstones(io, page);
    } catch (e) {
      add({
        kind: "unreadable",
        severity: "warning",
        page,
        name: v.deleted.name,
        detail: (e as HopError).message,
      });
    }
  }
  if (index === null) return;
  // index against the local folder
  const idx = byPath(index);
  const localPaths = new Set(local.map((f) => f.path));
  const differs: string[] = [];
  const unindexed: string[] = [];
  for (const f of local) {
    const e = idx.get(f.path);
    if (!e) unindexed.push(f.path);
    else if (e.meta && (await ctx.cache.checksum(f)) !== e.meta.checksum) differs.push(f.path);
  }
  const missing: string[] = [];
  const tombs = v.deleted ? await readTombstones(io, page).catch(() => ({})) : {};
  for (const e of index) {
    if (localPaths.has(e.path) || pending.has(e.path) || e.path in tombs) continue;
    if (isHiddenPath(e.path) || !pathSelected(e.path, cfg)) continue;
    missing.push(e.path);
  }
  const local3: [AuditKind, string[], string][] = [
    ["local-missing", missing, "in the index but not in the local folder"],
    ["local-differs", differs, "differ locally from the index"],
    ["local-unindexed", unindexed, "are local but not in the index"],
  ];
  for (const [kind, paths, what] of local3) {
    if (paths.length === 0) continue;
    add({
      kind,
      severity: "info",
      page,
      count: paths.length,
      paths: paths.slice(0, SAMPLE),
      detail: `${paths.length} file(s) ${what}`,
    });
  }
}

/** Kinds `repair` acts on (per page). */
const REPAIRABLE: AuditKind[] = ["update-lost", "two-updates", "unreadable"];

/**
 * Repairs the pages with findings `repair` handles (see the module doc),
 * each under the page's `w` lock, and marks those findings `repaired`.
 */
export async function repairFolder(ctx: SyncContext, findings: AuditFinding[]): Promise<void> {
  const { cfg, io } = ctx;
  const byPage = new Map<string, AuditFinding[]>();
  for (const f of findings) {
    if (f.page === undefined || !REPAIRABLE.includes(f.kind) || f.severity === "info") continue;
    if (f.kind === "unreadable" && f.name?.startsWith(DELETED_PREFIX)) continue;
    let l = byPage.get(f.page);
    if (!l) byPage.set(f.page, l = []);
    l.push(f);
  }
  if (byPage.size === 0) return;
  const scan = await scanFolder(cfg.localPath, cfg);
  for (const [page, list] of byPage) {
    const held = await acquireLock(ctx.lockIo, page, {
      owner: cfg.clientName,
      mode: "w",
      timeoutSeconds: cfg.lockTimeoutSeconds,
      now: ctx.now,
      onStale: async (stale) => {
        await repairCutWork(io, page, stale.mode);
      },
    });
    if (!held) {
      for (const f of list) f.repaired = "the page is locked by another client";
      continue;
    }
    try {
      await withLock(held, cfg.lockTimeoutSeconds, async () => {
        const kept = await repairPage(ctx, page);
        await rebuildIndex(ctx, page, scan, kept);
      });
      for (const f of list) f.repaired = true;
      ctx.reporter.info(`${cfg.name}: page ${page}: rebuilt .${page}.index from ${cfg.localPath}`);
    } catch (e) {
      if (!(e instanceof HopError)) throw e;
      for (const f of list) f.repaired = e.message;
    }
  }
}

/**
 * Under the page lock: removes half updates and updates that cannot be
 * pulled, and every complete update but the oldest pullable one. Returns the
 * kept update's entries.
 */
export async function repairPage(ctx: SyncContext, page: string): Promise<IndexEntry[]> {
  const { io } = ctx;
  const v = viewRelay(await io.list()).pages.get(page);
  let kept: IndexEntry[] | null = null;
  for (const u of v?.updates ?? []) {
    if (kept === null && u.index && u.data) {
      try {
        const entries = (await readUpdateIndex(io, page, u.time)).entries;
        if (entryProblem(entries)) throw new Error("refused");
        const names = new Set<string>();
        for await (const a of readArchive(await io.read(u.data.name))) {
          if (a.type === "file") names.add(a.path);
        }
        if (entries.every((e) => names.has(e.path))) {
          kept = entries;
          continue;
        }
      } catch {
        // not pullable: removed below
      }
    }
    if (u.index && u.data) await removeUpdate(io, page, u.time);
    else for (const f of [u.data, u.index]) if (f) await io.delete(f.name);
  }
  return kept ?? [];
}

/**
 * Writes `.P.index` from this client's files of the page (checksums from the
 * cache), then `update` entries over them. The sync state is left alone: the
 * next pass records the files the index now agrees on.
 */
export async function rebuildIndex(
  ctx: SyncContext,
  page: string,
  scan: Map<string, LocalFile>,
  update: IndexEntry[],
): Promise<void> {
  const map = new Map<string, IndexEntry>();
  for (const f of scan.values()) {
    if (pageOf(f.path, ctx.cfg.pageDepth) !== page) continue;
    map.set(f.path, {
      path: f.path,
      meta: {
        placeholder: PLACEHOLDER,
        pusher: ctx.cfg.clientName,
        timestamp: Math.floor(f.mtimeMs / 1000),
        checksum: await ctx.cache.checksum(f),
        extra: [],
      },
    });
  }
  for (const e of update) map.set(e.path, e);
  await writePersistentIndex(ctx.io, page, [...map.values()]);
  ctx.indexCache.delete(page);
}
