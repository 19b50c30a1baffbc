/**
 * Audit classes and the two-step repair over folder nodes: each kind of damage is
 * found, repaired, and a second repair changes nothing. Also the external sort.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { makeTestCluster } from "../../tests/helpers/cluster_fixture.ts";
import { filesUnder } from "../../tests/helpers/trees.ts";
import {
  applyRepairReport,
  auditCluster,
  type AuditRecord,
  decodeRepairReport,
  encodeRepairAction,
  type RepairAction,
  writeRepairReport,
} from "./audit.ts";
import { readFileLink, stagedId, withStaged, writeInfo } from "./links.ts";
import { nodeTempPath } from "./nodes.ts";
import { storeOnce } from "./store.ts";
import * as queue from "./queue.ts";
import { createLineSorter } from "./scan.ts";

Deno.test("line sorter: several runs merged in order", async () => {
  const tmp = await fsp.mkdtemp("/tmp/hop-sort-");
  try {
    const s = createLineSorter(tmp, 7);
    const lines = Array.from({ length: 100 }, (_, i) => `k${(i * 37) % 101}\tv${i}`);
    for (const l of lines) await s.add(l);
    const got: string[] = [];
    for await (const l of s.sorted()) got.push(l);
    assert.deepEqual(got, [...lines].sort());
    assert.deepEqual(await fsp.readdir(tmp), [], "runs removed");
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});

Deno.test("repair report lines round-trip, bad lines name their line", () => {
  const acts: RepairAction[] = [
    { action: "drop", link: "a b/x#", node: "127.0.0.1:21", path: "ab/cd/x" },
    { action: "unlink", link: "x#" },
    { action: "adopt", node: "file:///n", path: "ab/cd/260101-000000-y", size: 3, mtime: 9 },
    { action: "replicate", link: "x#" },
    { action: "requeue", link: "x#" },
    { action: "delete", node: "file:///n", path: "p", size: 0 },
  ];
  const text = "# comment\n\n" + acts.map((a) => encodeRepairAction(a) + "\t# why\n").join("");
  assert.deepEqual(decodeRepairReport(text, "r.txt"), acts);
  assert.throws(() => decodeRepairReport("drop x\n", "r.txt"), /r\.txt.*1|line 1/);
  assert.throws(() => decodeRepairReport("\nexplode x\n", "r.txt"), /unknown action/);
});

Deno.test("audit finds each kind of damage; repair fixes it; a second repair changes nothing", async () => {
  const t = await makeTestCluster(3);
  try {
    const body = new TextEncoder().encode("hello\n");
    const ok = await t.addFile("d/ok.txt", body, [0, 1]);
    const miss = await t.addFile("d/miss.txt", body, [0, 1]);
    const gone = await t.addFile("gone.txt", body, [2]);
    const bad = await t.addFile("bad.txt", body, [1, 2]);
    const under = await t.addFile("under.txt", body, [0]);
    // Damage: a copy deleted behind the cluster's back, the only copy of another,
    // a copy with the wrong size, an orphan, a foreign node file, a foreign tree file.
    await fsp.rm(t.nodeFile(1, miss.link.copies[1].path));
    await fsp.rm(t.nodeFile(2, gone.link.copies[0].path));
    await fsp.writeFile(t.nodeFile(2, bad.link.copies[1].path), "bad");
    const orphanPath = "aa/bb/250101-120000-orphan.bin";
    await fsp.mkdir(path.dirname(t.nodeFile(0, orphanPath)), { recursive: true });
    await fsp.writeFile(t.nodeFile(0, orphanPath), "orphan data");
    await fsp.writeFile(t.nodeFile(1, "notes.txt"), "not ours");
    await fsp.writeFile(path.join(t.root, "plain.txt"), "foreign");
    const found: AuditRecord[] = [];
    const sum = await auditCluster(t.adm.ctx, {
      orphanMinAgeMs: 0,
      chunkLines: 3, // force several sorted runs
      onRecord: (r) => void found.push(r),
    });
    const kinds = (k: string) => found.filter((r) => r.kind === k);
    assert.equal(sum.links, 5);
    assert.equal(sum.counts.ok, 5, "ok copies: ok x2, miss x1, bad x1, under x1");
    assert.deepEqual(kinds("missing").map((r) => r.link).sort(), ["d/miss.txt#", "gone.txt#"]);
    assert.deepEqual(kinds("size-mismatch").map((r) => [r.link, r.nodeSize]), [["bad.txt#", 3]]);
    assert.deepEqual(kinds("orphan").map((r) => [r.node, r.path]), [[t.keys[0], orphanPath]]);
    assert.deepEqual(
      kinds("foreign").map((r) => r.path ?? r.link).sort(),
      ["notes.txt", "plain.txt"],
    );
    assert.deepEqual(kinds("lost").map((r) => r.link), ["gone.txt#"]);
    assert.deepEqual(
      kinds("under-replicated").map((r) => r.link).sort(),
      ["bad.txt#", "d/miss.txt#", "under.txt#"],
    );
    // Step 1: the report; step 2: apply it.
    const report = path.join(t.tmp, "repair.txt");
    const w = await writeRepairReport(t.adm.ctx, report, { orphanMinAgeMs: 0 });
    assert.ok(w.actions >= 7);
    const text = await fsp.readFile(report, "utf8");
    assert.match(text, /^# hop audit repair report/);
    const res = await applyRepairReport(t.adm.ctx, text);
    assert.deepEqual(res.failed, []);
    assert.equal(res.dropped, 3);
    assert.equal(res.unlinked, 1);
    assert.equal(res.adopted, 2, "the orphan and the bad copy");
    assert.equal((await readFileLink(miss.file))!.copies.length, 1);
    assert.equal(await readFileLink(gone.file), null, "the link with no copy left is removed");
    assert.deepEqual((await readFileLink(ok.file))!.copies, ok.link.copies, "ok untouched");
    const lf = await filesUnder(t.adm.ctx.layout.lostFound);
    assert.ok(lf.includes("250101-120000-orphan.bin#"), lf.join());
    const adopted =
      (await readFileLink(path.join(t.adm.ctx.layout.lostFound, "250101-120000-orphan.bin#")))!;
    assert.equal(adopted.name, "orphan.bin");
    assert.equal(adopted.size, 11);
    const jobs = (await queue.list(t.adm.ctx.layout.queue)).map((e) => e.job);
    const repl = jobs.filter((j) => j.type === "replicate").map((j) =>
      (j as { link: string }).link
    );
    for (const l of ["d/miss.txt#", "bad.txt#", "under.txt#"]) assert.ok(repl.includes(l), l);
    // Node data untouched without --delete-orphans.
    assert.ok(await fsp.stat(t.nodeFile(0, orphanPath)));
    assert.ok(await fsp.stat(t.nodeFile(1, "notes.txt")));
    // Applying again, and a new report, change nothing.
    const again = await applyRepairReport(t.adm.ctx, text);
    assert.equal(again.dropped + again.unlinked + again.adopted + again.queued, 0);
    const w2 = await writeRepairReport(t.adm.ctx, report, { orphanMinAgeMs: 0 });
    assert.equal(w2.actions, 0, await fsp.readFile(report, "utf8"));
    assert.equal(w2.summary.counts.orphan + w2.summary.counts.missing, 0);
    assert.equal(under.link.copies.length, 1);
  } finally {
    await t.close();
  }
});

Deno.test("audit: a node that cannot be listed concludes nothing; delete lines need --delete-orphans", async () => {
  const t = await makeTestCluster(2);
  try {
    const body = new TextEncoder().encode("x");
    const f = await t.addFile("x.txt", body, [0, 1]);
    const orphanPath = "aa/bb/250101-120000-o.bin";
    await fsp.mkdir(path.dirname(t.nodeFile(0, orphanPath)), { recursive: true });
    await fsp.writeFile(t.nodeFile(0, orphanPath), "o");
    await fsp.rm(t.dirs[1], { recursive: true });
    await fsp.writeFile(t.dirs[1], "not a folder any more");
    const found: AuditRecord[] = [];
    const sum = await auditCluster(t.adm.ctx, {
      orphanMinAgeMs: 0,
      onRecord: (r) => void found.push(r),
    });
    assert.deepEqual(sum.nodesDown, [t.keys[1]]);
    assert.deepEqual(found.filter((r) => r.kind === "unchecked").map((r) => r.link), ["x.txt#"]);
    assert.equal(found.filter((r) => r.kind === "missing").length, 0);
    const report = path.join(t.tmp, "r.txt");
    await writeRepairReport(t.adm.ctx, report, { orphanMinAgeMs: 0, deleteOrphans: true });
    const text = await fsp.readFile(report, "utf8");
    assert.doesNotMatch(text, /^drop /m, "nothing dropped for a node not listed");
    await assert.rejects(applyRepairReport(t.adm.ctx, text), /--delete-orphans/);
    const res = await applyRepairReport(t.adm.ctx, text, { deleteOrphans: true });
    assert.equal(res.deleted, 1);
    await assert.rejects(fsp.stat(t.nodeFile(0, orphanPath)));
    assert.equal((await readFileLink(f.file))!.copies.length, 2);
  } finally {
    await t.close();
  }
});

Deno.test("audit: leftover temp files of failed writes are purged without --delete-orphans, never adopted", async () => {
  const t = await makeTestCluster(1);
  try {
    const old = "aa/bb/" + nodeTempPath("250101-120000-x.bin").split("/").pop();
    const legacy = "aa/bb/250101-120000-y.bin.part-123-456";
    const young = "cc/dd/" + nodeTempPath("250101-120000-z.bin").split("/").pop();
    for (const p of [old, legacy, young]) {
      await fsp.mkdir(path.dirname(t.nodeFile(0, p)), { recursive: true });
      await fsp.writeFile(t.nodeFile(0, p), "partial");
    }
    const then = new Date(Date.now() - 2 * 3600_000);
    await fsp.utimes(t.nodeFile(0, old), then, then);
    await fsp.utimes(t.nodeFile(0, legacy), then, then);
    const found: AuditRecord[] = [];
    await auditCluster(t.adm.ctx, { onRecord: (r) => void found.push(r) });
    assert.deepEqual(found.map((r) => [r.kind, r.path]).sort(), [
      ["leftover", legacy],
      ["leftover", old],
      ["pending", young],
    ]);
    const report = path.join(t.tmp, "r.txt");
    const w = await writeRepairReport(t.adm.ctx, report);
    assert.equal(w.actions, 2);
    const text = await fsp.readFile(report, "utf8");
    assert.doesNotMatch(text, /^adopt/m);
    assert.equal((text.match(/^purge /gm) ?? []).length, 2);
    const res = await applyRepairReport(t.adm.ctx, text);
    assert.equal(res.deleted, 2);
    assert.deepEqual(await filesUnder(t.dirs[0]), [young]);
    // purge touches nothing but temporary files, even in a hand-written report.
    const bad = await applyRepairReport(t.adm.ctx, "purge file:///x aa/bb/250101-120000-q 3\n");
    assert.equal(bad.failed.length, 1);
  } finally {
    await t.close();
  }
});

Deno.test("audit: a staged file whose staged data is gone is lost, and repair does not loop", async () => {
  const t = await makeTestCluster(2);
  try {
    const body = new TextEncoder().encode("staged bytes\n");
    const l = t.adm.ctx.layout;
    // Staged, no copy, staged data gone: lost, whether or not a job is queued.
    const a = await t.addFile("a.txt", body, []);
    await writeInfo(l.tmp, a.file, withStaged(a.link, "0123456789abcdef0123456789abcdef"));
    // Staged with one copy already made, staged data gone: its job records the copy.
    const b = await t.addFile("b.txt", body, [0]);
    await writeInfo(l.tmp, b.file, withStaged(b.link, "abcdef0123456789abcdef0123456789"));
    const run = async () => {
      const found: AuditRecord[] = [];
      await auditCluster(t.adm.ctx, { onRecord: (r) => void found.push(r) });
      return found.map((r) => [r.kind, r.link ?? r.path]).sort();
    };
    assert.deepEqual(await run(), [["lost", "a.txt#"], ["unqueued", "b.txt#"]]);
    const report = path.join(t.tmp, "r.txt");
    await writeRepairReport(t.adm.ctx, report);
    const res = await applyRepairReport(t.adm.ctx, await fsp.readFile(report, "utf8"));
    assert.equal(res.unlinked, 1);
    assert.equal(res.queued, 1);
    assert.equal(await readFileLink(a.file), null);
    await storeOnce(t.adm.ctx, t.adm.queue);
    const fixed = (await readFileLink(b.file))!;
    assert.equal(stagedId(fixed), null, "the link keeps its copy, not the lost staging");
    assert.equal(fixed.copies.length, 2, "and is replicated to the wanted count");
    assert.deepEqual(await run(), []);
    // A second report has nothing to do.
    assert.equal((await writeRepairReport(t.adm.ctx, report)).actions, 0);
  } finally {
    await t.close();
  }
});
