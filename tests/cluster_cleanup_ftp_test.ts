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
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { Client } from "basic-ftp";
import { cleanupCluster } from "../src/cluster/cleanup.ts";
import { readFileLink } from "../src/cluster/links.ts";
import { serveCluster } from "../src/cluster/serve.ts";
import { filesUnder } from "./cluster_audit_helpers.ts";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";

async function until(what: string, f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!await f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("cleanup with a node down, then up: every deletion done, nothing linked deleted", async () => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-cleanup-"));
  const dirA = path.join(tmp, "a");
  const dirB = path.join(tmp, "b");
  await fsp.mkdir(dirA);
  await fsp.mkdir(dirB);
  const opts = (root: string) => ({ root, user: "node", password: "pw" });
  const a = await startPyftpdlib(opts(dirA));
  let b: TestFtpServer | null = await startPyftpdlib(opts(dirB));
  const bPort = b.port;
  const url = (s: { port: number }) => `ftp://node:pw@127.0.0.1:${s.port}/`;
  const srv = await serveCluster({
    root: path.join(tmp, "root"),
    listen: "127.0.0.1:0",
    nodes: [url(a), url(b)],
    pollMs: 100,
    retryBaseMs: 200,
    nodeDownMs: 300,
    cleanupEveryMs: 500,
    engine: { loginFailDelayMs: 0 },
  });
  const c = new Client(20_000);
  try {
    await c.access({
      host: "127.0.0.1",
      port: srv.port,
      user: "admin",
      password: srv.adminPassword!,
    });
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
    b = null;
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
      assert.deepEqual(link.copies.map((x) => x.node), [`127.0.0.1:${bPort}`]);
    }
    // A one-off `hop cleanup` meanwhile: nothing finished, nothing linked touched.
    const r = await cleanupCluster(srv.ctx, srv.queue);
    assert.deepEqual(r.finished, []);
    assert.equal(r.pending.length, 2);
    assert.equal((await filesUnder(dirB)).length, 3);

    // Node B is back on its port: the deletions complete on their own.
    b = await startPyftpdlib({ ...opts(dirB), port: bPort });
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
    await b?.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});
