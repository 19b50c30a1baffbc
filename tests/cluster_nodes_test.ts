/**
 * Storage node clients against real peers: a pyftpdlib server and a local folder.
 * Put, get from an offset, size, remove, a missing file, a node that goes down
 * and comes back (pooled connections are replaced).
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { pathToFileURL } from "node:url";
import { NODE_TEMP, openNode, type StorageNode } from "../src/cluster/nodes.ts";
import { filesUnder } from "./helpers/trees.ts";
import { startPyftpdlib } from "./helpers/ftp_servers.ts";
import { tempDir } from "./helpers/temp.ts";

async function readAll(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of s) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function data(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7919 + (i >> 8)) & 255;
  return b;
}

async function exercise(node: StorageNode, dir: string) {
  const body = data(3 * 1024 * 1024 + 17);
  const p = "ab/cd/260101-120000-file.bin";
  assert.equal(
    await node.put(p, Readable.from([body.subarray(0, 1000), body.subarray(1000)]), body.length),
    body.length,
  );
  assert.deepEqual(new Uint8Array(await fsp.readFile(path.join(dir, p))), body);
  assert.equal(await node.size(p), body.length);
  assert.deepEqual(await readAll(await node.get(p, 0)), body);
  assert.deepEqual(await readAll(await node.get(p, 1_000_000)), body.subarray(1_000_000));
  // An empty file streams as empty.
  await node.put("e/empty", Readable.from([]), 0);
  assert.equal((await readAll(await node.get("e/empty", 0))).length, 0);
  // Missing file: get rejects before any byte; size is null; remove says false.
  await assert.rejects(node.get("no/such/file", 0));
  assert.equal(await node.size("no/such/file"), null);
  assert.equal(await node.remove("no/such/file"), false);
  // A reader that stops early releases the node.
  const s = await node.get(p, 0);
  const r = s.getReader();
  await r.read();
  await r.cancel();
  assert.equal(await node.remove(p), true);
  assert.equal(await node.size(p), null);
  await assert.rejects(node.put("../escape", Readable.from([body]), body.length));
  // A write whose size does not come out right leaves nothing: not the file, no temp.
  await node.put(p, Readable.from([body]), body.length);
  await assert.rejects(node.put(p, Readable.from([body.subarray(0, 5000)]), body.length), /size/);
  assert.equal(await node.size(p), body.length, "the earlier copy is untouched");
  await assert.rejects(node.put("cut/off.bin", Readable.from([body.subarray(9)]), body.length));
  assert.equal(await node.size("cut/off.bin"), null);
  assert.deepEqual((await filesUnder(dir)).filter((f) => NODE_TEMP.test(f)), []);
  assert.equal(await node.remove(p), true);
  assert.equal(await node.health(), true);
}

Deno.test("folder node: put, get, size, remove", async () => {
  const [dir, removeDir] = await tempDir("hop-node-");
  const node = openNode(pathToFileURL(dir).href);
  try {
    await exercise(node, dir);
    assert.ok((await node.freeSpace())! > 0);
    assert.equal(node.load, 0);
  } finally {
    node.close();
    await removeDir();
  }
});

Deno.test("pyftpdlib node: put, get, size, remove, down and back", async () => {
  const [dir, removeDir] = await tempDir("hop-node-");
  let py = await startPyftpdlib({ root: dir });
  const node = openNode(py.loginUrl(), { downForMs: 200 });
  try {
    await exercise(node, dir);
    assert.equal(node.load, 0);
    await node.put("x/y", Readable.from([data(10)]), 10);
    // Node goes down: operations fail, the node is marked down.
    await py.stop();
    await assert.rejects(node.get("x/y", 0));
    assert.equal(await node.health(), false);
    assert.equal(node.isDown(), true);
    // Back on the same port: stale pooled connections are replaced.
    py = await py.restart();
    assert.deepEqual(await readAll(await node.get("x/y", 3)), data(10).subarray(3));
    assert.equal(node.isDown(), false);
  } finally {
    node.close();
    await py.stop();
    await removeDir();
  }
});
