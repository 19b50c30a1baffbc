/**
 * hop's FTP client layer against pyftpdlib, on whichever runtime runs the test
 * (Deno, and Bun in the Bun lane): downloads and listings come back whole even
 * when the event loop is busy at the moment the data arrives (Bun's sockets then
 * emit the data, and the end, before basic-ftp pipes the socket anywhere), empty
 * FTPS uploads work, and listings are complete or fail.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { Readable, Writable } from "node:stream";
import type { Client } from "basic-ftp";
import { connectFtp, listDir } from "./client.ts";
import {
  makeSelfSignedCert,
  startPyftpdlib,
  type TestFtpServer,
} from "../../tests/helpers/ftp_servers.ts";

/** Blocks the event loop for `ms` right after each transfer command goes out. */
function busyAfterTransfers(c: Client, ms: number): void {
  const ftp = c.ftp as unknown as { send(command: string): void };
  const send = ftp.send.bind(ftp);
  ftp.send = (command: string) => {
    send(command);
    if (/^(RETR|LIST|MLSD|NLST)\b/.test(command)) {
      const until = Date.now() + ms;
      while (Date.now() < until) { /* the server answers meanwhile: 150, data, end, 226 */ }
    }
  };
}

async function download(c: Client, name: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  await c.downloadTo(
    new Writable({
      write(chunk, _enc, cb) {
        parts.push(chunk);
        cb();
      },
    }),
    name,
  );
  return new Uint8Array(Buffer.concat(parts));
}

async function withServer(
  fn: (s: TestFtpServer, dir: string, login: { user: string; password: string }) => Promise<void>,
  tls = false,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "hop-ftpclient-"));
  const login = {
    user: `u${randomBytes(3).toString("hex")}`,
    password: randomBytes(12).toString("base64url"),
  };
  const cert = tls ? await makeSelfSignedCert(dir) : undefined;
  const root = join(dir, "root");
  await mkdir(root);
  const s = await startPyftpdlib({ root, ...login, tls: cert });
  try {
    await fn(s, root, login);
  } finally {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("ftp client: small downloads and listings are whole when the loop is busy as data arrives", async () => {
  await withServer(async (s, root, login) => {
    const bodies = new Map<string, Uint8Array>();
    for (let i = 0; i < 20; i++) {
      const body = new Uint8Array(randomBytes(1 + i * 37));
      bodies.set(`f${i}.bin`, body);
      await writeFile(join(root, `f${i}.bin`), body);
    }
    const c = await connectFtp({ host: "127.0.0.1", port: s.port, ...login });
    try {
      busyAfterTransfers(c, 150);
      for (const [name, body] of bodies) {
        assert.deepEqual(await download(c, name), body, `${name} came back whole`);
      }
      const names = (await listDir(c, "", true)).map((e) => e.name).sort();
      assert.deepEqual(names, [...bodies.keys()].sort(), "the listing is whole");
      const sizes = (await listDir(c, "", false)).map((e) => [e.name, e.size]);
      assert.equal(sizes.length, bodies.size, "the LIST listing is whole");
    } finally {
      c.close();
    }
  });
});

Deno.test("ftp client: FTPS uploads of empty and small files, and downloads back", async () => {
  await withServer(async (s, _root, login) => {
    const c = await connectFtp({
      host: "127.0.0.1",
      port: s.port,
      ...login,
      secure: true,
      insecureTls: true,
    });
    try {
      for (const n of [0, 10, 300_000]) {
        const body = new Uint8Array(randomBytes(n));
        const name = `u${body.length}.bin`;
        await c.uploadFrom(Readable.from(body.length ? [body] : []), name);
        assert.deepEqual(await download(c, name), body, name);
      }
    } finally {
      c.close();
    }
  }, true);
});
