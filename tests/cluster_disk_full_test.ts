/**
 * A full disk on the cluster server: `hop cluster serve` with its root on a small tmpfs
 * (mounted by this test, 8 MB) and its only node away, so uploads pile up in staging.
 *
 * - uploads are taken up to the staging quota, then answered 452 (never 426 or 451,
 *   never a reset), and the log says why once;
 * - an upload that would pass the quota half-way is cut with 452 and leaves nothing;
 * - the node comes back: the store worker moves the staged files, uploads are taken
 *   again;
 * - the free-space reserve: with the disk filled to below it, uploads get 452 again;
 * - every upload answered 226 reads back byte-exact.
 *
 * Needs root to mount the tmpfs; when the mount is refused the test fails and says so.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { Client, FTPError } from "basic-ftp";
import { startClusterServe } from "./helpers/cluster.ts";
import { downloadBytes } from "./helpers/ftp_clients.ts";
import { newLogin } from "./helpers/credentials.ts";
import { freePort, startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import { makeDirs, tempDir } from "./helpers/temp.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** 226 (null) or the error code of an upload. */
async function upload(c: Client, name: string, data: Uint8Array): Promise<number | null> {
  try {
    await c.uploadFrom(Readable.from([data]), name);
    return null;
  } catch (e) {
    if (e instanceof FTPError) return e.code;
    throw e;
  }
}

async function stagedFiles(root: string): Promise<string[]> {
  return (await fsp.readdir(path.join(root, ".staging"))).filter((n) => n !== "tmp");
}

Deno.test("disk full: 452 at the staging quota and the free-space reserve; nothing lost, nothing left", async () => {
  const [tmp, removeTmp] = await tempDir("hop-full-");
  const [root, nodeDir] = await makeDirs(tmp, ["root", "node"]);
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", root]);
  assert.equal(m.status, 0, `cannot mount a tmpfs (${m.stderr}); this test needs root`);
  const port = await freePort();
  const login = newLogin("node");
  let node: TestFtpServer | null = null;
  let srv: Awaited<ReturnType<typeof startClusterServe>> | null = null;
  let c: Client | null = null;
  try {
    srv = await startClusterServe([
      "--root",
      root,
      "--node",
      `ftp://${login.user}:${login.password}@127.0.0.1:${port}/`,
      "--replicas",
      "1",
      "--min-free",
      "1M",
      "--staging-quota",
      "3M",
    ], { cwd: tmp });
    c = new Client(30_000);
    await c.access(srv.admin);
    const kept = new Map<string, string>();

    // The node is away: uploads stay staged, up to the quota.
    const codes: (number | null)[] = [];
    for (let i = 0; i < 6; i++) {
      const data = randomBytes(700 * 1024);
      const code = await upload(c, `f${i}.bin`, data);
      codes.push(code);
      if (code === null) kept.set(`f${i}.bin`, sha(data));
    }
    // 4 x 700 KB fit in 3 MB; the fifth passes the quota half-way: cut with 452, and
    // nothing of it stays; then the staging area is full.
    assert.deepEqual(codes, [null, null, null, null, 452, 452]);
    assert.equal(await upload(c, "big.bin", randomBytes(2 * 1024 * 1024)), 452);
    assert.equal((await stagedFiles(root)).length, 4);
    assert.equal((await c.send("NOOP")).code, 200, "the session goes on");
    const log = await fsp.readFile(path.join(root, ".log", "cluster.log"), "utf8");
    assert.equal(log.match(/DISK FULL/g)?.length, 1, `one log line says why, once:\n${log}`);
    assert.match(log, /quota is 3 MB|quota is 3\.1 MB/);

    // The node is back: the store worker empties the staging area; uploads go in again.
    node = await startPyftpdlib({ root: nodeDir, port, ...login });
    for (let i = 0; i < 600 && (await stagedFiles(root)).length > 0; i++) await sleep(100);
    assert.deepEqual(await stagedFiles(root), [], "staged uploads moved to the node");
    const again = randomBytes(700 * 1024);
    assert.equal(await upload(c, "again.bin", again), null);
    kept.set("again.bin", sha(again));

    // The disk itself nearly full: below the reserve, uploads get 452.
    for (let i = 0; i < 600 && (await stagedFiles(root)).length > 0; i++) await sleep(100);
    const filler = await fsp.open(path.join(root, ".hop", "filler"), "w");
    for (;;) {
      const st = await fsp.statfs(root);
      const free = Number(st.bavail) * Number(st.bsize);
      if (free <= 600 * 1024) break;
      await filler.write(new Uint8Array(free - 512 * 1024));
    }
    await filler.close();
    await sleep(1100); // the free space is read at most once a second
    assert.equal(await upload(c, "tight.bin", randomBytes(100 * 1024)), 452);
    await fsp.rm(path.join(root, ".hop", "filler"));
    await sleep(1100);
    const last = randomBytes(100 * 1024);
    assert.equal(await upload(c, "last.bin", last), null);
    kept.set("last.bin", sha(last));

    // Everything answered 226 is there, byte-exact.
    for (const [name, digest] of kept) {
      assert.equal(sha(await downloadBytes(c, name)), digest, name);
    }
  } finally {
    c?.close();
    await srv?.stop("SIGTERM");
    await node?.stop();
    spawnSync("umount", [root]);
    await removeTmp();
  }
});
