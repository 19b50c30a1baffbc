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
import * as path from "node:path";
import { readFileLink } from "../src/cluster/links.ts";
import { storeOnce } from "../src/cluster/store.ts";
import { runCurl, runLftp } from "./helpers/ftp_clients.ts";
import { serveClusterInProcess } from "./helpers/cluster.ts";
import { startPyftpdlib, startVsftpd } from "./helpers/ftp_servers.ts";
import { makeDirs, tempDir } from "./helpers/temp.ts";

Deno.test("cluster on vsftpd + pyftpdlib nodes: store, passive and active RETR, delete", async () => {
  const [tmp, removeTmp] = await tempDir("hop-vsftpd-");
  await fsp.chmod(tmp, 0o755); // vsftpd's ftp user must reach its root below it
  const [dirV, dirP] = await makeDirs(tmp, ["v", "p"]);
  const vs = await startVsftpd({ root: dirV });
  const py = await startPyftpdlib({ root: dirP });
  const { srv, admin: t } = await serveClusterInProcess({
    root: path.join(tmp, "root"),
    nodes: [vs.loginUrl(), py.loginUrl()],
  });
  try {
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
    await removeTmp();
  }
});
