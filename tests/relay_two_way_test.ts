/**
 * Folders kept in sync through a folder relay: add, modify, delete, conflicts, modes, paging, quota, encryption.
 *
 * @module
 */
import assert from "node:assert/strict";
import { makeDirs, withTempDir } from "./helpers/temp.ts";
import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { closePool, decompressBytes } from "../src/archive/bzip2.ts";
import { decodePersistentIndex, decodeUpdateIndex } from "../src/codec/escale_index.ts";
import type { FolderConfig } from "../src/relay/config.ts";
import { openSync } from "../src/relay/sync.ts";
import { folderCfg, recorder, snapshot, syncOnce } from "./relay_helpers.ts";

async function put(root: string, path: string, content: string, mtime?: number) {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
  if (mtime !== undefined) await utimes(join(root, path), mtime, mtime);
}

/** One pass in process (not a first pass unless told). */
const pass = (cfg: FolderConfig, first = false) => syncOnce(cfg, first);

Deno.test("two folders stay in sync through a folder relay: add, modify, delete, conflict", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const A = folderCfg(a, relay, "alice");
    const B = folderCfg(b, relay, "bob");
    await pass(B, true); // bob registers first, so alice's update waits for him
    await put(a, "a.txt", "one", 1_600_000_000);
    await put(a, "sub/b with space.txt", "two");
    await put(a, "sub/deep/c.bin", "x".repeat(100_000));
    const p1 = await pass(A, true);
    assert.equal(p1.pushed, 3);

    // the relay has Escale's shapes
    const names = (await readdir(relay)).sort();
    const data = names.find((n) => /^\.0\.\d+\.data$/.test(n))!;
    const uidx = names.find((n) => /^\.0\.\d+\.index$/.test(n))!;
    assert.ok(names.includes(".0.index"), names.join(","));
    assert.ok(!names.some((n) => n.endsWith(".lock")));
    const pidx = decodePersistentIndex(
      decompressBytes(await readFile(join(relay, ".0.index"))),
      ".0.index",
    );
    assert.deepEqual(pidx.map((e) => e.path).sort(), [
      "a.txt",
      "sub/b with space.txt",
      "sub/deep/c.bin",
    ]);
    const u = decodeUpdateIndex(await readFile(join(relay, uidx)), uidx);
    assert.equal(u.entries.length, 3);
    assert.equal(u.entries.find((e) => e.path === "a.txt")!.meta!.timestamp, 1_600_000_000);
    assert.equal(u.entries[0].meta!.pusher, "alice");
    assert.equal(u.entries[0].meta!.checksum.length, 128);
    const listing = execFileSync("tar", ["-tjf", join(relay, data)], { encoding: "utf8" });
    assert.deepEqual(listing.trim().split("\n").sort(), [
      "a.txt",
      "sub/",
      "sub/b with space.txt",
      "sub/deep/",
      "sub/deep/c.bin",
    ]);
    const py = execFileSync("/usr/bin/python3", [
      "-c",
      "import sys,tarfile\nt=tarfile.open(sys.argv[1],'r:bz2')\nfor m in t.getmembers(): print(m.name, m.size, int(m.mtime), m.isdir())",
      join(relay, data),
    ], { encoding: "utf8" });
    assert.match(py, /^a\.txt 3 1600000000 False$/m);
    assert.match(py, /^sub\/deep\/c\.bin 100000 \d+ False$/m);

    // bob pulls: same tree, the update is consumed by everyone expected and removed
    const p2 = await pass(B);
    assert.equal(p2.pulled, 3);
    assert.deepEqual(await snapshot(b), await snapshot(a));
    assert.ok(!(await readdir(relay)).some((n) => n.endsWith(".data")));

    // bob modifies and adds; alice gets both
    await put(b, "a.txt", "one, edited by bob");
    await put(b, "new.txt", "new");
    assert.equal((await pass(B)).pushed, 2);
    assert.equal((await pass(A)).pulled, 2);
    assert.deepEqual(await snapshot(a), await snapshot(b));

    // alice deletes; bob's copy goes too, and the relay index forgets it
    await rm(join(a, "sub/b with space.txt"));
    assert.equal((await pass(A)).deletionsPushed, 1);
    assert.equal((await pass(B)).deletedLocally, 1);
    assert.deepEqual(await snapshot(a), await snapshot(b));
    assert.ok(!("sub/b with space.txt" in (await snapshot(b))));
    const pidx2 = decodePersistentIndex(
      decompressBytes(await readFile(join(relay, ".0.index"))),
      ".0.index",
    );
    assert.ok(!pidx2.some((e) => e.path === "sub/b with space.txt"));

    // both change a.txt: nothing lost; alice's reached the relay first and keeps the name,
    // bob's becomes his conflict copy (named after him and its mtime), which reaches alice
    await put(a, "a.txt", "alice's version");
    await put(b, "a.txt", "bob's version", 1_700_000_000);
    await pass(A);
    const pb = await pass(B);
    assert.deepEqual(pb.conflicts, ["a.conflict-bob-20231114-221320.txt"]);
    assert.match(
      pb.warns.join("\n"),
      /conflict on a\.txt: .*alice's version reached the relay first/,
    );
    assert.equal(await readFile(join(b, "a.txt"), "utf8"), "alice's version");
    assert.equal(await readFile(join(b, pb.conflicts[0]), "utf8"), "bob's version");
    await pass(A);
    const sa = await snapshot(a);
    assert.deepEqual(sa, await snapshot(b));
    assert.equal(await readFile(join(a, "a.txt"), "utf8"), "alice's version");
    assert.equal(await readFile(join(a, pb.conflicts[0]), "utf8"), "bob's version");
    // a pass with nothing new does nothing
    const quiet = await pass(A);
    assert.equal(quiet.pushed + quiet.pulled + quiet.errors, 0);
  });
});

Deno.test("a client that missed an update asks for it; a client that has it sends it", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    await mkdir(relay);
    const [A, B, C] = ["ann", "ben", "cat"].map((n) => folderCfg(join(dir, n), relay, n));
    for (const c of [A, B, C]) {
      await mkdir(c.localPath);
      await pass(c, true);
    }
    await put(A.localPath, "doc.txt", "version one", 1_600_000_000);
    await pass(A);
    await pass(B);
    await pass(C);
    assert.equal(await readFile(join(C.localPath, "doc.txt"), "utf8"), "version one");
    // B's edit is pushed; the update goes before C takes it (as an Escale client removes
    // every update it reads): C lacks the version the index names
    await put(B.localPath, "doc.txt", "version two", 1_600_000_100);
    assert.equal((await pass(B)).pushed, 1);
    for (const n of await readdir(relay)) {
      if (/^\.0\.\d+\.(index|data)$/.test(n)) await rm(join(relay, n));
    }
    await pass(C); // asks; its file is left as it was, not pushed back over B's
    const asked = JSON.parse(await readFile(join(relay, ".hop-requests-0"), "utf8"));
    assert.deepEqual(asked.requests["doc.txt"].by, ["cat"]);
    assert.equal(await readFile(join(C.localPath, "doc.txt"), "utf8"), "version one");
    await pass(A); // A did not get it either: asks too
    await pass(B); // B has it: sends it, out of an Escale client's sight
    assert.ok((await readdir(relay)).some((n) => /^\.hop-send-0-\d+\.data$/.test(n)));
    await pass(C);
    await pass(A);
    for (const c of [A, C]) {
      assert.equal(await readFile(join(c.localPath, "doc.txt"), "utf8"), "version two");
      assert.equal((await stat(join(c.localPath, "doc.txt"))).mtimeMs, 1_600_000_100_000);
    }
    // once everyone has it: no request, no send left
    await pass(C);
    await pass(A);
    const left = (await readdir(relay)).filter((n) => /^\.hop-(send|requests)-/.test(n));
    assert.deepEqual(left, []);
  });
});

Deno.test("three clients in shared mode converge", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    await mkdir(relay);
    const cfgs = ["ann", "ben", "cat"].map((n) => folderCfg(join(dir, n), relay, n));
    for (const c of cfgs) {
      await mkdir(c.localPath);
      await put(c.localPath, `from-${c.clientName}.txt`, `hello from ${c.clientName}`);
      await put(c.localPath, `shared/${c.clientName}/x.txt`, c.clientName.repeat(1000));
    }
    for (const c of cfgs) await pass(c, true);
    for (let round = 0; round < 6; round++) for (const c of cfgs) await pass(c);
    const s0 = await snapshot(cfgs[0].localPath);
    assert.equal(Object.keys(s0).length, 6);
    for (const c of cfgs.slice(1)) assert.deepEqual(await snapshot(c.localPath), s0);
    assert.ok(!(await readdir(relay)).some((n) => n.endsWith(".data") || n.endsWith(".lock")));
  });
});

Deno.test("maxpagesize splits a push over several updates", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    for (let i = 0; i < 5; i++) await put(a, `f${i}.bin`, String(i).repeat(40_000));
    const A = folderCfg(a, relay, "alice", { maxPageSize: 100_000 });
    const B = folderCfg(b, relay, "bob", { mode: "download" });
    await pass(B, true);
    const first = await pass(A, true);
    assert.equal(first.pushed, 3);
    assert.equal(first.waiting, 2);
    for (let i = 0; i < 3; i++) {
      await pass(B);
      await pass(A);
    }
    assert.deepEqual(await snapshot(b), await snapshot(a));
  });
});

Deno.test("modes: upload never pulls, download never pushes", async () => {
  await withTempDir(async (dir) => {
    const [relay, up, down] = await makeDirs(dir, ["relay", "up", "down"]);
    await put(up, "u.txt", "up");
    await put(down, "d.txt", "down");
    const U = folderCfg(up, relay, "up", { mode: "upload" });
    const D = folderCfg(down, relay, "down", { mode: "download" });
    await pass(D, true);
    await pass(U, true);
    await pass(D);
    await pass(U);
    assert.deepEqual(Object.keys(await snapshot(up)), ["u.txt"]);
    assert.deepEqual(Object.keys(await snapshot(down)).sort(), ["d.txt", "u.txt"]);
    assert.ok(!(await readdir(relay)).some((n) => n.startsWith(".hop-client-up")));
  });
});

globalThis.addEventListener("unload", () => closePool());

Deno.test("disk quota: a pusher waits instead of overfilling the relay", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));
    await writeFile(join(a, "f1.bin"), rnd(30_000));
    await writeFile(join(a, "f2.bin"), rnd(30_000));
    const A = folderCfg(a, relay, "alice", { diskQuota: 45_000 });
    const B = folderCfg(b, relay, "bob", { mode: "download" });
    await pass(B, true);
    const p1 = await pass(A, true);
    assert.equal(p1.pushed, 1);
    assert.equal(p1.waiting, 1);
    const used = async () => {
      let n = 0;
      for (const f of await readdir(relay)) n += (await stat(join(relay, f))).size;
      return n;
    };
    assert.ok((await used()) <= 45_000);
    await pass(B);
    const p2 = await pass(A);
    assert.equal(p2.pushed, 1);
    assert.ok((await used()) <= 45_000);
    await pass(B);
    assert.deepEqual(await snapshot(b), await snapshot(a));
  });
});

Deno.test("an encrypted relay: two clients sync, the relay shows no names, a wrong passphrase changes nothing", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b, c] = await makeDirs(dir, ["relay", "a", "b", "c"]);
    const A = folderCfg(a, relay, "alice", { passphrase: "open sesame" });
    const B = folderCfg(b, relay, "bob", { passphrase: "open sesame" });
    await pass(B, true);
    await put(a, "secret-plans/world domination.txt", "step 1: ".repeat(20_000));
    assert.equal((await pass(A, true)).pushed, 1);
    for (const f of await readdir(relay)) {
      if (f.endsWith(".excl")) continue; // claim folders of exclusive creates
      const raw = await readFile(join(relay, f));
      assert.ok(!raw.includes("domination"), f);
      assert.ok(!raw.includes("step 1"), f);
    }
    await rm(join(b, ".hop"), { recursive: true }); // bob starts over: state is rebuilt
    const wrong = folderCfg(b, relay, "bob", { passphrase: "guess" });
    await assert.rejects(() => openSync(wrong, recorder()), /wrong passphrase/);
    await assert.rejects(() => openSync(folderCfg(c, relay, "carol"), recorder()), /is encrypted/);
    assert.deepEqual(await snapshot(b), {});
    assert.deepEqual(await readdir(c), []);
    assert.equal((await pass(B)).pulled, 1);
    assert.deepEqual(await snapshot(b), await snapshot(a));
    await put(b, "reply.txt", "no");
    await pass(B);
    await pass(A);
    assert.deepEqual(await snapshot(a), await snapshot(b));
  });
});

Deno.test("topdir paging: one page per top folder, colliding names reported, still in sync", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    await put(a, "top.txt", "0");
    await put(a, "docs/x.md", "x");
    await put(a, "a.b/one.txt", "1");
    await put(a, "a_b/two.txt", "2");
    const A = folderCfg(a, relay, "alice", { pageDepth: 1 });
    const B = folderCfg(b, relay, "bob", { pageDepth: 1 });
    await pass(B, true);
    const pa = await pass(A, true);
    assert.equal(pa.pushed, 4);
    assert.equal(
      pa.warns.filter((w) => /a\.b\/, a_b\/ share page a_b/.test(w)).length,
      1,
      pa.warns.join("\n"),
    );
    const idx = (await readdir(relay)).filter((n) => /^\.[^.]+\.index$/.test(n)).sort();
    assert.deepEqual(idx, [".0.index", ".a_b.index", ".docs.index"]);
    await pass(B);
    assert.deepEqual(await snapshot(b), await snapshot(a));
  });
});

Deno.test("conservative mode never overwrites or deletes an existing local file", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, c] = await makeDirs(dir, ["relay", "a", "c"]);
    const A = folderCfg(a, relay, "alice");
    const C = folderCfg(c, relay, "carl", { mode: "conservative" });
    await pass(C, true);
    await put(a, "doc.txt", "v1");
    await put(a, "old.txt", "old");
    await pass(A, true);
    await pass(C);
    assert.deepEqual(await snapshot(c), await snapshot(a));
    await put(a, "doc.txt", "v2");
    await rm(join(a, "old.txt"));
    await pass(A);
    const r = await pass(C);
    assert.equal(r.deletedLocally, 0);
    assert.equal(r.conflicts.length, 1);
    assert.equal(await readFile(join(c, "doc.txt"), "utf8"), "v1");
    assert.equal(await readFile(join(c, r.conflicts[0]), "utf8"), "v2");
    assert.equal(await readFile(join(c, "old.txt"), "utf8"), "old");
  });
});
