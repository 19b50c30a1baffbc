/**
 * The storage driver conformance suite (rclone-style): the same cases run
 * against every driver on a real server — a folder, pyftpdlib and vsftpd
 * (plain and FTPS), OpenSSH's sshd, Apache mod_dav and `rclone serve webdav`
 * (HTTP and HTTPS), s3rver, and rclone remotes — by the `storage_*_test.ts`
 * files. A target opens fresh drivers on one storage root and, where the
 * server keeps its files in a folder here, names that folder so cases can
 * check what the server really stored.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { type Driver, StorageError, TEMP_PREFIX } from "../src/storage/mod.ts";
import { generated, hashStream } from "./helpers/streams.ts";

/** One storage under test. */
export interface StorageTarget {
  /** Opens a fresh driver on the target's root. */
  open(): Promise<Driver>;
  /** The root as a folder on this machine, when the server stores files there. */
  dir?: string;
  /** What `caps.exclusive` must be (the server's honouring of If-None-Match decides on WebDAV and S3). */
  exclusive: "native" | "listing";
  /** Whether the driver sets mtimes. */
  setsMtime: boolean;
  /** Racing clients and rounds of the exclusive create step (default 6 and 12: fewer where each call starts a process). */
  race?: { clients: number; rounds: number };
  /**
   * Set (to the reason) for a test server known to show a replaced file part-written
   * while a write is under way (s3rver writes objects in place): the atomic replace
   * step then checks only the final content, and takes a read that fails meanwhile (the
   * server ends it early). Real servers of that kind must not set it.
   */
  replacesInPlace?: string;
  /**
   * Set (to the reason) for a server whose replace leaves a moment with no file at the
   * name (WebDAV servers whose MOVE with Overwrite deletes the target, then renames): a
   * read then finds the file missing, never part of it.
   */
  replaceGap?: string;
  /** Opens a driver with a wrong password or key: every call fails with kind `auth`. */
  openWrongAuth?(): Promise<Driver>;
  /** Opens a driver on a port where no server listens: kind `connect`. */
  openDown?(): Promise<Driver>;
  /** Opens a driver whose login may not write: writes fail with kind `denied`. */
  openReadOnly?(): Promise<Driver>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function readAll(d: Driver, p: string, offset = 0): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of await d.read(p, offset)) chunks.push(c);
  return dec.decode(Buffer.concat(chunks));
}

/** Resolves to the error when `p` rejects with a StorageError of `kind`. */
export async function rejectsKind(p: Promise<unknown>, kind: string): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StorageError, `expected StorageError, got ${e}`);
    assert.equal(e.kind, kind, `kind of: ${e.message}`);
    assert.ok(e.hint, `a hint for: ${e.message}`);
    return e;
  }
  assert.fail(`expected a StorageError of kind ${kind}`);
}

/** Removes everything under the root (through the driver: object storage has no folder here). */
async function clear(d: Driver, dir = ""): Promise<void> {
  for (const e of await d.list(dir)) {
    const p = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDir) {
      await clear(d, p);
      await d.rmdir(p);
    } else await d.delete(p);
  }
}

/** Registers the conformance steps for one target inside a Deno test. */
export async function storageConformance(
  t: { step(name: string, fn: () => Promise<void>): Promise<boolean> },
  target: StorageTarget,
): Promise<void> {
  const d = await target.open();
  try {
    await d.check();
    assert.equal(d.caps.exclusive, target.exclusive, "exclusive create scheme");
    await t.step("nested paths: write, list, stat, read; missing things", async () => {
      await clear(d);
      assert.deepEqual(await d.list(""), []);
      assert.equal(await d.write("a/b/c.txt", enc.encode("hello")), 5);
      assert.equal(await d.write("a/top", new Uint8Array(0)), 0);
      const before = Date.now();
      const a = (await d.list("a")).sort((x, y) => x.name.localeCompare(y.name));
      assert.deepEqual(a.map((e) => [e.name, e.isDir, e.isDir ? 0 : e.size]), [
        ["b", true, 0],
        ["top", false, 0],
      ]);
      const [f] = await d.list("a/b");
      assert.deepEqual([f.name, f.isDir, f.size], ["c.txt", false, 5]);
      assert.ok(Math.abs(f.mtimeMs! - before) < 120_000, "a sane mtime");
      assert.deepEqual(await d.stat("a/b/c.txt").then((e) => [e?.isDir, e?.size]), [false, 5]);
      assert.equal((await d.stat("a/b"))?.isDir, true);
      assert.equal(await d.stat("a/nope"), null);
      assert.equal(await d.stat("nope/deeper"), null);
      assert.equal(await readAll(d, "a/b/c.txt"), "hello");
      assert.equal(await readAll(d, "a/b/c.txt", 2), "llo", "ranged read");
      assert.equal(await readAll(d, "a/top"), "");
      await rejectsKind(d.read("a/nope"), "missing");
      await rejectsKind(d.list("nope"), "missing");
      assert.equal(await readAll(d, "a/b/c.txt"), "hello", "still works after errors");
      await rejectsKind(d.read("../etc/passwd"), "name");
      if (target.dir) {
        assert.equal(await readFile(join(target.dir, "a/b/c.txt"), "utf8"), "hello");
      }
    });

    await t.step("names with spaces, dots and UTF-8", async () => {
      await clear(d);
      const names = [".0.1795372303.data", ".0.index", "a b  c.txt", "ünï cödé.txt", "x.y.z"];
      for (const n of names) await d.write(`sub dir/${n}`, enc.encode(`content of ${n}`));
      assert.deepEqual((await d.list("sub dir")).map((f) => f.name).sort(), [...names].sort());
      for (const n of names) assert.equal(await readAll(d, `sub dir/${n}`), `content of ${n}`);
      if (target.dir) {
        assert.deepEqual((await readdir(join(target.dir, "sub dir"))).sort(), [...names].sort());
      }
    });

    await t.step("delete, rename, mkdir, rmdir", async () => {
      await clear(d);
      await d.write("x", enc.encode("x"));
      assert.equal(await d.delete("x"), true);
      assert.equal(await d.stat("x"), null);
      assert.equal(await d.delete("x"), false);
      if (d.rename) {
        await d.write("from", enc.encode("new"));
        await d.write("to", enc.encode("old"));
        await d.rename("from", "to");
        assert.equal(await d.stat("from"), null);
        assert.equal(await readAll(d, "to"), "new");
        await rejectsKind(d.rename("from", "to2"), "missing");
        await d.rename("to", "moved/into/sub");
        assert.equal(await readAll(d, "moved/into/sub"), "new");
      }
      if (d.caps.folders) {
        assert.equal(await d.mkdir("m/n"), true);
        assert.equal(await d.mkdir("m/n"), false);
        assert.equal((await d.stat("m/n"))?.isDir, true);
        await d.rmdir("m/n");
        await d.rmdir("m/n");
        assert.equal(await d.stat("m/n"), null);
      }
    });

    await t.step("mtime: set exactly where the driver can, seen by stat and list", async () => {
      await clear(d);
      await d.write("m", enc.encode("m"));
      assert.equal(d.setMtime !== undefined, target.setsMtime);
      if (!d.setMtime) return;
      const when = Date.UTC(2020, 0, 1, 12, 0, 0);
      await d.setMtime("m", when + 400);
      const secs = (ms: number | null | undefined) => Math.floor((ms ?? NaN) / 1000) * 1000;
      assert.equal(secs((await d.stat("m"))?.mtimeMs), when);
      assert.equal(secs((await d.list("")).find((f) => f.name === "m")?.mtimeMs), when);
      if (target.dir) {
        assert.equal(Math.floor((await stat(join(target.dir, "m"))).mtimeMs / 1000) * 1000, when);
      }
    });

    await t.step(
      "atomic replace: concurrent readers see the old or the whole new file",
      async () => {
        await clear(d);
        const oldBytes = new Uint8Array(1 << 20).fill(1);
        await d.write("big.data", oldBytes);
        const reader = await target.open();
        try {
          const newSize = 6 << 20;
          let reads = 0;
          // Each chunk of the new file waits for one more whole read, so that reads happen
          // while the write is under way however slow the machine (a storage that blocks
          // reads during a write gets 20 s, then the write goes on).
          const gen = generated(newSize, 7, {
            chunk: 256 * 1024,
            onChunk: async () => {
              const before = reads;
              for (let waited = 0; reads === before && waited < 20_000; waited += 20) {
                await new Promise((r) => setTimeout(r, 20));
              }
            },
          });
          let inFlight = true;
          const writing = d.write("big.data", gen.stream).finally(() => inFlight = false);
          const seen = new Set<string>();
          while (inFlight) {
            try {
              const got = await hashStream(await reader.read("big.data"));
              seen.add(`${got.size} ${got.hex}`);
            } catch (e) {
              // a missing file across a replace gap; a read cut short by a server that
              // rewrites the file under it (s3rver ends the response early)
              const gap = target.replaceGap && e instanceof StorageError && e.kind === "missing";
              if (!gap && !(target.replacesInPlace && e instanceof StorageError)) throw e;
            }
            reads++;
          }
          await writing;
          const after = await hashStream(await reader.read("big.data"));
          assert.equal(after.size, newSize);
          assert.equal(after.hex, gen.digest());
          const oldTag = `${oldBytes.length} ${
            createHash("sha256").update(oldBytes).digest("hex")
          }`;
          const newTag = `${newSize} ${gen.digest()}`;
          if (!target.replacesInPlace) {
            for (const s of seen) {
              assert.ok(s === oldTag || s === newTag, `partial file seen: ${s}`);
            }
          }
          assert.ok(seen.has(oldTag) && reads >= 2, `reads during the write: ${reads}`);
          if (target.dir) {
            assert.ok(!(await readdir(target.dir)).some((n) => n.startsWith(TEMP_PREFIX)));
          }
        } finally {
          await reader.close();
        }
      },
    );

    await t.step("48 MB streamed both ways in bounded memory", async () => {
      await clear(d);
      const size = 48 << 20;
      // The writer pulls the source as it sends: when 40 MB are produced, the server
      // (where we can see it) already holds most of the first 24.
      let storedMidway = -1;
      const gen = generated(size, 42, {
        onChunk: async (produced) => {
          if (produced !== 40 << 20 || !target.dir) return;
          const deadline = Date.now() + 10_000;
          while (Date.now() < deadline) {
            storedMidway = await bytesUnder(target.dir);
            if (storedMidway >= 16 << 20) break;
            await new Promise((r) => setTimeout(r, 20));
          }
        },
      });
      assert.equal(await d.write("huge.data", gen.stream), size);
      if (target.dir) {
        assert.ok(storedMidway >= 16 << 20, `only ${storedMidway} bytes stored midway`);
      }
      const whole = await hashStream(await d.read("huge.data"));
      assert.equal(whole.hex, gen.digest());
      const tail = await hashStream(await d.read("huge.data", size - 1000));
      assert.equal(tail.size, 1000, "ranged read of the tail");
      assert.equal((await d.stat("huge.data"))?.size, size);
      await d.delete("huge.data");
    });

    await t.step("a cancelled read frees the driver", async () => {
      await clear(d);
      await d.write("c.data", generated(4 << 20, 3).stream);
      const r = (await d.read("c.data")).getReader();
      await r.read();
      await r.cancel();
      assert.equal((await d.stat("c.data"))?.size, 4 << 20);
      assert.equal((await hashStream(await d.read("c.data"))).size, 4 << 20);
    });

    const race = target.race ?? { clients: 6, rounds: 12 };
    const raceName = `exclusive create: ${race.clients} racing clients, ${race.rounds} rounds, ` +
      "never two winners";
    await t.step(raceName, async () => {
      await clear(d);
      await d.mkdir("locks");
      const clients = await Promise.all(Array.from({ length: race.clients }, () => target.open()));
      let rounds = 0;
      try {
        for (let round = 0; round < race.rounds; round++) {
          const tokens = clients.map((_, i) => `owner c${i} round ${round}`);
          const won = await Promise.all(
            clients.map((c, i) => c.createExclusive("locks/.0.lock", enc.encode(tokens[i]))),
          );
          const winners = won.flatMap((w, i) => w ? [i] : []);
          assert.ok(winners.length <= 1, `round ${round}: winners ${winners}`);
          if (winners.length === 0) {
            // racers may all back off (the listing scheme, a refused lock); the name stays free
            assert.equal(await d.stat("locks/.0.lock"), null);
            continue;
          }
          rounds++;
          assert.equal(await readAll(d, "locks/.0.lock"), tokens[winners[0]]);
          assert.equal(
            await clients[(winners[0] + 1) % race.clients].createExclusive(
              "locks/.0.lock",
              enc.encode("x"),
            ),
            false,
            "taken while held",
          );
          assert.equal(await clients[winners[0]].delete("locks/.0.lock"), true);
        }
        assert.ok(
          rounds >= race.rounds / 3,
          `only ${rounds} of ${race.rounds} rounds had a winner`,
        );
        // (object storage: a folder with nothing left in it is gone)
        const left = (await d.list("locks").catch((e) => {
          if (d.caps.folders) throw e;
          return [];
        })).map((e) => e.name);
        assert.deepEqual(left, [], "no claim left behind");
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    if (target.openWrongAuth) {
      await t.step("a wrong password or key: kind auth", async () => {
        const bad = await target.openWrongAuth!();
        try {
          await rejectsKind(bad.list(""), "auth");
        } finally {
          await bad.close();
        }
      });
    }
    if (target.openDown) {
      await t.step("no server: kind connect", async () => {
        const down = await target.openDown!();
        try {
          await rejectsKind(down.stat("x"), "connect");
        } finally {
          await down.close();
        }
      });
    }
    if (target.openReadOnly) {
      await t.step("a read-only login: writes fail with kind denied", async () => {
        await d.write("ro.txt", enc.encode("ro"));
        const ro = await target.openReadOnly!();
        try {
          assert.equal(await readAll(ro, "ro.txt"), "ro");
          await rejectsKind(ro.write("w.txt", enc.encode("w")), "denied");
        } finally {
          await ro.close();
        }
      });
    }
    await clear(d);
  } finally {
    await d.close();
  }
}

/** Bytes of all files under `dir` (temporary ones included). */
async function bytesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!e.isFile()) continue;
    const s = await stat(join(e.parentPath ?? dir, e.name)).catch(() => null);
    n += s?.size ?? 0;
  }
  return n;
}

/** Removes a folder tree (for targets' cleanup). */
export async function removeTree(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
