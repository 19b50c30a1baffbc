/**
 * Cleanup against real FTP nodes (pyftpdlib), inside `cluster serve`: files deleted by
 * a client while a node is down keep their `.deleted/` entries for that node; when the
 * node is back, every deletion is done, and the file still linked is never touched.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { cleanupCluster } from "../src/cluster/cleanup.ts";
import { readFileLink } from "../src/cluster/links.ts";
import { filesUnder } from "./helpers/trees.ts";
import { serveClusterInProcess } from "./helpers/cluster.ts";
import { loginBasicFtp } from "./helpers/ftp_clients.ts";
import { startPyftpdlib } from "./helpers/ftp_servers.ts";
import { makeDirs, tempDir } from "./helpers/temp.ts";

async function until(what: string, f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!await f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("cleanup with a node down, then up: every deletion done, nothing linked deleted", async () => {
  const [tmp, removeTmp] = await tempDir("hop-cleanup-");
  const [dirA, dirB] = await makeDirs(tmp, ["a", "b"]);
  const a = await startPyftpdlib({ root: dirA });
  let b = await startPyftpdlib({ root: dirB });
  const { srv, admin } = await serveClusterInProcess({
    root: path.join(tmp, "root"),
    nodes: [a.loginUrl(), b.loginUrl()],
    storeWorker: true,
    pollMs: 100,
    retryBaseMs: 200,
    nodeDownMs: 300,
    cleanupEveryMs: 500,
  });
  const c = await loginBasicFtp(admin, 20_000);
  try {
    const bodies = new Map<string, Buffer>();
    for (const n of ["keep.bin", "del1.bin", "del2.bin"]) {
      const body = randomBytes(30_000);
      bodies.set(n, body);
      await c.uploadFrom(Readable.from([body]), `/${n}`);
    }
    const l = srv.ctx.layout;
    await until(
      "three files stored on both nodes",
      async () =>
        (await filesUnder(dirA)).length === 3 && (await filesUnder(dirB)).length === 3 &&
        (await fsp.readdir(l.staging)).length === 1,
    );
    const keep = (await readFileLink(path.join(l.root, "keep.bin#")))!;
    assert.equal(keep.copies.length, 2);

    // Node B goes down; two files are deleted by the client.
    await b.stop();
    await c.remove("/del1.bin");
    await c.remove("/del2.bin");
    const onlyB = async () => {
      const entries = await fsp.readdir(l.deleted);
      for (const e of entries) {
        const link = await readFileLink(path.join(l.deleted, e));
        if (!link || link.copies.length !== 1) return false;
      }
      return entries.length === 2;
    };
    await until(
      "node A's copies deleted",
      async () => (await filesUnder(dirA)).length === 1 && await onlyB(),
    );
    const waiting = await fsp.readdir(l.deleted);
    assert.equal(waiting.length, 2, "the entries wait for node B");
    for (const e of waiting) {
      const link = (await readFileLink(path.join(l.deleted, e)))!;
      assert.deepEqual(link.copies.map((x) => x.node), [`127.0.0.1:${b.port}`]);
    }
    // A one-off `hop cleanup` meanwhile: nothing finished, nothing linked touched.
    const r = await cleanupCluster(srv.ctx, srv.queue);
    assert.deepEqual(r.finished, []);
    assert.equal(r.pending.length, 2);
    assert.equal((await filesUnder(dirB)).length, 3);

    // Node B is back on its port: the deletions complete on their own.
    b = await b.restart();
    await until(
      "every deletion done",
      async () =>
        (await fsp.readdir(l.deleted)).length === 0 && (await filesUnder(dirB)).length === 1,
      30_000,
    );
    for (const dir of [dirA, dirB]) {
      const left = await filesUnder(dir);
      assert.deepEqual(left, [keep.copies[0].path.split("/").join(path.sep)]);
      assert.ok(bodies.get("keep.bin")!.equals(await fsp.readFile(path.join(dir, left[0]))));
    }
    assert.deepEqual((await readFileLink(path.join(l.root, "keep.bin#")))!.copies, keep.copies);
  } finally {
    c.close();
    await srv.close();
    await a.stop();
    await b.stop();
    await removeTmp();
  }
});
