/**
 * Relay sync against faulty FTP relays: a full relay (552 on STOR, 452 when
 * an upload passes the quota), a read-only account, and the server killed
 * and restarted mid-push and mid-pull. Each gives a clear error, the loop
 * retries with exponential backoff, and local data
 * is never damaged (trees compared byte for byte).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { closePool } from "../src/archive/bzip2.ts";
import { runRelaySync } from "../src/relay/command.ts";
import { newLogin } from "./helpers/credentials.ts";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import type { FolderConfig } from "../src/relay/config.ts";
import { folderCfg, recorder, snapshot, syncOnce, tempDir } from "./relay_helpers.ts";

/** One pass in process (a first pass unless told). */
const run = (cfg: FolderConfig, first = true) => syncOnce(cfg, first);

globalThis.addEventListener("unload", () => closePool());

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
    srv = await startPyftpdlib({ root, python: QUOTA_HANDLER(quota) });
    const url = srv.loginUrl("relay");
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
      // Not sooner than the backoff; how much later depends on the machine's load.
      assert.ok(gap >= want - 50, `attempt ${i}: ${gap} ms after ${want}`);
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
    srv = await startPyftpdlib({ root, perm: "elr" });
    const url = srv.loginUrl("relay");
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
    const login = newLogin("relay"); // the restarted server takes the same one
    const start = async (port?: number) => {
      const s = await startPyftpdlib({ root, ...login, port });
      servers.push(s);
      return s;
    };
    const first = await start();
    const port = first.port;
    const url = first.loginUrl("relay");
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
      120_000, // ends when the condition holds; the margin is for a loaded machine
      killWhen(uploading),
    );
    const msgs = push.ev.map((e) => e.msg).join("\n");
    assert.ok(push.ok, msgs);
    assert.ok(push.ev.some((e) => e.event?.event === "retry"), msgs);
    assert.ok(
      push.ev.some((e) => e.level === "warn" && e.msg.includes(`ftp://${login.user}@127.0.0.1`)),
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
      // the pull step reported (not only the file in place): stopping while the step still
      // streams raced Bun's stream teardown (an unhandled "stopped" rejection, CI)
      async (ev) => ev.some((e) => e.event?.event === "pulled") && "big.bin" in (await snapshot(b)),
      120_000, // ends when the condition holds; the margin is for a loaded machine
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
