/**
 * Replication between real FTP nodes: node to node by a third-party transfer (the
 * target gets PASV + STOR, the source PORT + RETR) between pyftpdlib and vsftpd, in
 * both directions; through this process when a side is a folder node. Then `node
 * retire` empties a node and the audit finds everything in order.
 *
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { retireNode } from "../src/cluster/admin.ts";
import { auditCluster } from "../src/cluster/audit.ts";
import { readFileLink } from "../src/cluster/links.ts";
import { replicateCluster } from "../src/cluster/replicate.ts";
import { makeTestCluster } from "./helpers/cluster_fixture.ts";
import { filesUnder } from "./helpers/trees.ts";
import { startPyftpdlib, startVsftpd, type TestFtpServer } from "./helpers/ftp_servers.ts";

Deno.test("replicate node to node (FXP) between pyftpdlib and vsftpd; retire a node", async () => {
  const servers: TestFtpServer[] = [];
  const t = await makeTestCluster(3, async (dirs) => {
    servers.push(await startPyftpdlib({ root: dirs[0] }));
    servers.push(await startVsftpd({ root: dirs[1] }));
    return [
      ...servers.map((s) => s.loginUrl()),
      pathToFileURL(dirs[2]).href,
    ];
  });
  try {
    const bodies = [randomBytes(300_000), randomBytes(1000)];
    const a = await t.addFile("a.bin", bodies[0], [0]);
    const b = await t.addFile("b.bin", bodies[1], [1]);
    // vsftpd's users act as the `ftp` system user: what the test wrote must be theirs.
    execFileSync("chown", ["-R", "ftp:ftp", t.dirs[1]]);
    // Only to the other FTP node: each copy goes node to node.
    const r = await replicateCluster(t.adm.ctx, { to: [t.keys[0], t.keys[1]] });
    assert.deepEqual(r, { files: 2, copied: 2, direct: 2, short: 0 });
    for (const [i, f] of [a, b].entries()) {
      const link = (await readFileLink(f.file))!;
      assert.deepEqual(link.copies.map((c) => c.node).sort(), [t.keys[0], t.keys[1]].sort());
      for (const n of [0, 1]) {
        assert.ok(bodies[i].equals(await fsp.readFile(t.nodeFile(n, link.copies[0].path))));
      }
    }
    // Retire the vsftpd node: its copies go to the folder node (through this process).
    const ret = await retireNode(t.adm.ctx, t.keys[1]);
    assert.equal(ret.files, 2);
    assert.equal(ret.removed, 2);
    assert.deepEqual(ret.undeleted, []);
    assert.deepEqual(await filesUnder(t.dirs[1]), []);
    for (const [i, f] of [a, b].entries()) {
      const link = (await readFileLink(f.file))!;
      assert.deepEqual(link.copies.map((c) => c.node).sort(), [t.keys[0], t.keys[2]].sort());
      assert.ok(bodies[i].equals(await fsp.readFile(t.nodeFile(2, link.copies[0].path))));
    }
    const s = await auditCluster(t.adm.ctx, { onRecord: (x) => assert.fail(JSON.stringify(x)) });
    assert.equal(s.counts.ok, 4);
  } finally {
    await t.close();
    for (const s of servers) await s.stop();
  }
});
