import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { clusterLayout } from "./layout.ts";
import { addUser, listUsers, openUserDirectory, PUBLIC_HOME } from "./users.ts";

Deno.test("users: a failed login costs the same whether the name exists or not", async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-users-"));
  try {
    await addUser(root, "alice", { password: "right one" });
    const dir = await openUserDirectory(clusterLayout(root));
    const time = async (name: string) => {
      const t = performance.now();
      assert.equal(await dir.authorizer.authenticate(name, "wrong", "127.0.0.1"), null);
      return performance.now() - t;
    };
    const known: number[] = [];
    const unknown: number[] = [];
    await time("alice"); // warm up
    for (let i = 0; i < 9; i++) {
      known.push(await time("alice"));
      unknown.push(await time(`nobody${i}`));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const ratio = median(known) / median(unknown);
    // One scrypt check each way; without the decoy check an unknown name answers ~50x faster.
    assert.ok(
      ratio > 1 / 4 && ratio < 4,
      `known ${median(known)} ms, unknown ${median(unknown)} ms`,
    );
    assert.ok(await dir.authorizer.authenticate("alice", "right one", "127.0.0.1"));
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});

Deno.test("users: anonymous is read-only in the public folder; passwords may hold blanks", async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-users-"));
  try {
    const l = clusterLayout(root);
    const off = await openUserDirectory(l);
    assert.equal(await off.authorizer.authenticate("anonymous", "me@x", "127.0.0.1"), null);
    const on = await openUserDirectory(l, { anonymous: true });
    assert.deepEqual(await on.authorizer.authenticate("ftp", "me@x", "127.0.0.1"), {
      name: "anonymous",
      home: PUBLIC_HOME,
      readOnly: true,
      admin: false,
    });
    await addUser(root, "bob", { password: " spaced  out " });
    await on.reload();
    assert.ok(await on.authorizer.authenticate("bob", " spaced  out ", "127.0.0.1"));
    assert.equal(await on.authorizer.authenticate("bob", "spaced out", "127.0.0.1"), null);
    await assert.rejects(() => addUser(root, "carol", { password: "two\nlines" }), /multi-line/);
    await assert.rejects(() => addUser(root, "dave", { home: "/.passwd/x" }), /belongs to/);
    await assert.rejects(
      () => addUser(root, "erin", { home: "/a b", names: "strict" }),
      /not allowed/,
    );
    assert.deepEqual((await listUsers(root)).map((u) => u.login), ["bob"]);
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});
