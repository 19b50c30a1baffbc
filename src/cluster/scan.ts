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

import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { createInterface } from "node:readline";
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
    for await (const ent of d) {
      if (atRoot && !opts.deleted && RESERVED_ROOT_NAMES.has(ent.name)) continue;
      const full = path.join(dir, ent.name);
      if (ent.isDirectory()) {
        yield* walk(full, false);
        continue;
      }
      if (!ent.isFile()) continue;
      const rel = relPath(l, full);
      if (!ent.name.endsWith(LINK_SUFFIX)) {
        if (opts.deleted) continue;
        const st = await fsp.stat(full).catch(() => null);
        if (st) yield { kind: "foreign", rel, file: full, size: st.size };
        continue;
      }
      try {
        const info = await readInfo(full);
        if (info?.kind === "file") yield { kind: "link", rel, file: full, link: info };
      } catch (e) {
        yield { kind: "unreadable", rel, file: full, error: (e as Error).message };
      }
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

/** A sorter keeping at most `chunk` lines in memory, spilling sorted runs into `tmpDir`. */
export function createLineSorter(tmpDir: string, chunk = 200_000): LineSorter {
  let buf: string[] = [];
  const runs: string[] = [];
  const flush = async () => {
    const lines = buf;
    buf = [];
    lines.sort(cmp);
    const file = path.join(tmpDir, `run-${process_id()}-${++runSeq}`);
    runs.push(file);
    const out = fs.createWriteStream(file);
    for (const line of lines) {
      if (!out.write(line + "\n")) await new Promise<void>((r) => out.once("drain", () => r()));
    }
    await new Promise<void>((res, rej) => out.end((e?: Error | null) => e ? rej(e) : res()));
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
      const readers = runs.map((f) =>
        createInterface({ input: fs.createReadStream(f), crlfDelay: Infinity })[
          Symbol.asyncIterator
        ]()
      );
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
        for (const r of readers) await r.return?.();
        for (const f of runs) await fsp.rm(f, { force: true });
      }
    },
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function process_id(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
