/**
 * The generic engine's hooks the cluster builds on, through `startFtpServer`: a
 * user home that jails the session, SITE commands delegated to a hook (and SITE
 * HELP), a third-party `sendDirect` RETR in active mode (and its fallback), and a
 * backend's "bad-name" error answered with 503.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createFolderFs } from "../src/ftp/folder_fs.ts";
import { startFtpServer } from "../src/ftp/server.ts";
import { type FtpFileSystem, FtpFsError, type FtpUser } from "../src/ftp/types.ts";
import { openRawFtp } from "./helpers/ftp_clients.ts";
import { newPassword } from "./helpers/credentials.ts";

/** Listen on a free loopback port for one active-mode data connection; resolves its bytes. */
async function activeSink(): Promise<{ port: number; data: Promise<string> }> {
  let resolveData: (s: string) => void;
  const data = new Promise<string>((r) => resolveData = r);
  const srv = net.createServer((sock) => {
    const parts: Uint8Array[] = [];
    sock.on("data", (d: Uint8Array) => parts.push(d));
    sock.on("end", () => {
      resolveData(Buffer.concat(parts).toString());
      srv.close();
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  return { port: (srv.address() as net.AddressInfo).port, data };
}

Deno.test("engine hooks: home jail, SITE, sendDirect (and fallback), bad-name 503", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "hop-ftp-hooks-"));
  fs.mkdirSync(path.join(root, "jail/sub"), { recursive: true });
  fs.writeFileSync(path.join(root, "secret.txt"), "outside");
  fs.writeFileSync(path.join(root, "jail/direct.txt"), "via node");
  fs.writeFileSync(path.join(root, "jail/plain.txt"), "via server");
  const folder = createFolderFs(root);
  const direct: string[] = [];
  const fsHooked: FtpFileSystem = {
    ...folder,
    async mkdir(p, user) {
      if (p.includes("#")) throw new FtpFsError("bad-name", "incompatible filename");
      return await folder.mkdir(p, user);
    },
    async sendDirect(p, _user, offset, target) {
      direct.push(`${p}@${offset}->${target.host}:${target.family}`);
      if (!p.endsWith("direct.txt")) return false;
      // a "node" sends the bytes straight to the client's PORT address
      await new Promise<void>((resolve, reject) => {
        const s = net.connect({ host: target.host, port: target.port }, () => {
          s.end(fs.readFileSync(path.join(root, p)).subarray(offset), () => resolve());
        });
        s.on("error", reject);
      });
      return true;
    },
  };
  const password = newPassword();
  const user: FtpUser = { name: "jailed", home: "/jail", readOnly: false, admin: false, id: 1001 };
  const srv = await startFtpServer({
    fs: fsHooked,
    authorizer: {
      authenticate: (n, p) => Promise.resolve(n === "jailed" && p === password ? user : null),
    },
    site: {
      help: ["WHOAMI", "RESOLVE <path>"],
      run(args, ctx) {
        const [cmd, ...rest] = args.split(" ");
        if (cmd.toUpperCase() === "WHOAMI") {
          return Promise.resolve({ code: 200, text: `${ctx.user.name} ${ctx.user.id}` });
        }
        if (cmd.toUpperCase() === "RESOLVE") {
          return Promise.resolve({ code: 200, text: ctx.resolve(rest.join(" ")) });
        }
        return Promise.resolve(null);
      },
    },
  });
  const c = await openRawFtp("127.0.0.1", srv.port);
  try {
    assert.equal((await c.cmd("USER jailed")).code, 331);
    assert.equal((await c.cmd(`PASS ${password}`)).code, 230);
    // the home is the session's root
    assert.deepEqual(await c.cmd("PWD"), { code: 257, lines: ['"/" is the current directory.'] });
    assert.equal((await c.cmd("SIZE ../secret.txt")).code, 550);
    assert.deepEqual(await c.cmd("SIZE /plain.txt"), { code: 213, lines: ["10"] });
    assert.equal((await c.cmd("CWD sub")).code, 250);
    // SITE hook and SITE HELP
    assert.deepEqual(await c.cmd("SITE WHOAMI"), { code: 200, lines: ["jailed 1001"] });
    assert.deepEqual(await c.cmd("SITE RESOLVE ../x y"), { code: 200, lines: ["/jail/x y"] });
    assert.equal((await c.cmd("SITE NOPE")).code, 500);
    const help = await c.cmd("SITE HELP");
    assert.equal(help.code, 214);
    assert.deepEqual(help.lines.slice(1, -1), [
      " HELP",
      " UTIME YYYYMMDDhhmmss <path>",
      " WHOAMI",
      " RESOLVE <path>",
    ]);
    // the backend's bad-name error is a 503
    assert.deepEqual(await c.cmd("MKD a#b"), { code: 503, lines: ["incompatible filename"] });
    assert.equal((await c.cmd("CWD /")).code, 250);
    // active RETR through sendDirect
    let sink = await activeSink();
    assert.equal((await c.cmd(`PORT 127,0,0,1,${sink.port >> 8},${sink.port & 255}`)).code, 200);
    assert.equal((await c.cmd("REST 4")).code, 350);
    assert.equal((await c.cmd("RETR direct.txt")).code, 150);
    assert.equal((await c.reply()).code, 226);
    assert.equal(await sink.data, "node");
    // sendDirect declines: the engine streams it itself
    sink = await activeSink();
    assert.equal((await c.cmd(`EPRT |1|127.0.0.1|${sink.port}|`)).code, 200);
    assert.equal((await c.cmd("RETR plain.txt")).code, 150);
    assert.equal((await c.reply()).code, 226);
    assert.equal(await sink.data, "via server");
    assert.deepEqual(direct, ["/jail/direct.txt@4->127.0.0.1:4", "/jail/plain.txt@0->127.0.0.1:4"]);
  } finally {
    c.close();
    await srv.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
