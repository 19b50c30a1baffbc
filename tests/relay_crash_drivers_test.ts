/**
 * Crash injection (`helpers/relay_crash.ts`) on an SFTP relay (OpenSSH's sshd)
 * and a WebDAV relay (Apache mod_dav): three clients killed at random points
 * converge with every file and no lock left.
 *
 * @module
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { CONVERGE_MS, crashRounds } from "./helpers/relay_crash.ts";
import { startApacheDav, startSshd } from "./helpers/storage_servers.ts";
import { tempDir } from "./relay_helpers.ts";

Deno.test("SFTP relay (OpenSSH sshd): three clients killed at random points converge, no file lost", async () => {
  const [root, clean] = await tempDir("hop-crash-sftp-");
  const sshd = await startSshd();
  try {
    await crashRounds(root, `${sshd.url}${root}`, "sftp", CONVERGE_MS, [
      "--ssh-key",
      sshd.keyFile,
      "--host-key",
      sshd.hostKeyFingerprint,
    ]);
  } finally {
    await sshd.stop();
    await clean();
  }
});

Deno.test("WebDAV relay (Apache mod_dav): three clients killed at random points converge, no file lost", async () => {
  const [dir, clean] = await tempDir("hop-crash-dav-");
  const served = join(dir, "served");
  await mkdir(join(served, "relay"), { recursive: true });
  const dav = await startApacheDav(served);
  try {
    const url = new URL(`${dav.url}/relay`);
    url.username = dav.user;
    url.password = dav.password;
    await crashRounds(
      join(served, "relay"),
      url.href.replace(/^http/, "webdav"),
      "webdav",
      CONVERGE_MS,
    );
  } finally {
    await dav.stop();
    await clean();
  }
});
