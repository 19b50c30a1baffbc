/**
 * Unit tests of relay audit: a healthy relay yields no warning, lock ages are
 * graded against the lock timeout, and an audit writes nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeLock } from "../codec/lock.ts";
import type { Reporter } from "../ui/report.ts";
import { auditRelay } from "./audit.ts";
import { closeSync, openSync, syncPass } from "./sync.ts";
import { oneOffConfig } from "./config.ts";

const quiet: Reporter = { info() {}, warn() {}, progress() {}, close() {} };

Deno.test("a healthy relay has only informational findings; locks graded by age", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-audit-unit-"));
  try {
    const relay = join(dir, "relay");
    const local = join(dir, "local");
    for (const d of [relay, local]) await mkdir(d);
    await writeFile(join(local, "f.txt"), "f");
    const ctx = await openSync(oneOffConfig({ local, relay, clientName: "me" }), quiet);
    try {
      assert.equal((await syncPass(ctx, { first: true })).pushed, 1);
    } finally {
      await closeSync(ctx);
    }
    assert.deepEqual(await auditRelay({ local, relay, clientName: "me", reporter: quiet }), []);
    await writeFile(
      join(relay, ".a.lock"),
      encodeLock({ owner: "x", mode: "w", acquired: Date.now() }),
    );
    await writeFile(
      join(relay, ".b.lock"),
      encodeLock({ owner: "y", mode: "r", acquired: Date.now() - 3600_000 }),
    );
    const before = (await readdir(relay)).sort();
    const found = await auditRelay({ local, relay, clientName: "me", reporter: quiet });
    assert.deepEqual(
      found.map((f) => [f.kind, f.page, f.owner, f.severity]),
      [["lock", "a", "x", "info"], ["lock", "b", "y", "warning"]],
    );
    assert.deepEqual((await readdir(relay)).sort(), before, "an audit writes nothing");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
