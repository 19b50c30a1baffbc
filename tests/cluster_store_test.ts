/**
 * The store worker against real nodes that fail: a node down at store time is
 * replaced by another; with too few nodes up the job keeps its staged data, is retried
 * with backoff and completes once the node is back. REST+STOR and APPE resume staged
 * and stored files.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { Buffer } from "node:buffer";
import { readFileLink, stagedId } from "../src/cluster/links.ts";
import { NODE_TEMP } from "../src/cluster/nodes.ts";
import { list as listQueue } from "../src/cluster/queue.ts";
import { storeOnce } from "../src/cluster/store.ts";
import { runCurl, runFtplib } from "./helpers/ftp_clients.ts";
import { serveClusterInProcess } from "./helpers/cluster.ts";
import { startPyftpdlib } from "./helpers/ftp_servers.ts";
import { makeDirs, tempDir } from "./helpers/temp.ts";

Deno.test("store worker: a node down is replaced, then retried until the copies are complete", async () => {
  const [tmp, removeTmp] = await tempDir("hop-store-");
  const dirs = ["a", "b", "c"].map((n) => path.join(tmp, n));
  for (const d of dirs) await fsp.mkdir(d);
  let py = await startPyftpdlib({ root: dirs[0] });
  const pyPort = py.port;
  const { srv, admin: t } = await serveClusterInProcess({
    root: path.join(tmp, "root"),
    nodes: [py.loginUrl(), pathToFileURL(dirs[1]).href, pathToFileURL(dirs[2]).href],
    retryBaseMs: 50,
    nodeDownMs: 300,
    healthEveryMs: 100,
  });
  try {
    const body = randomBytes(100_000);
    await fsp.writeFile(path.join(tmp, "in"), body);
    // pyftpdlib is down: the two folder nodes get the copies.
    await py.stop();
    assert.equal((await runCurl(t, "/one.bin", ["-T", path.join(tmp, "in")])).code, 0);
    let stats = await storeOnce(srv.ctx, srv.queue, { replicas: 2, retryBaseMs: 50 });
    assert.equal(stats.stored, 1);
    let link = (await readFileLink(path.join(srv.root, "one.bin#")))!;
    assert.deepEqual(link.copies.map((c) => c.node).sort(), [
      `file://${dirs[1]}`,
      `file://${dirs[2]}`,
    ]);

    // Replicas 3 with one node down: two copies now, data stays staged, job retried.
    assert.equal((await runCurl(t, "/two.bin", ["-T", path.join(tmp, "in")])).code, 0);
    stats = await storeOnce(srv.ctx, srv.queue, { replicas: 3, retryBaseMs: 50 });
    assert.ok(stats.retried >= 1, "the job is put back to be retried");
    link = (await readFileLink(path.join(srv.root, "two.bin#")))!;
    assert.equal(link.copies.length, 2);
    const id = stagedId(link);
    assert.ok(id, "still staged");
    assert.ok(await fsp.stat(path.join(srv.root, ".staging", id!)));
    assert.equal((await listQueue(path.join(srv.root, ".queue"))).length, 1);
    // Still readable meanwhile.
    const r = await runCurl(t, "/two.bin", ["-o", path.join(tmp, "out")]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "out"))));
    // The node comes back: the retry completes the third copy and frees the staging area.
    py = await py.restart();
    const deadline = Date.now() + 15_000;
    for (;;) {
      await new Promise((res) => setTimeout(res, 100));
      await storeOnce(srv.ctx, srv.queue, { replicas: 3, retryBaseMs: 50 });
      link = (await readFileLink(path.join(srv.root, "two.bin#")))!;
      if (link.copies.length === 3) break;
      assert.ok(Date.now() < deadline, "third copy made");
    }
    assert.equal(stagedId(link), null);
    assert.ok(body.equals(await fsp.readFile(path.join(dirs[0], link.copies[0].path))));
    // The periodic health check logged the node going down and coming back.
    const seen = new RegExp(
      `node ftp://${py.user}:\\*\\*\\*@127\\.0\\.0\\.1:${pyPort}/ is DOWN[^]*is up`,
    );
    for (let i = 0;; i++) {
      const log = await fsp.readFile(path.join(srv.root, ".log", "cluster.log"), "utf8");
      if (seen.test(log)) break;
      assert.ok(i < 50, `health transitions logged:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(
      (await fsp.readdir(path.join(srv.root, ".staging"))).filter((n) => n !== "tmp"),
      [],
    );
    assert.equal((await listQueue(path.join(srv.root, ".queue"))).length, 0);
  } finally {
    await srv.close();
    await py.stop();
    await removeTmp();
  }
});

Deno.test("cluster: REST+STOR resumes a staged upload, APPE appends to a stored file", async () => {
  const [tmp, removeTmp] = await tempDir("hop-store-");
  await fsp.mkdir(path.join(tmp, "n"));
  const { srv, admin: t } = await serveClusterInProcess({
    root: path.join(tmp, "root"),
    nodes: [pathToFileURL(path.join(tmp, "n")).href],
    replicas: 1,
  });
  try {
    const body = Buffer.alloc(200_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 9)) & 255;
    // ftplib: STOR the first half, then REST 100000 + STOR the second half.
    const r = await runFtplib(
      t,
      [
        "data = bytes(((i * 31 + (i >> 9)) & 255) for i in range(200000))",
        "ftp.storbinary('STOR /r.bin', io.BytesIO(data[:100000]))",
        "ftp.storbinary('STOR /r.bin', io.BytesIO(data[100000:]), rest=100000)",
        "ftp.voidcmd('TYPE I')",
        "result = [ftp.size('/r.bin')]",
      ].join("\n"),
      {},
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.result, [200_000]);
    let c = await runCurl(t, "/r.bin", ["-o", path.join(tmp, "o1")]);
    assert.equal(c.code, 0, c.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "o1"))));
    // Stored on the node, then appended to (the first bytes come back from the node).
    await storeOnce(srv.ctx, srv.queue, { replicas: 1 });
    assert.equal(stagedId((await readFileLink(path.join(srv.root, "r.bin#")))!), null);
    const tail = randomBytes(5000);
    await fsp.writeFile(path.join(tmp, "tail"), tail);
    c = await runCurl(t, "/r.bin", ["-T", path.join(tmp, "tail"), "--append"]);
    assert.equal(c.code, 0, c.stderr);
    c = await runCurl(t, "/r.bin", ["-o", path.join(tmp, "o2")]);
    assert.ok(Buffer.concat([body, tail]).equals(await fsp.readFile(path.join(tmp, "o2"))));
    // Each replaced version goes the DELE way (the first one was already removed by the
    // storeOnce above, the appended-to one waits in .deleted with its delete job).
    assert.equal((await fsp.readdir(path.join(srv.root, ".deleted"))).length, 1);
    assert.deepEqual(
      (await listQueue(path.join(srv.root, ".queue"))).map((e) => e.job.type).sort(),
      [
        "delete",
        "upload",
      ],
    );
  } finally {
    await srv.close();
    await removeTmp();
  }
});

Deno.test("store worker: a node stopped during a move, then restarted: the job is retried and completes", async () => {
  const [tmp, removeTmp] = await tempDir("hop-store-");
  const [dirA, dirB] = await makeDirs(tmp, ["a", "b"]);
  // The pyftpdlib node takes 1 MB/s: it is stopped while the copy is under way.
  let py = await startPyftpdlib({ root: dirA, bytesPerSecond: 1_000_000 });
  const { srv, admin: t } = await serveClusterInProcess({
    root: path.join(tmp, "root"),
    nodes: [py.loginUrl(), pathToFileURL(dirB).href],
    nodeDownMs: 200,
  });
  try {
    const body = randomBytes(3_000_000);
    await fsp.writeFile(path.join(tmp, "in"), body);
    assert.equal((await runCurl(t, "/m.bin", ["-T", path.join(tmp, "in")])).code, 0);
    const pass = storeOnce(srv.ctx, srv.queue, { retryBaseMs: 50 });
    const deadline = Date.now() + 15_000;
    for (;;) {
      const f = (await fsp.readdir(dirA, { recursive: true, withFileTypes: true })).find((e) =>
        e.isFile()
      );
      if (f && (await fsp.stat(path.join(f.parentPath, f.name))).size > 0) break;
      assert.ok(Date.now() < deadline, "the copy to pyftpdlib started");
      await new Promise((r) => setTimeout(r, 20));
    }
    await py.stop();
    const stats = await pass;
    assert.ok(stats.retried >= 1, "the job is put back to be retried");
    let link = (await readFileLink(path.join(srv.root, "m.bin#")))!;
    assert.equal(link.copies.length, 1, "the folder node's copy is recorded");
    assert.ok(stagedId(link), "the data stays staged");
    // The cut-off temporary file on the stopped node is noted for deletion.
    const noted = await fsp.readdir(path.join(srv.root, ".deleted"));
    assert.equal(noted.length, 1);
    const entry = (await readFileLink(path.join(srv.root, ".deleted", noted[0])))!;
    assert.match(entry.copies[0].path, NODE_TEMP);
    py = await py.restart({ bytesPerSecond: 0 });
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      await storeOnce(srv.ctx, srv.queue, { retryBaseMs: 50 });
      link = (await readFileLink(path.join(srv.root, "m.bin#")))!;
      if (link.copies.length === 2) break;
      assert.ok(Date.now() < deadline + 15_000, "second copy made");
    }
    assert.equal(stagedId(link), null);
    assert.deepEqual(await fsp.readdir(path.join(srv.root, ".deleted")), []);
    const files = (await fsp.readdir(dirA, { recursive: true, withFileTypes: true })).filter((e) =>
      e.isFile()
    );
    assert.equal(files.length, 1, "the cut-off temporary copy was deleted, not left behind");
    assert.ok(body.equals(await fsp.readFile(path.join(files[0].parentPath, files[0].name))));
  } finally {
    await srv.close();
    await py.stop();
    await removeTmp();
  }
});
