/**
 * Crash safety of the cluster server: SIGKILL mid-STOR (and with acknowledged uploads
 * not yet on the nodes), then restart on the same root. No link file points at missing
 * data, no upload that got 226 is lost, the queue resumes and the files reach the nodes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { readInfo, stagedId } from "../src/cluster/links.ts";
import { downloadBytes, loginBasicFtp as login } from "./helpers/ftp_clients.ts";
import { startHopFolderServer, startPyftpdlib } from "./helpers/ftp_servers.ts";
import { type ClusterProcess, startClusterServe } from "./helpers/cluster.ts";
import { makeDirs, tempDir } from "./helpers/temp.ts";

/** `hop cluster serve` over `root` with `nodes` (SIGKILLed by `stop()`). */
function startChild(root: string, nodes: string[], ...more: string[]): Promise<ClusterProcess> {
  return startClusterServe(["--root", root, ...nodes.flatMap((n) => ["--node", n]), ...more]);
}

/**
 * The two nodes, over folders `a` and `b` of `tmp`: pyftpdlib (at `bytesPerSecond`
 * when given) and hop's folder server; `nodeDirs` maps each node's key to its folder.
 */
async function startNodes(tmp: string, bytesPerSecond = 0) {
  const [dirA, dirB] = await makeDirs(tmp, ["a", "b"]);
  const py = await startPyftpdlib({ root: dirA, bytesPerSecond });
  const folder = await startHopFolderServer({ root: dirB });
  const nodes = [py.loginUrl(), folder.loginUrl()];
  const nodeDirs = new Map([[`127.0.0.1:${py.port}`, dirA], [`127.0.0.1:${folder.port}`, dirB]]);
  return { dirA, dirB, py, folder, nodes, nodeDirs };
}

/** Every link file in the tree: its staged data or its node copies exist, with the right size. */
async function checkLinks(root: string, nodeDirs: Map<string, string>): Promise<number> {
  let n = 0;
  for (const e of await fsp.readdir(root, { withFileTypes: true, recursive: true })) {
    const full = path.join(e.parentPath, e.name);
    if (!e.isFile() || !e.name.endsWith("#") || full.includes(`${path.sep}.`)) continue;
    const info = await readInfo(full);
    if (info?.kind !== "file") continue;
    n++;
    const id = stagedId(info);
    if (id !== null) {
      assert.equal(
        (await fsp.stat(path.join(root, ".staging", id))).size,
        info.size,
        `${full} staged data`,
      );
    }
    assert.ok(id !== null || info.copies.length > 0, `${full} has data somewhere`);
    for (const c of info.copies) {
      const dir = nodeDirs.get(c.node);
      assert.ok(dir, `node ${c.node} known`);
      assert.equal(
        (await fsp.stat(path.join(dir!, c.path))).size,
        info.size,
        `${full} copy on ${c.node}`,
      );
    }
  }
  return n;
}

Deno.test("cluster: SIGKILL mid-STOR, restart: acknowledged uploads kept, nothing dangling", async () => {
  const [tmp, removeTmp] = await tempDir("hop-crash-");
  const { dirA, dirB, py, folder, nodes, nodeDirs } = await startNodes(tmp);
  const root = path.join(tmp, "root");
  let child: ClusterProcess | null = null;
  try {
    // First life: no store worker, so acknowledged uploads are still staged at the kill.
    child = await startChild(root, nodes, "--no-store-worker");
    const admin = child.admin;
    const done = new Map<string, Uint8Array>();
    const c = await login(admin);
    for (let i = 0; i < 5; i++) {
      const body = randomBytes(50_000 + i);
      await c.uploadFrom(Readable.from([body]), `/ok-${i}.bin`);
      done.set(`/ok-${i}.bin`, body);
    }
    c.close();
    // An upload in flight: data keeps coming slowly, the server is killed mid-STOR.
    const c2 = await login(admin);
    let sent = 0;
    const slow = new Readable({
      read() {
        if (sent > 2_000_000) return;
        setTimeout(() => {
          sent += 65536;
          this.push(randomBytes(65536));
        }, 5);
      },
    });
    const inflight = c2.uploadFrom(slow, "/partial.bin").catch((e) => e);
    while (sent < 500_000) await new Promise((r) => setTimeout(r, 20));
    await child.stop();
    child = null;
    assert.ok(await inflight instanceof Error, "the killed upload did not get 226");
    c2.close();
    slow.destroy();
    const staged = (await fsp.readdir(path.join(root, ".staging"))).filter((n) => n !== "tmp");
    assert.equal(staged.length, 6, "five acknowledged uploads and the partial one are staged");
    assert.equal(await checkLinks(root, nodeDirs), 5);

    // Second life, with the store worker: the partial upload is gone, the rest reaches the nodes.
    child = await startChild(root, nodes);
    assert.equal(child.adminPassword, undefined, "the admin exists already");
    const deadline = Date.now() + 20_000;
    for (;;) {
      const left = (await fsp.readdir(path.join(root, ".staging"))).filter((n) => n !== "tmp");
      if (left.length === 0) break;
      assert.ok(Date.now() < deadline, `staging still holds ${left}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await checkLinks(root, nodeDirs), 5);
    const c3 = await login({ ...admin, port: child.port });
    const names = (await c3.list("/")).map((f) => f.name).sort();
    assert.deepEqual(names, [
      "lost+found",
      "ok-0.bin",
      "ok-1.bin",
      "ok-2.bin",
      "ok-3.bin",
      "ok-4.bin",
    ]);
    for (const [name, body] of done) {
      assert.deepEqual(new Uint8Array(await downloadBytes(c3, name)), new Uint8Array(body), name);
    }
    c3.close();
    for (const dir of [dirA, dirB]) {
      const files = (await fsp.readdir(dir, { recursive: true, withFileTypes: true })).filter((e) =>
        e.isFile()
      );
      assert.equal(files.length, 5, `five files on ${dir}`);
    }
  } finally {
    await child?.stop();
    await folder.stop();
    await py.stop();
    await removeTmp();
  }
});

Deno.test("cluster: SIGKILL mid-move to the nodes, restart: the move resumes, no orphan, no dangling link", async () => {
  const [tmp, removeTmp] = await tempDir("hop-crash-");
  // A slow node (1 MB/s) so the kill lands while the copy is under way.
  const started = await startNodes(tmp, 1_000_000);
  const { dirA, dirB, folder, nodes, nodeDirs } = started;
  let py = started.py;
  const root = path.join(tmp, "root");
  let child: ClusterProcess | null = null;
  try {
    child = await startChild(root, nodes);
    const body = randomBytes(4_000_000);
    const c = await login(child.admin);
    await c.uploadFrom(Readable.from([body]), "/big.bin");
    c.close();
    // Wait for a partial copy on the slow node, then kill.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const files = await fsp.readdir(dirA, { recursive: true, withFileTypes: true });
      const f = files.find((e) => e.isFile());
      const size = f ? (await fsp.stat(path.join(f.parentPath, f.name))).size : 0;
      if (size > 0 && size < body.length) break;
      assert.ok(Date.now() < deadline, "a copy started");
      await new Promise((r) => setTimeout(r, 20));
    }
    await child.stop();
    child = null;
    assert.equal(await checkLinks(root, nodeDirs), 1, "the link still points at the staged data");
    // Restart the node at full speed and the server: the move completes.
    py = await py.restart({ bytesPerSecond: 0 });
    child = await startChild(root, nodes);
    for (;;) {
      const left = (await fsp.readdir(path.join(root, ".staging"))).filter((n) => n !== "tmp");
      if (left.length === 0) break;
      assert.ok(Date.now() < deadline + 15_000, `staging still holds ${left}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await checkLinks(root, nodeDirs), 1);
    for (const dir of [dirA, dirB]) {
      const files = (await fsp.readdir(dir, { recursive: true, withFileTypes: true })).filter((e) =>
        e.isFile()
      );
      assert.equal(files.length, 1, `one file on ${dir}, no orphan`);
      assert.ok(body.equals(await fsp.readFile(path.join(files[0].parentPath, files[0].name))));
    }
  } finally {
    await child?.stop();
    await folder.stop();
    await py.stop();
    await removeTmp();
  }
});
