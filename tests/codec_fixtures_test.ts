/**
 * The Escale codecs against relays written by a real Escale 0.7.13 client
 * (shared/fixtures/escale-0.7): every index decodes, encodes back byte for
 * byte, names parse, pages match, and checksums are the SHA-512 of the trees.
 *
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  decodePersistentIndex,
  decodeUpdateIndex,
  encodePersistentIndex,
  encodeUpdateIndex,
  type IndexEntry,
  indexName,
  pageOf,
  parseRelayName,
  updateDataName,
  updateIndexName,
} from "../src/codec/mod.ts";

const FIXTURES = fileURLToPath(new URL("../../shared/fixtures/escale-0.7/", import.meta.url));
const CASES: { name: string; levels: number; pages: string[] }[] = [
  { name: "case1", levels: 0, pages: ["0"] },
  { name: "case2", levels: 1, pages: ["0", "docs", "media"] },
];

function treeFiles(root: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const d of readdirSync(root + prefix, { withFileTypes: true })) {
    const rel = prefix + d.name;
    if (d.isDirectory()) out.push(...treeFiles(root, rel + "/"));
    else out.push(rel);
  }
  return out.sort();
}

for (const c of CASES) {
  const relay = `${FIXTURES}${c.name}/relay/`;
  const tree = `${FIXTURES}${c.name}/tree/`;

  Deno.test(`fixtures ${c.name}: relay names parse into the expected pages`, () => {
    const names = readdirSync(relay).sort();
    const pages = new Set<string>();
    for (const n of names) {
      const r = parseRelayName(n);
      assert.ok(r, `${n} should parse`);
      pages.add(r.page);
      const back = r.kind === "index"
        ? indexName(r.page)
        : r.kind === "lock"
        ? n
        : r.kind === "update-index"
        ? updateIndexName(r.page, r.time)
        : updateDataName(r.page, r.time);
      assert.equal(back, n);
    }
    assert.deepEqual([...pages].sort(), c.pages);
  });

  Deno.test(`fixtures ${c.name}: update indexes round-trip byte for byte`, () => {
    for (const n of readdirSync(relay)) {
      if (parseRelayName(n)?.kind !== "update-index") continue;
      const bytes = readFileSync(relay + n);
      const idx = decodeUpdateIndex(new Uint8Array(bytes), n);
      assert.ok(idx.entries.length > 0);
      assert.deepEqual(idx.pullers, []);
      for (const e of idx.entries) {
        assert.ok(e.meta);
        assert.equal(e.meta.placeholder, "placeholder%1.0");
        assert.equal(e.meta.pusher, "alice");
        assert.deepEqual(e.meta.extra, []);
        assert.equal(e.meta.layout, undefined);
      }
      assert.equal(encodeUpdateIndex(idx), bytes.toString("utf8"), n);
    }
  });

  Deno.test(`fixtures ${c.name}: persistent indexes round-trip byte for byte, checksums match the tree`, () => {
    const seen: IndexEntry[] = [];
    for (const n of readdirSync(relay)) {
      const r = parseRelayName(n);
      if (r?.kind !== "index") continue;
      const text = execFileSync("bzip2", ["-dc", relay + n], { encoding: "utf8" });
      const entries = decodePersistentIndex(text, n);
      assert.equal(encodePersistentIndex(entries), text, n);
      for (const e of entries) assert.equal(pageOf(e.path, c.levels), r.page, e.path);
      // The update of the page (never consumed here) lists the same entries.
      const upd = readdirSync(relay).find((u) => {
        const x = parseRelayName(u);
        return x?.kind === "update-index" && x.page === r.page;
      });
      assert.ok(upd);
      assert.deepEqual(decodeUpdateIndex(readFileSync(relay + upd, "utf8"), upd).entries, entries);
      seen.push(...entries);
    }
    assert.deepEqual(seen.map((e) => e.path).sort(), treeFiles(tree));
    for (const e of seen) {
      const digest = createHash("sha512").update(readFileSync(tree + e.path)).digest("hex");
      assert.equal(e.meta?.checksum, digest, e.path);
    }
  });
}

Deno.test("fixtures case1: decoded values are the ones Escale wrote", () => {
  const text = execFileSync("bzip2", ["-dc", `${FIXTURES}case1/relay/.0.index`], {
    encoding: "utf8",
  });
  const entries = decodePersistentIndex(text, ".0.index");
  assert.deepEqual(entries.map((e) => [e.path, e.meta?.timestamp]), [
    ["hello.txt", 1577934245],
    ["sub/file with space.txt", 1795372302],
    ["sub/deep/blob.bin", 1795372302],
  ]);
});
