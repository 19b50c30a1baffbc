import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { scryptSync } from "node:crypto";
import { setImmediate } from "node:timers";
import { CodecError, EncodeError } from "./errors.ts";
import {
  decodePasswd,
  encodePasswd,
  hashPassword,
  needsRehash,
  type PasswdFile,
  type PasswdUser,
  verifyPassword,
} from "./passwd.ts";
import { rng, SAFE_CHARS } from "../../tests/helpers/prng.ts";

function codecError(fn: () => unknown, line: number): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof CodecError, String(e));
    assert.equal(e.source, ".passwd");
    assert.equal(e.line, line, e.message);
    return true;
  });
}

Deno.test("passwd: legacy cleartext is read, marked, and written hashed", async () => {
  const text = "_::1006:\nalice:secret:1005:/alice\nbob::1004:/bob\n";
  const file = decodePasswd(text, ".passwd");
  assert.equal(file.nextUid, 1006);
  assert.deepEqual(file.users[0], {
    login: "alice",
    password: "secret",
    legacy: true,
    uid: 1005,
    home: "/alice",
  });
  assert.deepEqual(file.users[1], {
    login: "bob",
    password: "",
    legacy: false,
    uid: 1004,
    home: "/bob",
  });
  assert.ok(needsRehash(file.users[0]));
  assert.ok(!needsRehash(file.users[1]));
  assert.ok(await verifyPassword(file.users[0], "secret"));
  assert.ok(!(await verifyPassword(file.users[0], "secreT")));
  assert.ok(
    !(await verifyPassword(file.users[1], "")),
    "an empty password field disables the account",
  );

  const upgraded = await encodePasswd(file);
  assert.ok(!upgraded.includes("secret"));
  assert.match(
    upgraded,
    /^_::1006:\nalice:scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:1005:\/alice\nbob::1004:\/bob\n$/,
  );
  const again = decodePasswd(upgraded, ".passwd");
  assert.equal(again.users[0].legacy, false);
  assert.ok(await verifyPassword(again.users[0], "secret"));
  assert.ok(!(await verifyPassword(again.users[0], "other")));
  // Hashed records are written back unchanged.
  assert.equal(await encodePasswd(again), upgraded);
});

Deno.test("passwd: hashes are salted and self-describing", async () => {
  const a = await hashPassword("pw:with:colons");
  const b = await hashPassword("pw:with:colons");
  assert.notEqual(a, b);
  assert.ok(!a.includes(":"));
  const user: PasswdUser = { login: "u", password: a, legacy: false, uid: 1, home: "/" };
  assert.ok(await verifyPassword(user, "pw:with:colons"));
  assert.ok(!(await verifyPassword(user, "pw:with:colon")));
  // A hash written with other parameters still verifies: they are in the field.
  const salt = Buffer.from("0123456789abcdef");
  const key = scryptSync("pw", salt, 24, { N: 1024, r: 4, p: 2 });
  const other = `scrypt$1024$4$2$${salt.toString("base64")}$${key.toString("base64")}`;
  assert.ok(await verifyPassword({ ...user, password: other }, "pw"));
  assert.ok(!(await verifyPassword({ ...user, password: other }, "pW")));
  assert.ok(!(await verifyPassword({ ...user, password: "scrypt$garbage" }, "x")));
});

Deno.test("passwd: without a _ line the next uid follows the highest", () => {
  assert.equal(decodePasswd("a::7:/a\nb::1200:/b\n", ".passwd").nextUid, 1201);
  assert.equal(decodePasswd("", ".passwd").nextUid, 1000);
  assert.equal(decodePasswd("\n\n_::5:\n", ".passwd").nextUid, 5);
});

Deno.test("passwd: malformed lines throw CodecError naming the line", () => {
  codecError(() => decodePasswd("alice:pw:1005\n", ".passwd"), 1);
  codecError(() => decodePasswd("_::1006:\nalice:pw:10x5:/a\n", ".passwd"), 2);
  codecError(() => decodePasswd("_::1006:\nalice:pw:1:/a\nalice:pw:2:/b\n", ".passwd"), 3);
  codecError(() => decodePasswd("a:b:c:d:e\n", ".passwd"), 1);
  codecError(() => decodePasswd(":pw:1:/a\n", ".passwd"), 1);
  codecError(() => decodePasswd("a b:pw:1:/a\n", ".passwd"), 1);
  codecError(() => decodePasswd("a:pw:1:\n", ".passwd"), 1);
  codecError(() => decodePasswd("a:scrypt$16384$8$1$abc:1:/a\n", ".passwd"), 1);
  codecError(
    () =>
      decodePasswd(
        "a:scrypt$1073741824$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==:1:/a\n",
        ".passwd",
      ),
    1,
  );
  codecError(() => decodePasswd("a::1005:/a\n_::1005:\n", ".passwd"), 2);
  codecError(() => decodePasswd("_::1:\n_::2:\n", ".passwd"), 2);
  codecError(() => decodePasswd(new Uint8Array([0x0a, 0x0a, 0xfe]), ".passwd"), 3);
});

Deno.test("passwd: encoder refuses what the format cannot hold", async () => {
  const u: PasswdUser = { login: "a", password: "", legacy: false, uid: 1, home: "/a" };
  const bad: PasswdFile[] = [
    { users: [{ ...u, login: "a:b" }], nextUid: 5 },
    { users: [{ ...u, login: "_" }], nextUid: 5 },
    { users: [{ ...u, home: "/x:y" }], nextUid: 5 },
    { users: [{ ...u, uid: -1 }], nextUid: 5 },
    { users: [u, u], nextUid: 5 },
    { users: [u], nextUid: 1 },
    { users: [{ ...u, password: "cleartext" }], nextUid: 5 },
  ];
  for (const f of bad) await assert.rejects(encodePasswd(f), EncodeError, JSON.stringify(f));
});

Deno.test("property: passwd files round-trip (300 random cases)", async () => {
  const r = rng(0x9a55);
  const hashes = await Promise.all(
    ["a", "b", "c"].map(async (pw) => ({ pw, hash: await hashPassword(pw) })),
  );
  for (let i = 0; i < 300; i++) {
    const n = r.int(0, 6);
    const logins = new Set<string>();
    const users: PasswdUser[] = [];
    let legacyPw: { login: string; pw: string } | null = null;
    for (let k = 0; k < n; k++) {
      const login = r.string(SAFE_CHARS + "@é", 1, 10);
      if (logins.has(login) || login === "_") continue;
      logins.add(login);
      const h = r.pick(hashes);
      const user: PasswdUser = {
        login,
        password: r.chance(0.1) ? "" : h.hash,
        legacy: false,
        uid: r.int(0, 5000),
        home: "/" + r.string(SAFE_CHARS + " /é", 0, 12),
      };
      // A few legacy users: each costs a real scrypt hash on encode.
      if (i % 15 === 0 && !legacyPw) {
        legacyPw = { login, pw: r.string(SAFE_CHARS + ": $", 1, 12) };
        Object.assign(user, { password: legacyPw.pw, legacy: true });
      }
      users.push(user);
    }
    const file: PasswdFile = {
      users,
      nextUid: users.reduce((m, u) => Math.max(m, u.uid), 999) + r.int(1, 10),
    };
    const text = await encodePasswd(file);
    const back = decodePasswd(text, `c${i}`);
    assert.equal(back.nextUid, file.nextUid);
    assert.equal(back.users.length, users.length);
    for (const [k, u] of back.users.entries()) {
      const want = users[k];
      assert.deepEqual({ ...u, password: "", legacy: false }, {
        ...want,
        password: "",
        legacy: false,
      });
      assert.equal(u.legacy, false);
      if (want.legacy) {
        assert.ok(await verifyPassword(u, legacyPw!.pw), "legacy password survives hashing");
      } else assert.equal(u.password, want.password);
    }
    assert.equal(await encodePasswd(back), text);
  }
});

Deno.test("passwd: a check and a hash run off the caller's thread (other sessions go on)", async () => {
  const user: PasswdUser = {
    login: "u",
    password: await hashPassword("right"),
    legacy: false,
    uid: 1,
    home: "/",
  };
  // A synchronous scrypt would finish before the check's promise exists, so before any
  // callback of the next turn of the event loop; on the thread pool the turn comes first.
  const order: string[] = [];
  const turn = new Promise<void>((r) => setImmediate(() => (order.push("turn"), r())));
  const check = verifyPassword(user, "wrong").then((ok) => (order.push("check"), ok));
  assert.equal(await check, false);
  await turn;
  assert.deepEqual(order, ["turn", "check"]);
  const hashed: string[] = [];
  const next = new Promise<void>((r) => setImmediate(() => (hashed.push("turn"), r())));
  const hash = hashPassword("new").then((h) => (hashed.push("hash"), h));
  assert.ok(await verifyPassword({ ...user, password: await hash }, "new"));
  await next;
  assert.deepEqual(hashed, ["turn", "hash"]);
});
