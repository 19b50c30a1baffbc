/**
 * `hop cluster serve` (the hop command) against hostile clients:
 *
 * - slow loris: connections trickling a byte at a time, or sending NOOPs without ever
 *   logging in, are closed (login timeout; only complete commands count as activity),
 *   and a real client still gets in;
 * - log flood: one unauthenticated connection firing command lines with terminal escape
 *   sequences leaves a log of a few kilobytes, escaped, readable by its owner only;
 * - SITE USERADD: a password with blanks (quoted) works; a home that is refused leaves
 *   no user behind; a home follows the name policy;
 * - over-long names and paths answer 550 (553 when storing), never 451.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { startOneNodeCluster } from "./helpers/cluster.ts";
import { newPassword } from "./helpers/credentials.ts";
import { openRawFtp, runCurl, runFtplib } from "./helpers/ftp_clients.ts";
import { runHop } from "./helpers/hop.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw connection that sends `chunk` every `everyMs` until the server closes it. */
function trickle(port: number, chunk: string, everyMs: number, first = "") {
  const sock = net.connect({ host: "127.0.0.1", port });
  sock.on("data", () => {});
  sock.on("error", () => {});
  let timer: ReturnType<typeof setInterval> | undefined;
  sock.once("connect", () => {
    if (first) sock.write(first);
    timer = setInterval(() => sock.write(chunk), everyMs);
  });
  const closed = new Promise<void>((r) =>
    sock.once("close", () => {
      clearInterval(timer);
      r();
    })
  );
  return { closed, destroy: () => sock.destroy() };
}

Deno.test("slow loris: trickling and never logging in get closed; a real client still gets in", async () => {
  const t = await startOneNodeCluster(["--login-timeout", "2", "--idle-timeout", "3"]);
  const conns: ReturnType<typeof trickle>[] = [];
  try {
    for (let i = 0; i < 6; i++) conns.push(trickle(t.srv.port, "N", 300)); // never a line
    for (let i = 0; i < 4; i++) conns.push(trickle(t.srv.port, "NOOP\r\n", 300)); // no login
    // Logged in, then trickling bytes that never end a command: the idle timeout applies.
    conns.push(
      trickle(t.srv.port, "x", 300, `USER admin\r\nPASS ${t.admin.password}\r\nNOOP\r\n`),
    );
    const all = Promise.all(conns.map((c) => c.closed));
    const verdict = await Promise.race([all.then(() => "closed"), sleep(60_000).then(() => "")]);
    assert.equal(verdict, "closed", "every slow connection was closed by the server");
    const r = await runCurl(t.admin, "/", []);
    assert.equal(r.code, 0, r.stderr);
    const log = await fsp.readFile(path.join(t.root, ".log", "cluster.log"), "utf8");
    assert.match(log, /login timeout/);
    assert.match(log, /idle timeout/);
  } finally {
    for (const c of conns) c.destroy();
    await t.close();
  }
});

Deno.test("log flood: a connection firing lines leaves a small, escaped, private log", async () => {
  const t = await startOneNodeCluster(["--login-timeout", "4"]);
  try {
    const sock = net.connect({ host: "127.0.0.1", port: t.srv.port });
    sock.on("error", () => {});
    let replies = 0;
    sock.on("data", (d: Uint8Array) => replies += d.length);
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    const line = `XFLOOD \x1b[31mred\x1b[0m \x07 ${"A".repeat(150)}\r\n`.repeat(200);
    let sent = 0;
    const pump = () => {
      while (!sock.destroyed && sock.write(line)) sent += line.length;
      if (!sock.destroyed) sent += line.length;
    };
    sock.on("drain", pump);
    sock.once("connect", pump);
    await closed; // the login timeout ends it
    assert.ok(sent > 1_000_000, `the client sent ${sent} bytes`);
    assert.ok(replies > 0);
    const dir = path.join(t.root, ".log");
    let total = 0;
    for (const name of await fsp.readdir(dir)) {
      const st = await fsp.stat(path.join(dir, name));
      assert.equal(st.mode & 0o777, 0o600, `${name} is readable by its owner only`);
      total += st.size;
      const text = await fsp.readFile(path.join(dir, name), "utf8");
      assert.ok(!text.includes("\x07") && !text.includes("\x1b"), "no raw control characters");
    }
    assert.ok(total < 100_000, `the log is ${total} bytes`);
    const log = await fsp.readFile(path.join(dir, "cluster.log"), "utf8");
    assert.match(log, /XFLOOD \\x1b\[31mred/);
    assert.match(log, /lines not logged: too many/);
  } finally {
    await t.close();
  }
});

Deno.test("SITE USERADD: quoted passwords with blanks; a refused home leaves no user", async () => {
  const t = await startOneNodeCluster(["--names", "strict"]);
  // generated, with blanks: what the quoting is for
  const bobPw = `two ${newPassword()} pw`;
  const pw = newPassword();
  try {
    await fsp.writeFile(path.join(t.tmp, "f.txt"), "a file\n");
    assert.equal((await runCurl(t.admin, "/taken.txt", ["-T", path.join(t.tmp, "f.txt")])).code, 0);
    const site = await runFtplib(
      t.admin,
      [
        "out = []",
        `for c in ['SITE USERADD bob "${bobPw}"',`,
        `          'SITE USERADD carol ${pw} /.queue',`,
        `          'SITE USERADD dave ${pw} "/with space"',`,
        `          'SITE USERADD erin ${pw} /taken.txt',`,
        "          'SITE USERADD frank \"unclosed']:",
        "    try:",
        "        out.append(ftp.sendcmd(c))",
        "    except ftplib.all_errors as e:",
        "        out.append(str(e))",
        "result = out",
      ].join("\n"),
      {},
    );
    assert.equal(site.code, 0, site.stderr);
    const [bob, carol, dave, erin, frank] = site.result as string[];
    assert.match(bob, /^200 user created: \d+/);
    assert.match(carol, /^550 .*belongs to the cluster server/);
    assert.match(dave, /^550 .*not allowed/);
    assert.match(erin, /^550 .*is a file/);
    assert.match(frank, /^501 /);
    const users = await runHop(["cluster", "user", "list", "--root", t.root]);
    assert.deepEqual(
      users.stdout.trim().split("\n").map((l) => l.split("\t")[0]).sort(),
      ["admin", "bob"],
      "no user is left behind by a refused SITE USERADD",
    );
    const asBob = await runCurl({ ...t.admin, user: "bob", password: bobPw }, "/", []);
    assert.equal(asBob.code, 0, asBob.stderr);
    const log = await fsp.readFile(path.join(t.root, ".log", "cluster.log"), "utf8");
    assert.ok(!log.includes(bobPw) && !log.includes(pw), "passwords are not logged");
  } finally {
    await t.close();
  }
});

Deno.test("over-long names and paths: 550, or 553 when storing", async () => {
  const t = await startOneNodeCluster();
  try {
    const c = await openRawFtp("127.0.0.1", t.srv.port);
    try {
      assert.equal((await c.cmd("USER admin")).code, 331);
      assert.equal((await c.cmd(`PASS ${t.admin.password}`)).code, 230);
      const long = "n".repeat(300);
      const deep = Array.from({ length: 30 }, () => "d".repeat(200)).join("/");
      assert.equal((await c.cmd(`SIZE ${long}`)).code, 550);
      assert.equal((await c.cmd(`CWD ${deep}`)).code, 550);
      assert.equal((await c.cmd(`MDTM ${deep}/x`)).code, 550);
      assert.equal((await c.cmd(`MKD ${long}`)).code, 553);
      assert.equal((await c.cmd(`MKD ${deep}`)).code, 553);
      assert.equal((await c.cmd("TYPE I")).code, 200);
      const pasv = await c.cmd("EPSV");
      assert.equal(pasv.code, 229);
      assert.equal((await c.cmd(`STOR ${long}`)).code, 553);
      assert.equal((await c.cmd("NOOP")).code, 200, "the session goes on");
    } finally {
      c.close();
    }
  } finally {
    await t.close();
  }
});
