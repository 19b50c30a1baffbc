/**
 * Queue as lines (list, dequeue, enqueue, remove), replication (dry run, target
 * nodes, replicate jobs run by the store worker), node retire and node lost, over
 * folder nodes.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { makeTestCluster } from "../../tests/helpers/cluster_fixture.ts";
import { filesUnder } from "../../tests/helpers/trees.ts";
import {
  dequeueAll,
  enqueueLines,
  listQueue,
  loseNode,
  queueLines,
  removeJobs,
  retireNode,
} from "./admin.ts";
import { readFileLink } from "./links.ts";
import { replicateCluster } from "./replicate.ts";
import { storeOnce } from "./store.ts";

const body = new TextEncoder().encode("some bytes\n");

Deno.test("queue as lines: enqueue, list, dequeue | filter | enqueue, remove by id", async () => {
  const t = await makeTestCluster(1);
  try {
    const text = "delete .deleted/a#\n# a comment\n\nreplicate d/x%20y# 3 9\nupload u# 1000 3 9\n";
    assert.equal(await enqueueLines(t.root, text), 3);
    assert.deepEqual(await queueLines(t.root), [
      "delete .deleted/a#",
      "replicate d/x%20y# 3 9",
      "upload u# 1000 3 9",
    ]);
    await assert.rejects(
      enqueueLines(t.root, "delete ok#\nfrobnicate x\n", "jobs.txt"),
      /jobs\.txt.*2|line 2/,
    );
    assert.equal((await queueLines(t.root)).length, 3, "a bad line queues nothing");
    const out = await dequeueAll(t.root);
    assert.equal(out.length, 3);
    assert.deepEqual(await queueLines(t.root), []);
    await enqueueLines(t.root, out.filter((l) => !l.startsWith("upload")).join("\n"));
    const entries = await listQueue(t.root);
    assert.deepEqual(entries.map((e) => e.job.type), ["delete", "replicate"]);
    await removeJobs(t.root, [entries[0].id]);
    assert.deepEqual(await queueLines(t.root), ["replicate d/x%20y# 3 9"]);
    await assert.rejects(removeJobs(t.root, [entries[0].id]), /not queued/);
  } finally {
    await t.close();
  }
});

Deno.test("replicate: dry run, --to, and replicate jobs run by the store worker", async () => {
  const t = await makeTestCluster(3);
  try {
    const a = await t.addFile("a.txt", body, [0]);
    const b = await t.addFile("b.txt", body, [1]);
    const dry = await replicateCluster(t.adm.ctx, { dryRun: true });
    assert.equal(dry.copied, 2);
    assert.equal((await readFileLink(a.file))!.copies.length, 1, "a dry run copies nothing");
    const r = await replicateCluster(t.adm.ctx, { to: [t.keys[2]] });
    assert.deepEqual(
      r,
      { files: 2, copied: 2, direct: 0, short: 0 },
      "folder nodes: through this process",
    );
    for (const f of [a, b]) {
      const link = (await readFileLink(f.file))!;
      assert.deepEqual(
        link.copies.map((c) => c.node).sort(),
        [f.link.copies[0].node, t.keys[2]].sort(),
      );
      assert.equal(await fsp.readFile(t.nodeFile(2, link.copies[0].path), "utf8"), "some bytes\n");
    }
    // A replicate job (e.g. queued by audit --repair) is run by the store worker.
    const c = await t.addFile("c.txt", body, [0]);
    await t.adm.queue.enqueue({
      type: "replicate",
      link: "c.txt#",
      size: body.length,
      mtime: c.link.mtime,
      nodes: [],
    });
    const stats = await storeOnce(t.adm.ctx, t.adm.queue);
    assert.equal(stats.replicated, 1);
    assert.equal((await readFileLink(c.file))!.copies.length, 2);
    assert.deepEqual(await queueLines(t.root), []);
  } finally {
    await t.close();
  }
});

Deno.test("node retire: copies moved elsewhere, entries dropped, data deleted", async () => {
  const t = await makeTestCluster(3);
  try {
    const files = [
      await t.addFile("a.txt", body, [0, 2]),
      await t.addFile("b.txt", body, [2]),
      await t.addFile("c.txt", body, [0, 1]),
    ];
    const r = await retireNode(t.adm.ctx, t.keys[2]);
    assert.equal(r.files, 2);
    assert.equal(r.removed, 2);
    assert.deepEqual(r.kept, []);
    assert.deepEqual(await filesUnder(t.dirs[2]), []);
    for (const f of files) {
      const link = (await readFileLink(f.file))!;
      assert.equal(link.copies.length, 2, f.file);
      assert.ok(link.copies.every((c) => c.node !== t.keys[2]));
      for (const c of link.copies) {
        assert.equal(
          await fsp.readFile(t.nodeFile(t.keys.indexOf(c.node), c.path), "utf8"),
          "some bytes\n",
        );
      }
    }
  } finally {
    await t.close();
  }
});

Deno.test("node lost: entries dropped, re-replicated from other copies, sole copies listed", async () => {
  const t = await makeTestCluster(3);
  try {
    const a = await t.addFile("a.txt", body, [0, 2]);
    const b = await t.addFile("b.txt", body, [2]);
    await fsp.rm(t.dirs[2], { recursive: true });
    const r = await loseNode(t.adm.ctx, t.keys[2]);
    assert.equal(r.files, 2);
    assert.deepEqual(r.lost, ["b.txt#"]);
    assert.equal(r.rereplicated, 1);
    assert.equal(await readFileLink(b.file), null);
    const link = (await readFileLink(a.file))!;
    assert.deepEqual(link.copies.map((c) => c.node).sort(), [t.keys[0], t.keys[1]].sort());
  } finally {
    await t.close();
  }
});

Deno.test("node lost --dry-run changes nothing; admin commands log to .log/cluster.log", async () => {
  const t = await makeTestCluster(3);
  try {
    const a = await t.addFile("a.txt", body, [0, 2]);
    const b = await t.addFile("b.txt", body, [2]);
    const r = await loseNode(t.adm.ctx, t.keys[2], { dryRun: true });
    assert.deepEqual(r.lost, ["b.txt#"]);
    assert.equal(r.files, 2);
    assert.deepEqual((await readFileLink(a.file))!.copies, a.link.copies);
    assert.deepEqual((await readFileLink(b.file))!.copies, b.link.copies);
    const c = await t.addFile("c.txt", body, [0]);
    await replicateCluster(t.adm.ctx, { to: [t.keys[1]] });
    assert.equal((await readFileLink(c.file))!.copies.length, 2);
    await t.reopen(); // closes the log
    const log = await fsp.readFile(`${t.root}/.log/cluster.log`, "utf8");
    assert.match(log, /replicated c\.txt# to file:\/\//);
  } finally {
    await t.close();
  }
});
