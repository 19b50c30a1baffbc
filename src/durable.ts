/**
 * Making a batch of written files durable with one flush instead of one per file: an
 * extracted archive or a pulled update is written whole, then {@linkcode syncFolder}
 * flushes the file system holding it once (`syncfs(2)`, through coreutils' `sync -f`:
 * node:fs has no call for it). An fsync per file costs a journal commit each (about a
 * millisecond, far more on a busy disk: 100,000 small files took minutes), one syncfs
 * costs one. Where `sync -f` is missing or refused (not Linux, an old coreutils), each
 * file and each folder holding one is fsynced instead.
 *
 * @example
 * ```ts
 * await syncFolder("/home/me/docs/.hop/staging-1", ["a.txt", "sub/b.txt"]);
 * ```
 *
 * @module
 */
import { execFile } from "node:child_process";
import { closeSync, fdatasync, fsync, openSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { HopError } from "./errors.ts";

/** Whether `sync -f` works here: unknown until first tried. */
let syncfsWorks: boolean | undefined = process.platform === "linux" ? undefined : false;

/** Runs `sync -f folder`: true when it flushed, false when the command is missing or refuses. */
function syncfs(folder: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    execFile("sync", ["-f", folder], (err, _out, stderr) => {
      if (!err) return resolve(true);
      const e = err as Error & { code?: string | number };
      // missing, or a `sync` without -f: fall back
      if (e.code === "ENOENT" || /invalid option|unrecognized|usage/i.test(stderr)) {
        return resolve(false);
      }
      reject(
        new HopError(`cannot flush ${folder} to disk: ${stderr.trim() || e.message}`, {
          hint: "Check that the folder exists and that its disk reports no error (dmesg) " +
            "before trusting what was written there.",
          cause: err,
        }),
      );
    });
  });
}

/**
 * fsyncs each file (`folder`-relative paths), then each folder on the way from `folder` to
 * one (their entries may be new too), a few at a time.
 */
export async function fsyncEach(folder: string, files: Iterable<string>): Promise<void> {
  const rel = [...files];
  const paths = rel.map((f) => join(folder, f));
  const dirs = new Set<string>([folder]);
  for (const f of rel) {
    for (let d = dirname(f); d !== "." && d !== "/" && d !== ""; d = dirname(d)) {
      dirs.add(join(folder, d));
    }
  }
  for (const list of [paths, [...dirs]]) {
    let next = 0;
    const worker = async () => {
      while (next < list.length) {
        const fh = await open(list[next++], "r");
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, list.length) }, worker));
  }
}

/** Errors of a folder fsync that mean "not supported here" (some file systems, Windows). */
const UNSUPPORTED = new Set(["EINVAL", "EISDIR", "EPERM", "EACCES", "ENOTSUP", "EBADF"]);

/**
 * fsync of an open descriptor, on a worker thread. Its open and close are cheap enough to
 * run synchronously: one round trip to the thread pool per flush, not three (on a busy
 * machine each costs a wait for the CPU). `dataOnly`: fdatasync (the data and the size,
 * not the times), for flushes of a file still being written.
 */
export function fsyncFd(fd: number, dataOnly = false): Promise<void> {
  return new Promise((resolve, reject) =>
    (dataOnly ? fdatasync : fsync)(fd, (e) => e ? reject(e) : resolve())
  );
}

/**
 * fsyncs a folder, so that a rename or a new entry in it survives a crash. Where the
 * platform or file system cannot fsync a folder, it does nothing; a missing folder throws.
 *
 * @example
 * ```ts
 * await rename(temp, final);
 * await syncDir(dirname(final));
 * ```
 */
export async function syncDir(dir: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(dir, "r");
  } catch (e) {
    if (UNSUPPORTED.has((e as { code?: string }).code ?? "")) return;
    throw e;
  }
  try {
    await fsyncFd(fd);
  } catch (e) {
    if (!UNSUPPORTED.has((e as { code?: string }).code ?? "")) throw e;
  } finally {
    try {
      closeSync(fd);
    } catch { /* nothing to keep */ }
  }
}

/**
 * Makes `files` (paths relative to `folder`) and their folder entries durable: one syncfs of
 * `folder`'s file system where `sync -f` works, else {@linkcode fsyncEach}.
 */
export async function syncFolder(folder: string, files: Iterable<string>): Promise<void> {
  if (syncfsWorks !== false) {
    const ok = await syncfs(folder);
    syncfsWorks = ok;
    if (ok) return;
  }
  await fsyncEach(folder, files);
}

/**
 * Replaces `file` with `data` so that after a crash it holds the old or the new content, never
 * a part or nothing: written to a temporary file beside it, flushed, then renamed over it.
 *
 * @example
 * ```ts
 * await replaceFile("/home/me/docs/.hop/relay-1a2b.json", JSON.stringify(state));
 * ```
 */
export async function replaceFile(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, "w");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}
