/**
 * Tests of `runRelaySync`, `relayStatus`, `relayForget`, and two long-running client processes.
 *
 * @module
 */
import { makeDirs, withTempDir } from "./helpers/temp.ts";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { relayForget, relayStatus, runRelaySync } from "../src/relay/command.ts";
import { recorder, snapshot, tempDir } from "./relay_helpers.ts";
import { oneOffSync, spawnHop } from "./helpers/hop.ts";

Deno.test("runRelaySync with an escale.conf: two sections, once; status and forget", async () => {
  await withTempDir(async (dir) => {
    for (const d of ["relay", "a", "b"]) await mkdir(join(dir, d));
    await writeFile(join(dir, "a", "hello.txt"), "hello");
    const conf = (who: string) =>
      `log level = info\n[docs]\nlocal path = ${join(dir, who)}\nrelay path = ${
        join(dir, "relay")
      }\nindex = 1\nclient name = ${who}\nrefresh = 1\n`;
    await writeFile(join(dir, "a.conf"), conf("a"));
    await writeFile(join(dir, "b.conf"), conf("b"));
    const rb = recorder();
    await runRelaySync({ configFile: join(dir, "b.conf"), once: true, reporter: rb });
    assert.deepEqual(rb.warns, [
      `${join(dir, "b.conf")}: hop ignores 1 option that change nothing of the data: log level`,
    ]);
    const ra = recorder();
    const s1 = await runRelaySync({ configFile: join(dir, "a.conf"), once: true, reporter: ra });
    assert.equal(s1.pushed, 1);
    const st = recorder();
    const status = await relayStatus({ configFile: join(dir, "b.conf"), reporter: st });
    const page = status[0].pages.find((p) => p.page === "0")!;
    assert.equal(page.update!.pusher, "a");
    assert.deepEqual(page.update!.waitingFor, ["b"]);
    assert.equal(page.wouldPull, 1);
    assert.deepEqual(status[0].clients.map((c) => c.name).sort(), ["a", "b"]);
    assert.ok(st.infos.some((l) => /waiting for \[b\]/.test(l)), st.infos.join("\n"));
    const s2 = await runRelaySync({
      configFile: join(dir, "b.conf"),
      once: true,
      reporter: recorder(),
    });
    assert.equal(s2.pulled, 1);
    assert.equal(await readFile(join(dir, "b", "hello.txt"), "utf8"), "hello");
    assert.equal(
      await relayForget({ configFile: join(dir, "a.conf"), name: "b", reporter: recorder() }),
      true,
    );
    const after = await relayStatus({ configFile: join(dir, "a.conf"), reporter: recorder() });
    assert.deepEqual(after[0].clients.map((c) => c.name), ["a"]);
  });
});

Deno.test("no folder given is a usage error; a missing relay folder is an error, not created", async () => {
  await assert.rejects(
    () => runRelaySync({ once: true, reporter: recorder() }),
    /no folder to sync/,
  );
  await withTempDir(async (dir) => {
    await mkdir(join(dir, "a"));
    await assert.rejects(
      () =>
        runRelaySync({
          local: join(dir, "a"),
          relay: join(dir, "nope"),
          once: true,
          reporter: recorder(),
        }),
      /failed step|not usable/,
    );
  });
});

/** `hop relay sync` of one folder as a long-running process, refreshing every second. */
function startClient(local: string, relay: string, name: string) {
  return spawnHop([...oneOffSync(local, relay, name), "--refresh", "1"]);
}

Deno.test("two folders in two long-running processes stay in sync; SIGTERM stops them cleanly", async () => {
  const [dir, clean] = await tempDir();
  const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
  await writeFile(join(a, "from-a.txt"), "A");
  await writeFile(join(b, "from-b.txt"), "B");
  const ca = startClient(a, relay, "alice");
  const cb = startClient(b, relay, "bob");
  try {
    const deadline = Date.now() + 20_000;
    let ok = false;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      const sa = await snapshot(a);
      if (
        Object.keys(sa).length === 2 && JSON.stringify(sa) === JSON.stringify(await snapshot(b))
      ) {
        ok = true;
        break;
      }
    }
    assert.ok(ok, "the two folders did not converge within 20 s");
  } finally {
    const [ea, eb] = await Promise.all([ca.stop("SIGTERM"), cb.stop("SIGTERM")]);
    await clean();
    for (const e of [ea, eb]) {
      assert.equal(e.code, 0, e.stdout + e.stderr);
      assert.match(e.stdout, /"event":"sync\.summary"/);
    }
  }
});
