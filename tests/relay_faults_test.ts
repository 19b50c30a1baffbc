/**
 * Relay sync under faults: crashes, stale locks, hostile relays, bad archives, forgotten
 * clients, truncated or garbled indexes, unknown relay files. FTP faults (full, read-only,
 * server restarted): relay_ftp_faults_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { makeDirs, withTempDir } from "./helpers/temp.ts";
import { execFileSync, spawnSync } from "node:child_process";
import { hostname } from "node:os";
import process from "node:process";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { runRelaySync } from "../src/relay/command.ts";
import { writeArchive } from "../src/archive/tar.ts";
import { forgetClient } from "../src/relay/hopfiles.ts";
import { openBackend } from "../src/relay/backend/mod.ts";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { decodeUpdateIndex, encodeUpdateIndex, PLACEHOLDER } from "../src/codec/escale_index.ts";
import { encodeLock } from "../src/codec/lock.ts";
import type { FolderConfig } from "../src/relay/config.ts";
import { folderCfg, snapshot, syncOnce } from "./relay_helpers.ts";
import { openRelayIO } from "../src/relay/io.ts";

/** One pass in process (a first pass unless told). */
const run = (cfg: FolderConfig, first = true) => syncOnce(cfg, first);

/** What a push cut by a crash leaves on `relay`: the pusher's lock and half an archive. */
async function leaveCutPush(relay: string, lock: Parameters<typeof encodeLock>[0]) {
  await writeFile(join(relay, ".0.lock"), encodeLock(lock));
  await writeFile(join(relay, ".0.1700000000.data"), "BZh91AY&SY partial");
}

Deno.test("after a crash mid-push, the client's own w lock and partial update are rolled back", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    await writeFile(join(a, "f.txt"), "content");
    // what a cut push leaves: alice's w lock and half an archive, no index
    await leaveCutPush(relay, {
      owner: "alice",
      mode: "w",
      acquired: Date.now(),
      pid: 999999999,
      host: "elsewhere",
    });
    await run(folderCfg(b, relay, "bob"));
    const r = await run(folderCfg(a, relay, "alice"));
    assert.ok(r.rep.infos.some((m) => /removed the unfinished \.0\.1700000000\.data/.test(m)));
    assert.equal(r.pushed, 1);
    const names = await readdir(relay);
    assert.ok(!names.includes(".0.1700000000.data"));
    assert.ok(!names.includes(".0.lock"));
    await run(folderCfg(b, relay, "bob"), false);
    assert.deepEqual(await snapshot(b), await snapshot(a));
  });
});

Deno.test("another client's stale lock is taken over after lock timeout, a live one is waited for", async () => {
  await withTempDir(async (dir) => {
    const [relay, a] = await makeDirs(dir, ["relay", "a"]);
    await writeFile(join(a, "f.txt"), "content");
    await writeFile(
      join(relay, ".0.lock"),
      encodeLock({ owner: "crashed", mode: "w", acquired: Date.now() - 30_000 }),
    );
    const live = await run(folderCfg(a, relay, "alice", { lockTimeoutSeconds: 60 }));
    assert.equal(live.pushed, 0);
    assert.equal(live.busy, 1);
    const stale = await run(folderCfg(a, relay, "alice", { lockTimeoutSeconds: 10 }));
    assert.equal(stale.pushed, 1);
  });
});

Deno.test("a lock of this client left by a gone process of this host is taken over at once", async () => {
  await withTempDir(async (dir) => {
    const [relay, a] = await makeDirs(dir, ["relay", "a"]);
    await run(folderCfg(a, relay, "alice"));
    await writeFile(join(a, "f.txt"), "content");
    const gone = spawnSync("true").pid!;
    // what a killed process leaves when its last commands reach the relay after the
    // restarted client's first pass: a fresh w lock and half an archive
    await leaveCutPush(relay, {
      owner: "alice",
      mode: "w",
      acquired: Date.now(),
      pid: gone,
      host: hostname(),
    });
    const r = await run(folderCfg(a, relay, "alice"), false);
    assert.equal(r.pushed, 1, r.rep.warns.join("\n"));
    assert.ok(
      r.rep.warns.some((m) =>
        /took over the w lock of alice \(its process \d+ on this host is gone\): removed the unfinished \.0\.1700000000\.data/
          .test(m)
      ),
      r.rep.warns.join("\n"),
    );
    assert.ok(!(await readdir(relay)).includes(".0.lock"));
    // a live process's lock, or another client's, waits for the lock timeout
    for (const [owner, pid] of [["alice", process.ppid], ["bob", gone]] as const) {
      const [relay2, a2] = await makeDirs(join(dir, owner), ["relay", "a"]);
      await writeFile(join(a2, "g.txt"), "content");
      const other = encodeLock({ owner, mode: "w", acquired: Date.now(), pid, host: hostname() });
      await writeFile(join(relay2, ".0.lock"), other);
      const busy = await run(folderCfg(a2, relay2, "alice"));
      assert.equal(busy.pushed, 0, owner);
      assert.equal(busy.busy, 1, owner);
      assert.equal(await readFile(join(relay2, ".0.lock"), "utf8"), other);
    }
  });
});

Deno.test("a push cut under another client's lock is rolled back once the lock is stale", async () => {
  await withTempDir(async (dir) => {
    const [relay, a] = await makeDirs(dir, ["relay", "a"]);
    await writeFile(join(a, "f.txt"), "content");
    await leaveCutPush(relay, {
      owner: "crashed",
      mode: "w",
      acquired: Date.now() - 30_000,
      host: "elsewhere",
    });
    const live = await run(folderCfg(a, relay, "alice", { lockTimeoutSeconds: 60 }));
    assert.equal(live.pushed, 0);
    assert.ok((await readdir(relay)).includes(".0.1700000000.data"));
    const r = await run(folderCfg(a, relay, "alice", { lockTimeoutSeconds: 10 }));
    assert.equal(r.pushed, 1, r.rep.warns.join("\n"));
    assert.ok(
      r.rep.warns.some((m) =>
        /took over the w lock of crashed \(older than the 10 s lock timeout\): removed the unfinished/
          .test(m)
      ),
      r.rep.warns.join("\n"),
    );
    assert.ok(!(await readdir(relay)).includes(".0.1700000000.data"));
  });
});

function sha512(s: string | Uint8Array) {
  return createHash("sha512").update(s).digest("hex");
}

function entry(path: string, content: string) {
  return {
    path,
    meta: {
      placeholder: PLACEHOLDER,
      pusher: "mallory",
      timestamp: 1_700_000_000,
      checksum: sha512(content),
      extra: [] as [string, string][],
    },
  };
}

Deno.test("a hostile relay is refused and nothing is written outside the folder", async () => {
  await withTempDir(async (dir) => {
    const [relay, local] = await makeDirs(dir, ["relay", "deep/local"]);
    const before = (await readdir(dir)).sort();
    // page 0: the index names ../../x
    await writeFile(
      join(relay, ".0.1700000000.index"),
      encodeUpdateIndex({ entries: [entry("../../x", "evil")], pullers: [] }),
    );
    execFileSync("/usr/bin/python3", [
      "-c",
      `import io,sys,tarfile
def tb(path, members):
    t = tarfile.open(path, "w:bz2")
    for name, data in members:
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    t.close()
tb(sys.argv[1], [("../../x", b"evil")])
tb(sys.argv[2], [("ok.txt", b"fine"), ("../escaped.txt", b"evil"), ("/tmp/abs-evil.txt", b"evil")])
`,
      join(relay, ".0.1700000000.data"),
      join(relay, ".p.1700000000.data"),
    ]);
    // page p: a sane index, but the archive holds entries that leave the folder
    await writeFile(
      join(relay, ".p.1700000000.index"),
      encodeUpdateIndex({
        entries: [entry("ok.txt", "fine"), entry("escaped.txt", "evil")],
        pullers: [],
      }),
    );
    const r = await run(folderCfg(local, relay, "bob", { mode: "download" }));
    // both refused, and moved aside so that the pages take new updates
    assert.equal(r.errors, 0, r.rep.warns.join("\n"));
    assert.equal(r.quarantined, 2, r.rep.warns.join("\n"));
    assert.ok(r.rep.warns.some((w) => /refused.*"\.\.\/\.\.\/x"/.test(w)), r.rep.warns.join("\n"));
    assert.ok(
      r.rep.warns.some((w) => /refused/.test(w) && /page p/.test(w)),
      r.rep.warns.join("\n"),
    );
    assert.deepEqual((await readdir(dir)).sort(), before);
    assert.deepEqual((await readdir(join(dir, "deep"))).sort(), ["local"]);
    assert.deepEqual(await snapshot(local), {});
    assert.equal(await stat("/tmp/abs-evil.txt").catch(() => null), null);
    // not registered as a puller of either update (both moved aside as they were)
    const moved = (await readdir(relay)).filter((n) => /^\.hop-quarantine-.*-index$/.test(n));
    assert.equal(moved.length, 2, moved.join(" "));
    for (const n of moved) {
      assert.deepEqual(decodeUpdateIndex(await readFile(join(relay, n)), n).pullers, [], n);
    }
  });
});

Deno.test("an archive whose files do not match the index checksum are not written", async () => {
  await withTempDir(async (dir) => {
    const [relay, local] = await makeDirs(dir, ["relay", "local"]);
    await writeFile(join(local, "keep.txt"), "mine");
    execFileSync("/usr/bin/python3", [
      "-c",
      `import io,sys,tarfile
t = tarfile.open(sys.argv[1], "w:bz2")
for name, data in [("keep.txt", b"garbled"), ("new.txt", b"good"), ("sub/bad.txt", b"garbled"),
                   ("sub/fine.txt", b"fine")]:
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
t.close()`,
      join(relay, ".0.1700000000.data"),
    ]);
    await writeFile(
      join(relay, ".0.1700000000.index"),
      encodeUpdateIndex({
        entries: [
          entry("keep.txt", "theirs"),
          entry("new.txt", "good"),
          entry("sub/bad.txt", "theirs"),
          entry("sub/fine.txt", "fine"),
        ],
        pullers: [],
      }),
    );
    const r = await run(folderCfg(local, relay, "bob", { mode: "download" }));
    assert.equal(r.errors, 0);
    assert.equal(r.quarantined, 1);
    assert.ok(r.rep.warns.some((w) => /keep\.txt: checksum/.test(w)), r.rep.warns.join("\n"));
    assert.equal(await readFile(join(local, "keep.txt"), "utf8"), "mine");
    assert.equal(await readFile(join(local, "new.txt"), "utf8"), "good");
    // a folder new here goes in whole, without the file that failed its checksum
    assert.deepEqual(await readdir(join(local, "sub")), ["fine.txt"]);
  });
});

Deno.test("a file made in a new folder while a pull extracts is kept as a conflict copy", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    await mkdir(join(a, "new", "deep"), { recursive: true });
    await writeFile(join(a, "new", "deep", "x.txt"), "from a");
    assert.equal((await run(folderCfg(a, relay, "a"))).errors, 0);
    // b plans on an empty folder (no look at each file of a missing folder), then its own
    // x.txt appears while the archive is read: the placement must see it
    const cfg = folderCfg(b, relay, "b");
    const io = await openRelayIO(cfg.relayUrl);
    const read = io.read.bind(io);
    io.read = async (name) => {
      if (name.endsWith(".data")) {
        await mkdir(join(b, "new", "deep"), { recursive: true });
        await writeFile(join(b, "new", "deep", "x.txt"), "mine");
      }
      return await read(name);
    };
    const r = await syncOnce(cfg, true, { io });
    assert.equal(r.errors, 0, r.rep.warns.join("\n"));
    assert.ok(
      r.rep.warns.some((w) => /conflict on new\/deep\/x\.txt/.test(w)),
      r.rep.warns.join("\n"),
    );
    const names = await readdir(join(b, "new", "deep"));
    assert.equal(names.length, 2, names.join(", "));
    const texts = await Promise.all(names.map((n) => readFile(join(b, "new", "deep", n), "utf8")));
    assert.deepEqual(texts.sort(), ["from a", "mine"]);
    assert.equal(await readFile(join(b, "new", "deep", "x.txt"), "utf8"), "from a");
  });
});

globalThis.addEventListener("unload", () => closePool());

Deno.test("a forgotten client no longer blocks updates; leftovers of a cut push are cleared", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    for (const d of ["relay", "a", "b", "c"]) await mkdir(join(dir, d));
    const A = folderCfg(join(dir, "a"), relay, "alice");
    const B = folderCfg(join(dir, "b"), relay, "bob");
    const C = folderCfg(join(dir, "c"), relay, "carol");
    await run(B);
    await run(C); // carol registers, then disappears
    await writeFile(join(dir, "a", "one.txt"), "1");
    assert.equal((await run(A)).pushed, 1);
    await run(B, false);
    await writeFile(join(dir, "a", "two.txt"), "2");
    assert.equal((await run(A, false)).pushed, 0, "the update still waits for carol");
    assert.equal(await relayForgetName(relay, "carol"), true);
    const r = await run(A, false);
    assert.equal(r.pushed, 1, r.rep.warns.join("\n"));
    // a cut push with no lock, older than the lock timeout
    await run(B, false);
    const old = Date.now() / 1000 - 7200;
    await writeFile(join(relay, ".0.1700000000.data"), "partial");
    await utimes(join(relay, ".0.1700000000.data"), old, old);
    await writeFile(join(dir, "a", "three.txt"), "3");
    assert.equal((await run(A, false)).pushed, 1);
    assert.ok(!(await readdir(relay)).includes(".0.1700000000.data"));
    // a removal cut between its two deletions, just now: an index without its archive, no
    // lock. It blocked every push of the page for the lock timeout (the folder crash test
    // lost its convergence that way); it is cleared at once.
    await run(B, false);
    await writeFile(
      join(relay, ".0.1700000001.index"),
      encodeUpdateIndex({ entries: [], pullers: [] }),
    );
    await writeFile(join(dir, "a", "four.txt"), "4");
    const r4 = await run(A, false);
    assert.equal(r4.pushed, 1, r4.rep.warns.join("\n"));
    assert.ok(!(await readdir(relay)).includes(".0.1700000001.index"));
  });
});

async function relayForgetName(relay: string, name: string): Promise<boolean> {
  return await forgetClient(await openBackend(relay), name);
}

Deno.test("a deleted file an Escale client sends again (no base line) comes back: Escale restores what it finds missing", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    for (const d of ["relay", "a", "b", "eve"]) await mkdir(join(dir, d));
    const A = folderCfg(join(dir, "a"), relay, "alice");
    const B = folderCfg(join(dir, "b"), relay, "bob");
    await run(B);
    await writeFile(join(dir, "a", "gone.txt"), "old news");
    await writeFile(join(dir, "a", "kept.txt"), "kept");
    await run(A);
    await run(B, false);
    await rm(join(dir, "a", "gone.txt"));
    assert.equal((await run(A, false)).deletionsPushed, 1);
    assert.equal((await run(B, false)).deletedLocally, 1);
    // an Escale client that still has the file pushes it as new: plain entry, no base line
    await writeFile(join(dir, "eve", "gone.txt"), "old news");
    await writeFile(
      join(relay, ".0.1800000000.data"),
      new Uint8Array(
        await new Response(writeArchive({ root: join(dir, "eve"), files: ["gone.txt"] }))
          .arrayBuffer(),
      ),
    );
    await writeFile(
      join(relay, ".0.1800000000.index"),
      encodeUpdateIndex({ entries: [entry("gone.txt", "old news")], pullers: [] }),
    );
    // deletions do not go through Escale clients: the clients converge on the file being back
    const r = await run(B, false);
    assert.equal(r.pulled, 1);
    assert.deepEqual(Object.keys(await snapshot(join(dir, "b"))).sort(), ["gone.txt", "kept.txt"]);
    assert.equal(await readFile(join(dir, "b", "gone.txt"), "utf8"), "old news");
  });
});

Deno.test("on restart a client releases its own r lock; another client's live lock stays", async () => {
  await withTempDir(async (dir) => {
    const [relay, b] = await makeDirs(dir, ["relay", "b"]);
    await writeFile(
      join(relay, ".0.lock"),
      encodeLock({ owner: "bob", mode: "r", acquired: Date.now() }),
    );
    await writeFile(
      join(relay, ".x.lock"),
      encodeLock({ owner: "zoe", mode: "r", acquired: Date.now() }),
    );
    const r = await run(folderCfg(b, relay, "bob"));
    assert.ok(
      r.rep.infos.some((m) => /page 0: released this client's r lock/.test(m)),
      r.rep.infos.join("\n"),
    );
    const names = await readdir(relay);
    assert.ok(!names.includes(".0.lock"));
    assert.ok(names.includes(".x.lock"));
  });
});

Deno.test("stale temp files of cut writes are removed on the first pass, fresh ones kept", async () => {
  await withTempDir(async (dir) => {
    const [relay, b] = await makeDirs(dir, ["relay", "b"]);
    await writeFile(join(relay, ".hop-tmp-old"), "cut");
    const old = Date.now() / 1000 - 3 * 3600;
    await utimes(join(relay, ".hop-tmp-old"), old, old);
    await writeFile(join(relay, ".hop-tmp-new"), "in progress");
    await run(folderCfg(b, relay, "bob"));
    const names = await readdir(relay);
    assert.ok(!names.includes(".hop-tmp-old"));
    assert.ok(names.includes(".hop-tmp-new"));
  });
});

Deno.test("a file of zeros (compressing beyond any fixed ratio) is pulled", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    await writeFile(join(a, "zeros.img"), new Uint8Array(20_000_000));
    await run(folderCfg(b, relay, "bob"));
    assert.equal((await run(folderCfg(a, relay, "alice"))).pushed, 1);
    const r = await run(folderCfg(b, relay, "bob"), false);
    assert.deepEqual(r.rep.warns, []);
    assert.equal(r.pulled, 1);
    assert.equal((await stat(join(b, "zeros.img"))).size, 20_000_000);
  });
});

// ---- corruption, unknown files, relay full or read-only, FTP server restarted ----

Deno.test("a truncated .P.index or garbled update index is a clear error; local files stay intact", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    for (const d of ["relay", "a", "b"]) await mkdir(join(dir, d));
    const A = folderCfg(join(dir, "a"), relay, "alice");
    const B = folderCfg(join(dir, "b"), relay, "bob");
    await run(B);
    await writeFile(join(dir, "a", "one.txt"), "one");
    await writeFile(join(dir, "b", "mine.txt"), "bob's");
    await run(A);
    await run(B, false);
    await writeFile(join(dir, "a", "two.txt"), "two");
    await run(A, false); // an update bob has not pulled yet
    const beforeB = await snapshot(join(dir, "b"));
    const names = await readdir(relay);
    const upd = names.find((n) => /^\.0\.\d+\.index$/.test(n))!;
    const idx = await readFile(join(relay, ".0.index"));
    await writeFile(join(relay, ".0.index"), idx.subarray(0, Math.floor(idx.length / 2)));
    const u = await readFile(join(relay, upd), "utf8");
    await writeFile(join(relay, upd), u.replace(/ \d+\n/, " 99999\n")); // entry length past the end
    const r = await run(B, false);
    assert.ok(r.errors >= 2, r.rep.warns.join("\n"));
    assert.ok(r.rep.warns.some((w) => w.includes(upd)), r.rep.warns.join("\n"));
    assert.ok(r.rep.warns.some((w) => w.includes(".0.index")), r.rep.warns.join("\n"));
    assert.deepEqual(await snapshot(join(dir, "b")), beforeB, "local data untouched");
    assert.equal(r.pulled + r.pushed, 0);
  });
});

Deno.test("unknown files and folders on the relay are ignored and left alone", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    for (const d of ["relay", "a", "b"]) await mkdir(join(dir, d));
    const strange: Record<string, string> = {
      "README.txt": "hello",
      ".DS_Store": "\0\0\x01",
      ".0.x.index": "not an update",
      ".0.12.34.data": "neither",
      ".hop-client-": "{}",
      ".hop-client-%ZZ": "{}",
      ".hop-deleted-a.b": "{}",
      ".0.index.bak": "old",
    };
    for (const [n, c] of Object.entries(strange)) await writeFile(join(relay, n), c);
    await mkdir(join(relay, "sub.d"));
    await writeFile(join(relay, "sub.d", "x"), "x");
    const A = folderCfg(join(dir, "a"), relay, "alice");
    const B = folderCfg(join(dir, "b"), relay, "bob");
    await run(B);
    await writeFile(join(dir, "a", "f.txt"), "f");
    const ra = await run(A);
    assert.deepEqual(ra.rep.warns, []);
    const rb = await run(B, false);
    assert.deepEqual(rb.rep.warns, []);
    assert.deepEqual(await snapshot(join(dir, "b")), await snapshot(join(dir, "a")));
    for (const [n, c] of Object.entries(strange)) {
      assert.equal(await readFile(join(relay, n), "utf8"), c, n);
    }
    assert.equal(await readFile(join(relay, "sub.d", "x"), "utf8"), "x");
  });
});

Deno.test("a relay that fails is retried after 1 s, 2 s, 4 s (capped at refresh); a success resets it", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    const away = join(dir, "away");
    const a = join(dir, "a");
    for (const d of [away, a]) await mkdir(d); // the relay folder is missing at first
    await writeFile(join(a, "f.txt"), "f");
    const before = await snapshot(a);
    const ev: { t: number; msg: string; delay?: number }[] = [];
    const retries = () => ev.filter((e) => e.delay !== undefined);
    const reporter = {
      info: (msg: string, e?: Record<string, unknown>) =>
        void ev.push({
          t: Date.now(),
          msg,
          delay: e?.event === "retry" ? e.delayMs as number : undefined,
        }),
      warn: (msg: string) => void ev.push({ t: Date.now(), msg }),
      progress: () => {},
      close: () => {},
    };
    const ac = new AbortController();
    const loop = runRelaySync({
      local: a,
      relay,
      clientName: "alice",
      refresh: 4,
      reporter,
      signal: ac.signal,
    });
    const waitFor = async (cond: () => boolean | Promise<boolean>, what: string) => {
      const deadline = Date.now() + 20_000;
      while (!(await cond())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await waitFor(() => retries().length >= 4, "four retries");
      await rename(away, relay); // the relay is back
      await waitFor(async () => (await readdir(relay)).some((n) => n.endsWith(".data")), "a push");
      const failures = retries().length;
      // let the pass that pushed end (a fixed pause was too short on a loaded machine)
      const passEnded = () => {
        const pushed = ev.findIndex((e) => /pushed/.test(e.msg));
        return pushed >= 0 && ev.slice(pushed).some((e) => /^next pass in/.test(e.msg));
      };
      await waitFor(passEnded, "the pass that pushed to end");
      await rename(relay, away); // and gone again
      await waitFor(() => retries().length > failures, "a retry after the success");
    } finally {
      ac.abort();
      await loop;
    }
    const r = retries();
    assert.deepEqual(r.slice(0, 4).map((e) => e.delay), [1000, 2000, 4000, 4000]);
    for (let i = 1; i < 4; i++) {
      const gap = r[i].t - r[i - 1].t;
      assert.ok(gap >= r[i - 1].delay! - 50 && gap < r[i - 1].delay! + 2000, `gap ${i}: ${gap} ms`);
    }
    const after = r.find((e) => e.t > r[3].t && ev.some((x) => /pushed/.test(x.msg) && x.t < e.t));
    assert.equal(after?.delay, 1000, ev.map((e) => e.msg).join("\n"));
    assert.ok(
      ev.some((e) => /local folder|relay|no folder|missing/i.test(e.msg) && e.delay === undefined),
    );
    assert.deepEqual(await snapshot(a), before, "local data never damaged");
  });
});
