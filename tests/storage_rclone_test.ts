/**
 * The storage driver conformance suite (`storage_suite.ts`) on the rclone
 * driver, with Debian's rclone and a local remote (each call runs rclone, so
 * the race is small: the listing scheme it uses races at full size on FTP);
 * SFTP and WebDAV remotes (OpenSSH's sshd, Apache mod_dav) carry relays in
 * `relay_drivers_test.ts`.
 * Also the errors for a missing rclone and a remote that is not configured.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDriver } from "../src/storage/mod.ts";
import { rcloneRemotes } from "./helpers/storage_servers.ts";
import { rejectsKind, storageConformance } from "./storage_suite.ts";

Deno.test("storage conformance: rclone (a local remote)", async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), "hop-storage-rclone-"));
  const r = await rcloneRemotes(tmp, { localOnly: true });
  try {
    for (const [remote, dir, path] of r.remotes) {
      await mkdir(join(dir, "store"), { recursive: true });
      await t.step(`remote ${remote}`, async (t2) => {
        await storageConformance(t2, {
          open: () => openDriver(`rclone:${remote}:${path}/store`, { rcloneConfig: r.config }),
          dir: join(dir, "store"),
          exclusive: "listing",
          setsMtime: false,
          replaceGap: "rclone's moveto deletes the target before it moves the new file in",
          race: { clients: 2, rounds: 3 },
        });
      });
    }
    await t.step("a remote rclone does not know: kind missing, says how to set it up", async () => {
      const d = await openDriver("rclone://nosuch/x", { rcloneConfig: r.config });
      const e = await rejectsKind(d.check(), "missing");
      assert.match(e.hint!, /rclone config/);
    });
    await t.step("no rclone program: a clear error naming the package", async () => {
      const d = await openDriver("rclone://local/x", {
        rcloneConfig: r.config,
        rcloneBinary: join(tmp, "no-rclone-here"),
      });
      const e = await rejectsKind(d.check(), "unsupported");
      assert.match(e.hint!, /apt install rclone/);
    });
    await t.step("a file that moves in while rclone looks it up reads as missing", async () => {
      // What Debian's rclone prints when a replace's rename lands between its look for a
      // file and its look for a folder at the same name (seen about once in 100 reads
      // racing `moveto`; too rare to provoke on demand, so a stand-in prints it).
      const fake = join(tmp, "rclone-race");
      await writeFile(
        fake,
        "#!/bin/sh\necho 'Failed to cat with 2 errors: last error was: failed to read " +
          "directory entry: readdirent /srv/a: not a directory' >&2\nexit 1\n",
        { mode: 0o755 },
      );
      const d = await openDriver("rclone://local/x", {
        rcloneConfig: r.config,
        rcloneBinary: fake,
      });
      await rejectsKind(d.read("a"), "missing");
      assert.equal(await d.stat("a"), null);
    });
  } finally {
    await r.stop();
    await rm(tmp, { recursive: true, force: true });
  }
});
