/**
 * Settling a page against its persistent index, between pulling and pushing:
 * every index entry is decided with `reconcile.ts`, and what this client
 * needs from the others is asked for on the relay (`.hop-requests-P`).
 *
 * - A version this client lacks (the relay changed a file, or has one this
 *   client never got) whose update is gone: it asks for it. Hop clients
 *   holding it send it (`sends.ts`). When only an Escale client may have it
 *   (Escale pushed it, or no hop client answered for a while), its entry is
 *   also taken out of `.P.index`: Escale pushes every file missing from the
 *   index, and this client takes that update (Escale removes its own update
 *   on its next pass, so this may take more than one try). Escale's own
 *   "missing" requests (an entry taken out, no record) are answered in the
 *   push step.
 * - Both changed (the relay's version did not know this client's): the local
 *   file is renamed to its conflict copy first, then the relay's version is
 *   asked for; the copy is pushed as a new file.
 * - After an Escale client consumed an update this client pushed, the
 *   entries of that update are taken out with an `echo` request: Escale
 *   clients then push back what they have, and hop clients wait. The same
 *   content confirms that the Escale client has this client's version;
 *   another content is a conflict that Escale did not see (it skips an
 *   incoming file whose local copy is newer or of the same second). Nobody
 *   answering within {@linkcode echoTimeoutMs} puts the entries back.
 *
 * The entries of a page whose index and requests did not change since it
 * was last settled are not decided again.
 *
 * @module
 */
import type { IndexEntry } from "../codec/escale_index.ts";
import { pathSelected } from "./config.ts";
import { mayWrite } from "./access.ts";
import { readRequests, type SendRequest, writeRequests } from "./hopfiles.ts";
import { lockPage, withLock } from "./lock.ts";
import {
  byPath,
  entryBase,
  type PageView,
  readIndexCached,
  readPersistentIndex,
  readUpdateIndex,
  writePersistentIndex,
} from "./pages.ts";
import {
  agreedOn,
  forgetUnconfirmed,
  keepLocalAsCopy,
  localPathProblem,
  localSum,
  pathState,
  settle,
  versionOf,
} from "./pull.ts";
import { updatePusher } from "./pullers.ts";
import { readSendList } from "./sends.ts";
import { decideIndexed } from "./reconcile.ts";
import type { SyncContext } from "./sync.ts";

/** What settling a page did. */
export interface SettleResult {
  /** Paths asked for. */
  asked: string[];
  /** Paths the Escale clients were asked to send back. */
  echoed: string[];
  /** Entries put back after nobody answered an echo. */
  restored: string[];
  /** Local files renamed to conflict copies (their new paths). */
  conflicts: string[];
  /** Local changes left unpushed because the relay changed them (upload, conservative modes). */
  held: string[];
  /** The page was locked by another client (nothing asked). */
  busy?: boolean;
}

/**
 * How long an echo waits for an Escale client before its entries are put
 * back, and how long a request for a hop client's version waits for a hop
 * client to answer before the Escale clients are asked too.
 */
export function echoTimeoutMs(refreshSeconds: number): number {
  return Math.max(600, 20 * refreshSeconds) * 1000;
}

function requestOf(e: IndexEntry, kind: SendRequest["kind"], by: string, now: number): SendRequest {
  const v = versionOf(e);
  return {
    kind,
    checksum: v.checksum,
    timestamp: v.timestamp,
    pusher: v.pusher,
    base: v.base,
    by: [by],
    since: Math.floor(now / 1000),
  };
}

function entryOf(path: string, q: SendRequest): IndexEntry {
  return {
    path,
    meta: {
      placeholder: "placeholder%1.0",
      pusher: q.pusher,
      timestamp: q.timestamp,
      checksum: q.checksum,
      extra: q.base === undefined ? [] : [["base", q.base ?? "-"]],
    },
  };
}

/**
 * Settles one page (see the module doc). `canWrite`: the local folder takes
 * new files (a client that cannot write asks for nothing).
 */
export async function settlePage(
  ctx: SyncContext,
  view: PageView,
  canWrite: boolean,
): Promise<SettleResult> {
  const { cfg, io, state } = ctx;
  const me = cfg.clientName;
  const out: SettleResult = { asked: [], echoed: [], restored: [], conflicts: [], held: [] };
  const page = view.page;
  const nowMs = ctx.now();
  const requests = view.requests ? await readRequests(io, page) : {};
  // decided once per version of the index and of the requests
  const key = `${view.index?.mtimeMs ?? 0}:${view.index?.size ?? 0}:${view.requests?.mtimeMs ?? 0}`;
  // The index is read only when something below looks at it: a page settled at this
  // version, with no request and nothing this client waits to see confirmed, costs no
  // read (a rescan of 100,000 unchanged files reads no index).
  const needIndex = (state.checked ??= {})[page] !== key ||
    Object.keys(requests).length > 0 ||
    Object.keys(state.unconfirmed?.[page] ?? {}).length > 0;
  const index = view.index && needIndex ? await readIndexCached(ctx, page, view.index) : [];
  const byPathNow = byPath(index);
  const wants: IndexEntry[] = [];
  let complete = true; // false: something was left for when the folder takes files again
  if (state.checked[page] !== key) {
    const pending = await pendingPaths(ctx, view);
    for (const e of index) {
      if (!e.meta || pending.has(e.path)) continue;
      if (localPathProblem(e.path) || !pathSelected(e.path, cfg)) continue;
      if (!mayWrite(ctx.access, e.path)) {
        complete = false; // `w-` (hop relay access): decided again once unset
        continue;
      }
      // agreed on already (a file just pulled): the local file is not even looked at
      if (agreedOn(ctx, e.path, e.meta.checksum)) continue;
      const loc = await localSum(ctx, e.path);
      if (loc.blocked) continue;
      const r = versionOf(e);
      const s = pathState(ctx, e.path, loc.sum);
      const d = decideIndexed(r, s);
      if (d === "agree") {
        settle(ctx, e.path, r);
      } else if (d === "fetch") {
        if (s.unconfirmed !== undefined) forgetUnconfirmed(ctx, e.path);
        if (cfg.mode === "upload") continue;
        if (canWrite) wants.push(e);
        else complete = false;
      } else if (d === "keep-fetch") {
        if (cfg.mode === "upload" || cfg.mode === "conservative" || !canWrite) {
          out.held.push(e.path);
          if (!canWrite) complete = false;
          continue;
        }
        const copy = await keepLocalAsCopy(ctx, e.path);
        forgetUnconfirmed(ctx, e.path);
        out.conflicts.push(copy);
        ctx.reporter.warn(
          `${cfg.name}: conflict on ${e.path}: both sides changed it; ${r.pusher}'s version ` +
            `reached the relay first and keeps the name, yours is now ${copy}`,
          { event: "conflict", path: e.path, copy, page, theirs: r.pusher },
        );
        wants.push(e);
      }
    }
  }
  // what needs the lock: new or renewed requests, entries to take out or put back
  const mine = (q: SendRequest | undefined) => q?.by.includes(me) ?? false;
  const escaleOnly = (e: IndexEntry) => {
    const q = requests[e.path];
    return entryBase(e) === undefined ||
      (q !== undefined && nowMs - q.since * 1000 > echoTimeoutMs(cfg.refreshSeconds));
  };
  const toAsk = wants.filter((e) => {
    const q = requests[e.path];
    return !(q?.checksum === e.meta!.checksum && mine(q)) || escaleOnly(e);
  });
  const echoes: IndexEntry[] = [];
  const restores: string[] = [];
  for (const [path, u] of Object.entries(state.unconfirmed?.[page] ?? {})) {
    const cur = byPathNow.get(path);
    if (u.askedAt === undefined) {
      if (view.updates.some((x) => x.time === u.time)) continue; // not consumed yet
      if (cur?.meta?.checksum === u.checksum && cur.meta.pusher === me) echoes.push(cur);
      else forgetUnconfirmed(ctx, path); // replaced (decided above) or taken out by someone else
    } else if (!cur && nowMs - u.askedAt > echoTimeoutMs(cfg.refreshSeconds)) {
      restores.push(path);
    } else if (cur && cur.meta?.pusher === me) {
      forgetUnconfirmed(ctx, path); // put back by someone: nobody will answer any more
    }
  }
  // requests this client is done with: it has the version, or the relay moved on
  const done = (path: string, q: SendRequest): boolean => {
    if (q.kind === "echo") return byPathNow.has(path);
    if (!mine(q)) return false;
    const cur = byPathNow.get(path);
    if (cur?.meta && cur.meta.checksum !== q.checksum) return true;
    return state.base[path] === q.checksum;
  };
  const tidy = Object.entries(requests).some(([p, q]) => done(p, q));
  if (toAsk.length + echoes.length + restores.length === 0 && !tidy) {
    if (complete) state.checked[page] = key;
    return out;
  }
  const held = await lockPage(ctx, page, "w");
  if (!held) return { ...out, busy: true };
  await withLock(held, cfg.lockTimeoutSeconds, async () => {
    const fresh = byPath(await readPersistentIndex(io, page));
    const reqs = await readRequests(io, page);
    let indexChanged = false;
    let requestsChanged = false;
    const takeOut = (e: IndexEntry): boolean => {
      const cur = fresh.get(e.path);
      if (!cur?.meta || cur.meta.checksum !== e.meta!.checksum) return false;
      fresh.delete(e.path);
      indexChanged = true;
      return true;
    };
    for (const e of toAsk) {
      const cur = fresh.get(e.path);
      if (!cur?.meta || cur.meta.checksum !== e.meta!.checksum) continue; // moved meanwhile
      const q = reqs[e.path];
      if (q?.checksum !== e.meta!.checksum) reqs[e.path] = requestOf(cur, "resend", me, nowMs);
      else if (!q.by.includes(me)) q.by.push(me);
      requestsChanged = true;
      if (escaleOnly(e)) takeOut(e);
      (state.wanted ??= {})[e.path] = e.meta!.checksum;
      out.asked.push(e.path);
    }
    for (const e of echoes) {
      if (!takeOut(e)) continue;
      reqs[e.path] = requestOf(e, "echo", me, nowMs);
      requestsChanged = true;
      state.unconfirmed![page][e.path].askedAt = nowMs;
      out.echoed.push(e.path);
    }
    for (const path of restores) {
      const q = reqs[path];
      if (!fresh.has(path) && q?.kind === "echo" && q.by.includes(me)) {
        fresh.set(path, entryOf(path, q));
        indexChanged = true;
        out.restored.push(path);
      }
      forgetUnconfirmed(ctx, path);
    }
    for (const [path, q] of Object.entries(reqs)) {
      const over = q.kind === "echo" ? fresh.has(path) : done(path, q);
      if (!over) continue;
      q.by = q.by.filter((c) => c !== me);
      if (q.kind === "echo" || q.by.length === 0) delete reqs[path];
      requestsChanged = true;
    }
    await held.verify();
    if (indexChanged) await writePersistentIndex(io, page, [...fresh.values()]);
    if (requestsChanged) await writeRequests(io, page, reqs, Math.floor(nowMs / 1000));
    ctx.indexCache.delete(page);
  });
  return out;
}

/** Paths of the updates and sends of a page this client has yet to take (the pull's business). */
async function pendingPaths(ctx: SyncContext, view: PageView): Promise<Set<string>> {
  const me = ctx.cfg.clientName;
  const pending = new Set<string>();
  for (const u of view.updates) {
    if (!u.index) continue;
    const upd = await readUpdateIndex(ctx.io, view.page, u.time);
    if (upd.pullers.includes(me) || updatePusher(upd.entries) === me) continue;
    for (const e of upd.entries) pending.add(e.path);
  }
  for (const s of view.sends ?? []) {
    if (!s.list) continue;
    const l = await readSendList(ctx.io, s.list.name).catch(() => null); // the pull step says why
    if (l?.for.includes(me) && !l.pullers.includes(me)) {
      for (const e of l.entries) pending.add(e.path);
    }
  }
  return pending;
}
