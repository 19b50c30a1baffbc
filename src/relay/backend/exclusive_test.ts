import assert from "node:assert/strict";
import { type ClaimOps, claimState, createExclusive, deleteWithClaim } from "./exclusive.ts";

function memoryOps(): ClaimOps & { dirs: Set<string>; files: Map<string, string> } {
  const dirs = new Set<string>();
  const files = new Map<string, string>();
  return {
    dirs,
    files,
    mkdir: (n) => Promise.resolve(dirs.has(n) ? false : (dirs.add(n), true)),
    rmdir: (n) => Promise.resolve(void dirs.delete(n)),
    exists: (n) => Promise.resolve(files.has(n)),
    writeAtomic: (n, d) => Promise.resolve(void files.set(n, new TextDecoder().decode(d))),
    unlink: (n) => Promise.resolve(void files.delete(n)),
  };
}

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("createExclusive: claim, file, second attempt refused, delete releases both", async () => {
  const ops = memoryOps();
  const st = claimState();
  assert.equal(await createExclusive(ops, st, ".0.lock", bytes("a")), true);
  assert.deepEqual([...ops.dirs], [".0.lock.excl"]);
  assert.equal(ops.files.get(".0.lock"), "a");
  assert.equal(await createExclusive(ops, st, ".0.lock", bytes("b")), false);
  assert.equal(ops.files.get(".0.lock"), "a");
  await deleteWithClaim(ops, ".0.lock");
  assert.equal(ops.dirs.size + ops.files.size, 0);
  await deleteWithClaim(ops, ".0.lock");
});

Deno.test("createExclusive: a lock written in place by another client wins, no claim left", async () => {
  const ops = memoryOps();
  ops.files.set(".0.lock", "escale");
  assert.equal(await createExclusive(ops, claimState(), ".0.lock", bytes("a")), false);
  assert.equal(ops.files.get(".0.lock"), "escale");
  assert.equal(ops.dirs.size, 0);
});

Deno.test("createExclusive: an orphan claim is cleared only after the grace period", async () => {
  const ops = memoryOps();
  let now = 1000;
  const st = claimState(60_000, () => now);
  ops.dirs.add(".0.lock.excl");
  assert.equal(await createExclusive(ops, st, ".0.lock", bytes("a")), false);
  now += 59_999;
  assert.equal(await createExclusive(ops, st, ".0.lock", bytes("a")), false);
  assert.ok(ops.dirs.has(".0.lock.excl"), "kept within the grace period");
  now += 1;
  assert.equal(
    await createExclusive(ops, st, ".0.lock", bytes("a")),
    false,
    "clears, does not take",
  );
  assert.equal(ops.dirs.size, 0);
  assert.equal(await createExclusive(ops, st, ".0.lock", bytes("a")), true);
});

Deno.test("createExclusive: the claim is undone when writing the file fails", async () => {
  const ops = memoryOps();
  ops.writeAtomic = () => Promise.reject(new Error("disk full"));
  await assert.rejects(createExclusive(ops, claimState(), "x", bytes("a")), /disk full/);
  assert.equal(ops.dirs.size, 0);
});
