/**
 * Runs the relay backend conformance suite (`relay_backend_suite.ts`) against
 * every backend: a local folder, pyftpdlib plain and FTPS, vsftpd plain and
 * FTPS, all real servers on 127.0.0.1; then the error mapping (wrong password,
 * server down, untrusted certificate, missing relay folder).
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openBackend, RelayError } from "../src/relay/backend/mod.ts";
import {
  makeSelfSignedCert,
  startPyftpdlib,
  startVsftpd,
  type TestFtpServer,
  type TestServerOptions,
} from "./helpers/ftp_servers.ts";
import { conformance, type Target } from "./relay_backend_suite.ts";

const USER = "relay.user_1"; // vsftpd refuses user names with spaces
const PASSWORD = "pa:ss wörd";

async function tempDir(): Promise<string> {
  return await mkdtemp(join(tmpdir(), "hop-backend-"));
}

/** An FTP target: relay folder "relay dir" under the server root. */
async function ftpTarget(
  start: (o: TestServerOptions) => Promise<TestFtpServer>,
  tls: boolean,
): Promise<{ target: Target; cleanup: () => Promise<void> }> {
  const root = await tempDir();
  const dir = join(root, "relay dir");
  await mkdir(dir);
  const cert = tls ? await makeSelfSignedCert(await tempDir()) : undefined;
  const opts: TestServerOptions = { root, user: USER, password: PASSWORD, tls: cert };
  let srv = await start(opts);
  const target: Target = {
    address: `${srv.url}/relay%20dir`,
    options: {
      user: USER,
      password: PASSWORD,
      tlsCa: cert ? await readFile(cert.cert, "utf8") : undefined,
    },
    dir,
    restart: async () => {
      await srv.stop();
      srv = await start({ ...opts, port: srv.port });
    },
  };
  return {
    target,
    cleanup: async () => {
      await srv.stop();
      await rm(root, { recursive: true, force: true });
      if (cert) await rm(join(cert.cert, ".."), { recursive: true, force: true });
    },
  };
}

Deno.test("relay backend conformance: folder", async (t) => {
  const dir = await tempDir();
  try {
    await conformance(t, { address: pathToFileURL(dir).href, options: {}, dir });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (
  const [name, start, tls] of [
    ["pyftpdlib", startPyftpdlib, false],
    ["pyftpdlib FTPS", startPyftpdlib, true],
    ["vsftpd", startVsftpd, false],
    ["vsftpd FTPS", startVsftpd, true],
  ] as const
) {
  Deno.test(`relay backend conformance: ${name}`, async (t) => {
    const { target, cleanup } = await ftpTarget(start, tls);
    try {
      await conformance(t, target);
    } finally {
      await cleanup();
    }
  });
}
