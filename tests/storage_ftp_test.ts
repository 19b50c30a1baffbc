/**
 * The storage driver conformance suite (`storage_suite.ts`) on the folder
 * driver and on the FTP driver against pyftpdlib and vsftpd, plain and FTPS.
 *
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openDriver } from "../src/storage/mod.ts";
import { freePort, FTP_PEERS, withFtpFolder } from "./helpers/ftp_servers.ts";
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

for (const [name, start, tls] of FTP_PEERS) {
  Deno.test(`storage conformance: ${name}`, async (t) => {
    await withFtpFolder(start, tls, "store", async (f) => {
      const { user, password } = f.server();
      const tlsCa = f.tlsCa;
      const url = `${f.server().url}/store`;
      await storageConformance(t, {
        open: () => openDriver(url, { user, password, tlsCa, maxConnections: 4 }),
        dir: f.dir,
        exclusive: "listing",
        setsMtime: true,
        openWrongAuth: () => openDriver(url, { user, password: password + "x", tlsCa }),
        openDown: async () =>
          openDriver(`${tls ? "ftps" : "ftp"}://127.0.0.1:${await freePort()}/store`, {
            user,
            password,
          }),
      });
    });
  });
}
