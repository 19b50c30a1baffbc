/**
 * Moving a relay with the `hop` command (the binary when HOP_BIN is set): a
 * folder relay two clients use is migrated to SFTP (OpenSSH's sshd), the
 * source is unchanged byte for byte and no lock is left on it, the clients go
 * on through the copy; the SFTP relay is backed up into one archive and
 * restored into a folder, through which a third client gets every file. A target
 * holding another relay's files, and a file that is no backup, are refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runHop } from "./helpers/hop.ts";
import { startSshd } from "./helpers/storage_servers.ts";
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
