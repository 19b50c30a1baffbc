import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { decodeLease, encodeLease, type ServeLease } from "../codec/lease.ts";
import { HopError } from "../errors.ts";
import { clusterLayout, initLayout } from "./layout.ts";
import { acquireServeLease, leaseLiveness, processIdentity, readServeLease } from "./lease.ts";

async function root() {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-lease-"));
  const l = clusterLayout(dir);
  await initLayout(l);
  await fsp.mkdir(path.join(dir, ".hop"));
  return { l, dir, file: path.join(dir, ".hop", "serve.lease") };
}

function foreign(over: Partial<ServeLease> = {}): ServeLease {
  return {
    host: "other-host",
    instance: "0123456789ab",
    pid: 1,
    processStart: null,
    started: Date.now() - 60_000,
    renewed: Date.now(),
    ttl: 30_000,
    token: "aaaabbbbccccdddd",
    extra: [],
    ...over,
  };
}

/** A pid that existed and is gone now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["--version"]);
  return r.pid!;
}

Deno.test("lease: one holder per root; a second start is refused; release removes only its own", async () => {
  const { l, dir, file } = await root();
  try {
    const a = await acquireServeLease(l, { ttlMs: 5000 });
    const me = processIdentity();
    const onDisk = await readServeLease(l);
    assert.equal(onDisk?.token, a.lease.token);
    assert.equal(onDisk?.pid, process.pid);
    assert.equal(onDisk?.host, me.host);
    assert.equal(onDisk?.instance, me.instance);
    assert.ok(a.held());
    await assert.rejects(() => acquireServeLease(l), (e) => {
      assert.ok(e instanceof HopError);
      assert.match(e.message, new RegExp(`served by pid ${process.pid}`));
      return true;
    });
    assert.equal((await readServeLease(l))?.token, a.lease.token, "a refused start leaves it");
    await a.release();
    assert.equal(await readServeLease(l), null);
    assert.equal(a.held(), false);
    const b = await acquireServeLease(l);
    assert.equal(b.previous, null);
    // Someone else's lease in the file: release leaves it alone.
    await fsp.writeFile(file, encodeLease(foreign()));
    await b.release();
    assert.equal((await readServeLease(l))?.token, foreign().token);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("lease: a holder elsewhere binds while renewed, and is taken over once stale", async () => {
  const { l, dir, file } = await root();
  try {
    await fsp.writeFile(file, encodeLease(foreign()));
    await assert.rejects(() => acquireServeLease(l), (e) => {
      assert.ok(e instanceof HopError);
      assert.match(e.message, /served by pid 1 on other-host/);
      assert.match(e.message, /renewed 0 s ago/);
      assert.match(e.hint ?? "", /expires 30 s after its last renewal/);
      return true;
    });
    const stale = foreign({ renewed: Date.now() - 31_000 });
    await fsp.writeFile(file, encodeLease(stale));
    const held = await acquireServeLease(l);
    assert.deepEqual(held.previous, stale);
    assert.equal((await readServeLease(l))?.token, held.lease.token);
    await held.release();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("lease: a holder on this host binds while its process runs, not after", async () => {
  const { l, dir, file } = await root();
  const me = processIdentity();
  try {
    // The parent of this process runs: its lease binds, however old the renewal.
    const parent = foreign({
      instance: me.instance,
      pid: process.ppid,
      renewed: Date.now() - 3_600_000,
    });
    await fsp.writeFile(file, encodeLease(parent));
    await assert.rejects(() => acquireServeLease(l), /runs on this host/);
    // A dead process's lease is taken over at once, however fresh.
    const dead = foreign({ instance: me.instance, pid: deadPid() });
    await fsp.writeFile(file, encodeLease(dead));
    const held = await acquireServeLease(l);
    assert.equal(held.previous?.token, dead.token);
    await held.release();
    // A reused pid (another start time) is not the holder.
    if (me.ownProc && me.processStart !== null) {
      const reused = foreign({
        instance: me.instance,
        pid: process.ppid,
        processStart: me.processStart + 12345,
      });
      assert.equal(leaseLiveness(reused, me, Date.now()).live, false);
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("lease: renewal keeps it held; a lease taken over is lost, and not removed on release", async () => {
  const { l, dir, file } = await root();
  try {
    let now = 0;
    const lease = await acquireServeLease(l, { ttlMs: 4000, clock: () => now });
    const lost: string[] = [];
    lease.start((why) => lost.push(why));
    assert.ok(lease.held());
    now = 1999;
    assert.ok(lease.held());
    now = 2000;
    assert.equal(lease.held(), false, "no renewal for ttl/2: uploads are refused");
    assert.match(lease.refusal()!, /could not renew its lease for 2 s/);
    const before = decodeLease(await fsp.readFile(file), file).renewed;
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(await lease.renew(), true);
    assert.ok(lease.held());
    assert.ok(decodeLease(await fsp.readFile(file), file).renewed > before);
    // Another server takes the root over (renames its lease over this one).
    const other = foreign();
    await fsp.writeFile(file + ".x", encodeLease(other));
    await fsp.rename(file + ".x", file);
    assert.equal(await lease.renew(), false);
    assert.equal(lease.held(), false);
    assert.equal(lost.length, 1);
    assert.match(lost[0], /pid 1 on other-host/);
    assert.equal((await readServeLease(l))?.token, other.token, "renewal did not overwrite it");
    await lease.release();
    assert.equal((await readServeLease(l))?.token, other.token);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("lease: a renewal racing a takeover lands on the replaced file, and is lost", async () => {
  const { l, dir, file } = await root();
  try {
    const lease = await acquireServeLease(l, { ttlMs: 4000 });
    const lost: string[] = [];
    lease.start((why) => lost.push(why));
    // The new lease replaces the path while the old file stays open elsewhere.
    const fh = await fsp.open(file, "r");
    await fsp.writeFile(file + ".x", encodeLease(foreign()));
    await fsp.rename(file + ".x", file);
    assert.equal(await lease.renew(), false);
    await fh.close();
    assert.equal(lost.length, 1);
    await lease.release();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("lease: a damaged lease is replaced once older than a ttl; an older hop's serve.pid is honoured", async () => {
  const { l, dir, file } = await root();
  try {
    await fsp.writeFile(file, "garbage\n");
    const old = new Date(Date.now() - 60_000);
    await fsp.utimes(file, old, old);
    const held = await acquireServeLease(l, { ttlMs: 5000 });
    assert.equal(held.previous, null);
    await held.release();
    await fsp.writeFile(path.join(dir, ".hop", "serve.pid"), String(process.ppid));
    await assert.rejects(() => acquireServeLease(l), /served by process/);
    await fsp.writeFile(path.join(dir, ".hop", "serve.pid"), String(deadPid()));
    const again = await acquireServeLease(l);
    await again.release();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
