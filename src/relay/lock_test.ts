/**
 * Tests of page locks: racing acquirers, stale takeover, lost locks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeLock } from "../codec/lock.ts";
import { openBackend } from "./backend/mod.ts";
import { acquireLock, readLock, withLock } from "./lock.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "hop-lock-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true });
  }
}

Deno.test("of many concurrent acquirers exactly one wins", async () => {
  await withDir(async (dir) => {
    const io = await openBackend(dir);
    const got = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => acquireLock(io, "0", { owner: `c${i}`, mode: "w", timeoutSeconds: 60 }),
      ),
    );
    const winners = got.filter((g) => g !== null);
    assert.equal(winners.length, 1);
    const found = await readLock(io, "0");
    assert.equal(found!.info.token, winners[0]!.token);
    assert.equal(found!.info.mode, "w");
    await winners[0]!.release();
    assert.equal(await readLock(io, "0"), null);
  });
});

Deno.test("a live lock is respected; a stale one is taken over by exactly one racer", async () => {
  await withDir(async (dir) => {
    const io = await openBackend(dir);
    const text = encodeLock({ owner: "ghost", mode: "w", acquired: Date.now() - 5_000 });
    await writeFile(join(dir, ".0.lock"), text);
    assert.equal(await acquireLock(io, "0", { owner: "me", mode: "r", timeoutSeconds: 60 }), null);
    // an Escale lock (no time inside) is aged by its mtime
    await writeFile(join(dir, ".0.lock"), "lock%1.0\nowner: ghost\nmode: w");
    const old = Date.now() / 1000 - 3600;
    await utimes(join(dir, ".0.lock"), old, old);
    let staleSeen = 0;
    const got = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        acquireLock(io, "0", {
          owner: `c${i}`,
          mode: "w",
          timeoutSeconds: 60,
          onStale: (s) => {
            assert.equal(s.owner, "ghost");
            staleSeen++;
            return Promise.resolve();
          },
        })),
    );
    assert.equal(got.filter((g) => g).length, 1);
    assert.equal(staleSeen, 1);
  });
});

Deno.test("a holder that lost its lock learns it; release leaves others' locks alone", async () => {
  await withDir(async (dir) => {
    const io = await openBackend(dir);
    const held = (await acquireLock(io, "p", { owner: "me", mode: "w", timeoutSeconds: 60 }))!;
    await writeFile(join(dir, ".p.lock"), encodeLock({ owner: "other", mode: "r" }));
    await assert.rejects(() => held.verify(), /lost the lock/);
    await assert.rejects(() => withLock(held, 60, () => Promise.resolve(1)), /lost the lock/);
    assert.equal((await readLock(io, "p"))!.info.owner, "other");
  });
});

Deno.test("a fresh lock whose holder is known gone is taken over at once; a suspend lock never", async () => {
  await withDir(async (dir) => {
    const io = await openBackend(dir);
    const fresh = encodeLock({ owner: "mover", mode: "r", acquired: Date.now(), pid: 4242 });
    await writeFile(join(dir, ".0.lock"), fresh);
    const gone = (i: { owner: string; pid?: number }) => i.owner === "mover" && i.pid === 4242;
    const opts = { owner: "me", mode: "r" as const, timeoutSeconds: 600 };
    assert.equal(await acquireLock(io, "0", { ...opts, holderGone: () => false }), null);
    const held = await acquireLock(io, "0", { ...opts, holderGone: gone });
    assert.equal((await readLock(io, "0"))!.info.token, held!.token);
    await held!.release();
    await writeFile(join(dir, ".0.lock"), encodeLock({ owner: "x-suspend", mode: "w" }));
    assert.equal(await acquireLock(io, "0", { ...opts, holderGone: () => true }), null);
  });
});

Deno.test("a taker holds the lock while it repairs a gone holder's work; a failed repair frees it", async () => {
  await withDir(async (dir) => {
    const io = await openBackend(dir);
    await writeFile(
      join(dir, ".0.lock"),
      encodeLock({ owner: "ghost", mode: "w", acquired: Date.now(), pid: 1, host: "here" }),
    );
    let during: string | undefined;
    let rival: unknown = "not tried";
    const held = await acquireLock(io, "0", {
      owner: "me",
      mode: "w",
      timeoutSeconds: 600,
      holderGone: (info) => info.owner === "ghost",
      onStale: async () => {
        during = (await readLock(io, "0"))?.info.owner;
        rival = await acquireLock(io, "0", { owner: "bob", mode: "w", timeoutSeconds: 600 });
      },
    });
    assert.ok(held);
    assert.equal(during, "me");
    assert.equal(rival, null);
    await held.release();
    await writeFile(join(dir, ".0.lock"), encodeLock({ owner: "ghost", mode: "w" }));
    await assert.rejects(
      acquireLock(io, "0", {
        owner: "me",
        mode: "w",
        timeoutSeconds: 600,
        holderGone: () => true,
        onStale: () => Promise.reject(new Error("repair failed")),
      }),
      /repair failed/,
    );
    assert.equal(await readLock(io, "0"), null);
  });
});
