/**
 * Relay sync through real FTP servers on 127.0.0.1: two folders in sync
 * through a pyftpdlib relay (plain and explicit FTPS with a self-signed
 * certificate), and through vsftpd; the Escale fixture pulled over FTP.
 */
import { makeDirs } from "./helpers/temp.ts";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { encodeUpdateIndex, PLACEHOLDER } from "../src/codec/escale_index.ts";
import { openBackend } from "../src/relay/backend/mod.ts";
import { acquireLock } from "../src/relay/lock.ts";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import type { FolderConfig } from "../src/relay/config.ts";
import {
  makeSelfSignedCert,
  startPyftpdlib,
  startVsftpd,
  type TestFtpServer,
} from "./helpers/ftp_servers.ts";
import {
  copyFixtureRelay,
  FIXTURES,
  folderCfg,
  snapshot,
  syncOnce,
  tempDir,
} from "./relay_helpers.ts";

/** One pass in process (not a first pass unless told). */
const pass = (cfg: FolderConfig, first = false) => syncOnce(cfg, first);

async function twoWay(dir: string, relayUrl: string, extra: Partial<FolderConfig>) {
  const [a, b] = await makeDirs(dir, ["a", "b"]);
  const A = folderCfg(a, relayUrl, "alice", extra);
  const B = folderCfg(b, relayUrl, "bob", extra);
  const rb = await pass(B, true);
  assert.deepEqual(rb.warns, []);
  await mkdir(join(a, "sub"));
  await writeFile(join(a, "one.txt"), "one");
  await writeFile(join(a, "sub", "big.bin"), crypto.getRandomValues(new Uint8Array(60_000)));
  const pa = await pass(A, true);
  assert.deepEqual(pa.warns, []);
  assert.equal(pa.pushed, 2);
  const pb = await pass(B);
  assert.deepEqual(pb.warns, []);
  assert.equal(pb.pulled, 2);
  assert.deepEqual(await snapshot(b), await snapshot(a));
  await writeFile(join(b, "one.txt"), "one, edited");
  await rm(join(b, "sub", "big.bin"));
  await pass(B);
  const back = await pass(A);
  assert.equal(back.pulled, 1);
  assert.equal(back.deletedLocally, 1);
  assert.deepEqual(await snapshot(a), await snapshot(b));
  assert.deepEqual(Object.keys(await snapshot(a)), ["one.txt"]);
}

async function withServer(
  start: (root: string) => Promise<TestFtpServer>,
  fn: (dir: string, root: string, srv: TestFtpServer) => Promise<void>,
) {
  const [dir, clean] = await tempDir("hop-relay-ftp-");
  // the server root is a temp dir of its own: vsftpd serves it as another user
  const [root, cleanRoot] = await tempDir("hop-relay-ftproot-");
  await mkdir(join(root, "relay"), { recursive: true });
  let srv: TestFtpServer | undefined;
  try {
    srv = await start(root);
    await fn(dir, root, srv);
  } finally {
    await srv?.stop();
    await clean();
    await cleanRoot();
  }
}

Deno.test("two folders in sync through a pyftpdlib relay", async () => {
  await withServer(
    (root) => startPyftpdlib({ root }),
    async (dir, _root, srv) => {
      await twoWay(dir, srv.loginUrl("relay"), {});
    },
  );
});

Deno.test("two folders in sync through a pyftpdlib FTPS relay (self-signed certificate)", async () => {
  const [certDir, cleanCert] = await tempDir("hop-cert-");
  try {
    const tls = await makeSelfSignedCert(certDir);
    await withServer(
      (root) => startPyftpdlib({ root, tls }),
      async (dir, _root, srv) => {
        await twoWay(dir, `ftps://127.0.0.1:${srv.port}/relay`, {
          user: srv.user,
          password: srv.password,
          insecureTls: true,
        });
      },
    );
  } finally {
    await cleanCert();
  }
});

Deno.test("the Escale fixture pulls over FTP (topdir pages)", async () => {
  await withServer(
    (root) => startPyftpdlib({ root }),
    async (dir, root, srv) => {
      await rm(join(root, "relay"), { recursive: true });
      await copyFixtureRelay("case2", join(root, "relay"));
      const local = join(dir, "local");
      await mkdir(local);
      const r = await pass(
        folderCfg(local, srv.loginUrl("relay"), "bob", {
          mode: "download",
          pageDepth: 1,
        }),
        true,
      );
      assert.deepEqual(r.warns, []);
      assert.deepEqual(await snapshot(local), await snapshot(join(FIXTURES, "case2", "tree")));
      assert.ok(!(await readdir(join(root, "relay"))).some((n) => n.endsWith(".data")));
    },
  );
});

Deno.test("two folders in sync through a vsftpd relay", async () => {
  await withServer(
    (root) => startVsftpd({ root }),
    async (dir, _root, srv) => {
      await twoWay(dir, srv.loginUrl("relay"), {});
    },
  );
});

Deno.test("a hostile archive over FTP is refused, moved aside, and the connection stays usable", async () => {
  await withServer(
    (root) => startPyftpdlib({ root }),
    async (dir, root, srv) => {
      const relay = join(root, "relay");
      const big = "x".repeat(3_000_000);
      execFileSync("/usr/bin/python3", [
        "-c",
        `import io,sys,tarfile
t = tarfile.open(sys.argv[1], "w:bz2")
for name, data in [("../evil.txt", b"evil"), ("ok.txt", b"x" * 3000000)]:
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
t.close()`,
        join(relay, ".0.1700000000.data"),
      ]);
      await writeFile(
        join(relay, ".0.1700000000.index"),
        encodeUpdateIndex({
          entries: [{
            path: "ok.txt",
            meta: {
              placeholder: PLACEHOLDER,
              pusher: "mallory",
              timestamp: 1_700_000_000,
              checksum: createHash("sha512").update(big).digest("hex"),
              extra: [],
            },
          }],
          pullers: [],
        }),
      );
      const local = join(dir, "local");
      await mkdir(local);
      const url = srv.loginUrl("relay");
      const r = await pass(folderCfg(local, url, "bob", { mode: "download" }), true);
      // refused, and moved aside over the same connection (the page takes new updates)
      assert.equal(r.errors, 0, r.warns.join("\n"));
      assert.equal(r.quarantined, 1, r.warns.join("\n"));
      assert.ok(r.warns.some((w) => /refused/.test(w)), r.warns.join("\n"));
      assert.deepEqual(await snapshot(local), {});
      assert.deepEqual(await readdir(dir), ["local"]);
      const left = await readdir(relay);
      assert.ok(!left.some((n) => n.startsWith(".0.1700000000.")), left.join(" "));
      assert.equal(left.filter((n) => n.startsWith(".hop-quarantine-0-1700000000-")).length, 3);
      // the lock was released over the same connection after the refused stream
      assert.ok(!left.includes(".0.lock"));
    },
  );
});

globalThis.addEventListener("unload", () => closePool());

Deno.test("page locks over FTP: of ten clients on ten connections racing, exactly one wins", async () => {
  await withServer(
    (root) => startPyftpdlib({ root }),
    async (_dir, _root, srv) => {
      const url = srv.loginUrl("relay");
      const conns = await Promise.all(Array.from({ length: 10 }, () => openBackend(url)));
      try {
        for (let round = 0; round < 3; round++) {
          const got = await Promise.all(
            conns.map((io, i) =>
              acquireLock(io, "0", { owner: `c${i}`, mode: "w", timeoutSeconds: 60 })
            ),
          );
          const winners = got.filter((g) => g !== null);
          assert.equal(winners.length, 1, `round ${round}`);
          await winners[0]!.release();
        }
      } finally {
        await Promise.all(conns.map((c) => c.close()));
      }
    },
  );
});
