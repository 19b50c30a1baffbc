// Relay sync through real FTP servers with the hop command itself (the built
// binary when HOP_BIN is set): plain FTP and explicit FTPS on pyftpdlib, each
// client configured by an escale.conf-style file. (Plain FTP once caught the
// Bun-built binary reading 0 bytes of small files: see holdUntilPiped.)
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { readdirSync } from "node:fs";
import { runHop } from "../helpers/hop.ts";
import { newPassword, newUser } from "../helpers/credentials.ts";
import { makeSelfSignedCert, startPyftpdlib } from "../helpers/ftp_servers.ts";

for (const secure of [false, true]) {
  Deno.test(`relay sync through pyftpdlib over ${secure ? "FTPS" : "FTP"}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "hop-e2e-ftp-"));
    const root = join(dir, "ftproot");
    mkdirSync(root);
    const tls = secure ? await makeSelfSignedCert(dir) : undefined;
    // a generated login; the password keeps a " #" (no inline comments in escale.conf)
    const login = { user: newUser("relay"), password: `${newPassword()} #1` };
    const server = await startPyftpdlib({ root, ...login, tls });
    try {
      const conf = (name: string) => {
        const file = join(dir, `${name}.conf`);
        mkdirSync(join(dir, name));
        writeFileSync(
          file,
          [
            `[docs]`,
            `local path = ${join(dir, name)}`,
            `host address = ${secure ? "ftps" : "ftp"}://127.0.0.1:${server.port}/`,
            `user = ${login.user}`,
            `password = ${login.password}`,
            `client name = ${name}`,
            `index = 1`,
            ...(secure ? ["tls verify = no"] : []),
            "",
          ].join("\n"),
        );
        return file;
      };
      const [alice, bob] = [conf("alice"), conf("bob")];
      writeFileSync(join(dir, "alice", "notes.txt"), "from alice\n");
      const big = new Uint8Array(1_500_000).map((_, i) => (i * 31) % 251);
      writeFileSync(join(dir, "alice", "big.bin"), big);

      for (const c of [alice, bob]) {
        const r = await runHop(["--quiet", "relay", "sync", "-c", c, "--once"]);
        assert.equal(r.code, 0, r.stderr);
      }
      assert.equal(readFileSync(join(dir, "bob", "notes.txt"), "utf8"), "from alice\n");
      assert.ok(Buffer.from(big).equals(readFileSync(join(dir, "bob", "big.bin"))));
      // The relay holds Escale's shapes.
      const names = readdirSync(root);
      assert.ok(names.includes(".0.index"), "persistent index on the relay");
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
