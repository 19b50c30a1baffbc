/**
 * `hop relay sync` says what every pass did or why it did nothing (in sync,
 * pushed/pulled N files, waiting for named pullers, another sync holds the
 * folder, next pass in N s), a second sync on one folder is stopped by the
 * folder's lock, `--json` gives pass and error events with stable codes, and
 * a client that cannot write its folder changes nothing on the relay.
 *
 * @module
 */
import { makeDirs, withTempDir } from "./helpers/temp.ts";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { jsonEvents, relayPass, runHop, spawnHop } from "./helpers/hop.ts";
import { tempDir } from "./relay_helpers.ts";

const once = relayPass;

Deno.test("every pass says what it did: pushed, waiting for named pullers, pulled, in sync", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const b0 = await once(b, relay, "bob");
    assert.equal(b0.code, 0, b0.stderr);
    assert.equal(b0.pass.message, `${b}: in sync`);
    assert.equal(b0.pass.inSync, true);

    await writeFile(join(a, "one.txt"), "1");
    await writeFile(join(a, "two.txt"), "2");
    const a1 = await once(a, relay, "alice");
    assert.equal(a1.code, 0, a1.stderr);
    assert.equal(
      a1.pass.message,
      `${a}: pushed 2 file(s); this client's update on page 0 waits for pullers: bob`,
    );
    const a2 = await once(a, relay, "alice");
    assert.equal(
      a2.pass.message,
      `${a}: nothing moved: this client's update on page 0 waits for pullers: bob`,
    );
    assert.deepEqual(a2.pass.waits, ["this client's update on page 0 waits for pullers: bob"]);

    const b1 = await once(b, relay, "bob");
    assert.equal(b1.pass.message, `${b}: pulled 2 file(s)`);
    assert.equal(await readFile(join(b, "two.txt"), "utf8"), "2");
    const a3 = await once(a, relay, "alice");
    assert.equal(a3.pass.message, `${a}: in sync`);
    // people get the same line, without --json
    const plain = await runHop(["relay", "sync", a, relay, "--client-name", "alice", "--once"]);
    assert.match(plain.stdout, new RegExp(`^${a}: in sync$`, "m"));
  });
});

Deno.test("a second hop relay sync on one folder says who holds it; the loop says when it runs next", async () => {
  const [dir, clean] = await tempDir();
  const [relay, a] = await makeDirs(dir, ["relay", "a"]);
  const loop = spawnHop([
    "--json",
    "relay",
    "sync",
    a,
    relay,
    "--client-name",
    "alice",
    "--refresh",
    "30",
  ]);
  try {
    const [next] = await loop.waitFor(/^\{.*"event":"next-pass".*\}$/m, 60_000);
    assert.match(JSON.parse(next).message, /^next pass in \d+ s$/);
    assert.match(loop.stdout, /"message":"[^"]*: in sync","event":"pass"/);
    const second = await once(a, relay, "alice");
    assert.equal(second.code, 0, second.stderr);
    const busy = second.events.find((e) => e.event === "folder-busy");
    assert.ok(busy, second.stdout);
    assert.equal(busy.pid, loop.pid);
    assert.match(
      busy.message,
      new RegExp(`another hop relay sync holds this folder \\(pid ${loop.pid}`),
    );
  } finally {
    const end = await loop.stop("SIGTERM");
    await clean();
    assert.equal(end.code, 0, end.stdout + end.stderr);
  }
});

Deno.test("--json: a failure is one error event with a stable code and what to do", async () => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, "a"));
    const r = await once(join(dir, "a"), join(dir, "no-relay"), "alice");
    assert.equal(r.code, 1);
    const err = r.events.find((e) => e.event === "error" && e.level === "error");
    assert.ok(err, r.stdout);
    assert.equal(err.code, "relay-missing");
    assert.ok(err.hint);
    const usage = await runHop(["--json", "relay", "sync", "--no-such-flag"]);
    assert.equal(usage.code, 2);
    assert.equal(JSON.parse(usage.stdout.trim()).code, "usage");
  });
});

/** Runs hop in a mount namespace where `folder` is read-only (its `.hop/` too unless `hopRw`). */
function readOnlyWrap(folder: string, hopRw: boolean): string[] {
  const script = [
    `mount --bind -o ro '${folder}' '${folder}'`,
    ...(hopRw
      ? [
        `mount --bind '${folder}/.hop' '${folder}/.hop'`,
        `mount -o remount,bind,rw '${folder}/.hop'`,
      ]
      : []),
    'exec "$0" "$@"',
  ].join(" && ");
  return ["unshare", "-m", "sh", "-c", script];
}

Deno.test("a read-only folder: a clear error, and the relay is not changed in a way that costs others", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    const [a, c, ro] = ["a", "c", "ro"].map((n) => join(dir, n));
    for (const d of [relay, a, c, ro, join(ro, ".hop")]) await mkdir(d);
    for (let i = 0; i < 20; i++) await writeFile(join(a, `f${i}.txt`), `file ${i}`);
    assert.equal((await once(a, relay, "alice")).code, 0);
    assert.equal((await once(c, relay, "carol")).code, 0); // consumes: the update goes
    await writeFile(join(a, "new.txt"), "new");
    assert.equal((await once(a, relay, "alice")).code, 0); // a pending update for ro
    const before = await relayBytes(relay);

    // the whole folder read-only: refused before anything, saying what to do
    const whole = await runHop(["relay", "sync", ro, relay, "--client-name", "ro", "--once"], {
      wrap: readOnlyWrap(ro, false),
    });
    assert.equal(whole.code, 1, whole.stdout + whole.stderr);
    assert.match(whole.stderr, /read-only/);
    assert.match(whole.stderr, /Mount it read-write/);
    assert.doesNotMatch(whole.stderr, /bug in hop/);
    assert.deepEqual(await relayBytes(relay), before);

    // the files read-only but .hop/ writable: the pull fails, nothing is asked again
    const part = await runHop(
      ["--json", "relay", "sync", ro, relay, "--client-name", "ro", "--once"],
      { wrap: readOnlyWrap(ro, true) },
    );
    assert.equal(part.code, 1, part.stdout + part.stderr);
    assert.doesNotMatch(part.stdout + part.stderr, /bug in hop|asked for/);
    assert.match(part.stdout, /"event":"error"/);
    const after = await relayBytes(relay);
    assert.equal(after[".0.index"], before[".0.index"], "the persistent index was rewritten");
    assert.equal((await stat(join(relay, ".0.index"))).size, Number(before[".0.index"]));
  });
});

/** name -> size of every index and data file of the relay. */
async function relayBytes(relay: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of (await readdir(relay)).sort()) {
    if (/\.(index|data)$/.test(n)) out[n] = String((await stat(join(relay, n))).size);
  }
  return out;
}

/** A folder with one big file of random bytes (bzip2 takes seconds over it). */
async function bigFolder(dir: string, mb: number): Promise<void> {
  const { randomBytes } = await import("node:crypto");
  const { open } = await import("node:fs/promises");
  const fh = await open(join(dir, "big.bin"), "w");
  try {
    for (let i = 0; i < mb; i++) await fh.write(randomBytes(1 << 20));
  } finally {
    await fh.close();
  }
}

/** What is on the relay besides hop's client registrations. */
async function relayLeftovers(relay: string): Promise<string[]> {
  return (await readdir(relay)).filter((n) => !n.startsWith(".hop-client-")).sort();
}

Deno.test("Ctrl-C: acknowledged at once, the push in progress stops and is undone", async () => {
  await withTempDir(async (dir) => {
    const [relay, a] = await makeDirs(dir, ["relay", "a"]);
    await bigFolder(a, 96);
    const p = spawnHop(["--json", "relay", "sync", a, relay, "--client-name", "alice", "--once"]);
    await p.waitFor(/"event":"progress".*"label":"pushing/, 120_000);
    const end = await p.stop("SIGINT");
    assert.equal(end.code, 130, end.stdout + end.stderr);
    const events = jsonEvents(end.stdout);
    const stopping = events.findIndex((e) => e.event === "stopping");
    assert.ok(stopping >= 0, end.stdout);
    assert.match(events[stopping].message, /Ctrl-C again to abort/);
    assert.ok(events.some((e) => e.event === "interrupted"), end.stdout);
    assert.equal(events.at(-1).code, "interrupted");
    assert.deepEqual(await relayLeftovers(relay), [], "the cut push left files on the relay");
  });
});

Deno.test("a second Ctrl-C stops at once; the next run removes what was cut and pushes", async () => {
  await withTempDir(async (dir) => {
    const [relay, a] = await makeDirs(dir, ["relay", "a"]);
    await bigFolder(a, 96);
    const args = ["--json", "relay", "sync", a, relay, "--client-name", "alice", "--once"];
    const p = spawnHop(args);
    await p.waitFor(/"event":"progress".*"label":"pushing/, 120_000);
    process.kill(p.pid, "SIGINT");
    await p.waitFor(/"event":"stopping"/);
    const end = await p.stop("SIGINT");
    assert.equal(end.code, 130, end.stdout + end.stderr);
    const next = await runHop(args, { timeoutMs: 300_000 });
    assert.equal(next.code, 0, next.stdout + next.stderr);
    const left = await relayLeftovers(relay);
    assert.deepEqual(left.filter((n) => /lock|hop-tmp/.test(n)), [], left.join(" "));
    assert.equal(left.filter((n) => /^\.0\.\d+\.(index|data)$/.test(n)).length, 2, left.join(" "));
    assert.deepEqual(
      (await readdir(join(a, ".hop"))).filter((n) => n.startsWith("staging-") || n === "sync.lock"),
      [],
    );
  });
});

Deno.test("--json progress counts across pages: totals of the pass, rate and time left", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    const [a, b] = [join(dir, "a"), join(dir, "b")];
    for (const d of [relay, a, b, join(a, "docs"), join(a, "pics")]) await mkdir(d);
    const { randomBytes } = await import("node:crypto");
    let bytes = 0;
    for (const [i, top] of ["docs", "docs", "docs", "pics", "pics"].entries()) {
      const data = randomBytes(300_000 + i);
      bytes += data.length;
      await writeFile(join(a, top, `f${i}.bin`), data);
    }
    const conf = (who: string, dir: string) =>
      `[${who}]\nlocal path = ${dir}\nrelay path = ${relay}\nindex = topdir\nclient name = ${who}\n`;
    await writeFile(join(dir, "a.conf"), conf("alice", a));
    await writeFile(join(dir, "b.conf"), conf("bob", b));
    assert.equal((await runHop(["relay", "sync", "-c", join(dir, "b.conf"), "--once"])).code, 0);
    const events = async (conf: string) => {
      const r = await runHop(["--json", "relay", "sync", "-c", join(dir, conf), "--once"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return jsonEvents(r.stdout)
        .filter((e) => e.event === "progress");
    };
    const push = (await events("a.conf")).filter((e) => e.label === "pushing");
    assert.ok(push.length > 0);
    // one pass, two pages: the totals are the pass's, and the last event reaches them
    for (const e of push) {
      assert.equal(e.totalFiles, 5);
      assert.equal(e.totalBytes, bytes);
    }
    assert.equal(push.at(-1).files, 5);
    assert.equal(push.at(-1).bytes, bytes);
    assert.ok(typeof push.at(-1).rate === "number");
    assert.ok(typeof push.at(-1).etaSeconds === "number");
    const archives = (await readdir(relay)).filter((n) => /^\.[^.]+\.\d+\.data$/.test(n));
    assert.equal(archives.length, 2, "one update per page");
    let archiveBytes = 0;
    for (const n of archives) archiveBytes += (await stat(join(relay, n))).size;
    const pull = (await events("b.conf")).filter((e) => e.label === "pulling");
    assert.ok(pull.length > 0);
    for (const e of pull) {
      assert.equal(e.totalBytes, archiveBytes);
      assert.ok(e.bytes <= archiveBytes);
    }
  });
});

Deno.test("-v says why each page was left alone; --log-file keeps every line with its time", async () => {
  await withTempDir(async (dir) => {
    const [relay, a] = await makeDirs(dir, ["relay", "a"]);
    await writeFile(join(a, "x.txt"), "x");
    assert.equal((await once(a, relay, "alice")).code, 0);
    const log = join(dir, "sync.log");
    const r = await runHop([
      "-v",
      "--log-file",
      log,
      "relay",
      "sync",
      a,
      relay,
      "--client-name",
      "alice",
      "--once",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /page 0: nothing to pull: the update is this client's/);
    assert.doesNotMatch(r.stderr, /lists \d+ file/); // that one is -vv
    const vv = await runHop(["-vv", "relay", "sync", a, relay, "--client-name", "alice", "--once"]);
    assert.match(vv.stderr, /lists \d+ file\(s\)/);
    const text = await readFile(log, "utf8");
    assert.match(text, /^\d{4}-\d\d-\d\dT[\d:.]+Z info .*: nothing moved: this client's update/m);
    assert.match(text, / debug .*nothing to pull/);
  });
});

Deno.test("errors a user can fix say what to do: permission denied, a full disk", async () => {
  await withTempDir(async (dir) => {
    const { chmod } = await import("node:fs/promises");
    await chmod(dir, 0o755);
    const relay = join(dir, "relay");
    const [a, b] = [join(dir, "a"), join(dir, "b")];
    for (const d of [relay, a, b]) await mkdir(d, { mode: 0o755 });
    // a folder the user running hop may not write (root's, hop run as nobody)
    const home = join(dir, "nobody");
    await mkdir(home, { mode: 0o777 });
    await chmod(home, 0o777);
    const denied = await runHop(["relay", "sync", a, relay, "--once", "--client-name", "x"], {
      wrap: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
      env: { HOME: home, DENO_DIR: join(home, "deno") },
    });
    assert.equal(denied.code, 1, denied.stdout + denied.stderr);
    assert.match(denied.stderr, /permission denied/);
    assert.match(denied.stderr, /chmod\/chown/);
    assert.doesNotMatch(denied.stderr, /bug in hop/);
    // a disk too small for the update: said as such, nothing half-written
    const { randomBytes } = await import("node:crypto");
    await writeFile(join(a, "big.bin"), randomBytes(3_000_000));
    assert.equal((await once(b, relay, "bob")).code, 0);
    assert.equal((await once(a, relay, "alice")).code, 0);
    const full = await runHop([
      "--json",
      "relay",
      "sync",
      b,
      relay,
      "--once",
      "--client-name",
      "bob",
    ], {
      wrap: [
        "unshare",
        "-m",
        "sh",
        "-c",
        `mount -t tmpfs -o size=1m tmpfs '${b}' && exec "$0" "$@"`,
      ],
    });
    assert.equal(full.code, 1, full.stdout + full.stderr);
    const err = jsonEvents(full.stdout)
      .find((e) => e.code === "disk-full");
    assert.ok(err, full.stdout);
    assert.match(err.message, /not enough free space for page 0/);
    assert.match(err.hint, /Free some space/);
  });
});
