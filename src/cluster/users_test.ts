import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { verifyPassword } from "../codec/passwd.ts";
import { clusterLayout } from "./layout.ts";
import { addUser, listUsers, openUserDirectory, PUBLIC_HOME } from "./users.ts";

/** The user directory of a fresh root with `alice`, counting password checks. */
async function withCountedChecks(
  f: (dir: Awaited<ReturnType<typeof openUserDirectory>>, checks: () => number) => Promise<void>,
) {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-users-"));
  try {
    await addUser(root, "alice", { password: "right one" });
    let n = 0;
    const dir = await openUserDirectory(clusterLayout(root), {
      verify: (u, pw) => (n++, verifyPassword(u, pw)),
    });
    await f(dir, () => n);
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
}

Deno.test("users: a failed login runs one password check whether the name exists or not", async () => {
  await withCountedChecks(async (dir, checks) => {
    assert.equal(await dir.authorizer.authenticate("alice", "wrong", "127.0.0.1"), null);
    assert.equal(checks(), 1);
    assert.equal(await dir.authorizer.authenticate("nobody", "wrong", "127.0.0.1"), null);
    assert.equal(checks(), 2);
    // failures are never remembered
    assert.equal(await dir.authorizer.authenticate("alice", "wrong", "127.0.0.1"), null);
    assert.equal(checks(), 3);
    assert.ok(await dir.authorizer.authenticate("alice", "right one", "127.0.0.1"));
  });
});

Deno.test("users: logins of one user at once share one password check; a success is remembered", async () => {
  await withCountedChecks(async (dir, checks) => {
    const burst = await Promise.all(
      Array.from({ length: 50 }, () => dir.authorizer.authenticate("alice", "right one", "::1")),
    );
    assert.ok(burst.every((u) => u?.name === "alice"));
    assert.equal(checks(), 1);
    assert.ok(await dir.authorizer.authenticate("alice", "right one", "::1"));
    assert.equal(checks(), 1);
    // a wrong password in a burst shares the check, and fails every login of it
    const wrong = await Promise.all(
      Array.from({ length: 5 }, () => dir.authorizer.authenticate("alice", "right on", "::1")),
    );
    assert.deepEqual(wrong, [null, null, null, null, null]);
    assert.equal(checks(), 2);
  });
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
