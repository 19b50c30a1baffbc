/**
 * Streaming scans for the cluster's maintenance commands, in bounded memory: a walk of
 * the cluster tree (link files, foreign files, unreadable link files), a walk of a
 * node's files, and an external sort of text lines (sorted runs in temp files, then a
 * k-way merge), as the original cluster did with `sort` and `join`.
 *
 * @example
 * ```ts
 * const s = createLineSorter(tmpDir);
 * for await (const r of walkTree(layout)) if (r.kind === "link") await s.add(r.rel);
 * for await (const line of s.sorted()) console.log(line);
 * ```
 *
 * @module
 */

import type * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { relPath } from "./jobs.ts";
import { type ClusterLayout, LINK_SUFFIX, RESERVED_ROOT_NAMES } from "./layout.ts";
import { type FileLink, readInfo } from "./links.ts";
import type { StorageNode } from "./nodes.ts";

/** What the tree walk finds. `rel` is relative to the cluster root, `/`-separated, at-rest form. */
export type TreeItem =
  | { kind: "link"; rel: string; file: string; link: FileLink }
  | { kind: "foreign"; rel: string; file: string; size: number }
  | { kind: "unreadable"; rel: string; file: string; error: string };

/**
 * Every file link in the visible tree (with `deleted: true`, in `.deleted/` instead),
 * plus foreign files (no link file) and link files that do not decode. Directories are
 * read one at a time with `opendir` (memory: one directory entry at a time per level).
 */
export async function* walkTree(
  l: ClusterLayout,
  opts: { deleted?: boolean } = {},
): AsyncGenerator<TreeItem> {
  const start = opts.deleted ? l.deleted : l.root;
  async function* walk(dir: string, atRoot: boolean): AsyncGenerator<TreeItem> {
    let d: fs.Dir;
    try {
      d = await fsp.opendir(dir);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return;
      throw e;
    }
    // Files are read 64 at a time (in parallel), directories walked as they come.
    let batch: string[] = [];
    const drain = async function* (): AsyncGenerator<TreeItem> {
      const items = await Promise.all(batch.map(readItem));
      batch = [];
      for (const it of items) if (it) yield it;
    };
    for await (const ent of d) {
      if (atRoot && !opts.deleted && RESERVED_ROOT_NAMES.has(ent.name)) continue;
      const full = path.join(dir, ent.name);
      if (ent.isDirectory()) yield* walk(full, false);
      else if (ent.isFile() && (!opts.deleted || ent.name.endsWith(LINK_SUFFIX))) {
        batch.push(full);
        if (batch.length >= 64) yield* drain();
      }
    }
    yield* drain();
  }
  async function readItem(full: string): Promise<TreeItem | null> {
    const rel = relPath(l, full);
    if (!full.endsWith(LINK_SUFFIX)) {
      const st = await fsp.stat(full).catch(() => null);
      return st ? { kind: "foreign", rel, file: full, size: st.size } : null;
    }
    try {
      const info = await readInfo(full);
      return info?.kind === "file" ? { kind: "link", rel, file: full, link: info } : null;
    } catch (e) {
      return { kind: "unreadable", rel, file: full, error: (e as Error).message };
    }
  }
  yield* walk(start, true);
}

/** One file on a node. */
export interface NodeFile {
  path: string;
  size: number;
  mtimeMs: number | null;
}

/** Every file on `node`, directory by directory (depth first). Throws when a listing fails. */
export async function* walkNode(node: StorageNode): AsyncGenerator<NodeFile> {
  async function* walk(dir: string): AsyncGenerator<NodeFile> {
    for (const e of await node.list(dir)) {
      const p = dir === "" ? e.name : `${dir}/${e.name}`;
      if (e.isDir) yield* walk(p);
      else yield { path: p, size: e.size, mtimeMs: e.mtimeMs };
    }
  }
  yield* walk("");
}

/** Lines added one by one, read back sorted (JS string order); see the module doc. */
export interface LineSorter {
  /** Add one line (no `\n` in it). */
  add(line: string): Promise<void>;
  /** All lines added, sorted; call once, after the last add. Removes its temp files. */
  sorted(): AsyncGenerator<string>;
}

let runSeq = 0;

/** A sorter keeping at most `chunk` lines (default 50000) in memory, spilling sorted runs into `tmpDir`. */
export function createLineSorter(tmpDir: string, chunk = 50_000): LineSorter {
  let buf: string[] = [];
  const runs: string[] = [];
  const flush = async () => {
    const lines = buf;
    buf = [];
    lines.sort(cmp);
    const file = path.join(tmpDir, `run-${uniqueTag()}-${++runSeq}`);
    runs.push(file);
    const fh = await fsp.open(file, "w");
    try {
      for (let i = 0; i < lines.length; i += 4096) {
        await fh.write(lines.slice(i, i + 4096).join("\n") + "\n");
      }
    } finally {
      await fh.close();
    }
  };
  return {
    async add(line) {
      buf.push(line);
      if (buf.length >= chunk) await flush();
    },
    async *sorted() {
      if (runs.length === 0) {
        buf.sort(cmp);
        const lines = buf;
        buf = [];
        yield* lines;
        return;
      }
      if (buf.length > 0) await flush();
      const readers = runs.map((f) => readLines(f));
      try {
        const heads: (string | null)[] = [];
        for (const r of readers) {
          const n = await r.next();
          heads.push(n.done ? null : n.value);
        }
        for (;;) {
          let min = -1;
          for (let i = 0; i < heads.length; i++) {
            if (heads[i] !== null && (min < 0 || cmp(heads[i]!, heads[min]!) < 0)) min = i;
          }
          if (min < 0) return;
          yield heads[min]!;
          const n = await readers[min].next();
          heads[min] = n.done ? null : n.value;
        }
      } finally {
        for (const r of readers) await r.return(undefined);
        for (const f of runs) await fsp.rm(f, { force: true });
      }
    },
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The lines of `file` (read 64 KB at a time: memory does not grow with the file). */
async function* readLines(file: string): AsyncGenerator<string> {
  const fh = await fsp.open(file, "r");
  const buf = new Uint8Array(65536);
  const dec = new TextDecoder();
  let rest = "";
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const parts = (rest + dec.decode(buf.subarray(0, bytesRead), { stream: true })).split("\n");
      rest = parts.pop()!;
      yield* parts;
    }
    rest += dec.decode();
    if (rest !== "") yield rest;
  } finally {
    await fh.close();
  }
}

function uniqueTag(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
