/**
 * Running relay sync as a person sets it up: `hop relay init` (Escale's
 * questions) writes the default configuration that `hop relay sync` then
 * reads; `hop relay start | status | stop` run it in the background; client
 * names are unique per folder (a default of host and folder; a name another
 * folder registered is refused); `--dry-run` says what a pass would do.
 *
 * @module
 */
import { makeDirs, withTempDir } from "./helpers/temp.ts";
import assert from "node:assert/strict";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { loadRelayConfig } from "../src/relay/config.ts";
import { runHop } from "./helpers/hop.ts";
import { tempDir } from "./relay_helpers.ts";

Deno.test("hop relay init asks Escale's questions, writes ~/.config/hop/relay.conf, sync reads it", async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, "home");
    await mkdir(home);
    const relay = join(dir, "relay");
    await mkdir(relay);
    const answers = [
      "~/Documents", // local repository (made)
      "y", // the relay is a mounted folder
      relay,
      "", // section name: the folder's
      "alice", // client name
      "n", // no encryption
      "", // mode: shared
      "5", // refresh
    ].join("\n") + "\n";
    const env = { HOME: home, XDG_CONFIG_HOME: "" };
    const init = await runHop(["relay", "init"], { input: answers, env });
    assert.equal(init.code, 0, init.stdout + init.stderr);
    for (
      const q of [
        "path of your local repository (required):",
        "is the relay repository locally mounted in the file system? [N/y]",
        "section name [Documents]",
        "which mode for this client?",
        "refresh interval (in seconds) [10]",
      ]
    ) assert.ok(init.stderr.includes(q), `not asked: ${q}\n${init.stderr}`);
    const file = join(home, ".config/hop/relay.conf");
    const text = await readFile(file, "utf8");
    assert.match(text, /^\[Documents\]$/m);
    assert.match(text, new RegExp(`^local path = ${home}/Documents$`, "m"));
    assert.match(text, new RegExp(`^relay path = ${relay}$`, "m"));
    assert.match(text, /^client name = alice$/m);
    assert.match(text, /^index = 1$/m);
    assert.ok((await stat(join(home, "Documents"))).isDirectory());
    await writeFile(join(home, "Documents", "note.txt"), "hi");
    // no -c and no folder: the file init wrote
    const sync = await runHop(["relay", "sync", "--once"], { env });
    assert.equal(sync.code, 0, sync.stdout + sync.stderr);
    assert.match(sync.stdout, new RegExp(`using ${file}`));
    assert.match(sync.stdout, /Documents: pushed 1 file\(s\)/);
    // a second folder goes into the same file, with its credentials and key files
    const more = [
      join(dir, "work"),
      "", // not mounted: an address
      "ftp://files.example.org:2121/relay",
      "work",
      "", // client name: host-work
      "bob",
      "s3cret",
      "", // encryption: yes
      "", // passphrase file: suggested
      "", // generate it
      "upload",
      "",
    ].join("\n") + "\n";
    const init2 = await runHop(["relay", "init"], { input: more, env });
    assert.equal(init2.code, 0, init2.stdout + init2.stderr);
    const text2 = await readFile(file, "utf8");
    assert.match(text2, /^\[Documents\]$/m);
    assert.match(text2, /^\[work\]$/m);
    assert.match(text2, new RegExp(`^client name = ${hostname()}-work$`, "m"));
    assert.match(text2, /^host address = ftp:\/\/files\.example\.org:2121\/relay$/m);
    const cred = join(home, ".config/hop/work.credential");
    assert.equal(await readFile(cred, "utf8"), "bob:s3cret");
    assert.equal((await stat(cred)).mode & 0o777, 0o600);
    // read back as Escale reads it: the login from the file, no `user` line to split it
    assert.doesNotMatch(text2, /^user = /m);
    const work = (await loadRelayConfig(file)).folders.find((f) => f.name === "work");
    assert.deepEqual([work?.user, work?.password], ["bob", "s3cret"]);
    assert.match(text2, /^encryption = fernet$/m);
    assert.equal((await readFile(join(home, ".config/hop/work.passphrase"), "utf8")).length, 44);
    assert.match(text2, /^mode = upload$/m);
  });
});

Deno.test("hop relay start | status | stop: a sync in the background, said and stopped", async () => {
  const [dir, clean] = await tempDir();
  const env = { XDG_STATE_HOME: join(dir, "state") };
  try {
    const [relay, a] = await makeDirs(dir, ["relay", "a"]);
    await writeFile(join(a, "x.txt"), "x");
    const start = await runHop(
      ["relay", "start", a, relay, "--client-name", "alice", "--refresh", "1"],
      { env },
    );
    assert.equal(start.code, 0, start.stdout + start.stderr);
    const pid = Number(/started \(pid (\d+)\)/.exec(start.stdout)![1]);
    const again = await runHop(["relay", "start", a, relay], { env });
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`runs already \\(pid ${pid}\\)`));
    const logFile = join(dir, "state/hop/relay-sync.log");
    for (let i = 0; i < 300; i++) {
      if (/: pushed 1 file/.test(await readFile(logFile, "utf8").catch(() => ""))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const status = (await runHop(["relay", "status", a, relay, "--client-name", "alice"], { env }))
      .stdout;
    assert.match(status, new RegExp(`background sync: running \\(pid ${pid}\\)`));
    assert.match(status, new RegExp(`^  \\S+ info ${a}: `, "m")); // its last passes
    const stop = await runHop(["relay", "stop"], { env });
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, new RegExp(`stopped the background relay sync \\(pid ${pid}\\)`));
    const after = await runHop(["relay", "status", a, relay, "--client-name", "alice"], { env });
    assert.match(after.stdout, /background sync: not running/);
    const log = await readFile(logFile, "utf8");
    assert.match(log, /info .*: pushed 1 file/);
    assert.match(log, /next pass in/);
  } finally {
    await runHop(["relay", "stop"], { env });
    await clean();
  }
});

Deno.test("client names: host and folder by default; a name another folder registered is refused", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    await writeFile(join(a, "from-a.txt"), "A");
    // two folders of one host, no names given: each gets its own, b receives a's file
    assert.equal((await runHop(["relay", "sync", b, relay, "--once"])).code, 0);
    const pa = await runHop(["relay", "sync", a, relay, "--once"]);
    assert.equal(pa.code, 0, pa.stderr);
    assert.match(pa.stdout, new RegExp(`waits for pullers: ${hostname()}-b`));
    assert.equal((await runHop(["relay", "sync", b, relay, "--once"])).code, 0);
    assert.equal(await readFile(join(b, "from-a.txt"), "utf8"), "A");
    // the same name for the two folders: the second is refused, saying what to do
    assert.equal(
      (await runHop(["relay", "sync", a, relay, "--once", "--client-name", "x"])).code,
      0,
    );
    const taken = await runHop([
      "--json",
      "relay",
      "sync",
      b,
      relay,
      "--once",
      "--client-name",
      "x",
    ]);
    assert.equal(taken.code, 1);
    const err = JSON.parse(taken.stdout.trim().split("\n").at(-1)!);
    assert.equal(err.code, "client-name-taken");
    assert.match(err.message, new RegExp(`"x" is already registered .* by ${a} on ${hostname()}`));
    assert.match(err.hint, /hop relay forget x/);
    // once forgotten, the name is free
    assert.equal((await runHop(["relay", "forget", "x", b, relay])).code, 0);
    assert.equal(
      (await runHop(["relay", "sync", b, relay, "--once", "--client-name", "x"])).code,
      0,
    );
  });
});

Deno.test("--dry-run says what a pass would push and pull, and changes nothing", async () => {
  await withTempDir(async (dir) => {
    const [relay, a] = await makeDirs(dir, ["relay", "a"]);
    await writeFile(join(a, "one.txt"), "1");
    await writeFile(join(a, "two.txt"), "2");
    const r = await runHop(["relay", "sync", a, relay, "--dry-run", "--client-name", "alice"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /dry run: a pass would push 2 file\(s\), send 0 deletion\(s\) and pull 0/,
    );
    const { readdir } = await import("node:fs/promises");
    assert.deepEqual(await readdir(relay), []);
  });
});

Deno.test("two sections of one file on one relay under the host's name: the second is refused", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    // no `client name`: both take the host's name, as Escale does
    const conf = `[one]\nlocal path = ${a}\nrelay path = ${relay}\nindex = 1\n\n` +
      `[two]\nlocal path = ${b}\nrelay path = ${relay}\nindex = 1\n`;
    await writeFile(join(dir, "relay.conf"), conf);
    const r = await runHop(["relay", "sync", "-c", join(dir, "relay.conf"), "--once"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `\\[two\\] cannot run: \\[two\\] and \\[one\\] would sync .* under one client name "${hostname()}"`,
      ),
    );
    assert.match(r.stdout, /one: in sync/); // the first still runs
  });
});
