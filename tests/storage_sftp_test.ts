/**
 * The storage driver conformance suite (`storage_suite.ts`) on the SFTP driver
 * against OpenSSH's sshd (fresh host and client keys per run), and the host
 * key check: an unknown or different host key is refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDriver } from "../src/storage/mod.ts";
import { freePort } from "./helpers/ftp_servers.ts";
import { startSshd } from "./helpers/storage_servers.ts";
import { rejectsKind, storageConformance } from "./storage_suite.ts";

Deno.test("storage conformance: sftp (OpenSSH sshd)", async (t) => {
  const sshd = await startSshd();
  const dir = await mkdtemp(join(tmpdir(), "hop-storage-sftp-"));
  const url = `${sshd.url}${dir}`;
  const opts = { sshKey: sshd.key, hostKey: sshd.hostKeyFingerprint, maxConnections: 4 };
  try {
    await storageConformance(t, {
      open: () => openDriver(url, opts),
      dir,
      exclusive: "native",
      setsMtime: true,
      openWrongAuth: async () => {
        const other = await startSshd(); // its client key is not authorised on `sshd`
        await other.stop();
        return openDriver(url, { ...opts, sshKey: other.key });
      },
      openDown: async () =>
        openDriver(`sftp://${sshd.user}@127.0.0.1:${await freePort()}${dir}`, {
          ...opts,
          insecureTls: true,
        }),
    });
    await t.step("a host key other than the one given is refused (kind tls)", async () => {
      const d = await openDriver(url, {
        sshKey: sshd.key,
        hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      });
      try {
        const e = await rejectsKind(d.list(""), "tls");
        assert.match(e.hint!, new RegExp(sshd.hostKeyFingerprint.replace(/[+/]/g, ".")));
      } finally {
        await d.close();
      }
    });
    await t.step("a missing root folder: kind missing unless create", async () => {
      const d = await openDriver(`${url}/no such`, opts);
      await rejectsKind(d.list(""), "missing");
      await d.close();
      const made = await openDriver(`${url}/made%20here`, { ...opts, create: true });
      assert.deepEqual(await made.list(""), []);
      await made.close();
    });
  } finally {
    await sshd.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
