/**
 * Explicit FTPS (RFC 4217) on the FTP engine with a self-signed certificate made
 * by openssl in the test: AUTH TLS, PBSZ, PROT P with TLS on the data channel,
 * checked with lftp, curl and Python's ftplib (passive and active).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { lftpQuote, openRawFtp, runCurl, runFtplib, runLftp } from "./helpers/ftp_clients.ts";
import {
  type HopFolderServer,
  makeSelfSignedCert,
  startHopFolderServer,
} from "./helpers/ftp_servers.ts";

/** Compare big buffers without letting assert build a giant diff. */
function sameBytes(got: Uint8Array, want: Uint8Array): void {
  assert.ok(
    Buffer.from(got).equals(want),
    `content differs: ${got.byteLength} bytes, want ${want.byteLength}`,
  );
}

async function withTlsServer(
  fn: (s: HopFolderServer, local: string) => Promise<void>,
  required = false,
): Promise<void> {
  const local = fs.mkdtempSync(path.join(os.tmpdir(), "hop-ftps-"));
  const { cert, key } = await makeSelfSignedCert(local);
  const s = await startHopFolderServer({ tls: { cert, key, required } });
  try {
    await fn(s, local);
  } finally {
    await s.stop();
    fs.rmSync(local, { recursive: true, force: true });
  }
}

Deno.test("FTPS: lftp, curl and ftplib with PROT P, passive and active", async () => {
  await withTlsServer(async (s, local) => {
    const data = randomBytes(1_500_000);
    fs.writeFileSync(path.join(local, "d.bin"), data);
    for (const passive of [true, false]) {
      const r = await runLftp(s.target, [
        `put ${lftpQuote(path.join(local, "d.bin"))} -o ${lftpQuote("geheim ä.bin")}`,
        "cls -1",
        `get ${lftpQuote("geheim ä.bin")} -o ${lftpQuote(path.join(local, "l.bin"))}`,
      ], { tls: true, passive });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes("geheim ä.bin"), r.stdout);
      sameBytes(fs.readFileSync(path.join(local, "l.bin")), data);
      fs.rmSync(path.join(local, "l.bin"));
    }
    // curl only passive: active FTPS is broken in curl 7.87/7.88 (curl/curl#10666, no TLS
    // handshake on the data connection); lftp and ftplib cover active mode with TLS.
    for (const port of [[] as string[]]) {
      const up = await runCurl(s.target, "/c.bin", [...port, "-T", path.join(local, "d.bin")], {
        tls: true,
      });
      assert.equal(up.code, 0, up.stderr);
      const down = await runCurl(s.target, "/c.bin", [...port, "-o", path.join(local, "c.bin")], {
        tls: true,
      });
      assert.equal(down.code, 0, down.stderr);
      sameBytes(fs.readFileSync(path.join(local, "c.bin")), data);
      const list = await runCurl(s.target, "/", [...port, "--list-only"], { tls: true });
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(list.stdout.trim().split(/\r?\n/).sort(), ["c.bin", "geheim ä.bin"]);
    }
    const py = await runFtplib(
      s.target,
      [
        "buf = io.BytesIO(); ftp.retrbinary('RETR c.bin', buf.write)",
        "ftp.storbinary('STOR p.bin', io.BytesIO(b'tls data'))",
        "ftp.set_pasv(False)",
        "buf2 = io.BytesIO(); ftp.retrbinary('RETR c.bin', buf2.write)",
        "ftp.storbinary('STOR q.bin', io.BytesIO(b'active tls data' * 10000))",
        "assert buf.getvalue() == buf2.getvalue()",
        "result = [hashlib.sha256(buf.getvalue()).hexdigest(), ftp.nlst(), ftp.sendcmd('FEAT')]",
      ].join("\n"),
      {},
      { tls: true },
    );
    assert.equal(py.code, 0, py.stderr);
    const [sha, names, feat] = py.result as [string, string[], string];
    assert.equal(
      sha,
      (await import("node:crypto")).createHash("sha256").update(data).digest("hex"),
    );
    assert.deepEqual(names.sort(), ["c.bin", "geheim ä.bin", "p.bin", "q.bin"]);
    assert.equal(
      fs.readFileSync(path.join(s.root, "q.bin"), "utf8"),
      "active tls data".repeat(10000),
    );
    assert.ok(/\n AUTH TLS\n/.test(feat) && /\n PBSZ\n/.test(feat) && /\n PROT\n/.test(feat), feat);
    assert.equal(fs.readFileSync(path.join(s.root, "p.bin"), "utf8"), "tls data");
  });
});

Deno.test("FTPS: PBSZ/PROT need AUTH first; tls.required refuses plain logins", async () => {
  await withTlsServer(async (s) => {
    const c = await openRawFtp(s.target.host, s.port);
    try {
      assert.equal((await c.cmd("PBSZ 0")).code, 503);
      assert.equal((await c.cmd("PROT P")).code, 503);
      assert.equal((await c.cmd("AUTH KERBEROS")).code, 504);
      const u = await c.cmd(`USER ${s.user}`);
      assert.equal(u.code, 530, "USER before AUTH TLS must be refused when TLS is required");
    } finally {
      c.close();
    }
    const plain = await runCurl(s.target, "/", ["--list-only"]);
    assert.notEqual(plain.code, 0, "plain curl must not get a listing");
    const tls = await runCurl(s.target, "/", ["--list-only"], { tls: true });
    assert.equal(tls.code, 0, tls.stderr);
  }, true);
});
