/**
 * Relay sync through every storage driver, with the `hop` command as users run
 * it (the binary when HOP_BIN is set): two clients converge through an SFTP
 * relay (OpenSSH's sshd), a WebDAV relay (Apache mod_dav over HTTPS, and
 * `rclone serve webdav`), an S3 relay (s3rver) and rclone remotes (local,
 * sftp, webdav); and escale.conf sections with Escale's `protocol` values
 * reach the same relays.
 *
 * @module
 */
import assert from "node:assert/strict";
import { withTempDir } from "./helpers/temp.ts";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runHop } from "./helpers/hop.ts";
import {
  rcloneRemotes,
  startApacheDav,
  startRcloneWebdav,
  startS3rver,
  startSshd,
} from "./helpers/storage_servers.ts";
import { snapshot, tempDir } from "./relay_helpers.ts";

/** One `hop relay sync ... --once` pass; fails the test on a non-zero exit. */
async function syncOnce(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await runHop(["--json", "relay", "sync", ...args, "--once"], {
    timeoutMs: 180_000,
    env,
  });
  assert.equal(r.code, 0, `hop relay sync ${args.join(" ")}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/**
 * alice pushes two files, bob pulls them; bob edits one and deletes the
 * other, alice gets both changes. `run(local, client)` syncs one folder once.
 */
async function converge(
  dir: string,
  run: (local: string, client: string) => Promise<string>,
): Promise<void> {
  const a = join(dir, "a");
  const b = join(dir, "b");
  for (const d of [a, b]) await mkdir(d, { recursive: true });
  await run(b, "bob");
  await mkdir(join(a, "sub"));
  await writeFile(join(a, "one.txt"), "one");
  await writeFile(join(a, "sub", "big.bin"), crypto.getRandomValues(new Uint8Array(60_000)));
  await run(a, "alice");
  await run(b, "bob");
  assert.deepEqual(await snapshot(b), await snapshot(a));
  await writeFile(join(b, "one.txt"), "one, edited");
  await rm(join(b, "sub", "big.bin"));
  await run(b, "bob");
  await run(a, "alice");
  assert.deepEqual(await snapshot(a), await snapshot(b));
  assert.deepEqual(Object.keys(await snapshot(a)), ["one.txt"]);
}

const once =
  (relay: string, extra: string[] = [], env: Record<string, string> = {}) =>
  (local: string, client: string) =>
    syncOnce([local, relay, "--client-name", client, ...extra], env);

/**
 * A third client, carol, set up by the escale.conf `conf` (local folder `dir/c`),
 * sends a file through the same relay; alice (`run`, in `dir/a`) gets it.
 */
async function joinsThroughConf(
  dir: string,
  conf: string,
  run: (local: string, client: string) => Promise<string>,
  env: Record<string, string> = {},
): Promise<void> {
  await mkdir(join(dir, "c"), { recursive: true });
  await syncOnce(["-c", conf], env); // carol registers
  await writeFile(join(dir, "c", "from-carol.txt"), "carol's");
  await syncOnce(["-c", conf], env);
  await run(join(dir, "a"), "alice");
  assert.equal(
    (await snapshot(join(dir, "a")))["from-carol.txt"],
    (await snapshot(join(dir, "c")))["from-carol.txt"],
  );
}

Deno.test("relay sync through SFTP (OpenSSH sshd): two clients converge", async () => {
  const [dir, clean] = await tempDir("hop-relay-sftp-");
  const sshd = await startSshd();
  try {
    const relay = join(dir, "relay");
    await mkdir(relay);
    await converge(
      dir,
      once(`${sshd.url}${relay}`, [
        "--ssh-key",
        sshd.keyFile,
        "--host-key",
        sshd.hostKeyFingerprint,
      ]),
    );
    assert.ok((await readdir(relay)).includes(".0.index"), "an Escale relay on the server");
    // an escale.conf section: Escale's protocol value, hop's key options
    const conf = join(dir, "escale.conf");
    await writeFile(
      conf,
      [
        "[c]",
        `local path = ${join(dir, "c")}`,
        "protocol = sftp",
        `host address = 127.0.0.1`,
        `port = ${sshd.port}`,
        `user = ${sshd.user}`,
        `host directory = ${relay}`,
        `ssh key = ${sshd.keyFile}`,
        `host key = ${sshd.hostKeyFingerprint}`,
        "client name = carol",
        "index = 1",
        "",
      ].join("\n"),
    );
    const keys = ["--ssh-key", sshd.keyFile, "--host-key", sshd.hostKeyFingerprint];
    await joinsThroughConf(dir, conf, once(`${sshd.url}${relay}`, keys));
    // hop relay start: the background sync gets the one-off form's key options too (a
    // relay of its own, where the one client's push waits for nobody)
    const solo = join(dir, "solo");
    for (const d of [solo, join(dir, "solo-relay")]) await mkdir(d);
    await writeFile(join(solo, "in-background.txt"), "bg");
    const env = { XDG_STATE_HOME: join(dir, "state") };
    const started = await runHop(
      [
        "relay",
        "start",
        solo,
        `${sshd.url}${join(dir, "solo-relay")}`,
        "--client-name",
        "solo",
        "--refresh",
        "1",
        ...keys,
      ],
      { env },
    );
    try {
      assert.equal(started.code, 0, started.stdout + started.stderr);
      const log = join(dir, "state/hop/relay-sync.log");
      let text = "";
      for (let i = 0; i < 600 && !/: pushed 1 file/.test(text); i++) {
        await new Promise((r) => setTimeout(r, 200));
        text = await readFile(log, "utf8").catch(() => "");
      }
      assert.match(text, /: pushed 1 file/, text);
    } finally {
      const stop = await runHop(["relay", "stop"], { env });
      assert.equal(stop.code, 0, stop.stderr);
    }
  } finally {
    await sshd.stop();
    await clean();
  }
});

for (
  const [name, tls] of [["Apache mod_dav over HTTPS", true], [
    "rclone serve webdav",
    false,
  ]] as const
) {
  Deno.test(`relay sync through WebDAV (${name}): two clients converge`, async () => {
    const [dir, clean] = await tempDir("hop-relay-dav-");
    const served = join(dir, "served");
    await mkdir(join(served, "relay"), { recursive: true });
    const dav = tls ? await startApacheDav(served, { tls: true }) : await startRcloneWebdav(served);
    try {
      const url = new URL(`${dav.url}/relay`);
      url.username = dav.user;
      url.password = dav.password;
      const address = url.href.replace(/^http/, "webdav");
      await converge(dir, once(address, tls ? ["--insecure"] : []));
      assert.ok((await readdir(join(served, "relay"))).includes(".0.index"));
      if (tls) {
        // escale.conf: protocol = https, a password file, verify ssl = no
        const pw = join(dir, "pw");
        await writeFile(pw, dav.password + "\n");
        const conf = join(dir, "escale.conf");
        const u = new URL(dav.url);
        await writeFile(
          conf,
          [
            "[c]",
            `local path = ${join(dir, "c")}`,
            "protocol = https",
            `host address = ${u.hostname}`,
            `port = ${u.port}`,
            `host directory = ${u.pathname}/relay`,
            `user = ${dav.user}`,
            `password = ${pw}`,
            "verify ssl = no",
            "client name = carol",
            "index = 1",
            "",
          ].join("\n"),
        );
        await joinsThroughConf(dir, conf, once(address, ["--insecure"]));
      }
    } finally {
      await dav.stop();
      await clean();
    }
  });
}

Deno.test("relay sync through S3 (s3rver): two clients converge", async () => {
  const [dir, clean] = await tempDir("hop-relay-s3-");
  const s3 = await startS3rver("relays");
  try {
    const address = `s3://${s3.accessKey}:${s3.secretKey}@${s3.bucket}/team/relay?endpoint=${
      encodeURIComponent(s3.endpoint)
    }`;
    await converge(dir, once(address));
  } finally {
    await s3.stop();
    await clean();
  }
});

/**
 * bob registers, alice pushes a file, bob pulls it: the short form of `converge`, for
 * relays where every call is slow (an rclone process each).
 */
async function oneWay(
  dir: string,
  run: (local: string, client: string) => Promise<string>,
): Promise<void> {
  const [a, b] = [join(dir, "a"), join(dir, "b")];
  for (const d of [a, b]) await mkdir(d, { recursive: true });
  await run(b, "bob");
  await writeFile(join(a, "one.txt"), "one");
  await run(a, "alice");
  await run(b, "bob");
  assert.deepEqual(await snapshot(b), await snapshot(a));
}

Deno.test("relay sync through rclone remotes (local, sftp, webdav): two clients converge", async () => {
  const [dir, clean] = await tempDir("hop-relay-rclone-");
  const r = await rcloneRemotes(dir);
  try {
    for (const [remote, here, path] of r.remotes) {
      await mkdir(join(here, "relay"), { recursive: true });
      const sub = join(dir, `clients-${remote}`);
      // the whole exchange on the local remote; a push and a pull on the network ones
      await (remote === "local" ? converge : oneWay)(
        sub,
        once(`rclone:${remote}:${path}/relay`, ["--rclone-config", r.config]),
      );
      assert.ok((await readdir(join(here, "relay"))).includes(".0.index"), remote);
    }
    // escale.conf as Escale writes it for rclone: the protocol names the service, the
    // address the remote; rclone's own configuration from RCLONE_CONFIG
    const [remote, , path] = r.remotes[0];
    const conf = join(dir, "escale.conf");
    await writeFile(
      conf,
      [
        "[c]",
        `local path = ${join(dir, `clients-${remote}`, "c")}`,
        "protocol = dropbox",
        `address = ${remote}`,
        `directory = ${path}/relay`,
        "client name = carol",
        "index = 1",
        "",
      ].join("\n"),
    );
    await joinsThroughConf(
      join(dir, `clients-${remote}`),
      conf,
      once(`rclone:${remote}:${path}/relay`, ["--rclone-config", r.config]),
      { RCLONE_CONFIG: r.config },
    );
  } finally {
    await r.stop();
    await clean();
  }
});

Deno.test("an rclone relay without rclone: the error names the package to install", async () => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, "a"));
    const r = await runHop(["relay", "sync", join(dir, "a"), "rclone:remote:relay", "--once"], {
      env: { PATH: join(dir, "empty") },
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /apt install rclone/);
  }, "hop-relay-norclone-");
});
