/**
 * Tests of the errors a user can fix: system errors explained with what to do
 * and a stable code; anything else left as a bug.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { errorCode, explainError, HopError, UsageError } from "./errors.ts";

Deno.test("explainError: EACCES, EROFS, ENOSPC, ENOENT say what to do; a bug stays a bug", async () => {
  const sys = (code: string, syscall: string, path: string) =>
    Object.assign(new Error(`${code}: something, ${syscall} '${path}'`), { code, syscall, path });
  const acc = explainError(sys("EACCES", "open", "/srv/x"))!;
  assert.equal(acc.message, "cannot open /srv/x: permission denied");
  assert.equal(errorCode(acc), "permission-denied");
  assert.match(acc.hint!, /chmod|chown/);
  assert.equal(errorCode(explainError(sys("EROFS", "mkdir", "/mnt/ro/a"))), "read-only");
  assert.equal(errorCode(explainError(sys("ENOSPC", "write", "/var/x"))), "disk-full");
  // found in a cause too
  const wrapped = new Error("pull failed", { cause: sys("ENOSPC", "write", "/var/x") });
  assert.equal(explainError(wrapped)?.code, "disk-full");
  // a real missing folder, from the runtime itself
  const missing = await mkdir("/nonexistent-hop-test/a/b").catch((e) => e);
  const m = explainError(missing)!;
  assert.equal(errorCode(m), "not-found");
  assert.match(m.message, /nonexistent-hop-test/);
  const notDir = await writeFile("/etc/hostname/x", "").catch((e) => e);
  assert.equal(errorCode(explainError(notDir)), "not-found");
  assert.equal(explainError(new TypeError("x is undefined")), undefined);
  assert.equal(errorCode(new TypeError("x")), "bug");
  assert.equal(errorCode(new UsageError("bad")), "usage");
  assert.equal(errorCode(new HopError("failed")), "failed");
  assert.equal(errorCode(new HopError("x", { code: "interrupted" })), "interrupted");
});
