/**
 * One cluster root, one server: two `hop cluster serve` over one root, each in a PID
 * namespace of its own (`unshare -p`, as two hosts sharing a root would be: neither
 * can see the other's process).
 *
 * - the second start is refused while the first holds the lease, and leaves it alone;
 * - the first is frozen (SIGSTOP) in the middle of an upload; once its lease expired
 *   the second takes the root over and serves; the first, thawed, acknowledges nothing
 *   more (its upload in flight fails), stops by itself and leaves the second's lease;
 * - every upload either server answered 226 is there, byte-exact, on two nodes, and
 *   `hop audit` finds the cluster healthy.
 *
 * Needs root (CAP_SYS_ADMIN) for `unshare -p`: when it is refused the test fails and
 * says so. Servers are stopped by pid (the PID namespaces die with them).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import process from "node:process";
import { PassThrough, Readable } from "node:stream";
import type { Client } from "basic-ftp";
import { decodeLease } from "../src/codec/lease.ts";
import { downloadBytes, localTarget, loginBasicFtp } from "./helpers/ftp_clients.ts";
import { serveClusterInProcess } from "./helpers/cluster.ts";
import { freePort } from "./helpers/ftp_servers.ts";
import { childPid, type HopProcess, runHop, spawnHop } from "./helpers/hop.ts";
import { tempDir } from "./helpers/temp.ts";

const UNSHARE = ["unshare", "--pid", "--fork", "--kill-child"];
const LEASE_SECONDS = 5;

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function login(port: number, password: string): Promise<Client> {
  return loginBasicFtp(localTarget(port, "admin", password));
}

/**
 * Stores `name` until a 226. A live server that could not renew its lease in time (a loaded
 * machine) honestly answers 451 and keeps nothing: that upload was never acknowledged, so it
 * is tried again; what this test holds to account is every 226.
 */
async function put(c: Client, name: string, data: Uint8Array): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await c.uploadFrom(Readable.from([data]), name);
      return;
    } catch (e) {
      if (attempt >= 5 || !/^451 .*could not renew its lease/.test(String((e as Error).message))) {
        throw e;
      }
      await sleep(1000);
    }
  }
}

async function leaseOf(root: string) {
  const file = path.join(root, ".hop", "serve.lease");
  return decodeLease(await fsp.readFile(file), file);
}

/** Copies of `name` on the two folder nodes. */
async function copiesOn(nodes: string[], name: string): Promise<number> {
  let n = 0;
  for (const dir of nodes) {
    const all = await fsp.readdir(dir, { recursive: true }).catch(() => [] as string[]);
    if (all.some((f) => String(f).endsWith(`-${name}`))) n++;
  }
  return n;
}

Deno.test("two servers over one root in separate PID namespaces: one serves, no 226'd upload lost", async () => {
  const probe = await runHop(["--version"], { timeoutMs: 60_000 });
  assert.equal(probe.code, 0, probe.stderr);
  const ns = await import("node:child_process").then((cp) =>
    cp.spawnSync("unshare", ["--pid", "--fork", "true"])
  );
  assert.equal(
    ns.status,
    0,
    `unshare --pid is refused (${ns.stderr}); this test needs root (CAP_SYS_ADMIN)`,
  );
  const [tmp, removeTmp] = await tempDir("hop-lease-");
  const root = path.join(tmp, "root");
  const nodes = [path.join(tmp, "a"), path.join(tmp, "b")];
  for (const n of nodes) await fsp.mkdir(n);
  const common = [
    "--root",
    root,
    ...nodes.flatMap((n) => ["--node", `file://${n}`]),
    "--lease-timeout",
    String(LEASE_SECONDS),
  ];
  const servers: HopProcess[] = [];
  const clients: Client[] = [];
  const serve = (port: number) => {
    const p = spawnHop(["cluster", "serve", "--listen", `127.0.0.1:${port}`, ...common], {
      cwd: tmp,
      wrap: UNSHARE,
    });
    servers.push(p);
    return p;
  };
  try {
    const portA = await freePort();
    const a = serve(portA);
    const [, password] = await a.waitFor(/connect as ftp:\/\/admin:([^@\s]+)@/);
    const pw = decodeURIComponent(password);
    const leaseA = await leaseOf(root);

    // A second server is refused while the first holds the root, and changes nothing.
    const b0 = await serve(await freePort()).done;
    assert.equal(b0.code, 1, b0.stdout + b0.stderr);
    assert.match(b0.stderr, /is served by pid \d+ on \S+ since .*renewed \d+ s ago/);
    assert.match(b0.stderr, new RegExp(`lease expires ${LEASE_SECONDS} s after its last renewal`));
    assert.equal((await leaseOf(root)).token, leaseA.token);

    // Uploads acknowledged by A.
    const acked = new Map<string, Uint8Array>();
    const ca = await login(portA, pw);
    clients.push(ca);
    for (let i = 0; i < 4; i++) {
      const data = randomBytes(50_000 + i);
      await put(ca, `a-${i}.bin`, data);
      acked.set(`a-${i}.bin`, data);
    }

    // A big upload to A, frozen half-way with its server.
    const big = randomBytes(6 * 1024 * 1024);
    const feed = new PassThrough();
    const cbig = await login(portA, pw);
    clients.push(cbig);
    let bigResult: "226" | string = "pending";
    const bigDone = cbig.uploadFrom(feed, "big-from-a.bin").then(
      () => bigResult = "226",
      (e) => bigResult = String(e?.message ?? e),
    );
    feed.write(big.subarray(0, 2 * 1024 * 1024));
    await sleep(500);
    const pidA = await childPid(a.pid);
    process.kill(pidA, "SIGSTOP");
    try {
      // While A is frozen, its lease expires; B takes the root over and serves.
      await sleep(LEASE_SECONDS * 1000 + 1500);
      const portB = await freePort();
      const b = serve(portB);
      await b.waitFor(/serving cluster .* on ftp:\/\//);
      assert.notEqual((await leaseOf(root)).token, leaseA.token, "B holds the lease");
      const cb = await login(portB, pw);
      clients.push(cb);
      for (let i = 0; i < 3; i++) {
        const data = randomBytes(70_000 + i);
        await put(cb, `b-${i}.bin`, data);
        acked.set(`b-${i}.bin`, data);
      }
      // A's acknowledged uploads are served by B.
      for (const [name, data] of acked) {
        assert.equal(sha(await downloadBytes(cb, name)), sha(data), name);
      }
    } finally {
      process.kill(pidA, "SIGCONT");
    }
    // Thawed, A gets the rest of the big upload, but acknowledges nothing more.
    feed.end(big.subarray(2 * 1024 * 1024));
    await bigDone;
    assert.notEqual(bigResult, "226", "a server without the lease acknowledged an upload");
    const endA = await a.done;
    assert.equal(endA.code, 1, endA.stdout + endA.stderr);
    assert.match(endA.stderr, /lost its lease/);
    const leaseB = await leaseOf(root);
    assert.notEqual(leaseB.token, leaseA.token, "A left B's lease in place");

    // Every acknowledged upload reaches two nodes, and reads back byte-exact through B.
    const b = servers[servers.length - 1];
    const portB = Number(/on ftp:\/\/127\.0\.0\.1:(\d+)\//.exec(b.stdout)![1]);
    const cb2 = await login(portB, pw);
    clients.push(cb2);
    const deadline = Date.now() + 60_000;
    for (const name of acked.keys()) {
      while ((await copiesOn(nodes, name)) < 2 && Date.now() < deadline) await sleep(200);
      assert.equal(await copiesOn(nodes, name), 2, `${name} on both nodes`);
    }
    for (const [name, data] of acked) {
      assert.equal(sha(await downloadBytes(cb2, name)), sha(data), name);
    }
    for (const c of clients) c.close();
    clients.length = 0;
    // The wrapper ignores SIGTERM (unshare --fork): the signal goes to hop itself.
    process.kill(await childPid(b.pid), "SIGTERM");
    const endB = await b.done;
    assert.equal(endB.code, 0, endB.stdout + endB.stderr);
    // Stopped cleanly, B gave its lease back; the tree is healthy.
    await assert.rejects(() => fsp.stat(path.join(root, ".hop", "serve.lease")));
    const audit = await runHop(["audit", ...common.slice(0, 6)], { cwd: tmp });
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
  } finally {
    for (const c of clients) c.close();
    for (const s of servers) {
      // SIGKILL to the wrapper: --kill-child takes hop (frozen or not) with it.
      await s.stop("SIGKILL");
    }
    await removeTmp();
  }
});

Deno.test("a server that does not hold its lease acknowledges no upload and changes nothing", async () => {
  const [tmp, removeTmp] = await tempDir("hop-lease-");
  const { srv, admin } = await serveClusterInProcess({
    root: path.join(tmp, "root"),
    nodes: [`file://${tmp}/a`, `file://${tmp}/b`],
  });
  const c = await loginBasicFtp(admin);
  try {
    await put(c, "kept.bin", randomBytes(1000));
    let why: string | null = null;
    srv.ctx.blocked = () => why;
    // Refused at the start of an upload...
    why = "test: lease not renewed";
    await assert.rejects(() => put(c, "refused.bin", randomBytes(1000)), /451 .*lease not renewed/);
    await assert.rejects(() => c.remove("kept.bin"), /451/);
    await assert.rejects(() => c.send("MKD /newdir"), /451/);
    // ...and at its end: the data went in, but no 226 and no link.
    why = null;
    const feed = new PassThrough();
    const late = c.uploadFrom(feed, "late.bin");
    feed.write(randomBytes(100_000));
    await sleep(200);
    why = "test: lease lost mid-upload";
    feed.end(randomBytes(1000));
    await assert.rejects(() => late, /451 .*lease lost mid-upload/);
    why = null;
    assert.deepEqual((await c.list("/")).map((f) => f.name).sort(), ["kept.bin", "lost+found"]);
    const staged = await fsp.readdir(path.join(tmp, "root", ".staging"));
    assert.deepEqual(staged.filter((f) => f !== "tmp").length, 1, "only kept.bin's data staged");
  } finally {
    c.close();
    await srv.close();
    await removeTmp();
  }
});
