/**
 * The relay state that makes Escale 0.7.13 crash, and what hop does about
 * the lock it leaves: with `puller count = 2`, Escale reading a page whose
 * persistent index has no pending update (the usual state once an update
 * was consumed and removed) fails with a TypeError in `consumeUpdate` and
 * leaves its `r` lock. hop names the holder and the lock's age on every
 * pass, and takes the lock over once it is older than `lock timeout`.
 */
import assert from "node:assert/strict";
import { withTempDir } from "./helpers/temp.ts";
import { chmod, mkdir, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runEscale } from "./helpers/escale.ts";
import { runHop } from "./helpers/hop.ts";
import { copyFixtureRelay } from "./relay_helpers.ts";

Deno.test("Escale's crash with puller count = 2 leaves a lock: hop reports it, then takes it over", async () => {
  await withTempDir(async (dir) => {
    const relay = join(dir, "relay");
    const esc = join(dir, "escale");
    const hop = join(dir, "hop");
    await copyFixtureRelay("case1", relay);
    for (const n of await readdir(relay)) {
      if (/^\.0\.\d+\.(index|data)$/.test(n)) await rm(join(relay, n));
    }
    for (const d of [esc, hop]) await mkdir(d);
    await chmod(relay, 0o755);
    const conf = (local: string, client: string, extra: string) =>
      `[p]\nlocal path = ${local}\nrelay path = ${relay}\nprotocol = file\nindex = 1\n` +
      `client name = ${client}\nrefresh = 1\n${extra}`;
    await writeFile(join(dir, "escale.conf"), conf(esc, "esc", "puller count = 2\n"));
    const run = await runEscale(join(dir, "escale.conf"), 8, { home: dir });
    assert.match(run.output, /TypeError[^\n]*NoneType/, run.output);
    assert.match(await readFile(join(relay, ".0.lock"), "utf8"), /owner: esc\nmode: r/);

    await writeFile(join(hop, "mine.txt"), "from hop\n");
    await writeFile(join(dir, "hop.conf"), conf(hop, "hop", "lock timeout = 600\n"));
    const busy = await runHop(["relay", "sync", "-c", join(dir, "hop.conf"), "--once"]);
    assert.equal(busy.code, 0, busy.stderr);
    assert.match(
      busy.stderr,
      /page 0 is locked \(r\) by esc for \d+ s; taken over in \d+ s \(lock timeout 600 s\)/,
    );
    assert.ok(
      !(await readdir(relay)).some((n) => /^\.0\.\d+\.data$/.test(n)),
      "pushed under a lock",
    );

    // the lock gets older than the timeout: the next pass takes it over and pushes
    const old = Date.now() / 1000 - 3600;
    await utimes(join(relay, ".0.lock"), old, old);
    const after = await runHop(["relay", "sync", "-c", join(dir, "hop.conf"), "--once"]);
    assert.equal(after.code, 0, after.stderr);
    const names = await readdir(relay);
    assert.ok(
      names.some((n) => /^\.0\.\d+\.data$/.test(n)),
      `nothing pushed: ${names.join(" ")}\n${after.stderr}`,
    );
    assert.ok(!names.includes(".0.lock"), "the stale lock is still there");
  }, "hop-escale-lock-");
});
