/**
 * The relay maintenance verbs as a user runs them (the binary), with the real
 * Escale 0.7.13 client among the clients: `hop relay fix` rebuilds a deleted
 * or garbled page index from one client's folder, after which no client
 * (hop or Escale) sends anything again and no file is lost; `suspend` locks
 * pages as `<client>-suspend` so that nobody pushes or pulls them, even past
 * the lock timeout, until `resume`; `list-pending` names what a push would
 * send; `rebase` makes the relay's files a subfolder of a new root, pending
 * update included, and clients moved up a level converge with nothing lost;
 * `access` keeps an `r-` file from being pushed and a `w-` one from being
 * written or deleted, until unset;
 * placeholder relays, topdir rebases and unknown sections are refused, saying why.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  appendFile,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  utimes,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { encodeLock } from "../src/codec/lock.ts";
import { openBackend } from "../src/relay/backend/mod.ts";
import { readPersistentIndex } from "../src/relay/pages.ts";
import { runEscale } from "./helpers/escale.ts";
import { jsonEvents, runHop } from "./helpers/hop.ts";
import { converge, folderWorld, inFlight, pass, sha } from "./helpers/mixed_relay.ts";
import { put } from "./helpers/trees.ts";
import { makeDirs } from "./helpers/temp.ts";
import { snapshot, tempDir } from "./relay_helpers.ts";

globalThis.addEventListener("unload", () => closePool());

const T = 1_700_000_000;

/** The relay's `.0.index` as path -> checksum. */
async function index0(relay: string): Promise<Record<string, string>> {
  const io = await openBackend(relay);
  try {
    const out: Record<string, string> = {};
    for (const e of await readPersistentIndex(io, "0")) out[e.path] = e.meta!.checksum;
    return out;
  } finally {
    await io.close();
  }
}

/** A world of Escale (`esc`) and two hop clients on a folder relay, converged on four files. */
async function world(dir: string) {
  const w = await folderWorld(dir);
  const relay = w.relayDir;
  const [esc, h1, h2] = w.peers;
  await put(h1.dir, "one.txt", "one\n", T);
  await put(h1.dir, "sub/two.txt", "two\n", T + 1);
  await put(h2.dir, "three.txt", "three\n", T + 2);
  await put(esc.dir, "esc.txt", "from Escale\n", T + 3);
  await converge(w, "set-up");
  return { w, relay, esc, h1, h2 };
}

Deno.test("hop relay fix: a deleted, then a garbled page index is rebuilt; nobody sends again, nothing is lost", async () => {
  const [dir, clean] = await tempDir("hop-relay-fix-");
  try {
    const { w, relay, esc, h1, h2 } = await world(dir);
    const files = await snapshot(h1.dir);
    assert.deepEqual(Object.keys(files).sort(), ["esc.txt", "one.txt", "sub/two.txt", "three.txt"]);
    const before = await index0(relay);

    for (const [damage, fixer] of [["deleted", h1], ["garbled", h2]] as const) {
      if (damage === "deleted") await rm(join(relay, ".0.index"));
      else await writeFile(join(relay, ".0.index"), "BZh91AY&SYnot an index");
      const fix = await runHop(["relay", "fix", "-c", fixer.confs[0]]);
      assert.equal(fix.code, 0, fix.stdout + fix.stderr);
      assert.match(fix.stdout, /page 0: wrote \.0\.index: 4 file\(s\) of /);
      assert.match(fix.stdout, /relay fix: 1 page index\(es\) written/);
      assert.deepEqual(await index0(relay), before, `${damage}: the index as it was`);
      assert.ok(!(await readdir(relay)).includes(".0.lock"), "the page lock was released");

      // the hop clients find nothing to send or fetch: no update, no request
      for (const p of [h1, h2]) {
        const r = await runHop(["relay", "sync", "-c", p.confs[0], "--once"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout + r.stderr, /pulled 0, pushed 0, deleted 0 here and sent 0/);
        assert.deepEqual(await inFlight(relay), [], `${damage}: ${p.name} sent something`);
      }
      // Escale reads the fixed index and has nothing to send either
      await pass(w, esc);
      assert.deepEqual(await inFlight(relay), [], `${damage}: Escale sent something`);
      for (const p of w.peers) assert.deepEqual(await snapshot(p.dir), files, p.name);
    }

    // the relay works on: an edit of each kind of client reaches every folder
    await put(h2.dir, "one.txt", "one, edited by h2\n", T + 100);
    await put(esc.dir, "sub/new.txt", "new from Escale\n", T + 101);
    await converge(w, "after the fixes");
    const end = await snapshot(h1.dir);
    assert.equal(end["one.txt"], sha("one, edited by h2\n"));
    assert.equal(end["sub/new.txt"], sha("new from Escale\n"));
    assert.equal(Object.keys(end).length, 5);
  } finally {
    await clean();
  }
});

Deno.test("hop relay suspend / resume: no client pushes or pulls a suspended page, even past the lock timeout", async () => {
  const [dir, clean] = await tempDir("hop-relay-suspend-");
  try {
    const { w, relay, esc, h1, h2 } = await world(dir);
    // h2 takes stale locks over after 2 s
    await appendFile(h2.confs[0], "lock timeout = 2\n");

    // a page held by another client: suspend waits, then says who holds it
    await writeFile(
      join(relay, ".0.lock"),
      encodeLock({ owner: "zoe", mode: "r", acquired: Date.now(), host: "zhost" }),
    );
    const busy = await runHop(["relay", "suspend", "-c", h1.confs[0], "--wait", "2"]);
    assert.equal(busy.code, 1, busy.stdout + busy.stderr);
    assert.match(
      busy.stdout,
      /page 0 is locked by zoe on zhost \(r lock, \d+ s old\); waiting up to 2 s/,
    );
    assert.match(busy.stderr, /1 page\(s\) not suspended after 2 s: 0 \(locked by zoe on zhost/);
    await rm(join(relay, ".0.lock"));

    const sus = await runHop(["relay", "suspend", "-c", h1.confs[0]]);
    assert.equal(sus.code, 0, sus.stderr);
    assert.match(sus.stdout, /page 0 suspended \(locked as h1-suspend\)/);
    assert.match(
      await readFile(join(relay, ".0.lock"), "utf8"),
      /^lock%1\.0\nowner: h1-suspend\nmode: w\n/,
    );
    const again = await runHop(["relay", "suspend", "-c", h1.confs[0]]);
    assert.match(again.stdout, /page 0 was already suspended/);

    // edits everywhere; the lock gets older than h2's timeout
    await put(h2.dir, "three.txt", "three, edited by h2\n", T + 100);
    await put(esc.dir, "esc.txt", "edited by Escale\n", T + 101);
    const old = Date.now() / 1000 - 3600;
    await utimes(join(relay, ".0.lock"), old, old);
    await new Promise((r) => setTimeout(r, 2500));
    const blocked = await runHop(["relay", "sync", "-c", h2.confs[0], "--once"]);
    assert.equal(blocked.code, 0, blocked.stderr);
    assert.match(
      blocked.stderr,
      /page 0 is locked \(w\) by h1-suspend .*suspended for maintenance until `hop relay resume`/,
    );
    // Escale waits for the lock (its pass does not end): stopped after a while, it sent nothing
    const escRun = await runEscale(esc.confs[0], 10, { home: esc.home });
    assert.doesNotMatch(escRun.output, /Traceback/);
    assert.deepEqual(await inFlight(relay), [], "a client pushed into a suspended page");
    assert.equal((await snapshot(esc.dir))["three.txt"], sha("three\n"), "Escale pulled");
    assert.match(await readFile(join(relay, ".0.lock"), "utf8"), /owner: h1-suspend/);

    // another client's resume leaves it alone; audit does not call it stale
    const other = await runHop(["relay", "resume", "-c", h2.confs[0], "--page", "0"]);
    assert.equal(other.code, 0, other.stderr);
    assert.match(
      other.stderr,
      /page 0 is locked by h1-suspend .*not suspended by h2-suspend; left alone/,
    );
    const audit = await runHop(["audit", "-c", h2.confs[0]]);
    assert.match(audit.stdout + audit.stderr, /w lock held by h1-suspend/);
    assert.doesNotMatch(audit.stdout + audit.stderr, /beyond the .* timeout/);

    const res = await runHop(["relay", "resume", "-c", h1.confs[0]]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /page 0 resumed \(released h1-suspend's lock\)/);
    assert.ok(!(await readdir(relay)).includes(".0.lock"));
    const none = await runHop(["relay", "resume", "-c", h1.confs[0]]);
    assert.match(none.stdout, /no page is suspended by h1-suspend; nothing to resume/);

    await converge(w, "after resume");
    const end = await snapshot(h1.dir);
    assert.equal(end["three.txt"], sha("three, edited by h2\n"));
    assert.equal(end["esc.txt"], sha("edited by Escale\n"));
  } finally {
    await clean();
  }
});

Deno.test("hop relay list-pending names the local files no index names; --dirs, --page, --json, --section", async () => {
  const [dir, clean] = await tempDir("hop-relay-pending-");
  try {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const conf = join(dir, "relay.conf");
    await writeFile(
      conf,
      `[a]\nlocal path = ${a}\nrelay path = ${relay}\nprotocol = file\nindex = topdir\n` +
        `client name = alice\n\n[b]\nlocal path = ${b}\nrelay path = ${relay}\n` +
        `protocol = file\nindex = topdir\nclient name = bob\n`,
    );
    await put(a, "docs/old.txt", "old");
    const first = await runHop(["relay", "sync", "-c", conf, "--once"]);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(Object.keys(await index0Topdir(relay, "docs")).includes("docs/old.txt"));
    await put(a, "docs/new.txt", "new");
    await put(a, "docs/deep/more.txt", "more");
    await put(a, "pics/p.png", "png");

    const all = await runHop(["relay", "list-pending", "-c", conf, "--section", "a"]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(
      all.stdout,
      /a: page docs: 2 file\(s\) not in \.docs\.index\n {2}docs\/deep\/more\.txt\n {2}docs\/new\.txt\n/,
    );
    assert.match(
      all.stdout,
      /a: page pics: 1 file\(s\) not in \.pics\.index \(the page has no index\)\n {2}pics\/p\.png\n/,
    );
    assert.doesNotMatch(all.stdout, /old\.txt/);
    const dirs = await runHop([
      "relay",
      "list-pending",
      "-c",
      conf,
      "-s",
      "a",
      "--dirs",
      "--page",
      "docs",
    ]);
    assert.match(
      dirs.stdout,
      /page docs: 2 file\(s\) not in \.docs\.index, in 2 folder\(s\)\n {2}docs\/deep\n {2}docs\n/,
    );
    assert.doesNotMatch(dirs.stdout, /pics/);
    const json = await runHop(["--json", "relay", "list-pending", "-c", conf, "-s", "a"]);
    const events = jsonEvents(json.stdout);
    assert.deepEqual(
      events.filter((e) => e.event === "pending").map((e) => [e.page, e.paths, e.noIndex]),
      [["docs", ["docs/deep/more.txt", "docs/new.txt"], false], ["pics", ["pics/p.png"], true]],
    );
    // topdir pages cannot move under one folder: refused, as escalectl does
    const topdir = await runHop(["relay", "rebase", "docs", "-c", conf, "-s", "a"]);
    assert.equal(topdir.code, 1, topdir.stderr);
    assert.match(topdir.stderr, /cannot add a folder above the files of a topdir index/);

    const unknown = await runHop(["relay", "list-pending", "-c", conf, "-s", "zz"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /has no section \[zz\]/);
    assert.match(unknown.stderr, /\[a\], \[b\]/);

    // Escale's placeholder scheme (no `index` line) has no pages: the verbs say so
    const ph = join(dir, "ph.conf");
    await writeFile(
      ph,
      `[p]\nlocal path = ${a}\nrelay path = ${relay}-ph\nprotocol = file\nclient name = alice\n`,
    );
    await makeDirs(dir, ["relay-ph"]);
    for (const verb of ["fix", "suspend", "resume", "list-pending", "rebase"]) {
      const r = await runHop(["relay", verb, ...(verb === "rebase" ? ["docs"] : []), "-c", ph]);
      assert.equal(r.code, 1, `${verb}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`hop relay ${verb} works on index relays only`));
      assert.match(r.stderr, /placeholder scheme/);
    }
  } finally {
    await clean();
  }
});

Deno.test("hop relay rebase: the relay's files become a subfolder; every client moved up converges", async () => {
  const [dir, clean] = await tempDir("hop-relay-rebase-");
  try {
    const { w, relay, esc, h1, h2 } = await world(dir);
    // a pending update: h1's edit waits for h2 and Escale
    await put(h1.dir, "sub/two.txt", "two, edited\n", T + 50);
    await pass(w, h1);
    assert.equal((await inFlight(relay)).length, 2, (await inFlight(relay)).join(" "));
    const bad = await runHop(["relay", "rebase", "../up", "-c", h2.confs[0]]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /cannot rebase into '..\/up'/);

    const r = await runHop(["relay", "rebase", "docs/", "-c", h2.confs[0]]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /the relay's files are now under docs\/: 4 index entr\(ies\), 1 file\(s\) of the pending update/,
    );
    assert.deepEqual(Object.keys(await index0(relay)).sort(), [
      "docs/esc.txt",
      "docs/one.txt",
      "docs/sub/two.txt",
      "docs/three.txt",
    ]);
    assert.ok(!(await readdir(relay)).includes(".0.lock"));

    // every client's folder becomes docs/ of a new root, which its configuration names
    for (const p of w.peers) {
      const root = `${p.dir}-root`;
      await mkdir(root);
      await rename(p.dir, join(root, "docs"));
      for (const c of p.confs) {
        const text = await readFile(c, "utf8");
        assert.ok(text.includes(`local path = ${p.dir}\n`));
        await writeFile(c, text.replace(`local path = ${p.dir}\n`, `local path = ${root}\n`));
      }
      p.dir = root;
    }
    await put(esc.dir, "top.txt", "at the new root\n", T + 60);
    await converge(w, "after the rebase");
    const end = await snapshot(h2.dir);
    // h2 had not pulled h1's edit: its moved folder starts with no sync memory, so its older
    // version became a conflict copy (kept, as the README says); Escale took the edit plainly
    const copies = Object.keys(end).filter((p) => p.includes(".conflict-"));
    assert.equal(copies.length, 1, copies.join(" "));
    assert.match(copies[0], /^docs\/sub\/two\.conflict-h2-\d{8}-\d{6}\.txt$/);
    assert.equal(end[copies[0]], sha("two\n"));
    assert.deepEqual(Object.keys(end).filter((p) => !copies.includes(p)).sort(), [
      "docs/esc.txt",
      "docs/one.txt",
      "docs/sub/two.txt",
      "docs/three.txt",
      "top.txt",
    ]);
    assert.equal(end["docs/sub/two.txt"], sha("two, edited\n"), "the pending update was pulled");
    assert.equal(end["top.txt"], sha("at the new root\n"));
  } finally {
    await clean();
  }
});

/** The relay's `.P.index` of a topdir page as path -> checksum. */
async function index0Topdir(relay: string, page: string): Promise<Record<string, string>> {
  const io = await openBackend(relay);
  try {
    return Object.fromEntries(
      (await readPersistentIndex(io, page)).map((e) => [e.path, e.meta!.checksum]),
    );
  } finally {
    await io.close();
  }
}

Deno.test("hop relay access: r- is never pushed, w- never written or deleted by sync; unset, it syncs again", async () => {
  const [dir, clean] = await tempDir("hop-relay-access-");
  try {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const conf = async (name: string, local: string) => {
      const f = join(dir, `${name}.conf`);
      await writeFile(
        f,
        `[${name}]\nlocal path = ${local}\nrelay path = ${relay}\nprotocol = file\nindex = 1\n` +
          `client name = ${name}\n`,
      );
      return f;
    };
    const [A, B] = [await conf("alice", a), await conf("bob", b)];
    const sync = async (c: string) => {
      const r = await runHop(["relay", "sync", "-c", c, "--once"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return r.stdout + r.stderr;
    };
    await sync(B);
    await put(a, "keep.txt", "v1");
    await put(a, "shared.txt", "shared");
    await sync(A);
    await sync(B);
    assert.deepEqual(Object.keys(await snapshot(b)).sort(), ["keep.txt", "shared.txt"]);

    // r-: alice's private file stays hers
    await put(a, "private.txt", "mine only");
    const shown = await runHop(["relay", "access", "private.txt", "-c", A], { cwd: a });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(
      shown.stdout,
      /alice: private\.txt: r\?w\? \(pushed, written and deleted by sync\)/,
    );
    const set = await runHop(["relay", "access", "r-", "private.txt", "-c", A], { cwd: a });
    assert.match(set.stdout, /private\.txt: r-w\? \(never pushed, written and deleted by sync\)/);
    // w-: bob's keep.txt and shared.txt are his to keep
    for (const f of ["keep.txt", "shared.txt"]) {
      const w = await runHop(["relay", "access", "w-", join(b, f), "-c", B]);
      assert.equal(w.code, 0, w.stderr);
    }
    const json = await runHop(["--json", "relay", "access", "keep.txt", "-c", B], { cwd: b });
    const ev = jsonEvents(json.stdout)
      .find((e) => e.event === "access");
    assert.deepEqual([ev.path, ev.modifiers, ev.r, ev.w], ["keep.txt", "r?w-", null, false]);

    await put(a, "keep.txt", "v2");
    await rm(join(a, "shared.txt"));
    await sync(A);
    await sync(B);
    await sync(A);
    await sync(B);
    assert.ok(!Object.keys(await index0(relay)).includes("private.txt"), "private.txt was pushed");
    const bs = await snapshot(b);
    assert.deepEqual(Object.keys(bs).sort(), ["keep.txt", "shared.txt"]);
    assert.equal(bs["keep.txt"], sha("v1"), "a w- file was written");

    // unset: bob takes alice's version again
    const unset = await runHop(["relay", "access", "w?", "keep.txt", "-c", B], { cwd: b });
    assert.match(unset.stdout, /keep\.txt: r\?w\? /);
    for (let i = 0; i < 3; i++) {
      await sync(B);
      await sync(A);
    }
    await sync(B);
    assert.equal((await snapshot(b))["keep.txt"], sha("v2"), "unset, keep.txt did not sync");
    assert.deepEqual(
      JSON.parse(await readFile(join(b, ".hop", "access.json"), "utf8")),
      { v: 1, files: { "shared.txt": "r?w-" } },
    );

    // bad modifiers, a file outside every folder
    const bad = await runHop(["relay", "access", "x+", "keep.txt", "-c", B], { cwd: b });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /bad access modifiers 'x\+'/);
    const outside = await runHop(["relay", "access", "r-", join(dir, "A.conf"), "-c", B]);
    assert.equal(outside.code, 2, outside.stderr);
    assert.match(outside.stderr, /is in none of the synced folders/);
  } finally {
    await clean();
  }
});
