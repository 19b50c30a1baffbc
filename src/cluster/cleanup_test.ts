/**
 * Cleanup over folder nodes: deletions done on every node, still-linked data never
 * deleted, a node down leaves the entry and a job for later, staging leftovers purged
 * by age, dry runs change nothing, a second pass does nothing more.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { makeTestCluster } from "../../tests/helpers/cluster_fixture.ts";
import { filesUnder } from "../../tests/helpers/trees.ts";
import { cleanupCluster } from "./cleanup.ts";
import { moveDurably, stagedId, withStaged, writeInfo } from "./links.ts";
import * as queue from "./queue.ts";

const body = new TextEncoder().encode("data\n");

Deno.test("cleanup: deletes on every node, keeps what is still linked, purges old staging leftovers", async () => {
  const t = await makeTestCluster(2);
  try {
    const l = t.adm.ctx.layout;
    const a = await t.addFile("a.txt", body, [0, 1]);
    const b = await t.addFile("b.txt", body, [0, 1]);
    // a.txt deleted the DELE way; a copy of b.txt is (wrongly) named by a .deleted entry too.
    await moveDurably(a.file, path.join(l.deleted, "1-a.txt#"));
    await writeInfo(l.tmp, path.join(l.deleted, "2-x#"), { ...b.link, name: "x" });
    // Staging: an old leftover, a young one, an old one a staged link uses.
    const old = (Date.now() - 7200_000) / 1000;
    for (const n of ["0123456789abcdef", "fedcba9876543210", "00000000aaaaaaaa"]) {
      await fsp.writeFile(path.join(l.staging, n), "s");
    }
    await fsp.utimes(path.join(l.staging, "0123456789abcdef"), old, old);
    await fsp.utimes(path.join(l.staging, "00000000aaaaaaaa"), old, old);
    const staged = withStaged({ ...b.link, copies: [] }, "00000000aaaaaaaa");
    assert.equal(stagedId(staged), "00000000aaaaaaaa");
    await writeInfo(l.tmp, path.join(l.root, "s.txt#"), staged);

    const dry = await cleanupCluster(t.adm.ctx, t.adm.queue, { dryRun: true });
    assert.equal(dry.pending.length, 2);
    assert.deepEqual(dry.stagingPurged, ["0123456789abcdef"]);
    assert.equal((await filesUnder(t.dirs[0])).length, 2, "a dry run deletes nothing");

    const r = await cleanupCluster(t.adm.ctx, t.adm.queue);
    assert.deepEqual(r.finished.sort(), [".deleted/1-a.txt#", ".deleted/2-x#"]);
    assert.equal(r.stillLinked.length, 2, "b.txt's two copies");
    assert.deepEqual(r.stagingPurged, ["0123456789abcdef"]);
    for (const d of t.dirs) {
      assert.deepEqual(await filesUnder(d), [b.link.copies[0].path], `only b.txt left on ${d}`);
    }
    assert.deepEqual(await fsp.readdir(l.deleted), []);
    assert.deepEqual(
      (await fsp.readdir(l.staging)).sort(),
      ["00000000aaaaaaaa", "fedcba9876543210", "tmp"],
    );
    const again = await cleanupCluster(t.adm.ctx, t.adm.queue);
    assert.equal(again.finished.length + again.pending.length + again.stagingPurged.length, 0);
  } finally {
    await t.close();
  }
});

Deno.test("cleanup: a node down keeps the entry and queues a job; later the deletion completes", async () => {
  const t = await makeTestCluster(2);
  try {
    const l = t.adm.ctx.layout;
    const a = await t.addFile("a.txt", body, [0, 1]);
    await moveDurably(a.file, path.join(l.deleted, "1-a.txt#"));
    // Node 1 "down": its folder is replaced by a file, so deleting there fails.
    const aside = t.dirs[1] + ".aside";
    await fsp.rename(t.dirs[1], aside);
    await fsp.writeFile(t.dirs[1], "down");
    const r = await cleanupCluster(t.adm.ctx, t.adm.queue);
    assert.deepEqual(r.finished, []);
    assert.equal(r.pending.length, 1);
    assert.deepEqual(r.pending[0].copies.map((c) => c.node), [t.keys[1]]);
    assert.equal(r.jobsQueued, 1);
    assert.deepEqual(await filesUnder(t.dirs[0]), [], "node 0's copy is gone already");
    const jobs = (await queue.list(l.queue)).map((e) => e.job);
    assert.deepEqual(jobs, [{ type: "delete", link: ".deleted/1-a.txt#", nodes: [] }]);
    // A second pass while still down queues no second job.
    assert.equal((await cleanupCluster(t.adm.ctx, t.adm.queue)).jobsQueued, 0);
    await fsp.rm(t.dirs[1]);
    await fsp.rename(aside, t.dirs[1]);
    const r2 = await cleanupCluster(t.adm.ctx, t.adm.queue);
    assert.deepEqual(r2.finished, [".deleted/1-a.txt#"]);
    assert.deepEqual(await filesUnder(t.dirs[1]), []);
  } finally {
    await t.close();
  }
});
