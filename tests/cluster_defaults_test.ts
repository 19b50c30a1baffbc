/**
 * Defaults a user expects from `hop cluster serve` (the hop command), with real clients:
 *
 * - lftp `mirror -R` of a tree with blanks, accents and other signs round-trips on the
 *   default settings, contents and modification times (MFMT; MLSD to read them back);
 *   names are still %-encoded at rest;
 * - MFMT and both forms of SITE UTIME set a file's time (ftplib); MLSD and MLST give the
 *   owner, group and permission facts; a read-only user cannot set times;
 * - two folders of one FTP server are two nodes; a link file written before node keys
 *   named the folder (`host:port`) is still read as that node's.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { filesUnder } from "./helpers/trees.ts";
import { startClusterServe, startOneNodeCluster } from "./helpers/cluster.ts";
import { lftpQuote, localTarget, runCurl, runFtplib, runLftp } from "./helpers/ftp_clients.ts";
import { startPyftpdlib } from "./helpers/ftp_servers.ts";
import { runHop } from "./helpers/hop.ts";
import { tempDir } from "./helpers/temp.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const TREE: [string, number][] = [
  ["My Documents/Rapport final (v2).txt", Date.UTC(2021, 2, 4, 5, 6, 7)],
  ["My Documents/été 2024/photo à la plage.jpg", Date.UTC(2024, 7, 1, 12, 0, 0)],
  ["My Documents/été 2024/ünïcødé €.bin", Date.UTC(2019, 0, 1, 0, 0, 1)],
  ["notes #1 & 50%.txt", Date.UTC(2010, 11, 31, 23, 59, 59)],
  ["plain.txt", Date.UTC(2000, 0, 1)],
];

async function writeTree(dir: string): Promise<void> {
  for (const [rel, ms] of TREE) {
    const f = path.join(dir, rel);
    await fsp.mkdir(path.dirname(f), { recursive: true });
    await fsp.writeFile(f, `${rel}\n`.repeat(100));
    await fsp.utimes(f, new Date(ms), new Date(ms));
  }
}

Deno.test("lftp mirror -R of a tree with blanks and accents round-trips with mtimes, on the defaults", async () => {
  const c = await startOneNodeCluster();
  const { tmp, root } = c;
  try {
    const t = c.admin;
    const up = path.join(tmp, "up");
    const down = path.join(tmp, "down");
    await writeTree(up);
    let r = await runLftp(t, [`mirror -R ${lftpQuote(up)} /tree`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    r = await runLftp(t, [`mirror /tree ${lftpQuote(down)}`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const [rel, ms] of TREE) {
      const f = path.join(down, rel);
      assert.equal(await fsp.readFile(f, "utf8"), `${rel}\n`.repeat(100), rel);
      assert.equal((await fsp.stat(f)).mtimeMs, ms, `${rel} keeps its modification time`);
    }
    // At rest, names are %-encoded (only letters, digits and -+_. on the root's disk).
    const stored = await filesUnder(path.join(root, "tree"));
    assert.ok(
      stored.includes("My%20Documents/%C3%A9t%C3%A9%202024/photo%20%C3%A0%20la%20plage.jpg#"),
    );
    assert.ok(stored.every((f) => /^[A-Za-z0-9%+_.\-/]+#$/.test(f)), stored.join("\n"));
  } finally {
    await c.close();
  }
});

Deno.test("MFMT, SITE UTIME (both forms), owner and mode facts in MLSD/MLST", async () => {
  const c = await startOneNodeCluster(["--anonymous"]);
  try {
    const t = c.admin;
    const r = await runFtplib(
      t,
      [
        "out = {}",
        "ftp.storbinary('STOR /pub/f.txt', io.BytesIO(b'abc'))",
        "out['feat'] = ftp.sendcmd('FEAT')",
        "out['mfmt'] = ftp.sendcmd('MFMT 20200102030405 /pub/f.txt')",
        "out['mdtm1'] = ftp.sendcmd('MDTM /pub/f.txt')",
        "out['utime2'] = ftp.sendcmd('SITE UTIME 201101020304 /pub/f.txt')",
        "out['mdtm2'] = ftp.sendcmd('MDTM /pub/f.txt')",
        "out['utime5'] = ftp.sendcmd('SITE UTIME /pub/f.txt 20210101000000 20220304050607 20210101000000 UTC')",
        "out['mdtm3'] = ftp.sendcmd('MDTM /pub/f.txt')",
        "out['mlsd'] = [[n, f] for n, f in ftp.mlsd('/pub', ['type', 'UNIX.mode', 'UNIX.owner', 'UNIX.group', 'perm'])]",
        "out['mlst'] = ftp.sendcmd('MLST /pub/f.txt')",
        "try:",
        "    ftp.sendcmd('MFMT 20201301000000 /pub/f.txt')",
        "except ftplib.all_errors as e:",
        "    out['bad'] = str(e)",
        "result = out",
      ].join("\n"),
      {},
    );
    assert.equal(r.code, 0, r.stderr);
    const out = r.result as Record<string, unknown>;
    assert.match(out.feat as string, /\n MFMT\r?\n/);
    assert.match(out.feat as string, /UNIX\.mode\*;UNIX\.owner\*;UNIX\.group\*;/);
    assert.equal(out.mfmt, "213 Modify=20200102030405; /pub/f.txt");
    assert.equal(out.mdtm1, "213 20200102030405");
    assert.match(out.utime2 as string, /^200 /);
    assert.equal(out.mdtm2, "213 20110102030400");
    assert.match(out.utime5 as string, /^200 /);
    assert.equal(out.mdtm3, "213 20220304050607");
    assert.deepEqual(out.mlsd, [["f.txt", {
      type: "file",
      "unix.mode": "0644",
      "unix.owner": "admin",
      "unix.group": "cluster",
      perm: "rwadf",
    }]]);
    assert.match(out.mlst as string, /UNIX\.owner=admin;UNIX\.group=cluster; \/pub\/f\.txt/);
    assert.match(out.bad as string, /^501 /);
    // Anonymous (read-only) cannot change times.
    const anon = await runFtplib(
      localTarget(c.srv.port, "anonymous", "me@example.org"),
      "try:\n    ftp.sendcmd('MFMT 20200102030405 f.txt')\nexcept ftplib.all_errors as e:\n    result = str(e)",
      {},
    );
    assert.match(String(anon.result), /^550 /);
  } finally {
    await c.close();
  }
});

Deno.test("two folders of one FTP server are two nodes; links naming host:port are still read", async () => {
  const [tmp, removeTmp] = await tempDir("hop-defaults-");
  const serverDir = path.join(tmp, "ftp");
  for (const d of ["a", "b"]) await fsp.mkdir(path.join(serverDir, d), { recursive: true });
  const py = await startPyftpdlib({ root: serverDir });
  const root = path.join(tmp, "root");
  const nodeA = py.loginUrl("a");
  const nodeB = py.loginUrl("b");
  try {
    // Before: a cluster whose one node was folder a of the server, with the older key.
    const body = "written by an older hop\n";
    const nodePath = "ab/cd/250101-120000-old.txt";
    await fsp.mkdir(path.join(serverDir, "a", "ab", "cd"), { recursive: true });
    await fsp.writeFile(path.join(serverDir, "a", nodePath), body);
    await fsp.mkdir(root);
    await fsp.writeFile(
      path.join(root, "old.txt#"),
      `old.txt ${body.length} 0 1735732800\nserver 127.0.0.1:${py.port} ${nodePath}\n`,
    );
    let srv = await startClusterServe(["--root", root, "--node", nodeA], { cwd: tmp });
    let t = srv.admin;
    const got = await runCurl(t, "/old.txt", []);
    assert.equal(got.stdout, body, got.stderr);
    await srv.stop("SIGTERM");
    const audit1 = await runHop(["audit", "--root", root, "--node", nodeA], { cwd: tmp });
    assert.equal(audit1.code, 0, audit1.stdout + audit1.stderr);

    // Now both folders are nodes: a new file gets a copy in each.
    srv = await startClusterServe(
      ["--root", root, "--node", nodeA, "--node", nodeB, "--replicas", "2"],
      { cwd: tmp },
    );
    t = { ...t, port: srv.port };
    await fsp.writeFile(path.join(tmp, "new.txt"), "two copies\n");
    const put = await runCurl(t, "/new.txt", ["-T", path.join(tmp, "new.txt")]);
    assert.equal(put.code, 0, put.stderr);
    let link = "";
    for (let i = 0; i < 300; i++) {
      link = await fsp.readFile(path.join(root, "new.txt#"), "utf8");
      if ((link.match(/^server /gm) ?? []).length === 2) break;
      await sleep(100);
    }
    assert.match(link, new RegExp(`^server ftp://127\\.0\\.0\\.1:${py.port}/a \\S+$`, "m"));
    assert.match(link, new RegExp(`^server ftp://127\\.0\\.0\\.1:${py.port}/b \\S+$`, "m"));
    for (const d of ["a", "b"]) {
      const files = await filesUnder(path.join(serverDir, d));
      assert.ok(files.some((f) => f.endsWith("-new.txt")), `a copy in folder ${d}: ${files}`);
    }
    const back = await runCurl(t, "/new.txt", []);
    assert.equal(back.stdout, "two copies\n");
    await srv.stop("SIGTERM");
  } finally {
    await py.stop();
    await removeTmp();
  }
});

Deno.test("a start that cannot listen creates no admin; the next start does, and shows its password", async () => {
  const [tmp, removeTmp] = await tempDir("hop-defaults-");
  const taken = net.createServer().listen(0, "127.0.0.1");
  await new Promise((r) => taken.once("listening", r));
  const port = (taken.address() as net.AddressInfo).port;
  const root = path.join(tmp, "root");
  const args = ["--root", root, "--node", `file://${tmp}/node`];
  try {
    const failed = await runHop(["cluster", "serve", "--listen", `127.0.0.1:${port}`, ...args], {
      cwd: tmp,
    });
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    assert.match(failed.stderr, /cannot listen on 127\.0\.0\.1:\d+/);
    const users = await runHop(["cluster", "user", "list", "--root", root], { cwd: tmp });
    assert.equal(users.stdout.trim(), "", "no user was created");
    await assert.rejects(
      fsp.stat(path.join(root, ".hop", "serve.lease")),
      "the lease was given back",
    );
    const srv = await startClusterServe(args, { cwd: tmp });
    try {
      assert.ok(
        srv.adminPassword,
        "the start that listens creates the admin and says its password",
      );
      const r = await runCurl(srv.admin, "/", []);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await srv.stop("SIGTERM");
    }
  } finally {
    taken.close();
    await removeTmp();
  }
});
