/**
 * The rclone driver: any remote of the user's own `rclone` and its configured
 * remotes (Dropbox, B2, OneDrive, Swift, Google Cloud Storage, S3, SFTP, ...),
 * one `rclone` command per call, as Escale runs it: `lsjson` to list and stat,
 * `cat --offset` to read (streamed from its output), `rcat` to write (streamed
 * to its input) to a temporary name then `moveto` over the target, `deletefile`,
 * `mkdir`, `rmdir`, `moveto`. The remote's credentials stay in rclone's
 * configuration (`--config FILE`, else RCLONE_CONFIG, else rclone's default).
 *
 * A replace has a short gap: rclone's `moveto` deletes the target before it moves the
 * new file in, so a reader between the two finds no file (`moveto --no-check-dest`
 * would rename over it on local and SFTP remotes, but on a WebDAV remote it left the
 * old file and reported success, so it is not used).
 *
 * rclone has no create-if-absent: exclusive creates use the listing scheme of
 * `exclusive.ts`, which is as exclusive as the remote's listings are
 * consistent (local, SFTP and WebDAV remotes are; see rclone's notes for
 * eventually consistent services). Modification times are the remote's.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createExclusiveByListing } from "./exclusive.ts";
import { counter, toReadable, toWeb } from "./streams.ts";
import { checkPath, type Driver, type Entry, StorageError, tempPathFor } from "./types.ts";

/** Which remote, and how to run rclone. */
export interface RcloneOptions {
  /** The remote's name in rclone's configuration. */
  remote: string;
  /** The folder on the remote ("" its top). */
  path?: string;
  /** The program (default `rclone` on PATH). */
  binary?: string;
  /** rclone's configuration file (default: RCLONE_CONFIG, then rclone's own default). */
  config?: string;
}

/** rclone's exit codes for a folder or a file that is not there. */
const NOT_FOUND = new Set([3, 4]);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Opens an rclone remote (each call runs rclone; `check()` runs it now). */
export function rcloneDriver(o: RcloneOptions): Driver {
  const bin = o.binary ?? "rclone";
  const base = (o.path ?? "").replace(/(.)\/+$/, "$1");
  const label = `rclone://${o.remote}/${base}`;
  const target = (p: string) => `${o.remote}:${base ? (p ? `${base}/${p}` : base) : p}`;
  const common = o.config ? ["--config", o.config] : [];

  const fail = (what: string, name: string | undefined, r: Run | Error): StorageError => {
    const subject = name ? `${what} ${name}` : what;
    if (r instanceof Error) {
      if ((r as { code?: string }).code === "ENOENT") {
        return new StorageError("unsupported", `${label}: cannot run ${bin}: ${r.message}`, {
          cause: r,
          hint: "hop uses your own rclone for rclone remotes: install it (Debian/Ubuntu: " +
            "apt install rclone; elsewhere https://rclone.org/install/), or give its path " +
            "(`rclone binary` in escale.conf).",
        });
      }
      return new StorageError("other", `${label}: cannot ${subject}: ${r.message}`, { cause: r });
    }
    const text = r.stderr.trim().split("\n").slice(-2).join(" ") || `rclone exited ${r.code}`;
    const msg = `${label}: cannot ${subject}: ${text}`;
    if (/didn't find section in config file|not found in config file/i.test(text)) {
      return new StorageError("missing", msg, {
        hint: `rclone has no remote named ${o.remote}: set it up with \`rclone config\` ` +
          "(as the user hop runs as), or fix the remote's name.",
      });
    }
    // "readdirent NAME: not a directory": rclone found no file at NAME, looked for a
    // folder there and met a file that had moved in meanwhile (a replace's gap).
    if (
      NOT_FOUND.has(r.code) ||
      /not found|no such file|doesn't exist|readdirent .*: not a directory/i.test(text)
    ) {
      return new StorageError("missing", msg, { hint: "The file or folder is not on the remote." });
    }
    if (/permission denied|access denied|forbidden|\b403\b/i.test(text)) {
      return new StorageError("denied", msg, {
        hint: "The remote refused: check the rights of its account.",
      });
    }
    if (
      /unauthori[sz]ed|\b401\b|authentication|invalid.*(token|key|credentials)|unable to authenticate/i
        .test(text)
    ) {
      return new StorageError("auth", msg, {
        hint: `Check the credentials of remote ${o.remote} (rclone config).`,
      });
    }
    if (/no space|quota|insufficient storage|\b507\b/i.test(text)) {
      return new StorageError("full", msg, {
        hint: "The remote is full (disk or quota): free space on it.",
      });
    }
    if (/connection refused|no route|timeout|dial tcp|i\/o timeout|EOF/i.test(text)) {
      return new StorageError("connect", msg, {
        hint: "rclone could not reach the remote; hop retries on the next pass.",
      });
    }
    return new StorageError("other", msg, { hint: "rclone's own message is above." });
  };

  /** Runs rclone to its end; `input` is streamed to its standard input. */
  function run(args: string[], input?: Readable): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(bin, [...common, ...args], {
        stdio: [input ? "pipe" : "ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout!.setEncoding("utf8").on("data", (d: string) => stdout += d);
      child.stderr!.setEncoding("utf8").on(
        "data",
        (d: string) => stderr = (stderr + d).slice(-8000),
      );
      child.once("error", reject);
      child.once("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
      if (input) {
        pipeline(input, child.stdin!).catch((e) => {
          child.kill();
          stderr += `\n${(e as Error).message}`;
        });
      }
    });
  }

  async function ok(
    what: string,
    name: string | undefined,
    args: string[],
    input?: Readable,
  ): Promise<Run> {
    let r: Run;
    try {
      r = await run(args, input);
    } catch (e) {
      throw fail(what, name, e as Error);
    }
    if (r.code !== 0) throw fail(what, name, r);
    return r;
  }

  const entryOf = (j: { Name: string; Size: number; ModTime: string; IsDir: boolean }): Entry => {
    const t = Date.parse(j.ModTime);
    return {
      name: j.Name,
      isDir: j.IsDir,
      size: j.IsDir ? 0 : Number(j.Size),
      mtimeMs: Number.isFinite(t) ? t : null,
    };
  };

  async function statAt(p: string): Promise<Entry | null> {
    let r: Run;
    try {
      r = await run(["lsjson", "--stat", target(p)]);
    } catch (e) {
      throw fail("stat", p, e as Error);
    }
    if (r.code !== 0) {
      const e = fail("stat", p, r);
      if (e.kind === "missing" && !/config file/.test(r.stderr)) return null;
      throw e;
    }
    return entryOf(JSON.parse(r.stdout));
  }

  const driver: Driver = {
    label,
    caps: {
      atomicMkdir: false,
      exclusive: "listing",
      rangedRead: true,
      folders: true,
      atomicPut: false,
    },
    async list(d) {
      checkPath(d, true);
      const r = await ok("list", d || undefined, ["lsjson", target(d)]);
      return (JSON.parse(r.stdout) as Parameters<typeof entryOf>[0][]).map(entryOf);
    },
    stat: (p) => statAt(checkPath(p)),
    async read(p, offset = 0) {
      checkPath(p);
      const child = spawn(bin, [
        ...common,
        "cat",
        ...(offset > 0 ? ["--offset", String(offset)] : []),
        target(p),
      ], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr!.setEncoding("utf8").on(
        "data",
        (d: string) => stderr = (stderr + d).slice(-8000),
      );
      const exited = new Promise<Run>((resolve, reject) => {
        child.once("error", reject);
        child.once("close", (code) => resolve({ code: code ?? 1, stdout: "", stderr }));
      });
      exited.catch(() => {});
      const ended = async () => {
        const r = await exited.catch((e) => e as Error);
        if (r instanceof Error || r.code !== 0) throw fail("read", p, r);
      };
      // A missing file is told now: wait for the first bytes (or the end).
      const it = (child.stdout as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done) await ended();
      async function* bytes(): AsyncGenerator<Uint8Array> {
        try {
          if (first.done) return;
          yield first.value;
          for (;;) {
            const x = await it.next();
            if (x.done) break;
            yield x.value;
          }
          await ended();
        } finally {
          if (child.exitCode === null) child.kill();
        }
      }
      return toWeb(Readable.from(bytes(), { objectMode: false }));
    },
    async write(p, data, wo) {
      checkPath(p);
      const direct = wo?.direct ?? false;
      const tmp = direct ? p : tempPathFor(p);
      const counted = counter();
      const input = toReadable(data).pipe(counted.stream);
      await ok("write", p, ["rcat", target(tmp)], input);
      if (direct) return counted.bytes();
      try {
        await ok("write", p, ["moveto", target(tmp), target(p)]);
      } catch (e) {
        await run(["deletefile", target(tmp)]).catch(() => {});
        throw e;
      }
      return counted.bytes();
    },
    createExclusive: async (p, data) => await createExclusiveByListing(driver, checkPath(p), data),
    async delete(p) {
      checkPath(p);
      const r = await run(["deletefile", target(p)]).catch((e) => {
        throw fail("delete", p, e);
      });
      if (r.code === 0) return true;
      const e = fail("delete", p, r);
      if (e.kind === "missing") return false;
      throw e;
    },
    async mkdir(p) {
      checkPath(p);
      if ((await statAt(p))?.isDir) return false;
      await ok("create", p, ["mkdir", target(p)]);
      return true;
    },
    async rmdir(p) {
      checkPath(p);
      const r = await run(["rmdir", target(p)]).catch((e) => {
        throw fail("remove", p, e);
      });
      if (r.code !== 0 && fail("remove", p, r).kind !== "missing" && (await statAt(p))) {
        throw fail("remove", p, r);
      }
    },
    async rename(from, to) {
      checkPath(from);
      checkPath(to);
      if (!(await statAt(from))) {
        throw new StorageError("missing", `${label}: cannot rename ${from}: not found`, {
          hint: "The file is not on the remote.",
        });
      }
      await ok("rename", from, ["moveto", target(from), target(to)]);
    },
    async check() {
      const r = await run(["lsjson", "--max-depth", "1", "--stat", target("")]).catch((e) => {
        throw fail("reach", undefined, e);
      });
      if (r.code !== 0) {
        const e = fail("reach", undefined, r);
        if (e.kind === "missing" && !/config file/.test(r.stderr)) {
          throw new StorageError("missing", `${label}: no folder ${base || "/"} on the remote`, {
            hint: "Create the folder on the remote first (rclone mkdir), or fix the path.",
          });
        }
        throw e;
      }
    },
    close() {
      return Promise.resolve();
    },
  };
  return driver;
}
