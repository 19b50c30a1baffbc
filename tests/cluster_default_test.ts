/**
 * The embedded default: `hop cluster serve` with no root and no nodes (run inside a
 * temp folder) makes `./hop-cluster` with two local folder nodes,
 * creates the admin with a random password, prints how to connect, and an lftp upload
 * lands on both nodes. Also the offline user commands.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {
  addUser,
  deleteUser,
  listUsers,
  openUserDirectory,
  setPassword,
} from "../src/cluster/users.ts";
import { clusterLayout } from "../src/cluster/layout.ts";
import { readInfo } from "../src/cluster/links.ts";
import { newPassword } from "./helpers/credentials.ts";
import { runLftp } from "./helpers/ftp_clients.ts";
import { startClusterServe } from "./helpers/cluster.ts";

Deno.test("cluster serve with no arguments: ./hop-cluster, two folder nodes, admin URL printed", async () => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-default-"));
  const child = await startClusterServe([], { cwd: tmp });
  try {
    const out = child.proc.stdout;
    const m = out.match(/connect as ftp:\/\/admin:([^@]+)@127\.0\.0\.1:(\d+)\//);
    assert.ok(m, `admin URL printed: ${out}`);
    const password = decodeURIComponent(m[1]);
    assert.equal(password, child.adminPassword);
    assert.ok(password.length >= 16);
    const passwd = await fsp.readFile(path.join(tmp, "hop-cluster", ".passwd"), "utf8");
    assert.match(passwd, /^admin:scrypt\$[^:]+:0:\/$/m);
    assert.ok(!passwd.includes(password), "only the hash is stored");

    await fsp.writeFile(path.join(tmp, "hello.txt"), "hello cluster\n");
    const t = { host: "127.0.0.1", port: Number(m[2]), user: "admin", password };
    const r = await runLftp(t, ["put hello.txt", "cls"], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hello\.txt/);
    // The store worker inside serve moves it to both folder nodes.
    const deadline = Date.now() + 15_000;
    for (const n of ["a", "b"]) {
      for (;;) {
        const files =
          (await fsp.readdir(path.join(tmp, "hop-cluster-nodes", n), { recursive: true }))
            .filter((f) => f.endsWith("-hello.txt"));
        if (files.length === 1) {
          const body = await fsp.readFile(path.join(tmp, "hop-cluster-nodes", n, files[0]), "utf8");
          assert.equal(body, "hello cluster\n");
          break;
        }
        assert.ok(Date.now() < deadline, `hello.txt reaches node ${n}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  } finally {
    await child.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});

Deno.test("cluster users offline: add, passwd, del, list; the authorizer follows", async () => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-users-"));
  try {
    const root = path.join(tmp, "c");
    const [adminPw, newPw] = [newPassword(), newPassword()];
    const admin = await addUser(root, "admin", { admin: true, password: adminPw });
    assert.equal(admin.uid, 0);
    const alice = await addUser(root, "alice");
    assert.equal(alice.uid, 1000);
    assert.equal(alice.home, "/alice");
    assert.ok(alice.password.length >= 16);
    const home = await readInfo(path.join(root, "alice#"));
    assert.deepEqual(home && home.kind === "dir" ? home.uid : null, 1000);
    await assert.rejects(addUser(root, "alice"), /already exists/);
    await assert.rejects(addUser(root, "bad:name"), /bad login/);
    const dir = await openUserDirectory(clusterLayout(root));
    assert.equal(
      (await dir.authorizer.authenticate("alice", alice.password, "127.0.0.1"))?.id,
      1000,
    );
    assert.equal((await dir.authorizer.authenticate("admin", adminPw, "127.0.0.1"))?.admin, true);
    assert.equal(await dir.authorizer.authenticate("anonymous", "x@y", "127.0.0.1"), null);
    await setPassword(root, "alice", newPw);
    assert.equal(await dir.authorizer.authenticate("alice", alice.password, "127.0.0.1"), null);
    assert.equal(
      (await dir.authorizer.authenticate("alice", newPw, "127.0.0.1"))?.name,
      "alice",
    );
    const bob = await addUser(root, "bob", { password: newPassword() });
    assert.equal(bob.uid, 1001);
    await deleteUser(root, "alice");
    assert.deepEqual((await listUsers(root)).map((u) => [u.login, u.uid, u.admin]), [
      ["admin", 0, true],
      ["bob", 1001, false],
    ]);
    assert.equal(await dir.authorizer.authenticate("alice", newPw, "127.0.0.1"), null);
    assert.equal(dir.nameOf(1001), "bob");
    // A re-added user gets a fresh uid (old files keep their old owner).
    assert.equal((await addUser(root, "alice", { password: newPassword() })).uid, 1002);
    const anon = await openUserDirectory(clusterLayout(root), { anonymous: true });
    const a = await anon.authorizer.authenticate("anonymous", "me@x", "127.0.0.1");
    assert.equal(a?.readOnly, true);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});
