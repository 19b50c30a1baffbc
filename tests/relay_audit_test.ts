/**
 * `hop audit` on relays: a page with two updates and a garbled `.P.index`
 * are found and repaired (the index rebuilt from the auditing client's
 * folder, under the page lock); lost halves of updates, bad archives, lock
 * holders, quiet clients and unknown files are reported; an audit without
 * `repair` changes nothing; a repaired relay syncs and converges.
 *
 * @module
 */
import assert from "node:assert/strict";
import { makeDirs, withTempDir } from "./helpers/temp.ts";
import { createHash } from "node:crypto";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { writeArchive } from "../src/archive/tar.ts";
import { encodeUpdateIndex, PLACEHOLDER } from "../src/codec/escale_index.ts";
import { encodeLock } from "../src/codec/lock.ts";
import { auditRelay } from "../src/relay/audit.ts";
import { openBackend } from "../src/relay/backend/mod.ts";
import { clientFileName } from "../src/relay/hopfiles.ts";
import { readPersistentIndex } from "../src/relay/pages.ts";
import { folderState } from "./helpers/trees.ts";
import type { FolderConfig } from "../src/relay/config.ts";
import { folderCfg, recorder, snapshot, syncOnce } from "./relay_helpers.ts";

/** One pass in process (a first pass unless told). */
const run = (cfg: FolderConfig, first = true) => syncOnce(cfg, first);

const sha512 = (s: string) => createHash("sha512").update(s).digest("hex");

/** Writes an Escale-style update (no `base:` lines) of `files` by `pusher`. */
async function escaleUpdate(
  relay: string,
  page: string,
  time: number,
  pusher: string,
  files: Record<string, string>,
  scratch: string,
) {
  await mkdir(scratch, { recursive: true });
  for (const [p, c] of Object.entries(files)) await writeFile(join(scratch, p), c);
  await writeFile(
    join(relay, `.${page}.${time}.data`),
    new Uint8Array(
      await new Response(writeArchive({ root: scratch, files: Object.keys(files) })).arrayBuffer(),
    ),
  );
  await writeFile(
    join(relay, `.${page}.${time}.index`),
    encodeUpdateIndex({
      entries: Object.entries(files).map(([path, c]) => ({
        path,
        meta: {
          placeholder: PLACEHOLDER,
          pusher,
          timestamp: 1_700_000_000,
          checksum: sha512(c),
          extra: [],
        },
      })),
      pullers: [],
    }),
  );
}

globalThis.addEventListener("unload", () => closePool());

Deno.test("a page with two updates is found, repaired, and the clients then converge", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const A = folderCfg(a, relay, "alice");
    const B = folderCfg(b, relay, "bob");
    await run(B);
    await writeFile(join(b, "bobs.txt"), "bob's own");
    await writeFile(join(a, "one.txt"), "from alice");
    assert.equal((await run(A)).pushed, 1); // waits for bob
    // an Escale client racing the non-atomic lock adds a second update
    await escaleUpdate(relay, "0", 1_900_000_000, "eve", { "eve.txt": "from eve" }, join(dir, "e"));
    // and a lock of a client, for the report
    await writeFile(
      join(relay, ".z.lock"),
      encodeLock({ owner: "zoe", mode: "r", acquired: Date.now() - 5000 }),
    );
    await writeFile(join(relay, "README.txt"), "not a relay file");

    const state = await folderState(relay);
    const found = await auditRelay({ local: b, relay, clientName: "bob", reporter: recorder() });
    assert.deepEqual(await folderState(relay), state, "an audit without repair changes nothing");
    const two = found.find((f) => f.kind === "two-updates");
    assert.ok(two, JSON.stringify(found, null, 1));
    assert.equal(two.page, "0");
    assert.equal(two.severity, "error");
    const lock = found.find((f) => f.kind === "lock");
    assert.equal(lock?.owner, "zoe");
    assert.ok(lock!.ageSeconds! >= 4 && lock!.ageSeconds! < 60, String(lock?.ageSeconds));
    assert.ok(found.some((f) => f.kind === "unknown-file" && f.name === "README.txt"));
    assert.ok(found.some((f) => f.kind === "local-unindexed" && f.paths?.includes("bobs.txt")));

    const rep = recorder();
    const fixed = await auditRelay({
      local: b,
      relay,
      clientName: "bob",
      repair: true,
      reporter: rep,
    });
    assert.equal(fixed.find((f) => f.kind === "two-updates")?.repaired, true, rep.warns.join("\n"));
    const names = await readdir(relay);
    const updates = names.filter((n) => /^\.0\.\d+\.(data|index)$/.test(n)).sort();
    assert.equal(updates.length, 2, names.join(" "));
    assert.ok(!updates.some((n) => n.includes("1900000000")), "the newer update was removed");
    assert.ok(!names.includes(".0.lock"), "the page lock was released");
    // the index is rebuilt from bob's folder plus the kept update (alice's one.txt)
    const idx = await readPersistentIndex(await openBackend(relay), "0");
    assert.deepEqual(idx.map((e) => e.path).sort(), ["bobs.txt", "one.txt"]);
    assert.equal(idx.find((e) => e.path === "bobs.txt")?.meta?.pusher, "bob");

    const again = await auditRelay({ local: b, relay, clientName: "bob", reporter: recorder() });
    assert.deepEqual(again.filter((f) => f.severity === "error"), []);
    // sync converges: bob pulls alice's update, then pushes his file
    for (let i = 0; i < 3; i++) {
      const rb = await run(B, false);
      assert.equal(rb.errors, 0, rb.rep.warns.join("\n"));
      const ra = await run(A, false);
      assert.equal(ra.errors, 0, ra.rep.warns.join("\n"));
    }
    assert.deepEqual(await snapshot(a), await snapshot(b));
    assert.deepEqual(Object.keys(await snapshot(a)).sort(), ["bobs.txt", "one.txt"]);
  });
});

Deno.test("a garbled .P.index is found and rebuilt from the client's folder", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const A = folderCfg(a, relay, "alice");
    const B = folderCfg(b, relay, "bob");
    await run(B);
    await mkdir(join(a, "sub"));
    await writeFile(join(a, "x.txt"), "x");
    await writeFile(join(a, "sub", "y.txt"), "y");
    await run(A);
    await run(B, false);
    assert.deepEqual(await snapshot(b), await snapshot(a));
    for (const garbage of ["BZh91AY&SYgarbage", ""]) {
      await writeFile(join(relay, ".0.index"), garbage);
      const sync = await run(B, false);
      assert.ok(sync.errors > 0, "sync reports the garbled index");
      const found = await auditRelay({ local: b, relay, clientName: "bob", reporter: recorder() });
      const bad = found.find((f) => f.kind === "unreadable" && f.name === ".0.index");
      assert.ok(bad, JSON.stringify(found));
      assert.equal(bad.severity, "error");
      const fixed = await auditRelay({
        local: b,
        relay,
        clientName: "bob",
        repair: true,
        reporter: recorder(),
      });
      assert.equal(fixed.find((f) => f.name === ".0.index")?.repaired, true);
      const idx = await readPersistentIndex(await openBackend(relay), "0");
      assert.deepEqual(
        idx.map((e) => [e.path, e.meta?.checksum]).sort(),
        [["sub/y.txt", sha512("y")], ["x.txt", sha512("x")]],
      );
      assert.deepEqual(
        (await auditRelay({ local: b, relay, clientName: "bob", reporter: recorder() }))
          .filter((f) => f.severity !== "info"),
        [],
      );
      for (const C of [A, B]) {
        const r = await run(C, false);
        assert.equal(r.errors, 0, r.rep.warns.join("\n"));
        assert.equal(r.pushed + r.pulled, 0, "nothing to move: the index agrees with both");
      }
    }
  });
});

Deno.test("lost halves, bad archives and quiet clients are reported; repair removes the updates", async () => {
  await withTempDir(async (dir) => {
    const [relay, b] = await makeDirs(dir, ["relay", "b"]);
    await run(folderCfg(b, relay, "bob"));
    await writeFile(join(relay, ".h.1700000000.index"), "x 0\n"); // an index without archive
    await escaleUpdate(relay, "g", 1_700_000_000, "eve", { "g.txt": "g" }, join(dir, "e1"));
    await writeFile(join(relay, ".g.1700000000.data"), "BZh9 not an archive");
    await escaleUpdate(relay, "m", 1_700_000_000, "eve", { "m1.txt": "1" }, join(dir, "e2"));
    await writeFile( // the update names a file its archive lacks
      join(relay, ".m.1700000000.index"),
      encodeUpdateIndex({
        entries: ["m1.txt", "m2.txt"].map((p) => ({
          path: p,
          meta: { placeholder: PLACEHOLDER, pusher: "eve", timestamp: 1, checksum: "0", extra: [] },
        })),
        pullers: [],
      }),
    );
    const nowS = Math.floor(Date.now() / 1000);
    await writeFile(
      join(relay, clientFileName("old")),
      JSON.stringify({
        name: "old",
        mode: "shared",
        host: "h",
        registered: 0,
        seen: nowS - 40 * 86400,
      }),
    );
    await writeFile(join(relay, clientFileName("bad")), "{not json");
    const found = await auditRelay({ local: b, relay, clientName: "bob", reporter: recorder() });
    const pick = (k: string, page?: string) =>
      found.find((f) => f.kind === k && (page === undefined || f.page === page));
    assert.equal(pick("update-lost", "h")?.name, ".h.1700000000.index");
    assert.equal(pick("unreadable", "g")?.name, ".g.1700000000.data");
    assert.deepEqual(pick("update-lost", "m")?.paths, ["m2.txt"]);
    assert.equal(pick("client")?.severity, "warning");
    assert.equal(pick("client")?.name, "old");
    assert.ok(found.some((f) => f.kind === "unreadable" && f.name === clientFileName("bad")));
    const fixed = await auditRelay({
      local: b,
      relay,
      clientName: "bob",
      repair: true,
      reporter: recorder(),
    });
    for (const p of ["h", "g", "m"]) {
      assert.ok(
        fixed.filter((f) => f.page === p && f.severity !== "info").every((f) =>
          f.repaired === true
        ),
        p,
      );
    }
    const names = await readdir(relay);
    assert.ok(!names.some((n) => /^\.[hgm]\.\d+\./.test(n)), names.join(" "));
    assert.deepEqual(await snapshot(b), {}, "nothing local was written");
  });
});
