/**
 * The FTP engine against bad input and hostile clients, over hand-driven control
 * connections: path escapes (dot-dot, absolute, %-encoded, symlinks), FTP bounce
 * (PORT/EPRT to another host or a privileged port), passive connections from a
 * foreign address, over-long lines, NUL/CR in arguments, commands before login,
 * session caps, failed-login delay and blocking, ABOR, and aborted uploads that
 * must leave no file behind.
 *
 * @module
 */

import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { epsvPort, openRawFtp, type RawFtp } from "./helpers/ftp_clients.ts";
import { type HopFolderServer, startHopFolderServer } from "./helpers/ftp_servers.ts";

async function withServer(
  fn: (s: HopFolderServer) => Promise<void>,
  opts: Parameters<typeof startHopFolderServer>[0] = {},
): Promise<void> {
  const s = await startHopFolderServer(opts);
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

async function login(s: HopFolderServer): Promise<RawFtp> {
  const c = await openRawFtp(s.target.host, s.port);
  assert.equal(c.greeting.code, 220);
  assert.equal((await c.cmd(`USER ${s.user}`)).code, 331);
  assert.equal((await c.cmd(`PASS ${s.password}`)).code, 230);
  return c;
}

function connectData(port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port, localAddress });
    sock.once("connect", () => resolve(sock));
    sock.once("error", reject);
  });
}

function readAll(sock: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    sock.on("data", (d: Buffer) => parts.push(d));
    sock.on("end", () => resolve(Buffer.concat(parts)));
    sock.on("error", reject);
  });
}

Deno.test("paths never leave the root: .., absolute, %-encoded, symlinks, user home", async () => {
  await withServer(async (s) => {
    fs.mkdirSync(path.join(s.root, "in"));
    fs.writeFileSync(path.join(s.root, "in/ok.txt"), "inside");
    fs.symlinkSync("/etc", path.join(s.root, "etc-link"));
    fs.symlinkSync(path.join(s.root, "in"), path.join(s.root, "in-link"));
    const c = await login(s);
    try {
      assert.equal((await c.cmd("CWD ../../../..")).code, 250);
      assert.deepEqual(await c.cmd("PWD"), { code: 257, lines: ['"/" is the current directory.'] });
      assert.equal((await c.cmd("SIZE ../../../etc/passwd")).code, 550);
      assert.equal((await c.cmd("SIZE /etc/passwd")).code, 550);
      assert.equal((await c.cmd("SIZE %2e%2e/%2e%2e/etc/passwd")).code, 550);
      assert.equal((await c.cmd("SIZE ..\\..\\etc\\passwd")).code, 550);
      assert.deepEqual(await c.cmd("SIZE in/../../in/ok.txt"), { code: 213, lines: ["6"] });
      // a symlink out of the root is invisible; one inside works
      assert.equal((await c.cmd("CWD etc-link")).code, 550);
      assert.equal((await c.cmd("SIZE etc-link/passwd")).code, 550);
      assert.equal((await c.cmd("MKD etc-link/x")).code, 550);
      assert.deepEqual(await c.cmd("SIZE in-link/ok.txt"), { code: 213, lines: ["6"] });
      const pasv = await c.cmd("EPSV");
      const data = await connectData(epsvPort(pasv));
      const listing = readAll(data);
      assert.equal((await c.cmd("NLST")).code, 150);
      assert.equal((await c.reply()).code, 226);
      assert.deepEqual((await listing).toString().split("\r\n").filter(Boolean).sort(), [
        "in",
        "in-link",
      ]);
      // NUL and CR inside an argument are refused
      assert.equal((await c.cmd("CWD in\0/x")).code, 501);
      c.sendRaw("CWD in\rx\r\n");
      assert.equal((await c.reply()).code, 501);
    } finally {
      c.close();
    }
  });
});

Deno.test("FTP bounce: PORT/EPRT to another address or a privileged port is refused", async () => {
  await withServer(async (s) => {
    const c = await login(s);
    try {
      assert.equal((await c.cmd("PORT 127,0,0,2,200,10")).code, 504);
      assert.equal((await c.cmd("EPRT |1|127.0.0.2|51210|")).code, 504);
      assert.equal((await c.cmd("EPRT |2|::1|51210|")).code, 504);
      assert.equal((await c.cmd("PORT 127,0,0,1,0,80")).code, 504);
      assert.equal((await c.cmd("EPRT |1|127.0.0.1|21|")).code, 504);
      assert.equal((await c.cmd("PORT 127,0,0,1,300,1")).code, 501);
      assert.equal((await c.cmd("EPRT |3|x|5000|")).code, 522);
      assert.equal((await c.cmd("EPRT garbage")).code, 501);
      // after refusals no data endpoint is set
      assert.equal((await c.cmd("LIST")).code, 425);
      assert.equal((await c.cmd("PORT 127,0,0,1,200,10")).code, 200);
    } finally {
      c.close();
    }
  });
});

Deno.test("passive data connection from another address is dropped; the client's own is served", async () => {
  await withServer(async (s) => {
    fs.writeFileSync(path.join(s.root, "f.txt"), "payload");
    const c = await login(s);
    try {
      const port = epsvPort(await c.cmd("EPSV"));
      const intruder = await connectData(port, "127.0.0.2");
      const stolen = readAll(intruder).catch(() => Buffer.alloc(0));
      assert.equal((await stolen).length, 0, "the foreign connection got nothing");
      const mine = await connectData(port);
      const got = readAll(mine);
      assert.equal((await c.cmd("RETR f.txt")).code, 150);
      assert.equal((await c.reply()).code, 226);
      assert.equal((await got).toString(), "payload");
    } finally {
      c.close();
    }
  });
});

Deno.test("over-long lines are refused and the connection stays in step; unknown and pre-login commands", async () => {
  await withServer(async (s) => {
    const c = await openRawFtp(s.target.host, s.port);
    try {
      for (const cmd of ["LIST", "RETR x", "CWD /", "STOR x", "PWD", "SITE HELP"]) {
        assert.equal((await c.cmd(cmd)).code, 530, cmd);
      }
      assert.equal((await c.cmd("FOOBAR x")).code, 500);
      assert.equal((await c.cmd("X")).code, 500);
      assert.equal((await c.cmd("STOU")).code, 530);
      c.sendRaw("NOOP " + "A".repeat(9000) + "\r\n");
      const long = await c.reply();
      assert.equal(long.code, 500);
      assert.match(long.lines[0], /too long/);
      // a huge line sent in pieces, then a normal command
      for (let i = 0; i < 20; i++) c.sendRaw("B".repeat(4000));
      c.sendRaw("\r\nNOOP\r\n");
      assert.equal((await c.reply()).code, 500);
      assert.equal((await c.reply()).code, 200);
      assert.equal((await c.cmd(`USER ${s.user}`)).code, 331);
      assert.equal((await c.cmd(`PASS ${s.password}`)).code, 230);
      assert.equal((await c.cmd("STOU")).code, 502);
      assert.equal((await c.cmd("TYPE Q")).code, 504);
      assert.equal((await c.cmd("MODE B")).code, 504);
      assert.equal((await c.cmd("STRU R")).code, 504);
      assert.equal((await c.cmd("RNTO x")).code, 503);
      assert.equal((await c.cmd("REST -1")).code, 501);
      assert.equal((await c.cmd("QUIT")).code, 221);
      await c.closed;
    } finally {
      c.close();
    }
  });
});

Deno.test("session cap per address, failed-login delay and blocking", async () => {
  await withServer(async (s) => {
    const a = await openRawFtp(s.target.host, s.port);
    const b = await openRawFtp(s.target.host, s.port);
    const third = await openRawFtp(s.target.host, s.port);
    assert.equal(third.greeting.code, 421);
    await third.closed;
    b.close();
    await b.closed;
    await new Promise((r) => setTimeout(r, 100));
    // a failed login takes the delay, and does not hold up other sessions
    const c = await openRawFtp(s.target.host, s.port);
    assert.equal(c.greeting.code, 220);
    assert.equal((await a.cmd(`USER ${s.user}`)).code, 331);
    const t0 = performance.now();
    a.send("PASS wrong");
    const noop = await c.cmd("NOOP");
    const tNoop = performance.now() - t0;
    assert.equal(noop.code, 200);
    assert.equal((await a.reply()).code, 530);
    const tFail = performance.now() - t0;
    assert.ok(tFail >= 380, `failed login answered after ${tFail} ms`);
    assert.ok(tNoop < 300, `other session waited ${tNoop} ms`);
    // two more failures from this address: blocked (421), new connections refused
    assert.equal((await a.cmd(`USER ${s.user}`)).code, 331);
    assert.equal((await a.cmd("PASS wrong")).code, 530);
    assert.equal((await a.cmd(`USER ${s.user}`)).code, 331);
    assert.equal((await a.cmd("PASS wrong")).code, 421);
    await a.closed;
    c.close();
    await c.closed;
    await new Promise((r) => setTimeout(r, 100));
    const d = await openRawFtp(s.target.host, s.port);
    assert.equal(d.greeting.code, 421);
    d.close();
  }, { maxSessionsPerIp: 2, loginFailDelayMs: 400, maxLoginFailures: 3 });
});

Deno.test("ABOR during RETR gives 426 then 226; aborted and broken uploads leave nothing", async () => {
  await withServer(async (s) => {
    const big = Buffer.alloc(64 << 20, 7);
    fs.writeFileSync(path.join(s.root, "big.bin"), big);
    const c = await login(s);
    try {
      assert.equal((await c.cmd("TYPE I")).code, 200);
      let data = await connectData(epsvPort(await c.cmd("EPSV")));
      assert.equal((await c.cmd("RETR big.bin")).code, 150);
      await new Promise<void>((r) => data.once("data", () => r()));
      data.pause(); // stop reading: the server is blocked on backpressure
      c.sendRaw(new Uint8Array([255, 244, 255, 242])); // Telnet IP, Synch as ftplib/lftp send
      c.send("ABOR");
      assert.equal((await c.reply()).code, 426);
      assert.equal((await c.reply()).code, 226);
      data.destroy();
      assert.equal((await c.cmd("NOOP")).code, 200);

      // ABOR during STOR: no file appears
      data = await connectData(epsvPort(await c.cmd("EPSV")));
      assert.equal((await c.cmd("STOR up.bin")).code, 150);
      data.write(Buffer.alloc(100_000, 1));
      await new Promise((r) => setTimeout(r, 100));
      c.send("ABOR");
      assert.equal((await c.reply()).code, 426);
      assert.equal((await c.reply()).code, 226);
      data.destroy();

      // data connection goes idle mid-upload: 426, no file
      data = await connectData(epsvPort(await c.cmd("EPSV")));
      assert.equal((await c.cmd("STOR idle.bin")).code, 150);
      data.write(Buffer.alloc(50_000, 2));
      assert.equal((await c.reply(5000)).code, 426);
      data.destroy();

      // ABOR with nothing running
      assert.equal((await c.cmd("ABOR")).code, 226);
      assert.deepEqual(fs.readdirSync(s.root), ["big.bin"]);
    } finally {
      c.close();
    }
  }, { dataTimeoutMs: 700 });
});

Deno.test("a download the client stops reading ends in 426 after the data idle timeout", async () => {
  await withServer(async (s) => {
    // Far more than the sockets' buffers hold, so the server's writes wait on the client.
    fs.writeFileSync(path.join(s.root, "huge.bin"), Buffer.alloc(64 * 1024 * 1024, 7));
    const c = await login(s);
    try {
      const data = await connectData(epsvPort(await c.cmd("EPSV")));
      data.pause(); // reads nothing, as a frozen client
      assert.equal((await c.cmd("RETR huge.bin")).code, 150);
      assert.equal((await c.reply(120_000)).code, 426);
      data.destroy();
      assert.equal((await c.cmd("NOOP")).code, 200, "the session goes on");
    } finally {
      c.close();
    }
  }, { dataTimeoutMs: 700 });
});

Deno.test("control connection idle timeout closes with 421", async () => {
  await withServer(async (s) => {
    const c = await login(s);
    const r = await c.reply(3000);
    assert.equal(r.code, 421);
    await c.closed;
  }, { idleTimeoutMs: 300 });
});
