/**
 * A sick node holds no one hostage: a pyftpdlib node frozen with SIGSTOP (it accepts
 * connections, as the kernel does, and answers nothing).
 *
 * - The node client: reads, writes and health checks of the frozen node fail after the
 *   reply timeout, not the transfer timeout; a write cut by the freeze fails with its
 *   temporary file named (a leftover), and the target name never holds a cut-off file;
 *   thawed, the node works again.
 * - `hop cluster serve` with three nodes, one frozen: every upload reaches two copies on
 *   the healthy nodes while it stays frozen; a download whose first copy is on the
 *   frozen node is served from another copy, passive and active (third-party).
 *
 * The frozen nodes get generous transfer timeouts (600 s), so only the reply timeout
 * can make these pass; curl's and the loops' limits are generous beyond it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import process from "node:process";
import { Buffer } from "node:buffer";
import { PassThrough, Readable } from "node:stream";
import { readFileLink, stagedId, writeInfo } from "../src/cluster/links.ts";
import { NODE_TEMP, NodeLeftoverError, openNode } from "../src/cluster/nodes.ts";
import { filesUnder } from "./helpers/trees.ts";
import { startClusterServe } from "./helpers/cluster.ts";
import { runCurl } from "./helpers/ftp_clients.ts";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import { tempDir } from "./helpers/temp.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `f` with `node` frozen (SIGSTOP), thawing it afterwards whatever happens. */
async function frozen<T>(node: TestFtpServer, f: () => Promise<T>): Promise<T> {
  process.kill(node.pid, "SIGSTOP");
  try {
    return await f();
  } finally {
    process.kill(node.pid, "SIGCONT");
  }
}

Deno.test("a frozen node fails fast for reads, writes and health; a cut write leaves only a named temp", async () => {
  const [dir, removeDir] = await tempDir("hop-sick-");
  const py = await startPyftpdlib({ root: dir });
  const node = openNode(`${py.loginUrl()}?connect-timeout=2&timeout=600`, { downForMs: 100 });
  const cut = openNode(`${py.loginUrl()}?connect-timeout=2&timeout=3`);
  try {
    const body = randomBytes(100_000);
    await node.put("ab/cd/250101-120000-a.bin", Readable.from([body]), body.length);
    await frozen(py, async () => {
      await assert.rejects(() => node.get("ab/cd/250101-120000-a.bin", 0));
      await assert.rejects(() =>
        node.put("ab/cd/250101-120000-b.bin", Readable.from([body]), body.length)
      );
      assert.equal(await node.health(), false);
      assert.equal(node.isDown(), true);
    });
    // A write the freeze cuts off: its temporary file is named; the target stays empty.
    const feed = new PassThrough();
    // Far more than the kernel's socket buffers hold: the writes must wait on the node.
    const big = randomBytes(64 * 1024 * 1024);
    const writing = cut.put("ef/gh/250101-120000-c.bin", feed, big.length);
    writing.catch(() => {});
    feed.write(big.subarray(0, 1024 * 1024));
    for (let i = 0; i < 200 && !(await filesUnder(dir)).some((f) => NODE_TEMP.test(f)); i++) {
      await sleep(50);
    }
    let error: unknown = null;
    await frozen(py, async () => {
      feed.end(big.subarray(1024 * 1024));
      error = await writing.then(() => null, (e) => e);
    });
    assert.ok(error instanceof NodeLeftoverError, String(error));
    assert.match((error as NodeLeftoverError).leftover, NODE_TEMP);
    assert.equal(await node.size("ef/gh/250101-120000-c.bin"), null, "no cut-off file");
    // Thawed: the node works again, and the leftover can be deleted.
    await sleep(200);
    assert.equal(await node.health(), true);
    // (The DELE sent before the freeze ended may still have been carried out on thawing.)
    await node.remove((error as NodeLeftoverError).leftover);
    assert.deepEqual(await filesUnder(dir), ["ab/cd/250101-120000-a.bin"]);
    const back: Uint8Array[] = [];
    for await (const c of await node.get("ab/cd/250101-120000-a.bin", 0)) back.push(c);
    assert.equal(Buffer.concat(back).compare(body), 0);
  } finally {
    node.close();
    cut.close();
    await py.stop();
    await removeDir();
  }
});

Deno.test("cluster serve with a frozen node: uploads reach two healthy nodes; RETR fails over, passive and active", async () => {
  const [tmp, removeTmp] = await tempDir("hop-sick-");
  const dirs = ["a", "b", "c"].map((n) => path.join(tmp, n));
  for (const d of dirs) await fsp.mkdir(d);
  const py = await Promise.all(dirs.map((d) => startPyftpdlib({ root: d })));
  const [, , sick] = py;
  const root = path.join(tmp, "root");
  const srv = await startClusterServe([
    "--root",
    root,
    ...py.flatMap((p) => ["--node", p.loginUrl()]),
    "--replicas",
    "2",
  ], { cwd: tmp });
  const t = srv.admin;
  const stored = async (name: string) => {
    const l = await readFileLink(path.join(root, `${name}#`));
    return l !== null && stagedId(l) === null && l.copies.length === 2 ? l : null;
  };
  try {
    // One file stored everywhere first, its first copy then put on the node to freeze.
    const first = randomBytes(300_000);
    await fsp.writeFile(path.join(tmp, "first.bin"), first);
    assert.equal((await runCurl(t, "/first.bin", ["-T", path.join(tmp, "first.bin")])).code, 0);
    for (let i = 0; i < 300 && !(await stored("first.bin")); i++) await sleep(100);
    let link = await stored("first.bin");
    assert.ok(link, "first.bin stored on two nodes");
    const sickKey = `127.0.0.1:${sick.port}`;
    if (!link.copies.some((c) => c.node === sickKey)) {
      // Its second copy goes to the node to freeze (a copy a link names is a copy).
      const p = link.copies[0].path;
      const from = dirs[py.findIndex((x) => `127.0.0.1:${x.port}` === link!.copies[1].node)];
      await fsp.mkdir(path.dirname(path.join(dirs[2], p)), { recursive: true });
      await fsp.copyFile(path.join(from, p), path.join(dirs[2], p));
      link = { ...link, copies: [link.copies[0], { node: sickKey, path: p }] };
    }
    const copies = [...link.copies].sort((x) => x.node === sickKey ? -1 : 1);
    await writeInfo(path.join(root, ".staging", "tmp"), path.join(root, "first.bin#"), {
      ...link,
      copies,
    });

    await frozen(sick, async () => {
      // Uploads while the node is frozen: each reaches two copies on the healthy nodes.
      const names: string[] = [];
      for (let i = 0; i < 8; i++) {
        const name = `up-${i}.bin`;
        await fsp.writeFile(path.join(tmp, name), randomBytes(200_000 + i));
        const r = await runCurl(t, `/${name}`, ["-T", path.join(tmp, name)]);
        assert.equal(r.code, 0, r.stderr);
        names.push(name);
      }
      for (const name of names) {
        for (let i = 0; i < 600 && !(await stored(name)); i++) await sleep(100);
        const l = await stored(name);
        assert.ok(l, `${name} has two copies while a node is frozen`);
        assert.ok(l.copies.every((c) => c.node !== sickKey), `${name} not on the frozen node`);
      }
      // Downloads of the file whose first copy is on the frozen node.
      for (const active of [false, true]) {
        const out = path.join(tmp, `got-${active}`);
        const r = await runCurl(t, "/first.bin", [
          "--max-time",
          "25",
          "-o",
          out,
          ...(active ? ["--ftp-port", "127.0.0.1"] : []),
        ]);
        assert.equal(r.code, 0, `${active ? "active" : "passive"} RETR: ${r.stderr}`);
        assert.equal(Buffer.compare(await fsp.readFile(out), first), 0);
      }
    });
  } finally {
    await srv.stop("SIGTERM");
    for (const p of py) await p.stop();
    await removeTmp();
  }
});
