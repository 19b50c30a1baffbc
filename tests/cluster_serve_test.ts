/**
 * The cluster server end to end with real peers: two storage nodes (pyftpdlib and
 * hop's own folder node server), clients lftp, curl, ftplib and basic-ftp. Upload,
 * list, store to two nodes, download byte-exact (with REST), rename, delete, a node
 * down during RETR, permissions, foreign files, the filename policy.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { Client } from "basic-ftp";
import { storeOnce } from "../src/cluster/store.ts";
import { addUser } from "../src/cluster/users.ts";
import { readFileLink, stagedId } from "../src/cluster/links.ts";
import { list as listQueue } from "../src/cluster/queue.ts";
import {
  downloadBytes,
  type FtpTarget,
  runCurl,
  runFtplib,
  runLftp,
} from "./helpers/ftp_clients.ts";
import { serveClusterInProcess } from "./helpers/cluster.ts";
import { filesUnder } from "./helpers/trees.ts";
import { newPassword } from "./helpers/credentials.ts";
import { startHopFolderServer, startPyftpdlib } from "./helpers/ftp_servers.ts";
import { makeDirs, tempDir } from "./helpers/temp.ts";

async function setup() {
  const [tmp, removeTmp] = await tempDir("hop-cluster-");
  const [dirA, dirB] = await makeDirs(tmp, ["nodeA", "nodeB"]);
  const py = await startPyftpdlib({ root: dirA });
  let folder = await startHopFolderServer({ root: dirB });
  const { srv, admin } = await serveClusterInProcess({
    root: path.join(tmp, "root"),
    nodes: [py.loginUrl(), folder.loginUrl()],
    replicas: 2,
    names: "strict", // the original cluster's policy (the default is any)
  });
  assert.ok(srv.adminPassword, "first start creates the admin");
  return {
    tmp,
    dirA,
    dirB,
    py,
    srv,
    admin,
    root: path.join(tmp, "root"),
    async stopFolder() {
      await folder.stop();
    },
    async restartFolder() {
      folder = await folder.restart();
    },
    async cleanup() {
      await srv.close();
      await folder.stop();
      await py.stop();
      await removeTmp();
    },
  };
}

Deno.test("cluster: upload, list, store on two nodes, download, rename, delete", async () => {
  const t = await setup();
  try {
    const local = path.join(t.tmp, "local");
    await fsp.mkdir(local);
    const big = randomBytes(3 * 1024 * 1024 + 5);
    const small = randomBytes(1000);
    await fsp.writeFile(path.join(local, "big.bin"), big);
    await fsp.writeFile(path.join(local, "small.txt"), small);

    // lftp and curl upload.
    let r = await runLftp(t.admin, [`put big.bin -o /big.bin`, "mkdir docs"], { cwd: local });
    assert.equal(r.code, 0, r.stderr);
    r = await runCurl(t.admin, "/docs/small.txt", ["-T", path.join(local, "small.txt")]);
    assert.equal(r.code, 0, r.stderr);
    // ftplib upload.
    const py = await runFtplib(
      t.admin,
      "ftp.storbinary('STOR /docs/py.bin', io.BytesIO(bytes(range(256)) * 40)); result = ftp.nlst('/docs')",
      {},
    );
    assert.equal(py.code, 0, py.stderr);
    assert.deepEqual((py.result as string[]).map((n) => n.replace(/^.*\//, "")).sort(), [
      "py.bin",
      "small.txt",
    ]);

    // Staged: link files exist with a staged id, upload jobs queued, nodes still empty.
    const bigLink = await readFileLink(path.join(t.root, "big.bin#"));
    assert.ok(bigLink && stagedId(bigLink), "link file names the staged data");
    assert.equal(bigLink!.size, big.length);
    assert.deepEqual(
      new Uint8Array(await fsp.readFile(path.join(t.root, ".staging", stagedId(bigLink!)!))),
      new Uint8Array(big),
    );
    // (lftp sets the time of what it put with MFMT: that queues no second job.)
    const uploads = (await listQueue(path.join(t.root, ".queue"))).flatMap((e) =>
      e.job.type === "upload" ? [e.job.path] : []
    );
    assert.equal(uploads.length, 3, uploads.join(", "));
    assert.equal(new Set(uploads).size, 3);
    assert.deepEqual(await filesUnder(t.dirA), []);

    // The listing shows the files (no `#` names), owner from the uid.
    r = await runLftp(t.admin, ["ls /", "ls /docs"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^-.* admin .* 3145733 .* big\.bin$/m);
    assert.match(r.stdout, /small\.txt/);
    assert.doesNotMatch(r.stdout, /#/);
    assert.doesNotMatch(r.stdout, /\.passwd|\.queue|\.staging/);

    // A staged file downloads from staging.
    r = await runCurl(t.admin, "/docs/small.txt", ["-o", path.join(local, "small.staged")]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fsp.readFile(path.join(local, "small.staged")), small);

    // Store: every file on both nodes, link files rewritten, staging emptied.
    const stats = await storeOnce(t.srv.ctx, t.srv.queue, { replicas: 2 });
    assert.equal(stats.stored, 3);
    const link = (await readFileLink(path.join(t.root, "big.bin#")))!;
    assert.equal(stagedId(link), null);
    assert.equal(link.copies.length, 2);
    assert.deepEqual(new Set(link.copies.map((c) => c.node)), new Set(t.srv.ctx.nodes.keys()));
    assert.match(
      link.copies[0].path,
      /^[0-9a-f]{2}\/[0-9a-f]{2}\/\d{6}-\d{6}-[0-9a-f]{8}-big\.bin$/,
    );
    for (const dir of [t.dirA, t.dirB]) {
      assert.deepEqual(
        new Uint8Array(await fsp.readFile(path.join(dir, link.copies[0].path))),
        new Uint8Array(big),
      );
      assert.equal((await filesUnder(dir)).length, 3);
    }
    assert.deepEqual(
      (await fsp.readdir(path.join(t.root, ".staging"))).filter((n) => n !== "tmp"),
      [],
    );
    assert.equal((await listQueue(path.join(t.root, ".queue"))).length, 0);

    // Passive download from the nodes, byte-exact: curl, lftp, and ftplib with REST.
    r = await runCurl(t.admin, "/big.bin", ["-o", path.join(local, "big.curl")]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(big.equals(await fsp.readFile(path.join(local, "big.curl"))));
    r = await runLftp(t.admin, ["get /big.bin -o big.lftp"], { cwd: local });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(big.equals(await fsp.readFile(path.join(local, "big.lftp"))));
    const rest = await runFtplib(
      t.admin,
      "b = io.BytesIO(); ftp.retrbinary('RETR /big.bin', b.write, rest=1000000); result = hashlib.sha256(b.getvalue()).hexdigest()",
      {},
    );
    assert.equal(rest.code, 0, rest.stderr);
    const { createHash } = await import("node:crypto");
    assert.equal(rest.result, createHash("sha256").update(big.subarray(1000000)).digest("hex"));

    // basic-ftp: size, download.
    const c = new Client();
    await c.access(t.admin);
    assert.equal(await c.size("/big.bin"), big.length);
    assert.equal((await downloadBytes(c, "/docs/py.bin")).length, 256 * 40);

    // Rename: the link file moves, data stays.
    await c.rename("/big.bin", "/docs/renamed.bin");
    assert.equal(await readFileLink(path.join(t.root, "big.bin#")), null);
    assert.deepEqual(
      (await readFileLink(path.join(t.root, "docs", "renamed.bin#")))!.copies,
      link.copies,
    );
    // Rename onto an existing file: the old target goes the DELE way.
    await c.rename("/docs/small.txt", "/docs/py.bin");
    assert.equal((await fsp.readdir(path.join(t.root, ".deleted"))).length, 1);
    // RMD of a non-empty directory is refused.
    await assert.rejects(c.removeEmptyDir("/docs"), /550/);
    // DELE: link into .deleted/, a delete job queued; the store worker removes the data.
    await c.remove("/docs/renamed.bin");
    assert.equal((await fsp.readdir(path.join(t.root, ".deleted"))).length, 2);
    const jobs = await listQueue(path.join(t.root, ".queue"));
    assert.deepEqual(jobs.map((e) => e.job.type), ["delete", "delete"]);
    c.close();
    const del = await storeOnce(t.srv.ctx, t.srv.queue);
    assert.equal(del.deleted, 2);
    assert.deepEqual(await fsp.readdir(path.join(t.root, ".deleted")), []);
    for (const dir of [t.dirA, t.dirB]) {
      assert.equal((await filesUnder(dir)).length, 1, `left on ${dir}`);
    }
    r = await runLftp(t.admin, ["cls /docs"]);
    assert.equal(r.stdout.trim(), "/docs/py.bin");
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster: a node down during RETR is served from the other copy; none left is 550", async () => {
  const t = await setup();
  try {
    const body = randomBytes(200_000);
    const c = new Client();
    await c.access(t.admin);
    await c.uploadFrom(Readable.from([body]), "/f.bin");
    c.close();
    assert.equal((await storeOnce(t.srv.ctx, t.srv.queue)).stored, 1);
    const out = path.join(t.tmp, "out");
    // pyftpdlib stops: the folder node serves.
    await t.py.stop();
    let r = await runCurl(t.admin, "/f.bin", ["-o", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(out)));
    // The folder node stops too: 550 with a clear message.
    await t.stopFolder();
    r = await runCurl(t.admin, "/f.bin", ["-o", out]);
    assert.notEqual(r.code, 0);
    const ftplib = await runFtplib(
      t.admin,
      "try:\n    ftp.retrbinary('RETR /f.bin', lambda b: None)\nexcept ftplib.error_perm as e:\n    result = str(e)",
      {},
    );
    assert.match(String(ftplib.result), /^550 .*no copy of this file can be read/);
    // The node comes back: served again.
    await t.restartFolder();
    r = await runCurl(t.admin, "/f.bin", ["-o", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(out)));
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster: owners, foreign files, filename policy, reserved names", async () => {
  const t = await setup();
  try {
    const alicePw = newPassword();
    const alice = await addUser(t.root, "alice", { password: alicePw });
    const aliceT: FtpTarget = { ...t.admin, user: "alice", password: alicePw };
    // Alice is jailed to her home /alice (her "/").
    await fsp.writeFile(path.join(t.root, "alice", "foreign.txt"), "made outside\n");
    const local = path.join(t.tmp, "l");
    await fsp.mkdir(local);
    await fsp.writeFile(path.join(local, "a.txt"), "alice's\n");
    let r = await runLftp(aliceT, ["put a.txt -o /a.txt", "mkdir sub"], { cwd: local });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await readFileLink(path.join(t.root, "alice", "a.txt#")))!.uid, alice.uid);
    r = await runLftp(aliceT, ["ls /"]);
    assert.match(r.stdout, /^d.* alice .* sub$/m);
    assert.match(r.stdout, /^-.* alice .* a\.txt$/m);
    assert.match(r.stdout, /^-.* foreign\.txt$/m);
    // The admin makes a directory in alice's home: alice cannot write there.
    r = await runLftp(t.admin, ["mkdir /alice/admins", "put a.txt -o /alice/admin.txt"], {
      cwd: local,
    });
    assert.equal(r.code, 0, r.stderr);
    r = await runCurl(aliceT, "/admins/x.txt", ["-T", path.join(local, "a.txt")]);
    assert.notEqual(r.code, 0, "alice may not write in the admin's directory");
    // Alice reads the admin's file but cannot delete it.
    r = await runCurl(aliceT, "/admin.txt", ["-o", path.join(local, "copy.txt")]);
    assert.equal(r.code, 0, r.stderr);
    const del = await runFtplib(
      aliceT,
      "out = []\nfor cmd in ['DELE /admin.txt', 'DELE /foreign.txt', 'RETR /admin.txt#', 'STOR /a.txt#']:\n" +
        "    try:\n        out.append(ftp.sendcmd(cmd) if cmd.startswith('DELE') else ftp.retrbinary(cmd, lambda b: None) if cmd.startswith('RETR') else ftp.storbinary(cmd, io.BytesIO(b'x')))\n" +
        "    except ftplib.all_errors as e:\n        out.append(str(e))\nresult = out",
      {},
    );
    assert.equal(del.code, 0, del.stderr);
    const [d1, d2, g1, s1] = del.result as string[];
    assert.match(d1, /^550 /);
    assert.match(d2, /^550 .*not a cluster file/);
    assert.match(g1, /^550 /);
    assert.match(s1, /^503 incompatible filename/);
    // The server's own files are out of reach, even for the admin.
    const adm = await runFtplib(
      t.admin,
      "out = []\nfor cmd in ['RETR /.passwd', 'STOR /.passwd', 'RETR /.queue', 'STOR /alice/a.txt#']:\n" +
        "    try:\n        out.append(ftp.retrbinary(cmd, lambda b: None) if cmd.startswith('RETR') else ftp.storbinary(cmd, io.BytesIO(b'x')))\n" +
        "    except ftplib.all_errors as e:\n        out.append(str(e))\nresult = out",
      {},
    );
    const [p1, p2, p3, p4] = adm.result as string[];
    assert.match(p1, /^550 /);
    assert.match(p2, /^55\d /);
    assert.match(p3, /^550 /);
    assert.match(p4, /^503 /);
    assert.match(await fsp.readFile(path.join(t.root, ".passwd"), "utf8"), /^admin:scrypt\$/m);
    // Foreign files are readable; even the admin cannot delete them.
    r = await runCurl(t.admin, "/alice/foreign.txt", ["-o", path.join(local, "f.txt")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fsp.readFile(path.join(local, "f.txt"), "utf8"), "made outside\n");
    r = await runLftp(t.admin, ["rm /alice/foreign.txt"]);
    assert.notEqual(r.code, 0);
    assert.ok(await fsp.stat(path.join(t.root, "alice", "foreign.txt")));
    // Strict names: a blank is refused with 503.
    const bad = await runFtplib(
      t.admin,
      "try:\n    ftp.storbinary('STOR /a b.txt', io.BytesIO(b'x'))\nexcept ftplib.all_errors as e:\n    result = str(e)",
      {},
    );
    assert.match(String(bad.result), /^503 incompatible filename/);
    // SITE USERADD by the admin; refused for alice.
    const site = await runFtplib(
      t.admin,
      "result = ftp.sendcmd('SITE USERADD bob ' + args['pw'])",
      { pw: newPassword() },
    );
    assert.match(String(site.result), /^200 user created: \d+/);
    const siteA = await runFtplib(
      aliceT,
      "try:\n    ftp.sendcmd('SITE USERADD eve ' + args['pw'])\nexcept ftplib.all_errors as e:\n    result = str(e)",
      { pw: newPassword() },
    );
    assert.match(String(siteA.result), /^550 /);
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster: active-mode RETR is a third-party transfer from the node; file nodes fall back to proxying", async () => {
  const t = await setup();
  try {
    const body = randomBytes(1_500_000);
    const local = path.join(t.tmp, "l");
    await fsp.mkdir(local);
    await fsp.writeFile(path.join(local, "in.bin"), body);
    let r = await runLftp(t.admin, ["put in.bin -o /f.bin"], { cwd: local });
    assert.equal(r.code, 0, r.stderr);
    await storeOnce(t.srv.ctx, t.srv.queue);
    const logFile = path.join(t.root, ".log", "cluster.log");
    for (const [i, args] of [["get /f.bin -o a.bin"], ["get -c /f.bin -o a.bin"]].entries()) {
      r = await runLftp(t.admin, args, { cwd: local, passive: false });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(body.equals(await fsp.readFile(path.join(local, "a.bin"))));
      // The log is written asynchronously: give it a moment.
      let direct: RegExpMatchArray | null = null;
      for (let wait = 0; wait < 40 && (direct?.length ?? 0) < i + 1; wait++) {
        if (wait > 0) await new Promise((res) => setTimeout(res, 50));
        direct = (await fsp.readFile(logFile, "utf8")).match(
          /RETR \/f\.bin sent by .* straight to 127\.0\.0\.1/g,
        );
      }
      assert.equal(direct?.length, i + 1, "the node sent the data itself");
    }
    r = await runCurl(t.admin, "/f.bin", [
      "-P",
      "127.0.0.1",
      "-C",
      "1000",
      "-o",
      path.join(local, "b.bin"),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.subarray(1000).equals(await fsp.readFile(path.join(local, "b.bin"))));
  } finally {
    await t.cleanup();
  }
  // A cluster whose only node is a folder: no third party, the server streams it.
  const [tmp, removeTmp] = await tempDir("hop-cluster-");
  const { pathToFileURL } = await import("node:url");
  await fsp.mkdir(path.join(tmp, "n"));
  const { srv, admin: tt } = await serveClusterInProcess({
    root: path.join(tmp, "root"),
    nodes: [pathToFileURL(path.join(tmp, "n")).href],
    replicas: 1,
  });
  try {
    const body = randomBytes(300_000);
    await fsp.writeFile(path.join(tmp, "in.bin"), body);
    let r = await runCurl(tt, "/x.bin", ["-T", path.join(tmp, "in.bin")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await storeOnce(srv.ctx, srv.queue, { replicas: 1 })).stored, 1);
    r = await runLftp(tt, ["get /x.bin -o out.bin"], { cwd: tmp, passive: false });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(body.equals(await fsp.readFile(path.join(tmp, "out.bin"))));
  } finally {
    await srv.close();
    await removeTmp();
  }
});
