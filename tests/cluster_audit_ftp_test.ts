/**
 * Audit and repair against real FTP nodes: pyftpdlib (listed with MLSD) and vsftpd
 * (no MLSD: LIST for names, SIZE and MDTM per file). Damage made on purpose: node
 * files deleted behind the cluster's back, node files with no link file, and a store
 * worker killed mid-move (a cluster server SIGKILLed while copying to a slow node,
 * its queue job lost). Every case is found, the reviewed report repairs it, and a
 * second repair changes nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import {
  applyRepairReport,
  auditCluster,
  type AuditRecord,
  writeRepairReport,
} from "../src/cluster/audit.ts";
import { openClusterAdmin } from "../src/cluster/admin.ts";
import { readFileLink, stagedId } from "../src/cluster/links.ts";
import { NODE_TEMP } from "../src/cluster/nodes.ts";
import { storeOnce } from "../src/cluster/store.ts";
import { makeTestCluster } from "./helpers/cluster_fixture.ts";
import { filesUnder } from "./helpers/trees.ts";
import { startPyftpdlib, startVsftpd, type TestFtpServer } from "./helpers/ftp_servers.ts";
import { type ClusterProcess, startClusterServe } from "./helpers/cluster.ts";
import { loginBasicFtp } from "./helpers/ftp_clients.ts";

async function audit(ctx: Parameters<typeof auditCluster>[0]) {
  const found: AuditRecord[] = [];
  const summary = await auditCluster(ctx, { onRecord: (r) => void found.push(r) });
  return { summary, found, of: (k: string) => found.filter((r) => r.kind === k) };
}

Deno.test("audit over pyftpdlib (MLSD) and vsftpd (SIZE+MDTM): damage found and repaired", async () => {
  const servers: TestFtpServer[] = [];
  const t = await makeTestCluster(3, async (dirs) => {
    servers.push(await startPyftpdlib({ root: dirs[0] }));
    servers.push(await startVsftpd({ root: dirs[1] }));
    servers.push(await startPyftpdlib({ root: dirs[2] }));
    return servers.map((s) => s.loginUrl());
  });
  try {
    const body = randomBytes(5000);
    const files = [];
    for (let i = 0; i < 6; i++) {
      files.push(await t.addFile(`d/f${i}.bin`, body, [i % 3, (i + 1) % 3]));
    }
    let a = await audit(t.adm.ctx);
    assert.deepEqual(a.summary.nodesDown, []);
    assert.equal(a.summary.counts.ok, 12);
    assert.equal(a.found.length, 0, JSON.stringify(a.found));
    // Damage: one copy deleted on each kind of node, orphans on both kinds.
    const gone0 = files[0].link.copies.find((c) => c.node === t.keys[0])!;
    const gone1 = files[1].link.copies.find((c) => c.node === t.keys[1])!;
    await fsp.rm(t.nodeFile(0, gone0.path));
    await fsp.rm(t.nodeFile(1, gone1.path));
    const old = (Date.now() - 3 * 3600_000) / 1000;
    const orphans = [[0, "1a/2b/250101-101010-lost%20one.txt"], [
      1,
      "3c/4d/250102-101010-lost2.txt",
    ]] as const;
    for (const [i, p] of orphans) {
      const f = t.nodeFile(i, p);
      await fsp.mkdir(path.dirname(f), { recursive: true });
      await fsp.writeFile(f, `orphan ${i}`);
      await fsp.utimes(f, old, old);
    }
    // A fresh unlinked node file is not an orphan yet (an upload may be under way).
    await fsp.writeFile(t.nodeFile(2, "9f/9f/260101-000000-new.bin"), "n").catch(async () => {
      await fsp.mkdir(path.dirname(t.nodeFile(2, "9f/9f/260101-000000-new.bin")), {
        recursive: true,
      });
      await fsp.writeFile(t.nodeFile(2, "9f/9f/260101-000000-new.bin"), "n");
    });
    a = await audit(t.adm.ctx);
    assert.deepEqual(
      a.of("missing").map((r) => [r.link, r.node]).sort(),
      [["d/f0.bin#", t.keys[0]], ["d/f1.bin#", t.keys[1]]],
    );
    assert.deepEqual(
      a.of("orphan").map((r) => [r.node, r.path, r.nodeSize]).sort(),
      [[t.keys[0], orphans[0][1], 8], [t.keys[1], orphans[1][1], 8]].sort(),
    );
    const o1 = a.of("orphan").find((r) => r.node === t.keys[1])!;
    assert.ok(Math.abs(o1.mtimeMs! - old * 1000) < 2000, "vsftpd's MDTM gives the mtime");
    assert.deepEqual(a.of("pending").map((r) => r.path), ["9f/9f/260101-000000-new.bin"]);
    assert.equal(a.of("under-replicated").length, 2);
    // Step 1: the report (a person could edit it); step 2: apply.
    const report = path.join(t.tmp, "repair.txt");
    await writeRepairReport(t.adm.ctx, report);
    const text = await fsp.readFile(report, "utf8");
    const res = await applyRepairReport(t.adm.ctx, text);
    assert.deepEqual(res.failed, []);
    assert.equal(res.dropped, 2);
    assert.equal(res.adopted, 2);
    // The queued replicate jobs are run by the store worker.
    const stats = await storeOnce(t.adm.ctx, t.adm.queue);
    assert.equal(stats.replicated, 4, "two damaged files and two adopted orphans");
    a = await audit(t.adm.ctx);
    assert.deepEqual(a.found.map((r) => r.kind), ["pending"], JSON.stringify(a.found));
    const lf =
      (await readFileLink(path.join(t.root, "lost+found", "250101-101010-lost%20one.txt#")))!;
    assert.equal(lf.name, "lost one.txt");
    assert.equal(lf.copies.length, 2);
    // A second repair changes nothing.
    const again = await writeRepairReport(t.adm.ctx, report);
    assert.equal(again.actions, 0);
    const res2 = await applyRepairReport(t.adm.ctx, text);
    assert.equal(res2.dropped + res2.adopted + res2.unlinked + res2.queued + res2.deleted, 0);
  } finally {
    await t.close();
    for (const s of servers) await s.stop();
  }
});

Deno.test("audit after a store worker killed mid-move: partial copy pending, lost job requeued", async () => {
  const t = await makeTestCluster(2);
  const py = await startPyftpdlib({ root: t.dirs[0], bytesPerSecond: 500_000 }); // slow
  const nodes = [py.loginUrl(), `file://${t.dirs[1]}`];
  let child: ClusterProcess | null = null;
  try {
    await t.adm.close();
    child = await startClusterServe(["--root", t.root, ...nodes.flatMap((n) => ["--node", n])]);
    const c = await loginBasicFtp(child.admin, 20_000);
    const body = randomBytes(3_000_000);
    await c.uploadFrom(Readable.from([body]), "/big.bin");
    c.close();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const f = (await filesUnder(t.dirs[0]))[0];
      const size = f ? (await fsp.stat(path.join(t.dirs[0], f))).size : 0;
      if (size > 0 && size < body.length) break;
      assert.ok(Date.now() < deadline, "a copy started");
      await new Promise((r) => setTimeout(r, 20));
    }
    await child.stop();
    child = null;
    // The job is lost too (as if the queue file went with the crash).
    const qdir = path.join(t.root, ".queue");
    for (const f of await fsp.readdir(qdir)) await fsp.rm(path.join(qdir, f));
    await py.stop();
    const py2 = await py.restart({ bytesPerSecond: 0 });
    const adm = await openClusterAdmin({ root: t.root, nodes });
    try {
      const a = await audit(adm.ctx);
      const seen = JSON.stringify(a.found);
      assert.deepEqual(a.of("unqueued").map((r) => r.link), ["big.bin#"], seen);
      assert.equal(a.of("orphan").length, 0, `the partial copy is not an orphan: ${seen}`);
      assert.ok(a.of("pending").length >= 1, JSON.stringify(a.found));
      const report = path.join(t.tmp, "r.txt");
      await writeRepairReport(adm.ctx, report);
      const res = await applyRepairReport(adm.ctx, await fsp.readFile(report, "utf8"));
      assert.equal(res.queued, 1, JSON.stringify(res));
      const stats = await storeOnce(adm.ctx, adm.queue);
      assert.equal(stats.stored, 1, JSON.stringify(stats));
      const link = (await readFileLink(path.join(t.root, "big.bin#")))!;
      assert.equal(stagedId(link), null);
      assert.equal(link.copies.length, 2);
      const after = await audit(adm.ctx);
      // A folder node's temp file of the killed copy may be left: pending (young), never an orphan.
      const left = after.found.filter((r) => !(r.kind === "pending" && NODE_TEMP.test(r.path!)));
      assert.deepEqual(left, [], JSON.stringify(after.found));
      assert.equal(after.summary.counts.ok, 2);
      for (const dir of t.dirs) {
        const files = (await filesUnder(dir)).filter((f) => !NODE_TEMP.test(f));
        assert.equal(files.length, 1, `one copy on ${dir}, no partial left: ${files}`);
        assert.ok(body.equals(await fsp.readFile(path.join(dir, files[0]))));
      }
    } finally {
      await adm.close();
      await py2.stop();
    }
  } finally {
    await child?.stop();
    await py.stop();
    await t.close();
  }
});
