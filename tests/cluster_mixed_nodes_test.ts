/**
 * A cluster whose two copies sit on two kinds of node — vsftpd (FTP) and an S3
 * bucket (s3rver) — served to lftp and curl: uploads stored on both, downloads
 * in passive mode (streamed from a node) and active mode (the FTP node sends
 * itself; the S3 copy is streamed by the cluster), a download that fails over
 * to the S3 copy when vsftpd is gone, audit finding both copies, and deletes
 * removing the data from both.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { readFileLink } from "../src/cluster/links.ts";
import { serveCluster } from "../src/cluster/serve.ts";
import { storeOnce } from "../src/cluster/store.ts";
import { openDriver } from "../src/storage/mod.ts";
import { type FtpTarget, runCurl, runLftp } from "./helpers/ftp_clients.ts";
import { startVsftpd } from "./helpers/ftp_servers.ts";
import { startS3rver } from "./helpers/storage_servers.ts";

Deno.test("cluster on a vsftpd node and an S3 node: lftp and curl store, read, fail over, delete", async () => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-mixed-"));
  await fsp.chmod(tmp, 0o755); // vsftpd's ftp user must reach its root below it
  const dirV = path.join(tmp, "v");
  await fsp.mkdir(dirV);
  const vs = await startVsftpd({ root: dirV });
  const s3 = await startS3rver("cluster-copies");
  const s3Url = `s3://${s3.accessKey}:${s3.secretKey}@${s3.bucket}/node2?endpoint=${
    encodeURIComponent(s3.endpoint)
  }`;
  const srv = await serveCluster({
    root: path.join(tmp, "root"),
    listen: "127.0.0.1:0",
    nodes: [vs.loginUrl(), s3Url],
    storeWorker: false,
    nodeDownMs: 200,
    engine: { loginFailDelayMs: 0 },
  });
  const bucket = await openDriver(
    `s3://${s3.bucket}/node2?endpoint=${encodeURIComponent(s3.endpoint)}`,
    { user: s3.accessKey, password: s3.secretKey },
  );
  let vsStopped = false;
  try {
    const t: FtpTarget = {
      host: "127.0.0.1",
      port: srv.port,
      user: "admin",
      password: srv.adminPassword!,
    };
    const body = randomBytes(3_000_000);
    await fsp.writeFile(path.join(tmp, "in.bin"), body);
    let r = await runCurl(t, "/data.bin", ["-T", path.join(tmp, "in.bin")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await storeOnce(srv.ctx, srv.queue)).stored, 1);
    const link = (await readFileLink(path.join(srv.root, "data.bin#")))!;
    assert.deepEqual(
      link.copies.map((c) => c.node).sort(),
      [
        `127.0.0.1:${vs.port}`,
        `s3://${s3.bucket}/node2`,
      ].sort(),
    );
    const p = link.copies[0].path;
    assert.ok(body.equals(await fsp.readFile(path.join(dirV, p))), "the copy on vsftpd");
    const onS3 = await bucket.stat(p);
    assert.equal(onS3?.size, body.length, "the copy in the bucket");
    // passive and active downloads, lftp and curl
    r = await runLftp(t, ["get /data.bin -o p.bin"], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "p.bin"))));
    r = await runLftp(t, ["get /data.bin -o a.bin"], { cwd: tmp, passive: false });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "a.bin"))));
    r = await runCurl(t, "/data.bin", ["-o", path.join(tmp, "c.bin")]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "c.bin"))));
    // vsftpd gone: the bucket's copy is read (passive and active: the cluster streams it)
    await vs.stop();
    vsStopped = true;
    r = await runCurl(t, "/data.bin", ["-o", path.join(tmp, "f.bin")]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "f.bin"))), "failed over to S3");
    r = await runLftp(t, ["get /data.bin -o fa.bin"], { cwd: tmp, passive: false });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "fa.bin"))));
    // delete: the bucket's copy goes (vsftpd's waits for its node)
    r = await runLftp(t, ["rm /data.bin"]);
    assert.equal(r.code, 0, r.stderr);
    await storeOnce(srv.ctx, srv.queue);
    assert.equal(await bucket.stat(p), null, "deleted from the bucket");
  } finally {
    await bucket.close();
    await srv.close();
    if (!vsStopped) await vs.stop();
    await s3.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});
