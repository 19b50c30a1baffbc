/**
 * Test helpers for the archive engine: codecs through the bzip2 CLI (a stand-in and a
 * reference for the bzip2 engine), running external tools, and comparing trees.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { Writable } from "node:stream";
import { chmod, lstat, mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { BytePair, CodecOptions } from "../src/archive/tar.ts";

/** Pipes bytes through `cmd args` (stdin to stdout); errors if it exits non-zero. */
export function cliPair(cmd: string, args: string[]): BytePair {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  let aborted: unknown;
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.on("error", () => {}); // EPIPE when the tool stops early: reported by its exit code
  const exited = new Promise<number>((r) => child.on("close", (code) => r(code ?? -1)));
  // Node stream events rather than Readable.toWeb: cancelling the adapter's reader let
  // an AbortError escape as an unhandled rejection now and then, failing the whole file.
  let cancelled = false;
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      child.stdout.on("data", (d: Uint8Array) => {
        if (cancelled) return;
        c.enqueue(new Uint8Array(d));
        if ((c.desiredSize ?? 1) <= 0) child.stdout.pause();
      });
      child.stdout.on("error", () => {}); // reported by the exit code
      child.stdout.on("end", async () => {
        const code = await exited;
        if (cancelled) return;
        if (aborted !== undefined) c.error(aborted);
        else if (code !== 0) {
          c.error(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${stderr.trim()}`));
        } else c.close();
      });
    },
    pull() {
      child.stdout.resume();
    },
    async cancel() {
      cancelled = true;
      child.kill();
      child.stdout.destroy();
      await exited;
    },
  });
  const writable = Writable.toWeb(child.stdin) as WritableStream<Uint8Array>;
  const abortable = new WritableStream<Uint8Array>({
    async write(chunk) {
      const w = writable.getWriter();
      try {
        await w.write(chunk);
      } finally {
        w.releaseLock();
      }
    },
    async close() {
      await writable.close();
    },
    async abort(reason) {
      aborted = reason ?? new Error("aborted");
      child.kill();
      await exited;
    },
  });
  return { readable, writable: abortable };
}

/** Codec through the `bzip2` CLI (compress with `bzip2 -c`, decompress with `bzip2 -dc`). */
export const cliCodec: Required<CodecOptions> = {
  compress: () => cliPair("bzip2", ["-c"]),
  decompress: () => cliPair("bzip2", ["-dc"]),
};

/**
 * The codecs the archive tests run with: the bzip2 CLI stand-in, and the real engine
 * (`src/archive/bzip2.ts`, the default when no codec is passed) once it exists.
 */
export const CODECS: { name: string; codec: CodecOptions }[] = [
  { name: "bzip2 CLI", codec: cliCodec },
  { name: "bzip2 engine", codec: {} },
];

/** Runs a command to completion; returns stdout, throws with stderr on failure. */
export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${err}`));
    });
  });
}

/** The Debian Python (with tarfile), never the one on PATH. */
export const PYTHON = "/usr/bin/python3";

export { withTempDir } from "./helpers/temp.ts";

/** One node of a tree listing. */
export interface TreeNode {
  type: "file" | "directory" | "symlink" | "other";
  mode: number;
  /** mtime in whole seconds. */
  mtime: number;
  /** File content. */
  content?: Uint8Array;
}

/** Every path under `root` (relative, `/`-separated) with its type, mode, mtime, content. */
export async function listTree(root: string): Promise<Map<string, TreeNode>> {
  const out = new Map<string, TreeNode>();
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, p));
      const type = st.isFile()
        ? "file"
        : st.isDirectory()
        ? "directory"
        : st.isSymbolicLink()
        ? "symlink"
        : "other";
      const node: TreeNode = { type, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
      if (type === "file") node.content = await readFile(join(root, p));
      out.set(p, node);
      if (type === "directory") await walk(p);
    }
  };
  await walk("");
  return out;
}

/** A ReadableStream over a file, read in chunks. */
export async function fileStream(path: string): Promise<ReadableStream<Uint8Array>> {
  const { open } = await import("node:fs/promises");
  const fh = await open(path, "r");
  let pos = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const buf = new Uint8Array(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) {
        await fh.close();
        c.close();
        return;
      }
      pos += bytesRead;
      c.enqueue(buf.subarray(0, bytesRead));
    },
    async cancel() {
      await fh.close();
    },
  });
}

/** A ReadableStream over bytes in memory. */
export function bytesStream(bytes: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let pos = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (pos >= bytes.length) return c.close();
      c.enqueue(bytes.slice(pos, pos + chunk));
      pos += chunk;
    },
  });
}

export const OLD = 1000000000; // 2001-09-09
export const UTF8_NAME = "été/naïve – 日本語.txt";
export const LONG_NAME = `long/${"d".repeat(90)}/${"f".repeat(120)}.txt`;

/** A tree with nested folders, spaces, UTF-8, empty and multi-MB files, modes, old mtimes. */
export async function makeSampleTree(root: string): Promise<string[]> {
  const files: [string, Uint8Array, number, number][] = [
    ["hello.txt", new TextEncoder().encode("hello world\n"), 0o644, OLD],
    ["sub/file with space.txt", new TextEncoder().encode("spaced"), 0o600, OLD + 12345],
    ["sub/deep/er/empty", new Uint8Array(0), 0o644, 1577934245],
    ["sub/deep/run.sh", new TextEncoder().encode("#!/bin/sh\necho hi\n"), 0o755, OLD],
    ["big/blob.bin", randomBytes(3 * 1024 * 1024 + 17), 0o644, 1795372302],
    [UTF8_NAME, new TextEncoder().encode("accents"), 0o644, OLD],
    [LONG_NAME, new TextEncoder().encode("long"), 0o644, OLD],
  ];
  for (const [rel, data, mode, mtime] of files) {
    const abs = join(root, ...rel.split("/"));
    await mkdir(join(abs, ".."), { recursive: true });
    await writeFile(abs, data);
    await chmod(abs, mode);
    await utimes(abs, mtime, mtime);
  }
  await mkdir(join(root, "sub", "void"));
  await chmod(join(root, "sub/deep"), 0o750);
  for (
    const d of ["sub/deep/er", "sub/deep", "sub", "big", "été", `long/${"d".repeat(90)}`, "long"]
  ) {
    await utimes(join(root, d), OLD + 7, OLD + 7);
  }
  const paths = files.map((f) => f[0]);
  paths.splice(2, 0, "sub/void"); // an empty folder, listed as such
  return paths;
}
