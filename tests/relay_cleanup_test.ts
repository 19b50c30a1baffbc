/**
 * `hop cleanup` on relays: a lock left by a client killed mid-push is found
 * and removed (its cut push rolled back), consumed updates, expired
 * registrations, stale temp files, guards and orphan claims go, and a dry
 * run changes nothing.
 *
 * @module
 */
import { makeDirs, withTempDir } from "./helpers/temp.ts";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { encodeLock } from "../src/codec/lock.ts";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import { cleanupRelay } from "../src/relay/cleanup.ts";
import { clientFileName } from "../src/relay/hopfiles.ts";
import { folderState } from "./helpers/trees.ts";
import type { FolderConfig } from "../src/relay/config.ts";
import { folderCfg, recorder, snapshot, syncOnce, tempDir } from "./relay_helpers.ts";
import { spawnHop } from "./helpers/hop.ts";

/** One pass in process (a first pass unless told). */
const run = (cfg: FolderConfig, first = true) => syncOnce(cfg, first);

globalThis.addEventListener("unload", () => closePool());

Deno.test("a relay lock left by a client killed mid-push is found, shown by a dry run, then removed", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    await run(folderCfg(b, relay, "bob"));
    await writeFile(join(a, "big.bin"), randomBytes(16_000_000));
    await writeFile(join(a, "small.txt"), "small");
    const before = await snapshot(a);
    const child = spawnHop(["relay", "sync", a, relay, "--client-name", "alice", "--once"]);
    let locked = false;
    for (let i = 0; i < 1500 && !locked; i++) {
      await new Promise((r) => setTimeout(r, 10));
      locked = (await readdir(relay)).includes(".0.lock");
    }
    await child.stop("SIGKILL");
    assert.ok(locked, "the client took the lock before it was killed");
    assert.ok((await readdir(relay)).includes(".0.lock"), "the killed client left its lock");
    assert.deepEqual(await snapshot(a), before, "local data untouched by the kill");

    // within the timeout the holder may be alive: nothing to do
    const early = await cleanupRelay({ local: a, relay, clientName: "carl", reporter: recorder() });
    assert.deepEqual(early.filter((x) => x.kind === "stale-lock"), []);

    const later = () => Date.now() + 2 * 3600_000; // beyond lock timeout and temp staleness
    const state = await folderState(relay);
    const dry = await cleanupRelay({
      local: a,
      relay,
      clientName: "carl",
      dryRun: true,
      now: later,
      reporter: recorder(),
    });
    const lock = dry.find((x) => x.kind === "stale-lock");
    assert.ok(lock, JSON.stringify(dry));
    assert.equal(lock.done, false);
    assert.match(lock.detail, /w lock of alice/);
    assert.deepEqual(await folderState(relay), state, "a dry run changes nothing");

    const rep = recorder();
    const done = await cleanupRelay({
      local: a,
      relay,
      clientName: "carl",
      now: later,
      reporter: rep,
    });
    const removed = done.find((x) => x.kind === "stale-lock");
    assert.ok(removed?.done, JSON.stringify(done));
    assert.ok(rep.infos.some((m) => /removed stale-lock \.0\.lock/.test(m)), rep.infos.join("\n"));
    const left = await readdir(relay);
    assert.ok(!left.includes(".0.lock"), left.join(" "));
    assert.ok(!left.some((n) => n.startsWith(".hop-tmp-")), left.join(" "));
    assert.ok(!left.some((n) => /^\.0\.\d+\.(data|index)$/.test(n)), left.join(" "));
    // the page is usable again: alice pushes, bob pulls the same bytes
    assert.equal((await run(folderCfg(a, relay, "alice"))).pushed, 2);
    await run(folderCfg(b, relay, "bob"), false);
    assert.deepEqual(await snapshot(b), before);
  });
});

Deno.test("cleanup removes consumed updates, expired clients, temp files, guards and orphan claims", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const nowS = Math.floor(Date.now() / 1000);
    // carol registered 29 days ago and has not been seen since
    await writeFile(
      join(relay, clientFileName("carol")),
      JSON.stringify({
        name: "carol",
        mode: "shared",
        host: "gone",
        registered: nowS - 29 * 86400,
        seen: nowS - 29 * 86400,
      }),
    );
    await run(folderCfg(b, relay, "bob"));
    await writeFile(join(a, "f.txt"), "content");
    assert.equal((await run(folderCfg(a, relay, "alice"))).pushed, 1);
    await run(folderCfg(b, relay, "bob"), false);
    assert.ok((await readdir(relay)).some((n) => /^\.0\.\d+\.data$/.test(n)), "waits for carol");
    const old = Date.now() / 1000 - 3 * 3600;
    await writeFile(join(relay, ".hop-tmp-cut"), "partial");
    await utimes(join(relay, ".hop-tmp-cut"), old, old);
    await writeFile(join(relay, ".hop-tmp-live"), "being written");
    await writeFile(join(relay, ".hop-takeover-0"), "guard");
    await utimes(join(relay, ".hop-takeover-0"), old, old);
    await mkdir(join(relay, ".x.lock.excl"));
    await utimes(join(relay, ".x.lock.excl"), old, old);
    await mkdir(join(relay, ".y.lock.excl")); // fresh: being created right now
    const later = () => Date.now() + 2 * 86400_000; // carol's registration is now expired

    const state = await folderState(relay);
    const dry = await cleanupRelay({
      local: a,
      relay,
      clientName: "alice",
      dryRun: true,
      now: later,
      reporter: recorder(),
    });
    assert.deepEqual(await folderState(relay), state, "a dry run changes nothing");
    const kinds = (xs: typeof dry) => xs.map((x) => `${x.kind} ${x.name}`).sort();
    // the fresh temp file is 2 days old by the shifted clock: use the real clock for those
    const expected = [
      "consumed-update",
      "expired-client .hop-client-carol",
      "orphan-claim .x.lock.excl",
      "orphan-claim .y.lock.excl",
      "takeover-guard .hop-takeover-0",
      "temp-file .hop-tmp-cut",
      "temp-file .hop-tmp-live",
    ];
    assert.deepEqual(
      kinds(dry).map((k) => k.replace(/^consumed-update .*/, "consumed-update")),
      expected,
    );
    assert.ok(dry.every((x) => !x.done));

    // with the real clock, fresh files stay and carol is still registered
    const now = await cleanupRelay({ local: a, relay, clientName: "alice", reporter: recorder() });
    assert.deepEqual(kinds(now), [
      "orphan-claim .x.lock.excl",
      "takeover-guard .hop-takeover-0",
      "temp-file .hop-tmp-cut",
    ]);
    assert.ok(now.every((x) => x.done));
    const names = await readdir(relay);
    for (const gone of [".hop-tmp-cut", ".hop-takeover-0", ".x.lock.excl"]) {
      assert.ok(!names.includes(gone), gone);
    }
    for (const kept of [".hop-tmp-live", ".y.lock.excl", clientFileName("carol")]) {
      assert.ok(names.includes(kept), kept);
    }
    assert.ok((await stat(join(relay, ".y.lock.excl"))).isDirectory());

    const after = await cleanupRelay({
      local: a,
      relay,
      clientName: "alice",
      now: later,
      reporter: recorder(),
    });
    assert.ok(after.some((x) => x.kind === "consumed-update" && x.done), JSON.stringify(after));
    assert.ok(after.some((x) => x.kind === "expired-client" && x.done));
    const final = await readdir(relay);
    assert.ok(!final.some((n) => /^\.0\.\d+\.(data|index)$/.test(n)), final.join(" "));
    assert.ok(!final.includes(clientFileName("carol")));
    assert.ok(final.includes(".0.index"), "the persistent index stays");
    // idempotent
    const again = await cleanupRelay({
      local: a,
      relay,
      clientName: "alice",
      now: later,
      reporter: recorder(),
    });
    assert.deepEqual(
      again.filter((x) => !x.name.startsWith(".hop-tmp-live") && !x.name.startsWith(".y.")),
      [],
    );
  });
});

Deno.test("cleanup over FTP: a stale lock (with its claim and cut push) and an orphan claim folder go", async () => {
  const [dir, clean] = await tempDir();
  const [root, cleanRoot] = await tempDir("hop-cleanup-ftproot-");
  let srv: TestFtpServer | undefined;
  try {
    const relay = join(root, "relay");
    const a = join(dir, "a");
    for (const d of [relay, a]) await mkdir(d);
    const old = Date.now() / 1000 - 3 * 3600;
    await writeFile(
      join(relay, ".0.lock"),
      encodeLock({ owner: "gone", mode: "w", acquired: old * 1000, host: "elsewhere" }),
    );
    await mkdir(join(relay, ".0.lock.excl")); // its claim: held, removed with the lock
    await mkdir(join(relay, ".9.lock.excl")); // a claim whose client died before writing the lock
    await utimes(join(relay, ".9.lock.excl"), old, old);
    await writeFile(join(relay, ".0.1700000000.data"), "cut push");
    srv = await startPyftpdlib({ root });
    const url = srv.loginUrl("relay");
    const dry = await cleanupRelay({
      local: a,
      relay: url,
      clientName: "alice",
      dryRun: true,
      reporter: recorder(),
    });
    assert.deepEqual(dry.map((x) => `${x.kind} ${x.name}`).sort(), [
      "orphan-claim .9.lock.excl",
      "stale-lock .0.lock",
    ]);
    const done = await cleanupRelay({
      local: a,
      relay: url,
      clientName: "alice",
      reporter: recorder(),
    });
    assert.ok(done.every((x) => x.done), JSON.stringify(done));
    assert.match(done.find((x) => x.kind === "stale-lock")!.detail, /removed the unfinished/);
    assert.deepEqual((await readdir(relay)).filter((n) => !n.startsWith(".hop-client")), []);
  } finally {
    await srv?.stop();
    await clean();
    await cleanRoot();
  }
});
