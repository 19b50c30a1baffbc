/**
 * The `hop relay` commands: `sync` (a long-lived loop, or one pass with
 * `--once`), `status` (what the relay holds and what this client would do)
 * and `forget` (drop another client's registration). The CLI parses flags
 * and hands an AbortSignal that SIGINT/SIGTERM abort: the loop stops after
 * the step in progress.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * process.on("SIGINT", () => ac.abort());
 * await runRelaySync({ configFile: "escale.conf", reporter, signal: ac.signal });
 * ```
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { closePool } from "../archive/bzip2.ts";
import type { Compression } from "../codec/compression.ts";
import { pageOf, type UpdateIndex } from "../codec/escale_index.ts";
import { stat } from "node:fs/promises";
import { hostname } from "node:os";
import { hopConfigFile } from "./init.ts";
import { errorCode, explainError, HopError, UsageError } from "../errors.ts";
import { formatDuration, type Reporter } from "../ui/report.ts";
import { type HeldFolderLock, lockFolder } from "./local_lock.ts";
import {
  escaleConfigLocations,
  findEscaleConfig,
  type FolderConfig,
  loadRelayConfig,
  oneOffConfig,
  type RelayMode,
  type SectionError,
} from "./config.ts";
import { forgetClient, readClients, readRequests, readTombstones } from "./hopfiles.ts";
import { readAccess } from "./access.ts";
import { readLock } from "./lock.ts";
import { readPersistentIndex, readUpdateIndex, viewRelay } from "./pages.ts";
import { expectedPullers, updatePusher } from "./pullers.ts";
import { describePending, type PendingPath, placeholderPending } from "./placeholder_maint.ts";
import { planPush } from "./push.ts";
import { entryProblem } from "./pull.ts";
import {
  BadUpdateError,
  describeQuarantined,
  isContentFault,
  listQuarantined,
} from "./quarantine.ts";
import { scanFolder } from "./scan.ts";
import { closeSync, openSync, type PassResult, type SyncContext, syncPass } from "./sync.ts";

/** The text of `--ssh-key FILE`; a clear error when it cannot be read. */
async function readKeyFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read the SSH key ${file}: ${(e as Error).message}`);
  }
}

/** Where the folders come from: a config file, or a local folder and a relay. */
export interface FolderSource {
  /** `--config FILE`: an escale.conf-style file. */
  configFile?: string;
  /** One-off form: the local folder. */
  local?: string;
  /** One-off form: the relay URL or folder. */
  relay?: string;
  /** One-off form: this client's name (default: host name). */
  clientName?: string;
  /** One-off form: the mode (default shared). */
  mode?: RelayMode;
  /** One-off form: seconds between passes (default 30). */
  refresh?: number;
  /** One-off form: how update archives are compressed (default bzip2). */
  compression?: Compression;
  /** One-off form: SFTP private key file, host key fingerprint. */
  sshKeyFile?: string;
  hostKey?: string;
  /** One-off form: accept any TLS certificate or SSH host key. */
  insecure?: boolean;
  /** One-off form: rclone's configuration file. */
  rcloneConfig?: string;
  /** `--section NAME`: only these sections of the configuration file. */
  sections?: string[];
}

/** Options of {@linkcode runRelaySync}. */
export interface RelaySyncOptions extends FolderSource {
  /** One pass, then return. */
  once?: boolean;
  reporter: Reporter;
  /** Aborting stops the loop after the step in progress. */
  signal?: AbortSignal;
}

/** Totals over every pass and folder. */
export interface RelaySyncSummary {
  passes: number;
  pulled: number;
  pushed: number;
  deletedLocally: number;
  deletionsPushed: number;
  conflicts: string[];
  errors: number;
}

/** The folders to sync, and the sections of the configuration that cannot run. */
export interface ResolvedFolders {
  folders: FolderConfig[];
  /** Sections with a fault, each already reported as a warning. */
  bad: SectionError[];
}

/**
 * Resolves the folders to sync, reporting config warnings and every section
 * that cannot run (the others still do). With neither a config file nor a
 * folder and relay, the first file Escale would read is used
 * (`~/.config/escale/escale.conf`, `~/.escale/escale.conf`, `/etc/escale.conf`).
 * Throws when no section can run.
 */
export async function resolveFolders(
  src: FolderSource,
  reporter: Reporter,
): Promise<ResolvedFolders> {
  if (src.configFile && (src.local || src.relay)) {
    throw new UsageError(
      "give either --config FILE or a local folder and a relay, not both",
      "hop relay sync -c escale.conf   or   hop relay sync ./folder file:///mnt/relay",
    );
  }
  if (src.sections?.length && (src.local || src.relay)) {
    throw new UsageError(
      "--section picks sections of a configuration file; the one-off form has none",
      "Give -c FILE --section NAME (or the default configuration), or drop --section.",
    );
  }
  if (src.local && src.relay) {
    const cfg = oneOffConfig({
      local: src.local,
      relay: src.relay,
      clientName: src.clientName,
      mode: src.mode,
      compression: src.compression,
      sshKey: src.sshKeyFile ? await readKeyFile(src.sshKeyFile) : undefined,
      hostKey: src.hostKey,
      insecureTls: src.insecure || undefined,
      rcloneConfig: src.rcloneConfig ? resolve(src.rcloneConfig) : undefined,
    });
    if (src.refresh !== undefined) {
      if (!(src.refresh > 0)) throw new UsageError(`refresh must be a positive number of seconds`);
      cfg.refreshSeconds = src.refresh;
    }
    return { folders: [cfg], bad: [] };
  }
  if (src.local || src.relay) {
    throw new UsageError(
      "give both a local folder and a relay",
      "hop relay sync ./folder file:///mnt/relay",
    );
  }
  const own = hopConfigFile();
  const file = src.configFile ?? await defaultConfigFile();
  if (!file) {
    throw new UsageError(
      "no folder to sync: no configuration file given, and none where hop or Escale look",
      `Run hop relay init (it writes ${own}), give --config FILE, or a local folder and a ` +
        `relay (hop relay sync ./folder file:///mnt/relay); Escale's places are ${
          escaleConfigLocations().join(", ")
        }.`,
    );
  }
  if (!src.configFile) reporter.info(`using ${file}`, { event: "config", file });
  const loaded = await loadRelayConfig(file);
  const { warnings } = loaded;
  const { folders, errors } = sharedNames(
    ...pickSections(file, loaded.folders, loaded.errors, src.sections),
  );
  for (const w of warnings) reporter.warn(w, { event: "config" });
  for (const e of errors) {
    reporter.warn(`[${e.section}] cannot run: ${e.error.message}`, {
      event: "config-error",
      section: e.section,
      hint: e.error.hint,
    });
  }
  if (folders.length === 0) {
    const first = errors[0].error;
    throw errors.length === 1 ? first : new HopError(
      `no section of ${file} can run (${errors.length} with faults, each reported above)`,
      { hint: first.hint },
    );
  }
  return { folders, bad: errors };
}

/**
 * The configuration read when no `--config FILE` is given: hop's own
 * (`~/.config/hop/relay.conf`) if it exists, else the first file Escale would read;
 * undefined when there is none.
 */
export async function defaultConfigFile(): Promise<string | undefined> {
  const own = hopConfigFile();
  return await stat(own).then((st) => st.isFile(), () => false) ? own : await findEscaleConfig();
}

/** The sections named by `--section` (all when none is); an unknown name is an error. */
function pickSections(
  file: string,
  folders: FolderConfig[],
  errors: SectionError[],
  names: string[] | undefined,
): [FolderConfig[], SectionError[]] {
  if (!names?.length) return [folders, errors];
  const known = [...folders.map((f) => f.name), ...errors.map((e) => e.section)];
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    throw new UsageError(
      `${file} has no section ${unknown.map((n) => `[${n}]`).join(", ")}`,
      `Its sections: ${known.map((n) => `[${n}]`).join(", ") || "none"}.`,
    );
  }
  return [
    folders.filter((f) => names.includes(f.name)),
    errors.filter((e) => names.includes(e.section)),
  ];
}

/**
 * Sections that would sync one relay under one client name from different
 * folders (two sections without `client name` take the host's name, as
 * Escale does): the first runs, the others are refused, saying what to do.
 * Each would otherwise take the other's updates for its own and never get them.
 */
function sharedNames(
  folders: FolderConfig[],
  errors: SectionError[],
): { folders: FolderConfig[]; errors: SectionError[] } {
  const first = new Map<string, FolderConfig>();
  const ok: FolderConfig[] = [];
  const bad = [...errors];
  for (const f of folders) {
    const key = `${f.relayUrl}\n${f.clientName}`;
    const other = first.get(key);
    if (!other || other.localPath === f.localPath) {
      first.set(key, f);
      ok.push(f);
      continue;
    }
    bad.push({
      section: f.name,
      error: new HopError(
        `[${f.name}] and [${other.name}] would sync ${f.relayUrl} under one client name ` +
          `"${f.clientName}" from two folders`,
        {
          code: "client-name-taken",
          hint: `Give each section a \`client name\` of its own (for example ` +
            `client name = ${f.clientName}-${f.name}).`,
        },
      ),
    });
  }
  return { folders: ok, errors: bad };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** First wait before retrying a folder whose pass failed; doubled per failure, capped at refresh. */
export const RETRY_FIRST_MS = 1000;

/** The next retry delay after `prev` (0: first failure), capped at `capMs`. */
export function nextBackoff(prevMs: number, capMs: number): number {
  return Math.min(capMs, prevMs > 0 ? prevMs * 2 : RETRY_FIRST_MS);
}

/**
 * Runs `hop relay sync`: passes over every folder, waiting between passes on
 * an adaptive timer (refresh/2 after activity, growing towards refresh when
 * idle). A folder whose pass failed (relay unreachable, relay full, a page
 * step failed) is retried with exponential backoff — after 1 s, 2 s, 4 s, ...
 * capped at refresh — and back on the normal timer once a pass succeeds; the
 * next attempt starts with recovery, as Escale does. With `once`, one pass; a
 * failed step then makes it throw after the pass.
 */
export async function runRelaySync(opts: RelaySyncOptions): Promise<RelaySyncSummary> {
  const { reporter, signal } = opts;
  const { folders, bad } = await resolveFolders(opts, reporter);
  const sum: RelaySyncSummary = {
    passes: 0,
    pulled: 0,
    pushed: 0,
    deletedLocally: 0,
    deletionsPushed: 0,
    conflicts: [],
    errors: bad.length,
  };
  const ctxs: (SyncContext | null)[] = folders.map(() => null);
  /** The local lock of each folder, held from its first pass to the end. */
  const locks: (HeldFolderLock | null)[] = folders.map(() => null);
  const recover = folders.map(() => true);
  /** Current retry delay of each folder (0: its last pass succeeded). */
  const backoff = folders.map(() => 0);
  /** When each folder's next pass is due (ms since the epoch). */
  const due = folders.map(() => 0);
  const refresh = Math.min(...folders.map((f) => f.refreshSeconds)) * 1000;
  let delay = refresh / 2;
  let lastThrown: HopError | undefined;
  try {
    while (!signal?.aborted) {
      let active = false;
      const ran: number[] = [];
      const started = Date.now();
      for (let i = 0; i < folders.length && !signal?.aborted; i++) {
        if (due[i] > started) continue;
        const cfg = folders[i];
        let failed = false;
        try {
          if (!locks[i]) {
            const got = await lockFolder(cfg.localPath);
            if ("holder" in got) {
              const h = got.holder;
              reporter.warn(
                `${cfg.name}: another hop relay sync holds this folder (pid ${h.pid}${
                  h.host === hostname() ? "" : ` on ${h.host}`
                }, since ${h.started}); skipped`,
                { event: "folder-busy", folder: cfg.name, pid: h.pid, host: h.host },
              );
              ran.push(i);
              continue;
            }
            locks[i] = got;
          }
          ctxs[i] ??= await openSync(cfg, reporter);
          ctxs[i]!.signal = signal;
          const r: PassResult = await syncPass(ctxs[i]!, { first: recover[i], signal });
          recover[i] = r.errors > 0;
          sum.pulled += r.pulled;
          sum.pushed += r.pushed;
          sum.deletedLocally += r.deletedLocally;
          sum.deletionsPushed += r.deletionsPushed;
          sum.conflicts.push(...r.conflicts);
          sum.errors += r.errors;
          const moved = r.pulled + r.pushed + r.deletedLocally + r.deletionsPushed;
          if (moved + r.waiting + r.busy > 0) {
            active = true;
          }
          if (r.errors > 0) failed = true;
          reportPass(reporter, cfg.name, r, Boolean(signal?.aborted));
        } catch (e) {
          const err = explainError(e);
          if (!err) throw e;
          lastThrown = err;
          sum.errors++;
          failed = true;
          recover[i] = true;
          // a single folder run once: the error itself ends the command (with its hint)
          if (!(opts.once && folders.length === 1)) {
            reporter.warn(`${cfg.name}: ${err.message}`, {
              event: "error",
              code: errorCode(err),
              hint: err.hint,
            });
          }
          if (ctxs[i]) {
            await closeSync(ctxs[i]!).catch(() => {});
            ctxs[i] = null;
          }
        }
        if (failed) {
          backoff[i] = nextBackoff(backoff[i], refresh);
          due[i] = Date.now() + backoff[i];
          if (!opts.once) {
            reporter.info(`${cfg.name}: retrying in ${backoff[i] / 1000} s`, {
              event: "retry",
              folder: cfg.name,
              delayMs: backoff[i],
            });
          }
        } else {
          backoff[i] = 0;
          ran.push(i);
        }
      }
      sum.passes++;
      if (opts.once || signal?.aborted) break;
      delay = active ? refresh / 2 : Math.min(refresh, delay * 1.5);
      for (const i of ran) due[i] = Date.now() + delay;
      const wait = Math.max(0, Math.min(...due) - Date.now());
      reporter.info(`next pass in ${formatDuration(wait / 1000)}`, {
        event: "next-pass",
        seconds: Math.round(wait / 1000),
      });
      await sleep(wait, signal);
    }
  } finally {
    for (const c of ctxs) if (c) await closeSync(c).catch(() => {});
    for (const l of locks) if (l) await l.release().catch(() => {});
    closePool();
  }
  if (opts.once && folders.length === 1 && lastThrown) throw lastThrown;
  if (opts.once && sum.errors > 0) {
    throw new HopError(`relay sync finished with ${sum.errors} failed step(s) or section(s)`, {
      hint: "See the warnings above; run again once the cause is fixed.",
    });
  }
  return sum;
}

/** One line per folder and pass: what it did, or why it did nothing. */
function reportPass(reporter: Reporter, folder: string, r: PassResult, stopped: boolean): void {
  const did: string[] = [];
  if (r.pulled) did.push(`pulled ${r.pulled} file(s)`);
  if (r.deletedLocally) did.push(`deleted ${r.deletedLocally} file(s) deleted elsewhere`);
  if (r.pushed) did.push(`pushed ${r.pushed} file(s)`);
  if (r.deletionsPushed) did.push(`sent ${r.deletionsPushed} deletion(s)`);
  if (r.conflicts.length) did.push(`${r.conflicts.length} conflict(s) kept as copies`);
  if (r.quarantined) did.push(`moved ${r.quarantined} bad update(s) aside (see above)`);
  const why: string[] = [];
  if (stopped) why.push("stopped before the end of the pass (Ctrl-C)");
  if (r.errors) why.push(`${r.errors} step(s) failed (see above)`);
  if (r.busy) why.push(`${r.busy} page(s) locked by another client (see above)`);
  if (r.waiting) why.push(`${r.waiting} changed file(s) wait for the next update`);
  why.push(...r.waits);
  const says = did.length
    ? did.join(", ") + (why.length ? `; ${why.join("; ")}` : "")
    : why.length
    ? `nothing moved: ${why.join("; ")}`
    : "in sync";
  reporter.info(`${folder}: ${says}`, {
    event: "pass",
    folder,
    pulled: r.pulled,
    pushed: r.pushed,
    deletedLocally: r.deletedLocally,
    deletionsPushed: r.deletionsPushed,
    conflicts: r.conflicts.length,
    busy: r.busy,
    errors: r.errors,
    quarantined: r.quarantined ?? 0,
    waiting: r.waiting,
    waits: r.waits,
    inSync: !did.length && !why.length,
  });
}

/** One page as `hop relay status` shows it. */
export interface PageStatus {
  page: string;
  /** Files in `.P.index`. */
  indexed: number;
  update?: {
    time: number;
    pusher?: string;
    files: number;
    pullers: string[];
    /** Registered clients it still waits for. */
    waitingFor: string[];
    complete: boolean;
  };
  /** The pending update's index cannot be read, or every client refuses it: why. */
  badUpdate?: string;
  lock?: { owner: string; mode: string; ageSeconds: number };
  deletions: number;
  /** What this client would push now (changed/new files, deletions). */
  wouldPush: number;
  wouldDelete: number;
  /** Files of the pending update this client has not consumed. */
  wouldPull: number;
}

/** `hop relay status` for one folder. */
export interface FolderStatus {
  name: string;
  relay: string;
  client: string;
  mode: RelayMode;
  clients: { name: string; mode: string; host: string; seenSecondsAgo: number; expired: boolean }[];
  pages: PageStatus[];
  /** Bad updates a pull moved aside (`hop cleanup` removes them), one line each. */
  quarantined: { page: string; time: number; size: number; files: string[]; says: string }[];
  /** Escale's default scheme (no `index` line): the paths with a content or a lock. */
  pending?: PendingPath[];
}

/**
 * Reads what the relay holds and what this client would do, without changing
 * anything (no lock taken, no state saved). Reports a readable summary.
 */
export async function relayStatus(
  opts: FolderSource & { reporter: Reporter; dryRun?: boolean },
): Promise<FolderStatus[]> {
  const { reporter } = opts;
  const out: FolderStatus[] = [];
  await forEachFolder(opts, reporter, async (ctx) => {
    out.push(await folderStatus(ctx));
  });
  for (const f of out) {
    reporter.info(`${f.name}: ${f.relay} as ${f.client} (${f.mode})`, { event: "status", ...f });
    for (const c of f.clients) {
      reporter.info(
        `  client ${c.name} (${c.mode}, ${c.host}) seen ${Math.round(c.seenSecondsAgo)} s ago${
          c.expired ? ", expired" : ""
        }`,
      );
    }
    for (const q of f.quarantined) {
      reporter.info(`  moved aside: ${q.says} (\`hop cleanup\` removes it)`);
    }
    for (const p of f.pages) {
      const parts = [`  page ${p.page}: ${p.indexed} file(s)`];
      if (p.badUpdate) parts.push(`bad update: ${p.badUpdate}`);
      if (p.update) {
        parts.push(
          `update ${p.update.time} by ${p.update.pusher ?? "?"} (${p.update.files} file(s)), ` +
            `consumed by [${p.update.pullers.join(", ")}]` +
            (p.update.waitingFor.length ? `, waiting for [${p.update.waitingFor.join(", ")}]` : ""),
        );
      }
      if (p.lock) {
        parts.push(
          `locked (${p.lock.mode}) by ${p.lock.owner} ${Math.round(p.lock.ageSeconds)} s ago`,
        );
      }
      if (p.deletions) parts.push(`${p.deletions} deletion(s) recorded`);
      parts.push(`would push ${p.wouldPush}, delete ${p.wouldDelete}, pull ${p.wouldPull}`);
      reporter.info(parts.join("; "));
    }
    if (f.pending) {
      reporter.info(`  ${f.pending.length} path(s) with a content waiting or a lock`);
      for (const x of f.pending) reporter.info(describePending(x));
    }
    if (opts.dryRun && f.pending) {
      const pull = f.pending.filter((x) => x.content?.wouldPull).length;
      reporter.info(
        `${f.name}: dry run: a pass would pull ${pull} file(s); what it would push is not ` +
          "worked out ahead for Escale's default scheme (a pass decides per file); nothing was changed",
        { event: "dry-run", folder: f.name, pull },
      );
    } else if (opts.dryRun) {
      const sum = (k: "wouldPush" | "wouldDelete" | "wouldPull") =>
        f.pages.reduce((n, p) => n + p[k], 0);
      const [push, del, pull] = [sum("wouldPush"), sum("wouldDelete"), sum("wouldPull")];
      reporter.info(
        `${f.name}: dry run: a pass would ${
          push + del + pull === 0
            ? "do nothing (in sync)"
            : `push ${push} file(s), send ${del} deletion(s) and pull ${pull} file(s)`
        }; nothing was changed`,
        { event: "dry-run", folder: f.name, push, delete: del, pull },
      );
    }
  }
  return out;
}

async function folderStatus(ctx: SyncContext): Promise<FolderStatus> {
  const { cfg, io } = ctx;
  if (ctx.tree) {
    const pending = await placeholderPending(ctx);
    return {
      name: cfg.name,
      relay: cfg.relayUrl,
      client: cfg.clientName,
      mode: cfg.mode,
      clients: [],
      pages: [],
      quarantined: [],
      pending,
    };
  }
  const view = viewRelay(await io.list());
  const nowS = Math.floor(ctx.now() / 1000);
  const clients = await readClients(io, view.clients);
  const expected = expectedPullers(clients, nowS, cfg.clientExpirySeconds);
  const scan = cfg.mode === "download" ? new Map() : await scanFolder(cfg.localPath, cfg);
  ctx.access = await readAccess(cfg.localPath); // `r-` files are not counted as pushes
  const pageNames = new Set(view.pages.keys());
  for (const f of scan.keys()) pageNames.add(pageOfCfg(cfg, f));
  const pages: PageStatus[] = [];
  for (const page of [...pageNames].sort()) {
    const v = view.pages.get(page);
    const index = v?.index ? await readPersistentIndex(io, page) : [];
    const tombs = v?.deleted ? await readTombstones(io, page) : {};
    const requests = v?.requests ? await readRequests(io, page) : {};
    const st: PageStatus = {
      page,
      indexed: index.length,
      deletions: Object.keys(tombs).length,
      wouldPush: 0,
      wouldDelete: 0,
      wouldPull: 0,
    };
    const upd = v?.updates.find((u) => u.index && u.data);
    let idx: UpdateIndex | undefined;
    if (upd) {
      try {
        idx = await readUpdateIndex(io, page, upd.time);
        const why = entryProblem(idx.entries);
        if (why) throw new BadUpdateError(`${upd.index!.name} is refused by every client: ${why}`);
      } catch (e) {
        if (!isContentFault(e)) throw e;
        idx = undefined;
        st.badUpdate = `${(e as Error).message} (the next pull moves it aside)`;
      }
    }
    if (upd && idx) {
      const pusher = updatePusher(idx.entries);
      const waitingFor = [...expected].filter((e) => e !== pusher && !idx.pullers.includes(e));
      st.update = {
        time: upd.time,
        pusher,
        files: idx.entries.length,
        pullers: idx.pullers,
        waitingFor,
        complete: waitingFor.length === 0 &&
          idx.pullers.filter((p) => p !== pusher).length >= (cfg.pullerCount ?? 1),
      };
      if (
        cfg.mode !== "upload" && pusher !== cfg.clientName && !idx.pullers.includes(cfg.clientName)
      ) {
        st.wouldPull = idx.entries.length;
      }
    }
    if (v?.lock) {
      const l = await readLock(io, page, ctx.now);
      if (l) st.lock = { owner: l.info.owner, mode: l.info.mode ?? "?", ageSeconds: l.ageSeconds };
    }
    if (cfg.mode !== "download") {
      const plan = await planPush(ctx, page, scan, index, tombs, requests);
      st.wouldPush = plan.changes.length;
      st.wouldDelete = plan.deletions.length;
    }
    pages.push(st);
  }
  return {
    name: cfg.name,
    relay: cfg.relayUrl,
    client: cfg.clientName,
    mode: cfg.mode,
    clients: clients.map((c) => ({
      name: c.name,
      mode: c.mode,
      host: c.host,
      seenSecondsAgo: nowS - c.seen,
      expired: nowS - c.seen >= cfg.clientExpirySeconds,
    })),
    pages,
    quarantined: (await listQuarantined(view.files, io)).map((q) => ({
      page: q.page,
      time: q.time,
      size: q.size,
      files: q.files.map((f) => f.name),
      says: describeQuarantined(q),
    })),
  };
}

/**
 * Runs `work` on each folder of `src`, opened for a look or a repair next to a
 * sync that may be running: staging folders are left alone and the local sync
 * state is never saved (the running sync owns it). Closes every relay and the
 * bzip2 pool afterwards.
 */
export async function forEachFolder(
  src: FolderSource,
  reporter: Reporter,
  work: (ctx: SyncContext) => Promise<void>,
  open: { now?: () => number } = {},
): Promise<void> {
  try {
    for (const cfg of (await resolveFolders(src, reporter)).folders) {
      const ctx = await openSync(cfg, reporter, { ...open, keepStaging: true });
      try {
        await work(ctx);
      } finally {
        await ctx.io.close().catch(() => {});
        if (ctx.lockIo !== ctx.io) await ctx.lockIo.close().catch(() => {});
      }
    }
  } finally {
    closePool();
  }
}

function pageOfCfg(cfg: FolderConfig, path: string): string {
  return pageOf(path, cfg.pageDepth);
}

/**
 * `hop relay forget NAME`: removes a client's registration so updates stop
 * waiting for it. Returns false when it was not registered.
 */
export async function relayForget(
  opts: FolderSource & { name: string; reporter: Reporter },
): Promise<boolean> {
  let any = false;
  await forEachFolder(opts, opts.reporter, async (ctx) => {
    const gone = await forgetClient(ctx.io, opts.name);
    any ||= gone;
    opts.reporter.info(
      gone
        ? `${ctx.cfg.name}: forgot client ${opts.name}`
        : `${ctx.cfg.name}: client ${opts.name} was not registered`,
    );
  });
  return any;
}
