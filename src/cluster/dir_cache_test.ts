import assert from "node:assert/strict";
import type * as fs from "node:fs";
import { createDirCache, type DirLinks, STABLE_MS } from "./dir_cache.ts";

const links = (n: number): DirLinks =>
  new Map(
    Array.from({ length: n }, (_, i) => [
      `f${i}#`,
      {
        info: { kind: "file", name: `f${i}`, size: i, uid: 0, mtime: 0, copies: [], extra: [] },
        stamp: null,
      },
    ]),
  );
const stat = (mtimeMs: number, ctimeMs = mtimeMs, ino = 7, size = 4096) =>
  ({ dev: 1, ino, mtimeMs, ctimeMs, size }) as fs.Stats;

Deno.test("dir cache: a young stamp is not trusted, an old one is, a new stamp misses", () => {
  let now = 100_000;
  const c = createDirCache(() => now);
  assert.equal(c.stampOf(stat(now - STABLE_MS + 1)), null, "changed just now: not trusted");
  assert.equal(c.stampOf(stat(now - 10_000, now - 5)), null, "ctime counts too");
  const stamp = c.stampOf(stat(now - STABLE_MS))!;
  assert.ok(stamp);
  assert.notEqual(c.stampOf(stat(now - STABLE_MS, undefined, 7, 1)), stamp, "size counts");
  const big = links(1000);
  const ents = [{ name: "f0#" }] as fs.Dirent[];
  c.set("/d", stamp, big, ents);
  assert.deepEqual(c.get("/d", stamp), { links: big, entries: ents, unchanged: true });
  now += 60_000;
  const changed = c.get("/d", c.stampOf(stat(now - 10_000))!);
  assert.equal(changed?.unchanged, false, "changed since: each link is checked");
  assert.equal(changed?.links, big);
  assert.equal(c.get("/d", c.stampOf(stat(100_000 - STABLE_MS, undefined, 8))!)?.unchanged, false);
  assert.equal(c.get("/d", null)?.unchanged, false, "a young stamp never matches");
  c.set("/y", null, big, []);
  assert.equal(c.get("/y", null)?.unchanged, false, "kept under a young stamp: checked");
});

Deno.test("dir cache: directories without links are not kept, the total is bounded", () => {
  const c = createDirCache(() => 1e9);
  const s = c.stampOf(stat(0))!;
  c.set("/none", s, links(0), []);
  assert.equal(c.get("/none", s), undefined);
  c.set("/small", s, links(1), []);
  assert.equal(c.get("/small", s)?.unchanged, true);
  for (let i = 0; i < 6; i++) c.set(`/big${i}`, s, links(10_000), []);
  assert.ok(c.get("/big5", s), "the last one listed is kept");
  assert.equal(c.get("/big0", s), undefined, "the first one went: 50,000 links at most");
  c.set("/huge", s, links(50_001), []);
  assert.equal(c.get("/huge", s), undefined);
  const many = Array.from({ length: 50_001 }, (_, i) => ({ name: `x${i}` })) as fs.Dirent[];
  c.set("/foreign", s, links(1), many);
  assert.equal(c.get("/foreign", s), undefined, "50,001 entries (foreign files): not kept");
});

Deno.test("dir cache: a kept map that grew while a listing reused it is counted at its new size", () => {
  const c = createDirCache(() => 1e9);
  const a = links(1000);
  c.set("/a", "sa", a, []);
  // a listing of the unchanged /a reads into the kept map itself, then keeps it again
  for (const [k, v] of links(26_000)) a.set(k, v);
  c.set("/a", "sa", a, []);
  assert.equal(c.get("/a", "sa")?.links.size, 26_000);
  // 26,000 + 24,001 is over the bound of 50,000: /a, listed least recently, goes
  c.set("/b", "sb", links(24_001), []);
  // (a failure would print the maps: compared as booleans)
  assert.equal(c.get("/a", "sa") === undefined, true, "/a is no longer kept");
  assert.equal(c.get("/b", "sb")?.unchanged, true);
});
