/**
 * Relay sync under faults: crashes, stale locks, hostile relays, bad archives, forgotten clients.
 *
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import process from "node:process";
import { runRelaySync } from "../src/relay/command.ts";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import { writeArchive } from "../src/archive/tar.ts";
import { forgetClient } from "../src/relay/hopfiles.ts";
import { folderBackend } from "../src/relay/backend/folder.ts";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { decodeUpdateIndex, encodeUpdateIndex, PLACEHOLDER } from "../src/codec/escale_index.ts";
import { encodeLock } from "../src/codec/lock.ts";
import { closeSync, openSync, syncPass } from "../src/relay/sync.ts";
import { folderCfg, recorder, snapshot, tempDir } from "./relay_helpers.ts";

async function run(cfg: ReturnType<typeof folderCfg>, first = true) {
  const rep = recorder();
  const ctx = await openSync(cfg, rep);
  try {
    return { ...(await syncPass(ctx, { first })), rep };
  } finally {
    await closeSync(ctx);
  }
}

Deno.test("after a crash mid-push, the client's own w lock and partial update are rolled back", async () => {
  const [dir, clean] = await tempDir();
  try {
    const relay = join(dir, "relay");
    const a = join(dir, "a");
    const b = join(dir, "b");
    for (const d of [relay, a, b]) await mkdir(d);
    await writeFile(join(a, "f.txt"), "content");
    // what a cut push leaves: alice's w lock and half an archive, no index
    await writeFile(
      join(relay, ".0.lock"),
      encodeLock({
        owner: "alice",
        mode: "w",
        acquired: Date.now(),
        pid: 999999999,
        host: "elsewhere",
      }),
    );
    await writeFile(join(relay, ".0.1700000000.data"), "BZh91AY&SY partial");
    await run(folderCfg(b, relay, "bob"));
    const r = await run(folderCfg(a, relay, "alice"));
    assert.ok(r.rep.infos.some((m) => /removed the unfinished \.0\.1700000000\.data/.test(m)));
    assert.equal(r.pushed, 1);
    const names = await readdir(relay);
    assert.ok(!names.includes(".0.1700000000.data"));
    assert.ok(!names.includes(".0.lock"));
    await run(folderCfg(b, relay, "bob"), false);
    assert.deepEqual(await snapshot(b), await snapshot(a));
  } finally {
    await clean();
  }
});

Deno.test("another client's stale lock is taken over after lock timeout, a live one is waited for", async () => {
  const [dir, clean] = await tempDir();
  try {
    const relay = join(dir, "relay");
    const a = join(dir, "a");
    for (const d of [relay, a]) await mkdir(d);
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
  } finally {
    await clean();
  }
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
  const [dir, clean] = await tempDir();
  try {
    const relay = join(dir, "relay");
    const local = join(dir, "deep", "local");
    for (const d of [relay, local]) await mkdir(d, { recursive: true });
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
    assert.equal(r.errors, 2, r.rep.warns.join("\n"));
    assert.ok(r.rep.warns.some((w) => /\.\.\/\.\.\/x.*refused/.test(w)), r.rep.warns.join("\n"));
    assert.ok(
      r.rep.warns.some((w) => /refused/.test(w) && /page p/.test(w)),
      r.rep.warns.join("\n"),
    );
    assert.deepEqual((await readdir(dir)).sort(), before);
    assert.deepEqual((await readdir(join(dir, "deep"))).sort(), ["local"]);
    assert.deepEqual(await snapshot(local), {});
    assert.equal(await stat("/tmp/abs-evil.txt").catch(() => null), null);
    // not registered as a puller of either update
    for (const n of await readdir(relay)) {
      if (n.endsWith(".index") && /\.\d+\.index$/.test(n)) {
        assert.deepEqual(decodeUpdateIndex(await readFile(join(relay, n)), n).pullers, [], n);
      }
    }
  } finally {
    await clean();
  }
});

Deno.test("an archive whose file does not match the index checksum is not written", async () => {
  const [dir, clean] = await tempDir();
  try {
    const relay = join(dir, "relay");
    const local = join(dir, "local");
    for (const d of [relay, local]) await mkdir(d);
    await writeFile(join(local, "keep.txt"), "mine");
    execFileSync("/usr/bin/python3", [
      "-c",
      `import io,sys,tarfile
t = tarfile.open(sys.argv[1], "w:bz2")
for name, data in [("keep.txt", b"garbled"), ("new.txt", b"good")]:
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
t.close()`,
      join(relay, ".0.1700000000.data"),
    ]);
    await writeFile(
      join(relay, ".0.1700000000.index"),
      encodeUpdateIndex({
        entries: [entry("keep.txt", "theirs"), entry("new.txt", "good")],
        pullers: [],
      }),
    );
    const r = await run(folderCfg(local, relay, "bob", { mode: "download" }));
    assert.equal(r.errors, 1);
    assert.ok(r.rep.warns.some((w) => /keep\.txt: checksum/.test(w)), r.rep.warns.join("\n"));
    assert.equal(await readFile(join(local, "keep.txt"), "utf8"), "mine");
    assert.equal(await readFile(join(local, "new.txt"), "utf8"), "good");
  } finally {
    await clean();
  }
});

globalThis.addEventListener("unload", () => closePool());

Deno.test("a forgotten client no longer blocks updates; leftovers of a cut push are cleared", async () => {
  const [dir, clean] = await tempDir();
  try {
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
  } finally {
    await clean();
  }
});

async function relayForgetName(relay: string, name: string): Promise<boolean> {
  return await forgetClient(await folderBackend(relay), name);
}

Deno.test("a deleted file sent again by an Escale client (no base line) stays deleted", async () => {
  const [dir, clean] = await tempDir();
  try {
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
    await Deno.writeFile(
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
    const r = await run(B, false);
    assert.equal(r.pulled, 0);
    assert.ok(r.rep.infos.some((m) => /sent again/.test(m)), r.rep.infos.join("\n"));
    assert.deepEqual(Object.keys(await snapshot(join(dir, "b"))), ["kept.txt"]);
  } finally {
    await clean();
  }
});

Deno.test("on restart a client releases its own r lock; another client's live lock stays", async () => {
  const [dir, clean] = await tempDir();
  try {
    const relay = join(dir, "relay");
    const b = join(dir, "b");
    for (const d of [relay, b]) await mkdir(d);
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
  } finally {
    await clean();
  }
});

Deno.test("stale temp files of cut writes are removed on the first pass, fresh ones kept", async () => {
  const [dir, clean] = await tempDir();
  try {
    const relay = join(dir, "relay");
    const b = join(dir, "b");
    for (const d of [relay, b]) await mkdir(d);
    await writeFile(join(relay, ".hop-tmp-old"), "cut");
    const old = Date.now() / 1000 - 3 * 3600;
    await utimes(join(relay, ".hop-tmp-old"), old, old);
    await writeFile(join(relay, ".hop-tmp-new"), "in progress");
    await run(folderCfg(b, relay, "bob"));
    const names = await readdir(relay);
    assert.ok(!names.includes(".hop-tmp-old"));
    assert.ok(names.includes(".hop-tmp-new"));
  } finally {
    await clean();
  }
});

Deno.test("a file of zeros (compressing beyond any fixed ratio) is pulled", async () => {
  const [dir, clean] = await tempDir();
  try {
    const relay = join(dir, "relay");
    const a = join(dir, "a");
    const b = join(dir, "b");
    for (const d of [relay, a, b]) await mkdir(d);
    await writeFile(join(a, "zeros.img"), new Uint8Array(20_000_000));
    await run(folderCfg(b, relay, "bob"));
    assert.equal((await run(folderCfg(a, relay, "alice"))).pushed, 1);
    const r = await run(folderCfg(b, relay, "bob"), false);
    assert.deepEqual(r.rep.warns, []);
    assert.equal(r.pulled, 1);
    assert.equal((await stat(join(b, "zeros.img"))).size, 20_000_000);
  } finally {
    await clean();
  }
});

// ---- corruption, unknown files, relay full or read-only, FTP server restarted ----

/** A reporter that records messages with their events and times. */
function eventLog() {
  const ev: { t: number; level: string; msg: string; event?: Record<string, unknown> }[] = [];
  const reporter = {
    info: (msg: string, event?: Record<string, unknown>) =>
      void ev.push({ t: Date.now(), level: "info", msg, event }),
    warn: (msg: string, event?: Record<string, unknown>) =>
      void ev.push({ t: Date.now(), level: "warn", msg, event }),
    progress: () => {},
    close: () => {},
  };
  return { ev, reporter };
}

/** Runs `hop relay sync` as a loop in this process until `until` holds (or the time runs out). */
async function loopUntil(
  src: { local: string; relay: string; clientName: string; refresh: number },
  until: (ev: ReturnType<typeof eventLog>["ev"]) => boolean | Promise<boolean>,
  timeoutMs: number,
  during?: (ev: ReturnType<typeof eventLog>["ev"]) => Promise<void>,
) {
  const log = eventLog();
  const ac = new AbortController();
  const running = runRelaySync({ ...src, reporter: log.reporter, signal: ac.signal });
  const deadline = Date.now() + timeoutMs;
  let ok = false;
  try {
    if (during) await during(log.ev);
    while (!(ok = await until(log.ev)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    ac.abort();
    await running;
  }
  return { ...log, ok };
}

Deno.test("a truncated .P.index or garbled update index is a clear error; local files stay intact", async () => {
  const [dir, clean] = await tempDir();
  try {
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
  } finally {
    await clean();
  }
});

Deno.test("unknown files and folders on the relay are ignored and left alone", async () => {
  const [dir, clean] = await tempDir();
  try {
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
  } finally {
    await clean();
  }
});

/**
 * pyftpdlib with a quota: 552 on STOR once the tree holds `quota` bytes; a
 * STOR that passes it stores only what fits and ends with 452.
 */
const QUOTA_HANDLER = (quota: number) => `
import logging, os
from pyftpdlib.handlers import DTPHandler
from pyftpdlib.filesystems import AbstractedFS
QUOTA = ${quota}
def used(root):
    n = 0
    for d, _, fs in os.walk(root):
        for f in fs:
            try:
                n += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return n
class QuotaFile:
    """Drops what passes the quota; the transfer then ends with 452 (as a full disk would)."""
    def __init__(self, f, n):
        self._f = f
        self._n = n
        self.full = False
    def write(self, b):
        self._n += len(b)
        if self._n > QUOTA:
            self.full = True
            return len(b)
        return self._f.write(b)
    def __getattr__(self, a):
        return getattr(self._f, a)
class QuotaFS(AbstractedFS):
    def open(self, filename, mode):
        f = AbstractedFS.open(self, filename, mode)
        return QuotaFile(f, used(self.root)) if ("w" in mode or "a" in mode) else f
class FullDTP(DTPHandler):
    def close(self):
        if getattr(self.file_obj, "full", False) and self._resp and self._resp[0].startswith("226"):
            self._resp = ("452 Insufficient storage space; transfer aborted.", logging.getLogger("pyftpdlib").info)
        DTPHandler.close(self)
class Quota(Handler):
    dtp_handler = FullDTP
    abstracted_fs = QuotaFS
    def ftp_STOR(self, file, mode="w"):
        if used(self.fs.root) >= QUOTA:
            self.respond("552 Exceeded storage allocation.")
            return
        return super().ftp_STOR(file, mode)
Handler = Quota
`;

async function ftpRoot(): Promise<[string, () => Promise<void>]> {
  const [root, clean] = await tempDir("hop-faults-ftproot-");
  await mkdir(join(root, "relay"));
  return [root, clean];
}

Deno.test("a full FTP relay (552 on STOR, 452 mid-upload): clear error, retried with backoff, local intact", async () => {
  const [dir, clean] = await tempDir();
  const [root, cleanRoot] = await ftpRoot();
  let srv: TestFtpServer | undefined;
  try {
    const quota = 300_000;
    srv = await startPyftpdlib({
      root,
      user: "relay",
      password: "pw",
      python: QUOTA_HANDLER(quota),
    });
    const url = `ftp://relay:pw@127.0.0.1:${srv.port}/relay`;
    const a = join(dir, "a");
    await mkdir(a);
    await writeFile(join(a, "big.bin"), randomBytes(1_000_000)); // incompressible, > quota
    await writeFile(join(a, "small.txt"), "small");
    const before = await snapshot(a);
    // already full: every STOR is refused with 552
    await writeFile(join(root, "relay", "filler"), new Uint8Array(quota));
    const src = { local: a, relay: url, clientName: "alice", refresh: 4 };
    const full = await loopUntil(
      src,
      (ev) => ev.filter((e) => e.event?.event === "retry").length >= 2,
      20_000,
    );
    assert.ok(full.ok, full.ev.map((e) => e.msg).join("\n"));
    const errs = full.ev.filter((e) => e.level === "warn");
    assert.ok(errs.some((e) => /552/.test(e.msg)), errs.map((e) => e.msg).join("\n"));
    assert.ok(errs.every((e) => /full/.test(String(e.event?.hint))), JSON.stringify(errs));
    // room for the small files, not for the archive: the upload is cut with 452
    await rm(join(root, "relay", "filler"));
    const cut = await loopUntil(
      src,
      (ev) => ev.filter((e) => e.event?.event === "retry").length >= 4,
      30_000,
    );
    assert.ok(cut.ok, cut.ev.map((e) => e.msg).join("\n"));
    const warns = cut.ev.filter((e) => e.level === "warn").map((e) => e.msg);
    assert.ok(warns.some((w) => /452/.test(w)), warns.join("\n"));
    // backoff: 1 s, 2 s, 4 s, then capped at refresh (4 s); attempts spaced accordingly
    const retries = cut.ev.filter((e) => e.event?.event === "retry");
    assert.deepEqual(retries.slice(0, 4).map((e) => e.event!.delayMs), [1000, 2000, 4000, 4000]);
    for (let i = 1; i < 4; i++) {
      const gap = retries[i].t - retries[i - 1].t;
      const want = retries[i - 1].event!.delayMs as number;
      assert.ok(gap >= want - 50 && gap < want + 3000, `attempt ${i}: ${gap} ms after ${want}`);
    }
    const left = await readdir(join(root, "relay"));
    assert.ok(!left.some((n) => /^\.0\.\d+\.(data|index)$/.test(n)), left.join(" "));
    assert.ok(!left.some((n) => n.startsWith(".hop-tmp-")), left.join(" "));
    assert.ok(!left.includes(".0.lock"), left.join(" "));
    assert.deepEqual(await snapshot(a), before, "local data never damaged");
  } finally {
    await srv?.stop();
    await clean();
    await cleanRoot();
  }
});

Deno.test("a read-only FTP relay: a clear error, nothing changed on either side", async () => {
  const [dir, clean] = await tempDir();
  const [root, cleanRoot] = await ftpRoot();
  let srv: TestFtpServer | undefined;
  try {
    const a = join(dir, "a");
    const b = join(dir, "b");
    for (const d of [a, b]) await mkdir(d);
    await writeFile(join(a, "f.txt"), "from alice");
    await writeFile(join(b, "mine.txt"), "bob's");
    // alice pushed through the same storage earlier (as a folder relay)
    await run(folderCfg(a, join(root, "relay"), "alice"));
    const relayBefore = await snapshot(join(root, "relay"));
    const namesBefore = (await readdir(join(root, "relay"))).sort();
    const localBefore = await snapshot(b);
    srv = await startPyftpdlib({ root, user: "relay", password: "pw", perm: "elr" });
    const url = `ftp://relay:pw@127.0.0.1:${srv.port}/relay`;
    const rep = recorder();
    await assert.rejects(
      () => runRelaySync({ local: b, relay: url, clientName: "bob", once: true, reporter: rep }),
      (e: Error & { hint?: string }) => {
        assert.match(e.message, /550|553|permission|denied|not allowed/i);
        assert.match(e.hint ?? "", /read-only|may write/);
        return true;
      },
    );
    assert.deepEqual(await snapshot(b), localBefore, "local data never damaged");
    assert.deepEqual((await readdir(join(root, "relay"))).sort(), namesBefore);
    assert.deepEqual(await snapshot(join(root, "relay")), relayBefore);
  } finally {
    await srv?.stop();
    await clean();
    await cleanRoot();
  }
});

Deno.test("FTP server killed and restarted mid-push and mid-pull: retried with backoff, data intact", async () => {
  const [dir, clean] = await tempDir();
  const [root, cleanRoot] = await ftpRoot();
  const servers: TestFtpServer[] = [];
  try {
    const start = async (port?: number) => {
      const s = await startPyftpdlib({ root, user: "relay", password: "pw", port });
      servers.push(s);
      return s;
    };
    const first = await start();
    const port = first.port;
    const url = `ftp://relay:pw@127.0.0.1:${port}/relay`;
    const a = join(dir, "a");
    const b = join(dir, "b");
    for (const d of [a, b]) await mkdir(d);
    await writeFile(join(a, "big.bin"), randomBytes(24_000_000));
    await writeFile(join(a, "small.txt"), "small");
    const beforeA = await snapshot(a);
    await run(folderCfg(b, url, "bob")); // bob registers: the update waits for him
    await writeFile(join(b, "mine.txt"), "bob's");
    /** Kills the live server by pid once `cond` holds, then restarts it on the same port. */
    const caught: boolean[] = [];
    const killWhen = (cond: () => Promise<boolean>) => async () => {
      const deadline = Date.now() + 20_000;
      let held = false;
      while (!(held = await cond()) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      caught.push(held);
      const live = servers[servers.length - 1];
      process.kill(live.pid, "SIGKILL");
      await live.stop();
      await new Promise((r) => setTimeout(r, 1500));
      await start(port);
    };
    const uploading = async () => {
      for (const n of await readdir(join(root, "relay"))) {
        if (!n.startsWith(".hop-tmp-")) continue;
        const st = await stat(join(root, "relay", n)).catch(() => null);
        if (st && st.size > 2_000_000) return true;
      }
      return false;
    };
    const push = await loopUntil(
      { local: a, relay: url, clientName: "alice", refresh: 4 },
      (ev) => ev.some((e) => e.event?.event === "pushed"),
      45_000,
      killWhen(uploading),
    );
    const msgs = push.ev.map((e) => e.msg).join("\n");
    assert.ok(push.ok, msgs);
    assert.ok(push.ev.some((e) => e.event?.event === "retry"), msgs);
    assert.ok(
      push.ev.some((e) => e.level === "warn" && /relay ftp:\/\/relay@127\.0\.0\.1/.test(e.msg)),
      msgs,
    );
    assert.deepEqual(await snapshot(a), beforeA, "the pusher's data never damaged");
    assert.deepEqual(caught, [true], "the server was killed during the upload");

    const pulling = async () =>
      (await readdir(join(b, ".hop")).catch(() => [] as string[])).some((n) =>
        n.startsWith("staging-")
      );
    const pull = await loopUntil(
      { local: b, relay: url, clientName: "bob", refresh: 4 },
      async () => "big.bin" in (await snapshot(b)),
      45_000,
      killWhen(pulling),
    );
    assert.ok(pull.ok, pull.ev.map((e) => e.msg).join("\n"));
    assert.deepEqual(caught, [true, true], "the server was killed during the download");
    assert.ok(pull.ev.some((e) => e.event?.event === "retry"));
    const snapB = await snapshot(b);
    assert.equal(snapB["big.bin"], beforeA["big.bin"], "pulled byte for byte");
    assert.equal(snapB["small.txt"], beforeA["small.txt"]);
    assert.equal(snapB["mine.txt"], createHash("sha512").update("bob's").digest("hex"));
    assert.deepEqual(
      (await readdir(join(b, ".hop"))).filter((n) => n.startsWith("staging-")),
      [],
      "no staging left",
    );
  } finally {
    for (const s of servers) await s.stop();
    await clean();
    await cleanRoot();
  }
});
