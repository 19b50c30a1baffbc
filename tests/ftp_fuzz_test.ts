/**
 * Fuzzing the FTP engine: more than 100 000 random and mutated command lines
 * (valid verbs with garbage arguments, random bytes, Telnet IAC, NUL, over-long
 * lines, lines split at odd places, bare LF and stray CR) over a handful of
 * loopback connections. The server must stay up, and every reply must be
 * well-formed: a 3-digit code, space or dash, CRLF, multi-line replies closed.
 *
 * @module
 */

import assert from "node:assert/strict";
import net from "node:net";
import { createReplyParser, type FtpReplyMsg, openRawFtp } from "./helpers/ftp_clients.ts";
import type { Login } from "./helpers/credentials.ts";
import { startHopFolderServer } from "./helpers/ftp_servers.ts";

const VERBS = [
  "USER",
  "PASS",
  "QUIT",
  "TYPE",
  "MODE",
  "STRU",
  "NOOP",
  "SYST",
  "FEAT",
  "OPTS",
  "HELP",
  "STAT",
  "PWD",
  "CWD",
  "CDUP",
  "MKD",
  "RMD",
  "LIST",
  "NLST",
  "MLSD",
  "MLST",
  "RETR",
  "STOR",
  "APPE",
  "DELE",
  "RNFR",
  "RNTO",
  "SIZE",
  "MDTM",
  "REST",
  "PORT",
  "PASV",
  "EPRT",
  "EPSV",
  "ABOR",
  "SITE",
  "AUTH",
  "PBSZ",
  "PROT",
  "XPWD",
  "XCWD",
  "ALLO",
  "ACCT",
  "REIN",
  "STOU",
  "CCC",
  "FOO",
  "",
  "user",
  "Retr",
  "A",
  "LISTX",
];
// verbs that may open data connections or end the session are rarer
const RARE = new Set([
  "QUIT",
  "PASV",
  "EPSV",
  "PORT",
  "EPRT",
  "LIST",
  "NLST",
  "MLSD",
  "RETR",
  "STOR",
  "APPE",
]);

/** Small deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeLine(r: () => number, serverPort: number): Uint8Array {
  const enc = new TextEncoder();
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  let verb = pick(VERBS);
  while (RARE.has(verb) && r() < 0.97) verb = pick(VERBS);
  if (verb === "QUIT" && r() < 0.9) verb = "NOOP"; // a QUIT drops everything still in flight
  const args = [
    () => "",
    () => " ",
    () =>
      " " +
      pick([
        "..",
        "../../etc/passwd",
        "/",
        "a b",
        "ä/ö",
        "%2e%2e",
        "x\u0000y",
        "dir/",
        "~",
        "*",
        "-la",
      ]),
    () =>
      " " +
      pick([
        "A",
        "I",
        "L 8",
        "E",
        "S",
        "B",
        "F",
        "R",
        "C",
        "P",
        "0",
        "ALL",
        "1",
        "2",
        "UTF8 ON",
        "MLST type;",
      ]),
    () => " " + Math.floor(r() * 1e6),
    () => " 127,0,0,1," + Math.floor(r() * 300) + "," + Math.floor(r() * 300),
    () =>
      ` |${pick(["1", "2", "3", ""])}|${pick(["127.0.0.1", "127.0.0.2", "::1", "::", "x"])}|${
        Math.floor(r() * 70000)
      }|`,
    () => ` 127,0,0,1,${serverPort >> 8},${serverPort & 255}`,
    () => " " + "x".repeat(Math.floor(r() * 300)),
    () =>
      " " +
      String.fromCharCode(...Array.from({ length: 12 }, () => 0x20 + Math.floor(r() * 0x2fff))),
  ];
  let line: Uint8Array = enc.encode(verb + pick(args)());
  const m = r();
  if (m < 0.08) line = bytes(Math.floor(r() * 200)); // pure garbage
  else if (m < 0.1) line = enc.encode(verb + " " + "L".repeat(8000 + Math.floor(r() * 12000))); // too long
  else if (m < 0.16) {
    // mutate: overwrite a few bytes (IAC, NUL, CR, random)
    line = Uint8Array.from(line);
    for (let i = 0; i < 3 && line.length > 0; i++) {
      line[Math.floor(r() * line.length)] = pick([255, 0, 13, 244, 242, Math.floor(r() * 256)]);
    }
  }
  const end = r() < 0.9 ? "\r\n" : r() < 0.5 ? "\n" : "\r\r\n";
  const out = new Uint8Array(line.length + end.length);
  out.set(line);
  out.set(enc.encode(end), line.length);
  return out;
}

interface WorkerResult {
  lines: number;
  replies: number;
  connections: number;
}

/** One client: sends `count` lines, reconnecting whenever the server ends the session. */
async function worker(
  host: string,
  port: number,
  login: Login,
  seed: number,
  count: number,
  deadline: number,
): Promise<WorkerResult> {
  const r = rng(seed);
  const logIn = `USER ${login.user}\r\nPASS ${login.password}\r\n`;
  const res: WorkerResult = { lines: 0, replies: 0, connections: 0 };
  while (res.lines < count && Date.now() < deadline) {
    res.connections++;
    const sock = net.connect({ host, port });
    const parse = createReplyParser();
    let last: FtpReplyMsg | null = null;
    let error: Error | null = null;
    const closed = new Promise<void>((resolve) => sock.on("close", () => resolve()));
    sock.on("error", () => {});
    sock.on("data", (chunk: Uint8Array) => {
      try {
        for (const msg of parse(chunk)) {
          res.replies++;
          last = msg;
        }
      } catch (err) {
        error = new Error(`seed ${seed}: ${(err as Error).message}`);
        sock.destroy();
      }
    });
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", () => resolve());
      sock.once("error", reject);
    });
    sock.write(logIn);
    let open = true;
    void closed.then(() => open = false);
    while (open && res.lines < count && Date.now() < deadline) {
      const batch: Uint8Array[] = [];
      for (let i = 0; i < 50; i++) {
        batch.push(makeLine(r, port));
        if (r() < 0.01) batch.push(new TextEncoder().encode(logIn));
      }
      res.lines += batch.length;
      // write in odd-sized pieces so lines are split across TCP segments
      const all = Buffer.concat(batch);
      let off = 0;
      while (off < all.length && open) {
        const n = 1 + Math.floor(r() * 4000);
        if (!sock.write(all.subarray(off, off + n))) {
          await Promise.race([new Promise((ok) => sock.once("drain", ok)), closed]);
        }
        off += n;
      }
    }
    if (open) {
      sock.write("\r\nNOOP\r\nQUIT\r\n");
      const timer = setTimeout(() => sock.destroy(new Error("no QUIT reply")), 30_000);
      await closed;
      clearTimeout(timer);
      if (error) throw error;
      assert.equal(
        (last as FtpReplyMsg | null)?.code,
        221,
        `seed ${seed}: session did not end with 221: ${JSON.stringify(last)}`,
      );
    } else {
      await closed;
      if (error) throw error;
    }
  }
  return res;
}

Deno.test("fuzz: 100 000+ random and mutated command lines; the server stays up and every reply is well-formed", async () => {
  const s = await startHopFolderServer({
    loginFailDelayMs: 0,
    maxLoginFailures: 1e9,
    maxLoginAttemptsPerSession: 1e9,
    dataTimeoutMs: 50,
    maxSessionsPerIp: 64,
  });
  try {
    const t0 = Date.now();
    const deadline = t0 + 50_000;
    const seeds = [11, 22, 33, 44, 55, 66];
    const results = await Promise.all(
      seeds.map((seed) => worker("127.0.0.1", s.port, s, seed, 17_500, deadline)),
    );
    const lines = results.reduce((n, x) => n + x.lines, 0);
    const replies = results.reduce((n, x) => n + x.replies, 0);
    const conns = results.reduce((n, x) => n + x.connections, 0);
    console.log(
      `fuzz: ${lines} lines, ${replies} replies, ${conns} connections, ${Date.now() - t0} ms`,
    );
    assert.ok(lines >= 100_000, `only ${lines} lines sent before the deadline`);
    assert.ok(replies >= lines / 3, `only ${replies} replies to ${lines} lines`);
    // the server still works normally
    const c = await openRawFtp("127.0.0.1", s.port);
    assert.equal(c.greeting.code, 220);
    assert.equal((await c.cmd(`USER ${s.user}`)).code, 331);
    assert.equal((await c.cmd(`PASS ${s.password}`)).code, 230);
    assert.equal((await c.cmd("CWD /")).code, 250);
    assert.equal((await c.cmd("NOOP")).code, 200);
    assert.equal((await c.cmd("QUIT")).code, 221);
    c.close();
  } finally {
    await s.stop();
  }
});
