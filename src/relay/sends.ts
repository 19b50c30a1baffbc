/**
 * Sending a version to the hop clients that asked for it, out of Escale's
 * sight: `.hop-send-P-T.data` (an archive like an update's, encrypted like
 * one) and `.hop-send-P-T.json` (its entries, who it is for, who took it).
 *
 * An Escale client removes every update it reads, whoever else still needs
 * it (its `puller count` counts pullers, not which ones), so a hop client
 * can miss the update of another hop client for good. It then asks for the
 * version (`.hop-requests-P`, see `requests.ts`); a hop client holding that
 * version answers with a send, which Escale never looks at (no name of
 * Escale's shape), and the askers take it in their pull step like an update.
 * A send goes once every client it is for took it or is no longer
 * registered, or after `client expiry`.
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { compressorFor } from "../archive/codecs.ts";
import { writeArchive } from "../archive/tar.ts";
import type { IndexEntry } from "../codec/escale_index.ts";
import { HopError } from "../errors.ts";
import { abortable, stoppedError } from "./abortable.ts";
import {
  readClients,
  readRequests,
  type SendFiles,
  sendName,
  type SendRequest,
} from "./hopfiles.ts";
import type { RelayIO } from "./io.ts";
import { lockPage, withLock } from "./lock.ts";
import { type PageView, viewRelay } from "./pages.ts";
import { pullEntries, type PullResult } from "./pull.ts";
import { type LocalFile, wholeMs } from "./scan.ts";
import type { SyncContext } from "./sync.ts";

/** What a send holds. */
export interface SendList {
  v: 1;
  /** The client that sent it. */
  by: string;
  /** The clients it is for. */
  for: string[];
  /** The versions it carries, as index entries describe them. */
  entries: SendEntry[];
  /** The clients that took it. */
  pullers: string[];
}

/** One version of a send. */
export interface SendEntry {
  path: string;
  checksum: string;
  timestamp: number;
  pusher: string;
  base?: string | null;
}

export async function readSendList(io: RelayIO, name: string): Promise<SendList> {
  const text = new TextDecoder().decode(await io.readBytes(name));
  try {
    const l = JSON.parse(text);
    if (l && l.v === 1 && Array.isArray(l.entries) && Array.isArray(l.for)) return l as SendList;
  } catch {
    // fall through
  }
  throw new HopError(`relay file ${name} on ${io.label} is damaged`, {
    hint: "Remove it and its .data; the clients that wanted its files ask again.",
  });
}

async function writeList(io: RelayIO, name: string, l: SendList): Promise<void> {
  await io.write(name, new TextEncoder().encode(JSON.stringify(l)));
}

/** Removes a send: archive first, then its list (a reader never sees a list without data). */
async function removeSend(io: RelayIO, page: string, time: number): Promise<void> {
  await io.delete(sendName(page, time, "data"));
  await io.delete(sendName(page, time, "list"));
}

function toEntry(e: SendEntry): IndexEntry {
  return {
    path: e.path,
    meta: {
      placeholder: "placeholder%1.0",
      pusher: e.pusher,
      timestamp: e.timestamp,
      checksum: e.checksum,
      extra: e.base === undefined ? [] : [["base", e.base ?? "-"]],
    },
  };
}

/**
 * Answers the requests of a page with the versions this client holds (files
 * of its scan whose checksum was asked for): one send, at most about
 * `maxpagesize` big; versions another send already carries to the same
 * clients are left out. Returns how many files were sent.
 */
export async function answerRequests(
  ctx: SyncContext,
  view: PageView,
  scan: Map<string, LocalFile>,
): Promise<number> {
  const { cfg, io } = ctx;
  if (!view.requests || cfg.mode === "download") return 0;
  const asked = await readRequests(io, view.page);
  const candidates = async (requests: Record<string, SendRequest>, sending: Set<string>) => {
    const out: { q: SendRequest; path: string; file: LocalFile }[] = [];
    for (const [path, q] of Object.entries(requests)) {
      if (q.kind !== "resend" || q.by.includes(cfg.clientName)) continue;
      const file = scan.get(path);
      if (!file || sending.has(`${path}\n${q.checksum}`)) continue;
      if ((await ctx.cache.checksum(file)) === q.checksum) out.push({ q, path, file });
    }
    return out;
  };
  if ((await candidates(asked, new Set())).length === 0) return 0;
  const held = await lockPage(ctx, view.page, "w");
  if (!held) return 0;
  return await withLock(held, cfg.lockTimeoutSeconds, async () => {
    // versions already on their way to the askers
    const sending = new Set<string>();
    for (const s of viewRelay(await io.list()).pages.get(view.page)?.sends ?? []) {
      if (!s.list) continue;
      for (const e of (await readSendList(io, s.list.name)).entries) {
        sending.add(`${e.path}\n${e.checksum}`);
      }
    }
    const batch: { q: SendRequest; path: string; file: LocalFile }[] = [];
    let size = 0;
    for (const c of await candidates(await readRequests(io, view.page), sending)) {
      if (batch.length > 0 && size >= cfg.maxPageSize) break;
      batch.push(c);
      size += c.file.size;
    }
    if (batch.length === 0) return 0;
    const time = held.acquired;
    const dataName = sendName(view.page, time, "data");
    if (ctx.signal?.aborted) throw stoppedError();
    await io.write(
      dataName,
      abortable(
        writeArchive({
          root: cfg.localPath,
          files: batch.map((b) => b.path),
          compress: () => compressorFor(cfg.compression ?? "bzip2"),
        }),
        ctx.signal,
      ),
    );
    for (const b of batch) {
      const st = await stat(join(cfg.localPath, b.path)).catch(() => null);
      if (!st || st.size !== b.file.size || wholeMs(st.mtimeMs) !== b.file.mtimeMs) {
        await io.delete(dataName);
        throw new HopError(`${b.path} changed while it was being sent`, {
          hint: "Nothing was published; it is sent on the next pass if still asked for.",
        });
      }
    }
    await held.verify();
    const list: SendList = {
      v: 1,
      by: cfg.clientName,
      for: [...new Set(batch.flatMap((b) => b.q.by))],
      entries: batch.map((b) => ({
        path: b.path,
        checksum: b.q.checksum,
        timestamp: b.q.timestamp,
        pusher: b.q.pusher,
        base: b.q.base,
      })),
      pullers: [],
    };
    await writeList(io, sendName(view.page, time, "list"), list);
    return batch.length;
  });
}

/**
 * Takes the sends of a page meant for this client (under the page's `r`
 * lock, like an update), and removes those that every client they are for
 * took, that nobody registered is waiting for, or that are older than
 * `client expiry`.
 */
export async function takeSends(ctx: SyncContext, view: PageView): Promise<PullResult> {
  const { cfg, io } = ctx;
  const res: PullResult = { files: 0, bytes: 0, conflicts: [] };
  const sends = view.sends ?? [];
  if (sends.length === 0) return res;
  const listing = await io.list();
  const registered = new Set(
    (await readClients(io, listing.filter((f) => f.name.startsWith(".hop-client-")))).map((c) =>
      c.name
    ),
  );
  const nowS = Math.floor(ctx.now() / 1000);
  for (const s of sends) {
    if (!s.list || !s.data) {
      // half a send: being written, or left by a crash (then older than the lock timeout)
      const f = (s.list ?? s.data)!;
      if (ctx.now() - f.mtimeMs > cfg.lockTimeoutSeconds * 1000) {
        await removeSendLocked(ctx, view.page, s);
      }
      continue;
    }
    const list = await readSendList(io, s.list.name);
    const waiting = list.for.filter((c) => !list.pullers.includes(c) && registered.has(c));
    if (waiting.length === 0 || nowS - s.time > cfg.clientExpirySeconds) {
      await removeSendLocked(ctx, view.page, s);
      continue;
    }
    if (!waiting.includes(cfg.clientName)) continue;
    const held = await lockPage(ctx, view.page, "r");
    if (!held) return { ...res, skipped: "busy" };
    await withLock(held, cfg.lockTimeoutSeconds, async () => {
      if (!(await io.stat(s.list!.name)) || !(await io.stat(s.data!.name))) return;
      const l = await readSendList(io, s.list!.name);
      const r = await pullEntries(ctx, view.page, s.list!.name, s.data!, l.entries.map(toEntry));
      res.files += r.files;
      res.bytes += r.bytes;
      res.conflicts.push(...r.conflicts);
      await held.verify();
      const now = await readSendList(io, s.list!.name);
      now.pullers = [...new Set([...now.pullers, cfg.clientName])];
      if (now.for.every((c) => now.pullers.includes(c) || !registered.has(c))) {
        await removeSend(io, view.page, s.time);
      } else {
        await writeList(io, s.list!.name, now);
      }
    });
  }
  return res;
}

async function removeSendLocked(ctx: SyncContext, page: string, s: SendFiles): Promise<void> {
  const held = await lockPage(ctx, page, "w");
  if (!held) return;
  await withLock(held, ctx.cfg.lockTimeoutSeconds, () => removeSend(ctx.io, page, s.time));
}
