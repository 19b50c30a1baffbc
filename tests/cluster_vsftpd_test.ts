/**
 * The cluster with vsftpd and pyftpdlib as storage nodes (the helpers in
 * tests/helpers/ftp_servers.ts): copies land on both, downloads come from them in
 * passive and active (third-party) mode, deletes remove the data from both.
 * (Node failures are tested with pyftpdlib and hop's node server, which stop cleanly.)
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
import { type FtpTarget, runCurl, runLftp } from "./helpers/ftp_clients.ts";
import { startPyftpdlib, startVsftpd } from "./helpers/ftp_servers.ts";

Deno.test("cluster on vsftpd + pyftpdlib nodes: store, passive and active RETR, delete", async () => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-vsftpd-"));
  await fsp.chmod(tmp, 0o755); // vsftpd's ftp user must reach its root below it
  const dirV = path.join(tmp, "v");
  const dirP = path.join(tmp, "p");
  await fsp.mkdir(dirV);
  await fsp.mkdir(dirP);
  const vs = await startVsftpd({ root: dirV, user: "nodeuser", password: "nodepw" });
  const py = await startPyftpdlib({ root: dirP, user: "nodeuser", password: "nodepw" });
  const nodeUrl = (s: { port: number }) => `ftp://nodeuser:nodepw@127.0.0.1:${s.port}/`;
  const srv = await serveCluster({
    root: path.join(tmp, "root"),
    listen: "127.0.0.1:0",
    nodes: [nodeUrl(vs), nodeUrl(py)],
    storeWorker: false,
    engine: { loginFailDelayMs: 0 },
  });
  try {
    const t: FtpTarget = {
      host: "127.0.0.1",
      port: srv.port,
      user: "admin",
      password: srv.adminPassword!,
    };
    const body = randomBytes(2_000_000);
    await fsp.writeFile(path.join(tmp, "in.bin"), body);
    let r = await runCurl(t, "/data.bin", ["-T", path.join(tmp, "in.bin")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await storeOnce(srv.ctx, srv.queue)).stored, 1);
    const link = (await readFileLink(path.join(srv.root, "data.bin#")))!;
    assert.equal(link.copies.length, 2);
    for (const dir of [dirV, dirP]) {
      assert.ok(body.equals(await fsp.readFile(path.join(dir, link.copies[0].path))), dir);
    }
    r = await runLftp(t, ["get /data.bin -o p.bin"], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "p.bin"))));
    r = await runLftp(t, ["get /data.bin -o a.bin"], { cwd: tmp, passive: false });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "a.bin"))));
    // Delete: the data goes from both nodes, the .deleted entry too.
    r = await runLftp(t, ["rm /data.bin"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await storeOnce(srv.ctx, srv.queue)).deleted, 1);
    for (const dir of [dirV, dirP]) {
      await assert.rejects(fsp.stat(path.join(dir, link.copies[0].path)));
    }
    assert.deepEqual(await fsp.readdir(path.join(srv.root, ".deleted")), []);
  } finally {
    await srv.close();
    await vs.stop();
    await py.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});
