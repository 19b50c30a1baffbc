/**
 * Runs the relay backend conformance suite (`relay_backend_suite.ts`) against
 * every backend: a local folder, pyftpdlib plain and FTPS, vsftpd plain and
 * FTPS, all real servers on 127.0.0.1; then the error mapping (wrong password,
 * server down, untrusted certificate, missing relay folder).
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openBackend, StorageError } from "../src/relay/backend/mod.ts";
import {
  FTP_PEERS,
  makeSelfSignedCert,
  startPyftpdlib,
  startVsftpd,
  type TestFtpServer,
  withFtpFolder,
} from "./helpers/ftp_servers.ts";
import { newAwkwardLogin } from "./helpers/credentials.ts";
import { conformance } from "./relay_backend_suite.ts";

// made for this run, with the characters that need quoting in URLs and FTP commands
const { user: USER, password: PASSWORD } = newAwkwardLogin();

async function tempDir(): Promise<string> {
  return await mkdtemp(join(tmpdir(), "hop-backend-"));
}

Deno.test("relay backend conformance: folder", async (t) => {
  const dir = await tempDir();
  try {
    await conformance(t, { address: pathToFileURL(dir).href, options: {}, dir });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (const [name, start, tls] of FTP_PEERS) {
  Deno.test(`relay backend conformance: ${name}`, async (t) => {
    await withFtpFolder(start, tls, "relay dir", async (f) => {
      await conformance(t, {
        address: `${f.server().url}/relay%20dir`,
        options: { user: USER, password: PASSWORD, tlsCa: f.tlsCa },
        dir: f.dir,
        restart: f.restart,
      });
    }, { user: USER, password: PASSWORD });
  });
}

async function rejectsKind(p: Promise<unknown>, kind: string, hint: RegExp): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StorageError, `expected StorageError, got ${e}`);
    assert.equal(e.kind, kind, e.message);
    assert.match(e.hint ?? "", hint);
    return e;
  }
  assert.fail(`expected a StorageError of kind ${kind}`);
}

Deno.test("relay backend errors: wrong password, server down, TLS, missing folder", async (t) => {
  const root = await tempDir();
  const certDir = await tempDir();
  const cert = await makeSelfSignedCert(certDir);
  const servers: TestFtpServer[] = [];
  try {
    const py = await startPyftpdlib({ root, user: USER, password: PASSWORD });
    const vs = await startVsftpd({ root, user: USER, password: PASSWORD });
    const pyTls = await startPyftpdlib({ root, user: USER, password: PASSWORD, tls: cert });
    servers.push(py, vs, pyTls);

    await t.step("wrong password: kind auth, hint names the user", async () => {
      for (const s of [py, vs]) {
        const e = await rejectsKind(
          openBackend(s.url, { user: USER, password: "wrong" }),
          "auth",
          /user.*password/,
        );
        assert.match(e.hint!, new RegExp(USER.replace(".", "\\.")));
        assert.doesNotMatch(e.message, /wrong/, "the password is not echoed");
      }
    });

    await t.step("server down: kind connect, hint asks whether it runs", async () => {
      const gone = await startPyftpdlib({ root, user: USER, password: PASSWORD });
      const open = await openBackend(gone.url, { user: USER, password: PASSWORD });
      await gone.stop();
      await rejectsKind(
        openBackend(gone.url, { user: USER, password: PASSWORD }),
        "connect",
        /Is the FTP server at 127\.0\.0\.1:\d+ running\?/,
      );
      await rejectsKind(open.list(), "connect", /./);
      await open.close();
    });

    await t.step("FTPS: untrusted certificate refused, accepted when asked", async () => {
      await rejectsKind(
        openBackend(pyTls.url, { user: USER, password: PASSWORD }),
        "tls",
        /certificate/,
      );
      const ok = await openBackend(pyTls.url, {
        user: USER,
        password: PASSWORD,
        insecureTls: true,
      });
      assert.deepEqual(await ok.list(), []);
      await ok.close();
      await rejectsKind(
        openBackend(py.url.replace("ftp:", "ftps:"), { user: USER, password: PASSWORD }),
        "tls",
        /FTPS/,
      );
    });

    await t.step("missing relay folder: kind missing unless create", async () => {
      for (const s of [py, vs]) {
        await rejectsKind(
          openBackend(`${s.url}/no%20such`, { user: USER, password: PASSWORD }),
          "missing",
          /Create the folder/,
        );
      }
      const made = await openBackend(`${py.url}/new%20relay`, {
        user: USER,
        password: PASSWORD,
        create: true,
      });
      await made.write("f", new TextEncoder().encode("x"));
      assert.equal(await readFile(join(root, "new relay", "f"), "utf8"), "x");
      await made.close();
      const missing = join(root, "no-folder");
      await rejectsKind(openBackend(missing), "missing", /Create the folder/);
      const folder = await openBackend(missing, { create: true });
      assert.deepEqual(await folder.list(), []);
    });
  } finally {
    for (const s of servers) await s.stop();
    await rm(root, { recursive: true, force: true });
    await rm(certDir, { recursive: true, force: true });
  }
});

Deno.test("relay backend: folder and FTP clients on one storage exclude each other", async () => {
  const root = await tempDir();
  const srv = await startPyftpdlib({ root, user: USER, password: PASSWORD });
  const clients = [
    ...await Promise.all([0, 1, 2, 3].map(() => openBackend(root))),
    ...await Promise.all(
      [0, 1, 2, 3].map(() => openBackend(srv.url, { user: USER, password: PASSWORD })),
    ),
  ];
  try {
    for (let round = 0; round < 15; round++) {
      const won = await Promise.all(
        clients.map((c, i) => c.createExclusive(".0.lock", new TextEncoder().encode(`c${i}`))),
      );
      const winners = won.flatMap((w, i) => w ? [i] : []);
      assert.equal(winners.length, 1, `round ${round}: winners ${winners}`);
      assert.equal(await readFile(join(root, ".0.lock"), "utf8"), `c${winners[0]}`);
      // the other kind of client releases it
      await clients[(winners[0] + 4) % 8].delete(".0.lock");
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await srv.stop();
    await rm(root, { recursive: true, force: true });
  }
});
