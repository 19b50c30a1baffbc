/**
 * The FTP engine serving a plain folder, driven by real clients nobody here wrote:
 * lftp, curl, Python's ftplib and basic-ftp. Uploads, listings, renames, deletes,
 * directories, downloads in passive and active mode, REST resume both ways, UTF-8
 * names and names with spaces, IPv6 and a 50 MB transfer checked by sha256.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Client } from "basic-ftp";
import { type FtpTarget, lftpQuote, runCurl, runFtplib, runLftp } from "./helpers/ftp_clients.ts";
import { type HopFolderServer, startHopFolderServer } from "./helpers/ftp_servers.ts";

async function withServer(
  fn: (s: HopFolderServer, local: string) => Promise<void>,
  opts: Parameters<typeof startHopFolderServer>[0] = {},
): Promise<void> {
  const s = await startHopFolderServer(opts);
  const local = fs.mkdtempSync(path.join(os.tmpdir(), "hop-ftp-local-"));
  try {
    await fn(s, local);
  } finally {
    await s.stop();
    fs.rmSync(local, { recursive: true, force: true });
  }
}

/** Compare big buffers without letting assert build a giant diff. */
function sameBytes(got: Uint8Array, want: Uint8Array): void {
  assert.ok(
    Buffer.from(got).equals(want),
    `content differs: ${got.byteLength} bytes, want ${want.byteLength}`,
  );
}

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what} failed: ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

function sha256File(p: string): string {
  return createHash("sha256").update(fs.readFileSync(p)).digest("hex");
}

function noTempLeft(root: string): void {
  const walk = (d: string): string[] =>
    fs.readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(d, e.name)) : [e.name]
    );
  assert.deepEqual(walk(root).filter((n) => n.startsWith(".hop-upload-")), []);
}

for (const passive of [true, false]) {
  const mode = passive ? "passive" : "active";
  Deno.test(`lftp (${mode}): upload, list, rename, delete, mkdir/rmdir, download, names with spaces and UTF-8`, async () => {
    await withServer(async (s, local) => {
      const name = "Grüße aus 日本 & co.txt";
      fs.writeFileSync(path.join(local, "src.txt"), "line one\nline two\n");
      const out = ok(
        await runLftp(s.target, [
          "mkdir -p dir/sub",
          `put ${lftpQuote(path.join(local, "src.txt"))} -o ${lftpQuote("dir/" + name)}`,
          "cls -1 dir",
          `mv ${lftpQuote("dir/" + name)} ${lftpQuote("dir/sub/renamed file.txt")}`,
          "cls -1 dir/sub",
          `get ${lftpQuote("dir/sub/renamed file.txt")} -o ${
            lftpQuote(path.join(local, "back.txt"))
          }`,
        ], { passive }),
        "lftp session",
      );
      const lines = out.trim().split("\n");
      assert.ok(lines.includes(`dir/${name}`) || lines.includes(name), out);
      assert.ok(out.includes("renamed file.txt"), out);
      assert.equal(fs.readFileSync(path.join(local, "back.txt"), "utf8"), "line one\nline two\n");
      assert.equal(
        fs.readFileSync(path.join(s.root, "dir/sub/renamed file.txt"), "utf8"),
        "line one\nline two\n",
      );
      assert.ok(!fs.existsSync(path.join(s.root, "dir", name)));

      ok(
        await runLftp(s.target, [`rm ${lftpQuote("dir/sub/renamed file.txt")}`, "rmdir dir/sub"], {
          passive,
        }),
        "lftp rm/rmdir",
      );
      assert.deepEqual(fs.readdirSync(path.join(s.root, "dir")), []);
      // rmdir of a non-empty directory fails
      fs.writeFileSync(path.join(s.root, "dir/keep"), "x");
      const r = await runLftp(s.target, ["rmdir dir"], { passive });
      assert.notEqual(r.code, 0);
      assert.ok(fs.existsSync(path.join(s.root, "dir/keep")));
      noTempLeft(s.root);
    });
  });

  Deno.test(`curl (${mode}): upload, download, listing, quote commands`, async () => {
    await withServer(async (s, local) => {
      const port = passive ? [] : ["--ftp-port", "127.0.0.1"];
      const data = randomBytes(300_000);
      fs.writeFileSync(path.join(local, "up.bin"), data);
      ok(
        await runCurl(s.target, "/a b/up load.bin", [
          ...port,
          "--ftp-create-dirs",
          "-T",
          path.join(local, "up.bin"),
        ], {
          ftpMethod: "multicwd",
        }),
        "curl upload",
      );
      sameBytes(fs.readFileSync(path.join(s.root, "a b/up load.bin")), data);
      ok(
        await runCurl(s.target, "/a b/up load.bin", [...port, "-o", path.join(local, "down.bin")]),
        "curl download",
      );
      sameBytes(fs.readFileSync(path.join(local, "down.bin")), data);
      const list = ok(await runCurl(s.target, "/a b/", [...port]), "curl LIST");
      assert.match(
        list,
        /^-rw-r--r-- 1 \S+ +\S+ +300000 \w{3} \d\d (\d\d:\d\d| \d{4}) up load\.bin\r?$/m,
      );
      const nlst = ok(await runCurl(s.target, "/a b/", [...port, "--list-only"]), "curl NLST");
      assert.deepEqual(nlst.trim().split(/\r?\n/), ["up load.bin"]);
      ok(
        await runCurl(s.target, "/", [
          ...port,
          "-Q",
          "RNFR a b/up load.bin",
          "-Q",
          "RNTO a b/moved.bin",
          "-Q",
          "DELE a b/moved.bin",
          "-Q",
          "RMD a b",
        ]),
        "curl quote",
      );
      assert.deepEqual(fs.readdirSync(s.root), []);
      // a missing file gives curl's "file not found" (RETR 550)
      const miss = await runCurl(s.target, "/nope.bin", [...port, "-o", path.join(local, "x")]);
      assert.equal(miss.code, 78, miss.stderr);
    });
  });
}

Deno.test("REST resume both ways: curl -C - and lftp get -c / put -c", async () => {
  await withServer(async (s, local) => {
    const data = randomBytes(2_000_000);
    const full = path.join(local, "full.bin");
    fs.writeFileSync(full, data);
    // download resume: local has the first 700 000 bytes
    const part = path.join(local, "part.bin");
    fs.writeFileSync(path.join(s.root, "f.bin"), data);
    fs.writeFileSync(part, data.subarray(0, 700_000));
    ok(await runCurl(s.target, "/f.bin", ["-C", "-", "-o", part]), "curl -C - download");
    sameBytes(fs.readFileSync(part), data);
    // upload resume (curl uses SIZE + APPE): the server has the first 1 000 000 bytes
    fs.writeFileSync(path.join(s.root, "g.bin"), data.subarray(0, 1_000_000));
    ok(await runCurl(s.target, "/g.bin", ["-C", "-", "-T", full]), "curl -C - upload");
    sameBytes(fs.readFileSync(path.join(s.root, "g.bin")), data);
    // lftp put -c (SIZE + REST + STOR) and get -c (REST + RETR)
    fs.writeFileSync(path.join(s.root, "h.bin"), data.subarray(0, 1_234_567));
    fs.writeFileSync(path.join(local, "h.bin"), data.subarray(0, 333_333));
    ok(
      await runLftp(s.target, [
        `put -c ${lftpQuote(full)} -o h.bin`,
        `get -c f.bin -o ${lftpQuote(path.join(local, "h.bin"))}`,
      ], { settings: ["set ftp:rest-stor yes"] }),
      "lftp put -c / get -c",
    );
    sameBytes(fs.readFileSync(path.join(s.root, "h.bin")), data);
    sameBytes(fs.readFileSync(path.join(local, "h.bin")), data);
    noTempLeft(s.root);
  });
});

Deno.test("ftplib: MLSD/MLST facts, SIZE, MDTM, FEAT, STAT, PWD/CWD/CDUP, REST STOR", async () => {
  await withServer(async (s) => {
    fs.mkdirSync(path.join(s.root, "d"));
    fs.writeFileSync(path.join(s.root, "d/x.txt"), "12345");
    fs.utimesSync(
      path.join(s.root, "d/x.txt"),
      new Date("2020-02-03T04:05:06Z"),
      new Date("2020-02-03T04:05:06Z"),
    );
    const r = await runFtplib(
      s.target,
      [
        "out = {}",
        "out['feat'] = ftp.sendcmd('FEAT')",
        "out['mlsd'] = sorted([[n, f] for n, f in ftp.mlsd('/d')])",
        "out['mlst'] = ftp.sendcmd('MLST d/x.txt')",
        "out['size'] = ftp.size('d/x.txt')",
        "out['mdtm'] = ftp.sendcmd('MDTM d/x.txt')",
        "ftp.cwd('d'); out['pwd1'] = ftp.pwd(); ftp.sendcmd('CDUP'); out['pwd2'] = ftp.pwd()",
        "out['stat'] = ftp.sendcmd('STAT d')",
        "ftp.voidcmd('TYPE I')",
        "ftp.storbinary('STOR d/x.txt', io.BytesIO(b'XYZ'), rest=3)",
        "out['after'] = ftp.size('d/x.txt')",
        "out['nlst'] = ftp.nlst('d')",
        "result = out",
      ].join("\n"),
      {},
    );
    assert.equal(r.code, 0, r.stderr);
    const out = r.result as Record<string, unknown>;
    const feat = String(out.feat);
    assert.ok(feat.startsWith("211-Features:\n") && feat.endsWith("\n211 End"), feat);
    for (
      const f of [
        "EPSV",
        "EPRT",
        "MDTM",
        "SIZE",
        "REST STREAM",
        "UTF8",
        "MLST type*;size*;modify*;perm*;",
      ]
    ) {
      assert.ok(feat.includes("\n " + f), `FEAT lacks ${f}: ${feat}`);
    }
    assert.ok(!feat.includes("AUTH TLS"), "no AUTH TLS without a certificate");
    const mlsd = out.mlsd as [string, Record<string, string>][];
    assert.equal(mlsd.length, 1);
    assert.equal(mlsd[0][0], "x.txt");
    assert.equal(mlsd[0][1].type, "file");
    assert.equal(mlsd[0][1].size, "5");
    assert.equal(mlsd[0][1].modify, "20200203040506");
    assert.equal(mlsd[0][1].perm, "rwadf");
    assert.match(
      String(out.mlst),
      /^250-Listing \/d\/x\.txt\n type=file;size=5;modify=20200203040506;perm=rwadf;unique=[0-9a-f.]+;UNIX\.mode=0[0-7]{3};UNIX\.owner=[^;]+;UNIX\.group=[^;]+; \/d\/x\.txt\n250 End$/,
    );
    assert.equal(out.size, 5);
    assert.equal(out.mdtm, "213 20200203040506");
    assert.equal(out.pwd1, "/d");
    assert.equal(out.pwd2, "/");
    assert.match(
      String(out.stat),
      /^213-Status of d:\n-rw-r--r-- 1 .* 5 Feb 03 +2020 x\.txt\n213 End of status\.$/,
    );
    assert.equal(out.after, 6);
    assert.equal(fs.readFileSync(path.join(s.root, "d/x.txt"), "utf8"), "123XYZ");
    assert.deepEqual(out.nlst, ["x.txt"]);
  });
});

Deno.test("anonymous read-only login: downloads work, every change is refused", async () => {
  await withServer(async (s) => {
    fs.writeFileSync(path.join(s.root, "pub.txt"), "public");
    const anon: FtpTarget = { ...s.target, user: "anonymous", password: "me@example.org" };
    const r = await runFtplib(
      anon,
      [
        "out = {}",
        "buf = io.BytesIO(); ftp.retrbinary('RETR pub.txt', buf.write); out['data'] = buf.getvalue().decode()",
        "out['perm'] = [f['perm'] for n, f in ftp.mlsd('/')]",
        "for c in ['MKD x', 'DELE pub.txt', 'RNFR pub.txt', 'RMD x']:",
        "    try: ftp.sendcmd(c); out[c] = 'ok'",
        "    except ftplib.error_perm as e: out[c] = str(e)[:3]",
        "try: ftp.storbinary('STOR new.txt', io.BytesIO(b'x')); out['STOR'] = 'ok'",
        "except ftplib.error_perm as e: out['STOR'] = str(e)[:3]",
        "result = out",
      ].join("\n"),
      {},
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.result, {
      data: "public",
      perm: ["r"],
      "MKD x": "550",
      "DELE pub.txt": "550",
      "RNFR pub.txt": "550",
      "RMD x": "550",
      STOR: "550",
    });
    assert.deepEqual(fs.readdirSync(s.root), ["pub.txt"]);
  }, { anonymous: true });
});

Deno.test("basic-ftp: 50 MB upload and download keep sha256; lftp and curl agree", async () => {
  await withServer(async (s, local) => {
    const big = path.join(local, "big.bin");
    const fd = fs.openSync(big, "w");
    for (let i = 0; i < 50; i++) fs.writeSync(fd, randomBytes(1 << 20));
    fs.closeSync(fd);
    const want = sha256File(big);
    const client = new Client(30_000);
    try {
      await client.access({
        host: s.target.host,
        port: s.port,
        user: s.target.user,
        password: s.target.password,
      });
      const t0 = performance.now();
      await client.uploadFrom(big, "big.bin");
      const t1 = performance.now();
      assert.equal(await client.size("big.bin"), 50 << 20);
      await client.downloadTo(path.join(local, "back1.bin"), "big.bin");
      const t2 = performance.now();
      console.log(
        `50 MB basic-ftp: upload ${(t1 - t0).toFixed(0)} ms, download ${(t2 - t1).toFixed(0)} ms`,
      );
    } finally {
      client.close();
    }
    assert.equal(sha256File(path.join(s.root, "big.bin")), want);
    assert.equal(sha256File(path.join(local, "back1.bin")), want);
    ok(
      await runCurl(s.target, "/big.bin", ["-o", path.join(local, "back2.bin")]),
      "curl big download",
    );
    ok(
      await runLftp(s.target, [`get big.bin -o ${lftpQuote(path.join(local, "back3.bin"))}`], {
        passive: false,
      }),
      "lftp big",
    );
    assert.equal(sha256File(path.join(local, "back2.bin")), want);
    assert.equal(sha256File(path.join(local, "back3.bin")), want);
    noTempLeft(s.root);
  });
});

async function ipv6Works(): Promise<boolean> {
  return await new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(0, "::1", () => srv.close(() => resolve(true)));
  });
}

Deno.test("IPv6 (::1): EPSV and EPRT with lftp and curl", async () => {
  if (!(await ipv6Works())) throw new Error("::1 is not usable on this machine");
  await withServer(async (s, local) => {
    fs.writeFileSync(path.join(local, "six.txt"), "over IPv6\n");
    ok(
      await runCurl(s.target, "/six.txt", ["-T", path.join(local, "six.txt")]),
      "curl EPSV upload over ::1",
    );
    ok(
      await runCurl(s.target, "/six.txt", ["--ftp-port", "::1", "-o", path.join(local, "b1.txt")]),
      "curl EPRT",
    );
    ok(
      await runLftp(s.target, [`get six.txt -o ${lftpQuote(path.join(local, "b2.txt"))}`], {
        passive: false,
      }),
      "lftp EPRT",
    );
    ok(
      await runLftp(s.target, [`get six.txt -o ${lftpQuote(path.join(local, "b3.txt"))}`]),
      "lftp EPSV",
    );
    for (const b of ["b1.txt", "b2.txt", "b3.txt"]) {
      assert.equal(fs.readFileSync(path.join(local, b), "utf8"), "over IPv6\n");
    }
  }, { host: "::1" });
});
