/**
 * Moving a relay with the `hop` command (the binary when HOP_BIN is set): a
 * folder relay two clients use is migrated to SFTP (OpenSSH's sshd), the
 * source is unchanged byte for byte and no lock is left on it, the clients go
 * on through the copy; the SFTP relay is backed up into one archive and
 * restored into a folder, through which a third client gets every file. A target
 * holding another relay's files, and a file that is no backup, are refused.
 * Relays named by sections of a configuration (an FTP one with its login in a
 * secret file and a host directory): copied, the file left as it was and the
 * line to change printed; a name that is no section nor folder is refused,
 * listing the sections. A migrate and a restore killed part-way are run again
 * and resume (what was whole is kept, not written again); a resume that finds
 * the half-made copy used in between refuses and removes nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { newLogin } from "./helpers/credentials.ts";
import { startPyftpdlib } from "./helpers/ftp_servers.ts";
import { runHop, spawnHop } from "./helpers/hop.ts";
import { startSshd } from "./helpers/storage_servers.ts";
import { TEMP_PREFIX } from "../src/storage/types.ts";
import { withTempDir } from "./helpers/temp.ts";
import { snapshot, tempDir } from "./relay_helpers.ts";

/** Every entry of a relay folder (hidden ones too): name -> sha256 of a file, or "dir". */
async function relayFolder(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    out[name] = (await stat(p)).isDirectory()
      ? "dir"
      : createHash("sha256").update(await readFile(p)).digest("hex");
  }
  return out;
}

async function hop(args: string[]): Promise<string> {
  const r = await runHop(args, { timeoutMs: 180_000 });
  assert.equal(r.code, 0, `hop ${args.join(" ")}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

Deno.test("hop relay migrate, backup and restore: a folder relay moves to SFTP and back, verified", async () => {
  const [dir, clean] = await tempDir("hop-relay-move-");
  const sshd = await startSshd();
  try {
    const [a, b, c, old, moved, restored] = ["a", "b", "c", "old", "sftp", "restored"].map((n) =>
      join(dir, n)
    );
    for (const d of [a, b, c, old, moved, restored]) await mkdir(d);
    const keys = ["--ssh-key", sshd.keyFile, "--host-key", sshd.hostKeyFingerprint];
    const sync = (local: string, relay: string, name: string, extra: string[] = []) =>
      hop(["relay", "sync", local, relay, "--client-name", name, "--once", ...extra]);
    // two clients on a folder relay
    await sync(b, old, "bob");
    await mkdir(join(a, "sub"));
    await writeFile(join(a, "one.txt"), "one");
    await writeFile(join(a, "sub", "big.bin"), crypto.getRandomValues(new Uint8Array(60_000)));
    await sync(a, old, "alice");
    await sync(b, old, "bob");
    assert.deepEqual(await snapshot(b), await snapshot(a));
    const before = await relayFolder(old);
    assert.ok(".0.index" in before, Object.keys(before).join(" "));

    // migrate to SFTP: verified, the source as it was, no lock left there
    const url = `${sshd.url}${moved}`;
    const out = await hop(["relay", "migrate", old, url, ...keys]);
    assert.match(out, /relay migrate: \d+ file\(s\), \d+ bytes copied .* and verified/);
    assert.deepEqual(await relayFolder(old), before, "the source is unchanged, no lock left");
    assert.deepEqual(await relayFolder(moved), before, "the copy holds the same files");

    // the clients go on through the copy
    await writeFile(join(a, "after-move.txt"), "moved");
    await sync(a, url, "alice", keys);
    await sync(b, url, "bob", keys);
    assert.deepEqual(await snapshot(b), await snapshot(a));
    assert.equal((await snapshot(b))["after-move.txt"], (await snapshot(a))["after-move.txt"]);

    // a target with another relay's files is refused, and left alone
    const busy = await runHop(["relay", "migrate", url, old, ...keys]);
    assert.equal(busy.code, 1, busy.stdout);
    assert.match(
      busy.stderr,
      /already holds relay files .*: hop copies a relay only into an empty place/,
    );
    assert.deepEqual(await relayFolder(old), before);

    // backup of the SFTP relay into one file, restored into a folder: carol gets everything
    const archive = join(dir, "relay.tar");
    assert.match(
      await hop(["relay", "backup", url, archive, ...keys]),
      /relay backup: \d+ file\(s\), \d+ bytes .* \(checked\)/,
    );
    assert.ok(!(await readdir(dir)).some((n) => n.includes("hop-part")), "no partial archive");
    assert.match(await hop(["relay", "restore", archive, restored]), /\(verified\)/);
    assert.deepEqual(await relayFolder(restored), await relayFolder(moved));
    // (a relay keeps the index and the updates not yet pulled, not every file: carol, new,
    // asks for what she lacks, and alice sends it through the restored relay)
    await sync(c, restored, "carol");
    await sync(a, restored, "alice");
    await sync(c, restored, "carol");
    assert.deepEqual(await snapshot(c), await snapshot(a));
    assert.ok(!(await readdir(moved)).some((n) => n.endsWith(".lock")), "no lock left on SFTP");

    // not a backup: refused before anything is written
    await writeFile(join(dir, "junk.tar"), "not a tar at all".repeat(100));
    const junk = await runHop(["relay", "restore", join(dir, "junk.tar"), join(dir, "empty")]);
    assert.equal(junk.code, 1, junk.stdout);
    assert.match(junk.stderr, /archive|backup/);
  } finally {
    await sshd.stop();
    await clean();
  }
});

/** The files of a relay folder (no sub-folders): name -> sha256. */
async function relayFiles(dir: string): Promise<Record<string, string>> {
  return Object.fromEntries(
    Object.entries(await relayFolder(dir)).filter(([, v]) => v !== "dir"),
  );
}

/** A file's inode and mtime: the same after a run that did not write it again. */
async function identity(p: string): Promise<string> {
  const st = await stat(p);
  return `${st.ino}:${st.mtimeMs}`;
}

/**
 * A relay of two pages whose updates hold `mb` MiB each (uncompressed), by section [src] of
 * `conf` (index = topdir): `.p1.T.data` and `.p2.T.data` are copied one after the other.
 */
async function twoPageRelay(dir: string, mb: number) {
  const [a, old] = ["a", "old"].map((n) => join(dir, n));
  for (const d of [a, old, join(a, "p1"), join(a, "p2")]) await mkdir(d, { recursive: true });
  for (const p of ["p1", "p2"]) await writeFile(join(a, p, "big.bin"), randomBytes(mb << 20));
  const conf = join(dir, "relay.conf");
  await writeFile(
    conf,
    `[src]\nlocal path = ${a}\nrelay path = ${old}\nindex = topdir\ncompression = none\n` +
      "client name = alice\n",
  );
  await hop(["relay", "sync", "-c", conf, "--once"]);
  const names = Object.keys(await relayFiles(old));
  assert.equal(names.filter((n) => /^\.p[12]\.\d+\.data$/.test(n)).length, 2, names.join(" "));
  return { conf, old };
}

/**
 * Runs `args` and kills it (SIGKILL, by pid) once `target` holds the first page's data whole
 * and a temporary file (the second being written); the names then there.
 */
async function killPartWay(args: string[], target: string, bigSize: number): Promise<string[]> {
  const p = spawnHop(args);
  try {
    for (;;) {
      const names = await readdir(target).catch(() => [] as string[]);
      const p1 = names.find((n) => /^\.p1\.\d+\.data$/.test(n));
      const p1Whole = p1 && (await stat(join(target, p1)).catch(() => null))?.size === bigSize;
      if (p1Whole && names.some((n) => n.startsWith(TEMP_PREFIX))) {
        await p.stop("SIGKILL");
        return names;
      }
      const ended = await Promise.race([p.done, new Promise((r) => setTimeout(r, 2, null))]);
      if (ended) assert.fail(`hop ended before it was cut:\n${p.stdout}${p.stderr}`);
    }
  } finally {
    await p.stop("SIGKILL");
  }
}

Deno.test("hop relay migrate, backup and restore take sections of the configuration", async () => {
  const [dir, clean] = await tempDir("hop-relay-move-sections-");
  const login = newLogin("relay");
  const ftpRoot = join(dir, "ftp");
  await mkdir(ftpRoot);
  const ftp = await startPyftpdlib({ root: ftpRoot, ...login });
  try {
    const [a, old, spare] = ["a", "old", "spare"].map((n) => join(dir, n));
    for (const d of [a, old]) await mkdir(d);
    await writeFile(join(a, "one.txt"), "one");
    await hop(["relay", "sync", a, old, "--client-name", "alice", "--once"]);
    const before = await relayFiles(old);
    const secret = join(dir, "ftp.credential");
    await writeFile(secret, `${login.user}:${login.password}\n`, { mode: 0o600 });
    const conf = join(dir, "relay.conf");
    const text = `[team]\nlocal path = ${a}\nrelay path = ${old}\nclient name = alice\n\n` +
      `[remote]\nlocal path = ${a}\nhost address = ftp://127.0.0.1:${ftp.port}\n` +
      `host directory = moved\nsecret file = ${secret}\n` +
      "client name = alice\n\n" +
      `[spare]\nlocal path = ${a}\nrelay path = ${spare}\nclient name = alice\n`;
    await writeFile(conf, text);

    // section to section: the FTP section's login and host directory are used; the file is
    // not edited, the line to change is printed
    const out = await hop(["relay", "migrate", "team", "remote", "-c", conf]);
    assert.match(out, /relay migrate: \d+ file\(s\).* and verified/);
    assert.match(
      out,
      /relay\.conf is unchanged: \[team\] still names the old relay; .* give \[team\] the relay of \[remote\] \(host address = ftp:\/\/127\.0\.0\.1:\d+\/moved, with its login\)/,
    );
    assert.doesNotMatch(out, new RegExp(login.password));
    assert.deepEqual(await relayFiles(join(ftpRoot, "moved")), before);
    assert.deepEqual(await relayFiles(old), before, "the source is unchanged");
    assert.equal(await readFile(conf, "utf8"), text, "the configuration is not edited");

    // backup of a section, restored into another; a section to an address says the line
    const archive = join(dir, "remote.tar");
    assert.match(await hop(["relay", "backup", "remote", archive, "-c", conf]), /\(checked\)/);
    assert.match(await hop(["relay", "restore", archive, "spare", "-c", conf]), /\(verified\)/);
    assert.deepEqual(await relayFiles(spare), before);
    const fresh = join(dir, "fresh");
    assert.match(
      await hop(["relay", "migrate", "team", fresh, "-c", conf]),
      new RegExp(`replace its relay lines .* with: relay path = ${fresh}\n`),
    );
    assert.deepEqual(await relayFiles(fresh), before);

    // a bare name is the section even where a folder has that name (./NAME is the folder)
    await mkdir(join(dir, "team"));
    const shadow = await runHop(["relay", "backup", "team", "t.tar", "-c", conf], { cwd: dir });
    assert.equal(shadow.code, 0, shadow.stderr);
    assert.match(
      shadow.stdout,
      /team: the section \[team\] of .*relay\.conf \(the folder of that name is \.\/team\)/,
    );
    const folder = await runHop(["relay", "backup", "./team", "t2.tar", "-c", conf], { cwd: dir });
    assert.equal(folder.code, 1, folder.stdout);
    assert.match(folder.stderr, /holds no relay files: nothing to back up/);

    // neither a section nor a file or folder: refused, the sections listed, nothing made
    const none = await runHop(["relay", "migrate", "teem", "newplace", "-c", conf], { cwd: dir });
    assert.equal(none.code, 2, none.stdout);
    assert.match(none.stderr, /teem is neither a section of .*relay\.conf nor an existing file/);
    assert.match(none.stderr, /\[team\], \[remote\], \[spare\]/);
    assert.match(none.stderr, /write \.\/teem/);
    assert.ok(!(await readdir(dir)).includes("newplace"));
  } finally {
    await ftp.stop();
    await clean();
  }
});

Deno.test("a migrate and a restore killed part-way resume when run again; a used half-copy is refused", async () => {
  await withTempDir(async (dir) => {
    const mb = 48;
    const { conf, old } = await twoPageRelay(dir, mb);
    const before = await relayFiles(old);
    const bigSize = (await stat(join(
      old,
      Object.keys(before).find((n) => n.startsWith(".p1.") && n.endsWith(".data"))!,
    ))).size;

    // migrate (the source by its section) killed while the second page's data is written
    const dest = join(dir, "dest");
    const cut = await killPartWay(["relay", "migrate", "src", dest, "-c", conf], dest, bigSize);
    assert.ok(cut.includes(".hop-moving"), cut.join(" "));
    const p1 = cut.find((n) => /^\.p1\.\d+\.data$/.test(n))!;
    const kept = await identity(join(dest, p1));
    const out = await hop(["relay", "migrate", "src", dest, "-c", conf]);
    assert.match(out, /and verified \(resumed a cut copy: [1-9]\d* file\(s\) it wrote were kept/);
    assert.equal(await identity(join(dest, p1)), kept, "a whole file is not written again");
    assert.deepEqual(await relayFiles(dest), before, "the copy is whole, no mark, no temp file");
    assert.deepEqual(await relayFiles(old), before, "the source is unchanged");

    // restore of a backup, killed the same way, resumed the same way
    const archive = join(dir, "relay.tar");
    await hop(["relay", "backup", old, archive]);
    const back = join(dir, "back");
    const cut2 = await killPartWay(["relay", "restore", archive, back], back, bigSize);
    assert.ok(cut2.includes(".hop-moving"), cut2.join(" "));
    const kept2 = await identity(join(back, p1));
    assert.match(
      await hop(["relay", "restore", archive, back]),
      /\(verified\) \(resumed a cut copy/,
    );
    assert.equal(await identity(join(back, p1)), kept2);
    assert.deepEqual(await relayFiles(back), before);

    // a half-made copy a client synced through in between: the resume refuses, removes nothing
    const used = join(dir, "used");
    await killPartWay(["relay", "migrate", old, used], used, bigSize);
    const bob = join(dir, "bob");
    await mkdir(bob);
    const b = await runHop(
      ["relay", "sync", bob, used, "--client-name", "bob", "--compression", "none", "--once"],
    );
    const there = await relayFolder(used);
    assert.ok(".hop-client-bob" in there, `${Object.keys(there).join(" ")}\n${b.stderr}`);
    const again = await runHop(["relay", "migrate", old, used]);
    assert.equal(again.code, 1, again.stdout);
    assert.match(
      again.stderr,
      /used changed since the copy from .*old was cut: .* not what the copy wrote; nothing was removed/,
    );
    assert.deepEqual(await relayFolder(used), there, "nothing of the used copy is touched");
    // (the killed run's page locks stay on the source until a move runs again and takes them)
    const locks = Object.keys(await relayFiles(old)).filter((n) => n.endsWith(".lock"));
    assert.deepEqual(locks, [".p1.lock", ".p2.lock"]);
    const unlocked = Object.fromEntries(
      Object.entries(await relayFiles(old)).filter(([n]) => !n.endsWith(".lock")),
    );
    assert.deepEqual(unlocked, before);
    // once emptied, the copy is made
    await rm(used, { recursive: true });
    assert.match(
      await hop(["relay", "migrate", old, used]),
      /took over the lock of page p1 a killed move left[^]*and verified; the source/,
    );
    assert.deepEqual(await relayFiles(used), before);
    assert.deepEqual(await relayFiles(old), before, "no lock left on the source");
  }, "hop-relay-move-resume-");
});
