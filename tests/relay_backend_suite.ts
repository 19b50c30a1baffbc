/**
 * The relay backend conformance suite (rclone-style): the same cases run
 * against every backend — a local folder, pyftpdlib (plain and FTPS) and
 * vsftpd (plain and FTPS) — by the `relay_backend_*_test.ts` files.
 *
 * A target gives a way to open fresh backends on one relay and the relay's
 * folder on this machine, so cases can check what the server really stored.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CLAIM_SUFFIX,
  openBackend,
  type OpenOptions,
  type RelayBackend,
  StorageError,
  TEMP_PREFIX,
} from "../src/relay/backend/mod.ts";
import type { RelayIO } from "../src/relay/io.ts";
import { generated, hashStream } from "./helpers/streams.ts";

/** One relay under test. */
export interface Target {
  /** The relay address given to openBackend. */
  address: string;
  options: OpenOptions;
  /** The relay folder as seen on this machine (what the server stores). */
  dir: string;
  /** FTP server only: stops it and starts it again on the same port. */
  restart?: () => Promise<void>;
  stop?: () => Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Opens a backend on the target, with extra options. */
function open(t: Target, extra: OpenOptions = {}): Promise<RelayBackend> {
  return openBackend(t.address, { ...t.options, ...extra });
}

async function clear(t: Target): Promise<void> {
  for (const name of await readdir(t.dir)) await rm(join(t.dir, name), { recursive: true });
}

async function rejectsKind(
  p: Promise<unknown>,
  kind: string,
  hint?: RegExp,
): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StorageError, `expected StorageError, got ${e}`);
    assert.equal(e.kind, kind, `kind of: ${e.message}`);
    if (hint) assert.match(e.hint ?? "", hint);
    return e;
  }
  assert.fail(`expected a StorageError of kind ${kind}`);
}

/** Registers the conformance steps for one target inside a Deno test. */
export async function conformance(
  t: { step(name: string, fn: () => Promise<void>): Promise<boolean> },
  target: Target,
): Promise<void> {
  const b = await open(target);
  // The backends fit the sync engine's RelayIO as they are.
  const asIO: RelayIO = b;
  assert.equal(asIO.label, b.label);
  try {
    await t.step("list, read, readBytes, stat on a fresh relay", async () => {
      await clear(target);
      assert.deepEqual(await b.list(), []);
      await b.write("a.txt", enc.encode("hello"));
      await b.write("empty", new Uint8Array(0));
      await mkdir(join(target.dir, "sub"));
      const before = Date.now();
      const list = (await b.list()).sort((x, y) => x.name.localeCompare(y.name));
      assert.deepEqual(list.map((f) => [f.name, f.size]), [["a.txt", 5], ["empty", 0]]);
      for (const f of list) {
        assert.ok(Math.abs(f.mtimeMs - before) < 120_000, `mtime of ${f.name} is sane`);
      }
      assert.equal(dec.decode(await b.readBytes("a.txt")), "hello");
      assert.equal((await b.readBytes("empty")).length, 0);
      const streamed = await hashStream(await b.read("a.txt"));
      assert.equal(streamed.size, 5);
      assert.equal(streamed.hex, createHash("sha256").update("hello").digest("hex"));
      assert.equal((await hashStream(await b.read("empty"))).size, 0);
      const st = await b.stat("a.txt");
      assert.equal(st?.size, 5);
      assert.equal(st?.name, "a.txt");
      assert.equal(await b.stat("nope"), null);
      assert.equal(await b.stat("sub"), null, "folders are not files");
      await rejectsKind(b.readBytes("nope"), "missing");
      await rejectsKind(b.read("nope"), "missing");
      // the backend still works after errors
      assert.equal(dec.decode(await b.readBytes("a.txt")), "hello");
      await rejectsKind(b.readBytes("../etc/passwd"), "name");
    });

    await t.step("write replaces, leaves no temp files; the server stored the bytes", async () => {
      await clear(target);
      await b.write(".0.index", enc.encode("one"));
      await b.write(".0.index", enc.encode("two, longer"));
      assert.equal(await readFile(join(target.dir, ".0.index"), "utf8"), "two, longer");
      const names = (await readdir(target.dir)).sort();
      assert.deepEqual(names, [".0.index"]);
      assert.ok(!names.some((n) => n.startsWith(TEMP_PREFIX)));
    });

    await t.step("atomic write: concurrent readers see the old or the whole new file", async () => {
      await clear(target);
      const oldBytes = new Uint8Array(1 << 20).fill(1);
      await b.write("big.data", oldBytes);
      const reader = await open(target);
      try {
        const newSize = 6 << 20;
        const gen = generated(newSize, 7, { chunk: 256 * 1024, delayMs: 15 });
        let inFlight = true;
        const writing = b.write("big.data", gen.stream).finally(() => inFlight = false);
        const seen: string[] = [];
        let duringWrite = 0;
        while (inFlight) {
          const started = inFlight;
          const got = await reader.readBytes("big.data");
          if (got.length === oldBytes.length && got.every((x) => x === 1)) seen.push("old");
          else seen.push(`len ${got.length} sha ${createHash("sha256").update(got).digest("hex")}`);
          if (started && inFlight) duringWrite++;
        }
        await writing;
        const after = await hashStream(await reader.read("big.data"));
        assert.equal(after.size, newSize);
        assert.equal(after.hex, gen.digest());
        const newTag = `len ${newSize} sha ${gen.digest()}`;
        for (const s of seen) assert.ok(s === "old" || s === newTag, `partial file seen: ${s}`);
        assert.ok(duringWrite >= 2, `only ${duringWrite} reads overlapped the write`);
        assert.ok(seen.includes("old"));
      } finally {
        await reader.close();
      }
    });

    await t.step(
      "delete is idempotent; rename replaces; rename of a missing file fails",
      async () => {
        await clear(target);
        await b.write("x", enc.encode("x"));
        await b.delete("x");
        assert.equal(await b.stat("x"), null);
        await b.delete("x");
        await b.delete("never-was");
        await b.write("from", enc.encode("new"));
        await b.write("to", enc.encode("old"));
        await b.rename("from", "to");
        assert.equal(await b.stat("from"), null);
        assert.equal(dec.decode(await b.readBytes("to")), "new");
        await rejectsKind(b.rename("from", "to2"), "missing");
        assert.deepEqual(await readdir(target.dir), ["to"]);
      },
    );

    await t.step("mtime: set exactly, seen by stat and list, moves on rewrite", async () => {
      await clear(target);
      await b.write("m", enc.encode("m"));
      const when = Date.UTC(2020, 0, 1, 12, 0, 0);
      await b.setMtime("m", when + 400);
      const secs = (ms: number | undefined) => Math.floor((ms ?? NaN) / 1000) * 1000;
      assert.equal(secs((await b.stat("m"))?.mtimeMs), when);
      assert.equal(secs((await b.list()).find((f) => f.name === "m")?.mtimeMs), when);
      assert.equal(Math.floor((await stat(join(target.dir, "m"))).mtimeMs / 1000) * 1000, when);
      await b.write("m", enc.encode("m2"));
      const now = (await b.stat("m"))!.mtimeMs;
      assert.ok(Math.abs(now - Date.now()) < 120_000, "rewrite gives a fresh mtime");
    });

    await t.step("names with spaces, dots and UTF-8", async () => {
      await clear(target);
      const names = [".0.1795372303.data", ".0.index", "a b  c.txt", "ünï cödé.txt", "x.y.z"];
      for (const n of names) await b.write(n, enc.encode(`content of ${n}`));
      assert.deepEqual((await b.list()).map((f) => f.name).sort(), [...names].sort());
      assert.deepEqual((await readdir(target.dir)).sort(), [...names].sort());
      for (const n of names) {
        assert.equal(dec.decode(await b.readBytes(n)), `content of ${n}`);
        assert.equal((await b.stat(n))?.size, enc.encode(`content of ${n}`).length);
      }
      await b.rename("a b  c.txt", "d e.txt");
      assert.equal(dec.decode(await b.readBytes("d e.txt")), "content of a b  c.txt");
      for (const n of names) await b.delete(n);
      await b.delete("d e.txt");
      assert.deepEqual(await readdir(target.dir), []);
    });

    await t.step("exclusive create: 8 racing clients, 20 rounds, one winner each", async () => {
      await clear(target);
      const clients = await Promise.all(Array.from({ length: 8 }, () => open(target)));
      try {
        for (let round = 0; round < 20; round++) {
          const tokens = clients.map((_, i) => `lock%1.0\nowner: c${i}\nmode: w\nround: ${round}`);
          const won = await Promise.all(
            clients.map((c, i) => c.createExclusive(".0.lock", enc.encode(tokens[i]))),
          );
          const winners = won.flatMap((w, i) => w ? [i] : []);
          assert.equal(winners.length, 1, `round ${round}: winners ${winners}`);
          const text = await readFile(join(target.dir, ".0.lock"), "utf8");
          assert.equal(text, tokens[winners[0]]);
          // A second try by anyone fails while it is held.
          assert.equal(
            await clients[(winners[0] + 1) % 8].createExclusive(".0.lock", enc.encode("x")),
            false,
          );
          await clients[winners[0]].delete(".0.lock");
          assert.deepEqual(await readdir(target.dir), [], `round ${round}: released cleanly`);
        }
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    await t.step(
      "exclusive create respects a lock written in place (Escale) and orphan claims",
      async () => {
        await clear(target);
        await writeFile(join(target.dir, ".0.lock"), "lock%1.0\nowner: escale\nmode: r");
        assert.equal(await b.createExclusive(".0.lock", enc.encode("mine")), false);
        assert.equal(
          await readFile(join(target.dir, ".0.lock"), "utf8"),
          "lock%1.0\nowner: escale\nmode: r",
        );
        assert.deepEqual(await readdir(target.dir), [".0.lock"], "no claim left behind");
        await b.delete(".0.lock");
        // A claim without its file (a crash mid-create) is cleared after the grace period.
        const quick = await open(target, { claimGraceMs: 300 });
        try {
          await mkdir(join(target.dir, ".1.lock" + CLAIM_SUFFIX));
          assert.equal(await quick.createExclusive(".1.lock", enc.encode("a")), false);
          assert.equal(await quick.createExclusive(".1.lock", enc.encode("a")), false);
          await new Promise((r) => setTimeout(r, 350));
          assert.equal(await quick.createExclusive(".1.lock", enc.encode("a")), false, "clears it");
          assert.equal(await quick.createExclusive(".1.lock", enc.encode("a")), true);
          assert.equal(await readFile(join(target.dir, ".1.lock"), "utf8"), "a");
          await quick.delete(".1.lock");
          assert.deepEqual(await readdir(target.dir), []);
        } finally {
          await quick.close();
        }
      },
    );

    await t.step(
      "64 MB streamed both ways: stored while still produced",
      async () => {
        await clear(target);
        const size = 64 << 20;
        // Streaming write: when 48 MB are produced, the server already holds most of the first 32.
        let storedMidway = -1;
        const gen = generated(size, 42, {
          onChunk: async (produced) => {
            if (produced !== 48 << 20) return;
            const deadline = Date.now() + 5000;
            while (Date.now() < deadline) {
              const tmp = (await readdir(target.dir)).find((n) => n.startsWith(TEMP_PREFIX));
              storedMidway = tmp ? (await stat(join(target.dir, tmp))).size : 0;
              if (storedMidway >= 16 << 20) break;
              await new Promise((r) => setTimeout(r, 20));
            }
          },
        });
        // No RSS bound here: `deno test --parallel` runs other test files in this same
        // process, so its RSS says nothing about this backend. The midway check proves
        // the write streams; the relay benchmark measures peak RSS in a process of its own.
        await b.write("huge.data", gen.stream);
        assert.ok(storedMidway >= 16 << 20, `only ${storedMidway} bytes stored midway`);
        assert.equal((await stat(join(target.dir, "huge.data"))).size, size);
        const got = await hashStream(await b.read("huge.data"));
        assert.equal(got.size, size);
        assert.equal(got.hex, gen.digest());
        // the connection is free again after the stream ended
        assert.equal((await b.stat("huge.data"))?.size, size);
        await b.delete("huge.data");
      },
    );

    await t.step("a cancelled read frees the backend", async () => {
      await clear(target);
      await b.write("c.data", generated(4 << 20, 3).stream);
      const s = await b.read("c.data");
      const r = s.getReader();
      await r.read();
      await r.cancel();
      assert.equal((await b.stat("c.data"))?.size, 4 << 20);
      assert.equal((await hashStream(await b.read("c.data"))).size, 4 << 20);
    });

    if (target.restart) {
      await t.step("the backend reconnects after the server restarts", async () => {
        await clear(target);
        await b.write("r", enc.encode("r"));
        await target.restart!();
        assert.equal(dec.decode(await b.readBytes("r")), "r");
        assert.equal((await b.list()).length, 1);
      });
    }
  } finally {
    await b.close();
  }
}
