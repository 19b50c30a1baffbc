/**
 * `hop archive create|extract|list`: the archive engine from the command line,
 * with progress on a terminal and one summary line (or JSON event) at the end.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { mkdir, readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { HopError } from "../errors.ts";
import { formatBytes, type Reporter } from "../ui/report.ts";
import { extractArchive } from "./extract.ts";
import { printable, readArchive, writeArchiveFile } from "./tar.ts";

/**
 * Every file and folder below `root` as relative `/`-separated paths, sorted,
 * parents before children. Symbolic links are left out (and reported), since
 * archives hop writes hold only regular files and folders.
 */
export async function listTree(root: string, onSkip?: (path: string) => void): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    const entries = await readdir(join(root, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.push(path);
        await walk(path);
      } else if (e.isFile()) out.push(path);
      else onSkip?.(path);
    }
  };
  await walk("");
  return out;
}

async function requireFolder(path: string, what: string): Promise<void> {
  const s = await stat(path).catch(() => null);
  if (!s?.isDirectory()) {
    throw new HopError(`${what} '${path}' is not a folder`, {
      hint: "Give the path of an existing folder.",
    });
  }
}

async function openArchive(
  path: string,
): Promise<{ stream: ReadableStream<Uint8Array>; size: number }> {
  const s = await stat(path).catch((e) => {
    throw new HopError(
      `cannot read the archive '${path}': ${e.code === "ENOENT" ? "no such file" : e.message}`,
      {
        hint: "Check the path of the .tar.bz2 file.",
      },
    );
  });
  if (!s.isFile()) {
    throw new HopError(`'${path}' is not a file`, { hint: "Give the path of a .tar.bz2 file." });
  }
  const stream = Readable.toWeb(
    createReadStream(path, { highWaterMark: 1 << 20 }),
  ) as ReadableStream<Uint8Array>;
  return { stream, size: s.size };
}

/** `hop archive create FOLDER ARCHIVE [FILES...]`. */
export async function createArchiveCommand(
  folder: string,
  out: string,
  files: string[],
  r: Reporter,
): Promise<void> {
  await requireFolder(folder, "the folder to archive");
  const list = files.length > 0
    ? files
    : await listTree(folder, (p) => r.warn(`skipped '${p}': not a regular file or folder`));
  const result = await writeArchiveFile(resolve(out), {
    root: folder,
    files: list,
    onProgress: (p) => r.progress({ label: "packing", files: p.files, bytes: p.bytes }),
  });
  r.close();
  r.info(
    `wrote ${out}: ${result.files} files, ${formatBytes(result.bytes)} -> ${
      formatBytes(result.compressedBytes)
    }`,
    { event: "archive.created", archive: out, ...result },
  );
}

/** `hop archive extract ARCHIVE FOLDER`. */
export async function extractArchiveCommand(
  input: string,
  folder: string,
  r: Reporter,
): Promise<void> {
  const { stream, size } = await openArchive(input);
  await mkdir(folder, { recursive: true });
  let files = 0;
  let bytes = 0;
  const result = await extractArchive(stream, folder, {
    compressedSize: size,
    onEntry: (e) => {
      if (e.type === "file") {
        files++;
        bytes += e.size;
      }
      r.progress({ label: "extracting", files, bytes });
    },
  });
  r.close();
  r.info(
    `extracted ${input} into ${folder}: ${result.files} files, ${result.directories} folders, ${
      formatBytes(result.bytes)
    }`,
    {
      event: "archive.extracted",
      archive: input,
      files: result.files,
      directories: result.directories,
      bytes: result.bytes,
    },
  );
}

/** `hop archive list ARCHIVE`: one line per entry (`type size mtime path`). */
export async function listArchiveCommand(input: string, r: Reporter): Promise<void> {
  const { stream } = await openArchive(input);
  for await (const e of readArchive(stream)) {
    const when = new Date(Math.floor(e.mtime) * 1000).toISOString().replace(".000Z", "Z");
    r.info(`${e.type.padEnd(9)} ${String(e.size).padStart(12)} ${when} ${printable(e.path)}`, {
      event: "archive.entry",
      path: e.path,
      type: e.type,
      size: e.size,
      mtime: e.mtime,
      mode: e.mode,
    });
    await e.body.cancel();
  }
}
