/**
 * Reading a file from an FTP storage node (`StorageNode.get`, used by proxied RETR):
 * byte-exact from any offset, backpressure (a reader that stops holds the node back:
 * the server never buffers a whole file), a refused RETR leaves the node usable, and a
 * reader that goes away mid-file frees its connection. The node is pyftpdlib; what it
 * sent is read from the kernel's TCP counters of its sockets (`ss -tinp`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { openNode } from "../src/cluster/nodes.ts";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import { tempDir } from "./helpers/temp.ts";

/** Bytes sent by the open TCP connections of process `pid` (its largest one: the data connection). */
async function bytesSent(pid: number): Promise<number> {
  const lines = (await run("ss", ["-tinpH"])).split("\n");
  let most = 0;
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i].includes(`pid=${pid},`)) continue;
    const m = /bytes_sent:(\d+)/.exec(lines[i + 1]);
    if (m) most = Math.max(most, Number(m[1]));
  }
  return most;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => out += d);
    child.once("error", reject);
    child.once("close", (code) => code === 0 ? resolve(out) : reject(new Error(`${cmd} ${code}`)));
  });
}

/** `p`, or a rejection after 20 s (a leaked pooled connection would hang the test). */
function within<T>(p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no pooled connection came free")), 20_000);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function readAll(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  first: Uint8Array[] = [],
): Promise<Uint8Array> {
  const parts = [...first];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

Deno.test("node reads: exact from offsets, backpressure, refusals and cancels", async () => {
  const [tmp, removeTmp] = await tempDir("hop-node-read-");
  let node: TestFtpServer | null = null;
  let store: ReturnType<typeof openNode> | null = null;
  try {
    node = await startPyftpdlib({ root: tmp });
    store = openNode(node.loginUrl(), { timeoutMs: 10_000 });
    const size = 64 * 1024 * 1024;
    const data = randomBytes(size);
    await fsp.mkdir(path.join(tmp, "aa"));
    await fsp.writeFile(path.join(tmp, "aa", "big.bin"), data);

    // A reader that takes one chunk and stops: the node is held back well before the end.
    const slow = (await store.get("aa/big.bin", 0)).getReader();
    const first = await slow.read();
    assert.ok(!first.done && first.value.byteLength > 0);
    await new Promise((r) => setTimeout(r, 1500));
    const sent = await bytesSent(node.pid);
    assert.ok(sent >= first.value.byteLength, `the data connection is still open (${sent})`);
    assert.ok(sent < size / 2, `the node sent ${sent} of ${size} bytes to a reader that stopped`);
    // Then it reads on: the whole file, byte-exact.
    const whole = await readAll(slow, [first.value]);
    assert.equal(whole.byteLength, size);
    assert.equal(sha(whole), sha(data));

    // From an offset (REST).
    const offset = 12_345_678;
    const tail = await readAll((await store.get("aa/big.bin", offset)).getReader());
    assert.equal(sha(tail), sha(data.subarray(offset)));

    // A missing file is refused before any byte; the node stays usable.
    await assert.rejects(store.get("aa/missing.bin", 0), /reading aa\/missing\.bin/);
    assert.equal(store.isDown(), false);

    // A reader that goes away mid-file; the pool goes on serving (16 times over the cap
    // of pooled connections would hang if cancelled reads kept theirs).
    const capped = openNode(node.loginUrl(), { timeoutMs: 10_000, maxConnections: 2 });
    try {
      for (let i = 0; i < 6; i++) {
        const r = (await within(capped.get("aa/big.bin", 0))).getReader();
        await r.read();
        await r.cancel();
      }
      const again = await readAll(
        (await within(capped.get("aa/big.bin", size - 1000))).getReader(),
      );
      assert.equal(sha(again), sha(data.subarray(size - 1000)));
    } finally {
      capped.close();
    }
  } finally {
    store?.close();
    await node?.stop();
    await removeTmp();
  }
});
