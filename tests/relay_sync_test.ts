/**
 * Pulling the relays written by Escale 0.7 (the shared fixtures) and puller registration.
 *
 * @module
 */
import assert from "node:assert/strict";
import { withTempDir } from "./helpers/temp.ts";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { decodeUpdateIndex } from "../src/codec/escale_index.ts";
import { closeSync, openSync, syncPass } from "../src/relay/sync.ts";
import { readPersistentIndex } from "../src/relay/pages.ts";
import { openBackend } from "../src/relay/backend/mod.ts";
import {
  copyFixtureRelay,
  FIXTURES,
  folderCfg,
  mtimeOf,
  recorder,
  snapshot,
} from "./relay_helpers.ts";

for (const [caseName, depth] of [["case1", 0], ["case2", 1]] as const) {
  Deno.test(`pulling the Escale fixture ${caseName} gives its tree, with the index mtimes`, async () => {
    await withTempDir(async (dir) => {
      const relay = join(dir, "relay");
      const local = join(dir, "local");
      await copyFixtureRelay(caseName, relay);
      await mkdir(local);
      const rep = recorder();
      const ctx = await openSync(
        folderCfg(local, relay, "bob", { mode: "download", pageDepth: depth }),
        rep,
      );
      const r = await syncPass(ctx, { first: true });
      await closeSync(ctx);
      assert.deepEqual(rep.warns, []);
      assert.deepEqual(await snapshot(local), await snapshot(join(FIXTURES, caseName, "tree")));
      assert.equal(r.pulled, Object.keys(await snapshot(local)).length);
      // mtimes are the index timestamps
      const io = await openBackend(join(FIXTURES, caseName, "relay"));
      for (const f of await readdir(join(FIXTURES, caseName, "relay"))) {
        const m = /^\.([^.]+)\.index$/.exec(f);
        if (!m) continue;
        for (const e of await readPersistentIndex(io, m[1])) {
          assert.equal(await mtimeOf(join(local, e.path)), e.meta!.timestamp, e.path);
        }
      }
      // the only registered puller consumed every update: they are gone
      const left = await readdir(relay);
      assert.ok(!left.some((n) => n.endsWith(".data")), left.join(","));
      assert.ok(left.some((n) => n.startsWith(".hop-client-bob")));
    });
  });
}

Deno.test("a puller registers in the update index without erasing others (puller count 2)", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    await copyFixtureRelay("case1", relay);
    for (const who of ["bob", "carol"]) {
      const local = join(dir, who);
      await mkdir(local);
      const ctx = await openSync(
        folderCfg(local, relay, who, { mode: "download", pullerCount: 3 }),
        recorder(),
      );
      await syncPass(ctx, { first: true });
      await closeSync(ctx);
    }
    const name = (await readdir(relay)).find((n) => /^\.0\.\d+\.index$/.test(n))!;
    const idx = decodeUpdateIndex(await readFile(join(relay, name)), name);
    assert.deepEqual(idx.pullers, ["bob", "carol"]);
    assert.equal(idx.entries.length, 3);
  });
});

globalThis.addEventListener("unload", () => closePool());
