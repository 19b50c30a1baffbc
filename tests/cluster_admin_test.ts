/**
 * Administration and transport options of the cluster server with real clients:
 * SITE CHOWN / PASSWD, anonymous read-only access, `store --once` from another
 * process's point of view, explicit FTPS with a self-signed certificate, IPv6.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { readFileLink } from "../src/cluster/links.ts";
import { storeClusterOnce } from "../src/cluster/serve.ts";
import { addUser } from "../src/cluster/users.ts";
import { type FtpTarget, runCurl, runFtplib, runLftp } from "./helpers/ftp_clients.ts";
import { makeSelfSignedCert } from "./helpers/ftp_servers.ts";
import { serveClusterInProcess } from "./helpers/cluster.ts";
import { newPassword } from "./helpers/credentials.ts";
import { makeDirs, tempDir } from "./helpers/temp.ts";

Deno.test("cluster admin: SITE CHOWN/PASSWD, anonymous read-only, store --once", async () => {
  const [tmp, removeTmp] = await tempDir("hop-admin-");
  const [nodeDir] = await makeDirs(tmp, ["n"]);
  const nodes = [pathToFileURL(nodeDir).href];
  const root = path.join(tmp, "root");
  const first = await serveClusterInProcess({
    root,
    nodes,
    replicas: 1,
    anonymous: true,
  });
  let srv = first.srv;
  const admin = first.admin;
  try {
    const alicePw = newPassword();
    await addUser(root, "alice", { password: alicePw });
    await fsp.writeFile(path.join(tmp, "x.txt"), "x\n");
    let r = await runCurl(admin, "/alice/x.txt", ["-T", path.join(tmp, "x.txt")]);
    assert.equal(r.code, 0, r.stderr);
    const alice: FtpTarget = { ...admin, user: "alice", password: alicePw };
    const cannot = await runFtplib(
      alice,
      "try:\n    ftp.delete('/x.txt')\nexcept ftplib.all_errors as e:\n    result = str(e)",
      {},
    );
    assert.match(String(cannot.result), /^550 /);
    // The admin gives the file to alice and changes her password.
    const newAlicePw = newPassword();
    const site = await runFtplib(
      admin,
      "result = [ftp.sendcmd('SITE CHOWN alice /alice/x.txt'), ftp.sendcmd('SITE PASSWD alice ' + args['pw'])]",
      { pw: newAlicePw },
    );
    assert.equal(site.code, 0, site.stderr);
    assert.match((site.result as string[])[0], /^200 /);
    assert.equal((await readFileLink(path.join(root, "alice", "x.txt#")))!.uid, 1000);
    r = await runLftp(alice, ["ls"]);
    assert.notEqual(r.code, 0, "the old password no longer works");
    const alice2 = { ...alice, password: newAlicePw };
    const del = await runFtplib(alice2, "result = ftp.delete('/x.txt')", {});
    assert.match(String(del.result), /^250 /);
    // Anonymous: reads the public folder /pub (its whole tree), never writes.
    r = await runCurl(admin, "/pub/pub.txt", ["-T", path.join(tmp, "x.txt")]);
    assert.equal(r.code, 0, r.stderr);
    await fsp.writeFile(path.join(tmp, "secret.txt"), "alice's\n");
    r = await runCurl(admin, "/alice/secret.txt", ["-T", path.join(tmp, "secret.txt")]);
    assert.equal(r.code, 0, r.stderr);
    const anon: FtpTarget = { ...admin, user: "anonymous", password: "me@example.org" };
    r = await runCurl(anon, "/pub.txt", ["-o", path.join(tmp, "got.txt")]);
    assert.equal(r.code, 0, r.stderr);
    const listing = await runCurl(anon, "/", []);
    assert.equal(listing.stdout.trim().split("\n").length, 1, listing.stdout);
    assert.match(listing.stdout, /pub\.txt/);
    for (const other of ["/alice/secret.txt", "/../alice/secret.txt", "/pub/pub.txt"]) {
      r = await runCurl(anon, other, ["-o", path.join(tmp, "no.txt")]);
      assert.notEqual(r.code, 0, `anonymous cannot read ${other}`);
    }
    r = await runCurl(anon, "/anon.txt", ["-T", path.join(tmp, "x.txt")]);
    assert.notEqual(r.code, 0, "anonymous cannot upload");
    // `hop cluster store --once` after the server stopped moves the staged upload.
    await srv.close();
    const stats = await storeClusterOnce({ root, nodes, replicas: 1 });
    assert.equal(stats.stored, 2);
    assert.equal((await readFileLink(path.join(root, "pub", "pub.txt#")))!.copies.length, 1);
    // A restart serves it from the node; no second admin is made.
    srv = (await serveClusterInProcess({ root, nodes })).srv;
    assert.equal(srv.adminPassword, undefined);
    r = await runCurl({ ...admin, port: srv.port }, "/pub/pub.txt", [
      "-o",
      path.join(tmp, "got2.txt"),
    ]);
    assert.equal(await fsp.readFile(path.join(tmp, "got2.txt"), "utf8"), "x\n");
  } finally {
    await srv.close();
    await removeTmp();
  }
});

Deno.test("cluster over explicit FTPS and IPv6", async () => {
  const [tmp, removeTmp] = await tempDir("hop-tls-");
  const [nodeDir] = await makeDirs(tmp, ["n"]);
  const tls = await makeSelfSignedCert(tmp);
  const { srv, admin: t } = await serveClusterInProcess({
    root: path.join(tmp, "root"),
    nodes: [pathToFileURL(nodeDir).href],
    replicas: 1,
    tls,
    storeWorker: true,
  });
  const { srv: srv6, admin: t6 } = await serveClusterInProcess({
    root: path.join(tmp, "root6"),
    listen: "[::1]:0",
    nodes: [pathToFileURL(nodeDir).href],
    replicas: 1,
    storeWorker: true,
  });
  try {
    await fsp.writeFile(path.join(tmp, "s.txt"), "secret\n");
    let r = await runLftp(t, ["put s.txt -o /s.txt", "get /s.txt -o back.txt"], {
      cwd: tmp,
      tls: true,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fsp.readFile(path.join(tmp, "back.txt"), "utf8"), "secret\n");
    assert.match(srv6.url, /^ftp:\/\/admin:.*@\[::1\]:\d+\/$/);
    r = await runCurl(t6, "/six.txt", ["-T", path.join(tmp, "s.txt")]);
    assert.equal(r.code, 0, r.stderr);
    r = await runCurl(t6, "/six.txt", ["-o", path.join(tmp, "six.txt")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fsp.readFile(path.join(tmp, "six.txt"), "utf8"), "secret\n");
  } finally {
    await srv.close();
    await srv6.close();
    await removeTmp();
  }
});
