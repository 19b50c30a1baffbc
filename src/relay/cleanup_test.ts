/**
 * Unit tests of relay cleanup: which locks count as gone (timeout, live
 * local holder) and the staleness bound of temp files.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { encodeLock } from "../codec/lock.ts";
import type { Reporter } from "../ui/report.ts";
import { cleanupRelay, tempStaleSeconds } from "./cleanup.ts";

const quiet: Reporter = { info() {}, warn() {}, progress() {}, close() {} };

Deno.test("temp files count as left by a crash after twice the lock timeout, at least an hour", () => {
  assert.equal(tempStaleSeconds(600), 3600);
  assert.equal(tempStaleSeconds(7200), 14400);
});

Deno.test("a stale lock of a live process on this host is left; a dead holder's is removed", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-cleanup-unit-"));
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  try {
    const relay = join(dir, "relay");
    const local = join(dir, "local");
    for (const d of [relay, local]) await mkdir(d);
    const old = Date.now() - 3600_000;
    await writeFile(
      join(relay, ".live.lock"),
      encodeLock({ owner: "x", mode: "w", acquired: old, host: hostname(), pid: child.pid }),
    );
    await writeFile(
      join(relay, ".dead.lock"),
      encodeLock({ owner: "y", mode: "r", acquired: old, host: hostname(), pid: 999_999_999 }),
    );
    await writeFile(
      join(relay, ".young.lock"),
      encodeLock({ owner: "z", mode: "w", acquired: Date.now(), host: "elsewhere" }),
    );
    const acts = await cleanupRelay({ local, relay, clientName: "me", reporter: quiet });
    assert.deepEqual(acts.map((a) => [a.kind, a.name, a.done]), [
      ["stale-lock", ".dead.lock", true],
    ]);
    assert.deepEqual((await readdir(relay)).sort(), [".live.lock", ".young.lock"]);
  } finally {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});
