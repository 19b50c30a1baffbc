/**
 * The storage driver conformance suite (`storage_suite.ts`) on the folder
 * driver and on the FTP driver against pyftpdlib and vsftpd, plain and FTPS.
 *
 * @module
 */
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openDriver } from "../src/storage/mod.ts";
import {
  freePort,
  makeSelfSignedCert,
  startPyftpdlib,
  startVsftpd,
  type TestFtpServer,
  type TestServerOptions,
} from "./helpers/ftp_servers.ts";
import { storageConformance } from "./storage_suite.ts";

Deno.test("storage conformance: folder", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "hop-storage-"));
  try {
    await storageConformance(t, {
      open: () => openDriver(pathToFileURL(dir).href),
      dir,
      exclusive: "native",
      setsMtime: true,
    });
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
  Deno.test(`storage conformance: ${name}`, async (t) => {
    const root = await mkdtemp(join(tmpdir(), "hop-storage-ftp-"));
    const dir = join(root, "store");
    await mkdir(dir);
    const cert = tls
      ? await makeSelfSignedCert(await mkdtemp(join(tmpdir(), "hop-cert-")))
      : undefined;
    const o: TestServerOptions = { root, tls: cert };
    let srv: TestFtpServer | undefined;
    try {
      srv = await start(o);
      const { user, password } = srv;
      const tlsCa = cert ? await readFile(cert.cert, "utf8") : undefined;
      const url = `${srv.url}/store`;
      await storageConformance(t, {
        open: () => openDriver(url, { user, password, tlsCa, maxConnections: 4 }),
        dir,
        exclusive: "listing",
        setsMtime: true,
        openWrongAuth: () => openDriver(url, { user, password: password + "x", tlsCa }),
        openDown: async () =>
          openDriver(`${tls ? "ftps" : "ftp"}://127.0.0.1:${await freePort()}/store`, {
            user,
            password,
          }),
      });
    } finally {
      await srv?.stop();
      await rm(root, { recursive: true, force: true });
      if (cert) await rm(join(cert.cert, ".."), { recursive: true, force: true });
    }
  });
}
