/**
 * Escale's default scheme (no `index` line: one placeholder per file) both
 * ways with the real Escale 0.7.13 client on an FTP relay (pyftpdlib), plain
 * and with Escale's encryption (`encryption = yes`, Fernet): Escale pushes
 * files at the top, in nested folders and under UTF-8 names, hop pulls them
 * byte for byte with their mtimes; hop pushes new files in new folders and
 * changes, and Escale pulls them likewise. Escale connects to port 21 whatever
 * the address says, so the relay lives in a network namespace made by the
 * test, where pyftpdlib listens on 127.0.0.1:21 and both clients run.
 *
 * Escale 0.7.13's own FTP fault, shown by the last test with two Escale
 * clients and no hop: its FTP relay finds a placeholder in a folder only
 * once it knows whether the server answers SIZE, which it learns at its first
 * push in a process; before that, pulling a file in a folder (whoever pushed
 * it) takes the content off the relay and crashes (`ValueError` in
 * `updatePlaceholder`); going on, it repairs what it left (its copy and the
 * placeholder go), so the pusher sends the file again, and the next new
 * process does the same. So Escale pulls hop's files in folders here from its
 * second pass in one process, after a push of its own.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { escalePass, startEscale } from "./helpers/escale.ts";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import { runHop } from "./helpers/hop.ts";
import { inNetns, makeNet, type Net } from "./helpers/netns.ts";
import { makeDirs } from "./helpers/temp.ts";
import { assertSameFiles, put } from "./helpers/trees.ts";
import { newLogin } from "./helpers/credentials.ts";
import { tempDir } from "./relay_helpers.ts";

const FERNET_KEY = "m3r-9qY6P4cA2rP8l8V3s1bQmJ3Ykz0cM1h3c2h2Y2E=";
const T = 1_600_000_000;

/** Every file under `dir` whose name has no leading dot (the relay's contents), sorted. */
async function contents(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...await contents(join(dir, e.name), `${prefix}${e.name}/`));
    else if (!e.name.startsWith(".")) out.push(prefix + e.name);
  }
  return out.sort();
}

/** A network namespace with pyftpdlib on its 127.0.0.1:21, serving `root/relay`. */
async function ftpRelay(root: string): Promise<{ net: Net; ns: string; srv: TestFtpServer }> {
  const net = await makeNet(["esc"]);
  try {
    const ns = net.ns("esc");
    await mkdir(join(root, "relay"), { recursive: true });
    const srv = await startPyftpdlib({ root, ...newLogin("relay"), port: 21, netns: ns });
    return { net, ns, srv };
  } catch (e) {
    await net.destroy();
    throw e;
  }
}

/** An escale.conf section on the FTP relay (Escale ignores the port; hop is given it). */
function section(
  srv: TestFtpServer,
  local: string,
  client: string,
  extra: string[],
  port = "",
): string {
  return [
    `[docs]`,
    `local path = ${local}`,
    `host address = ftp://127.0.0.1${port}/relay`,
    `user = ${srv.user}`,
    `password = ${srv.password}`,
    `client name = ${client}`,
    `mode = shared`,
    ...extra,
    "",
  ].join("\n");
}

for (const encryption of ["no", "yes"]) {
  Deno.test(`placeholder scheme over FTP (encryption = ${encryption}): Escale -> hop -> Escale`, async () => {
    const [dir, clean] = await tempDir("hop-escale-placeholder-ftp-");
    let relay: Awaited<ReturnType<typeof ftpRelay>> | undefined;
    try {
      const [root, esc, hop, home] = await makeDirs(dir, ["ftp", "escale", "hop", "home"]);
      relay = await ftpRelay(root);
      const { ns, srv } = relay;
      const crypt = encryption === "yes" ? ["encryption = yes", `passphrase = ${FERNET_KEY}`] : [];
      const escConf = join(dir, "escale.conf");
      const escLoopConf = join(home, "escale.conf");
      const hopConf = join(dir, "hop.conf");
      // Escale's checksum cache goes to `cache dir` (else into the synced folder)
      const escExtra = [...crypt, `cache dir = ${home}`];
      await writeFile(escConf, section(srv, esc, "esc", [...escExtra, "refresh = 900"]));
      await writeFile(escLoopConf, section(srv, esc, "esc", [...escExtra, "refresh = 2"]));
      await writeFile(hopConf, section(srv, hop, "hop", crypt, ":21"));
      const sync = async () => {
        const r = await runHop(["relay", "sync", "-c", hopConf, "--once"], {
          wrap: inNetns(ns, []),
          timeoutMs: 120_000,
        });
        assert.equal(r.code, 0, `hop failed:\n${r.stdout}${r.stderr}`);
        return r.stdout + r.stderr;
      };
      const relayDir = join(root, "relay");

      // Escale pushes; hop pulls every file with its mtime
      await put(esc, "hello.txt", "hello from Escale\n", T);
      await put(esc, "sub/deeper/n.txt", "nested\n", T + 1);
      await put(esc, "dé/ü日本.txt", "utf-8 names\n", T + 2);
      await put(esc, "deep/a/b/big.bin", randomBytes(1 << 20), T + 3);
      const pushed = await escalePass(escConf, { home, netns: ns });
      assert.ok(!pushed.crashed, `Escale crashed:\n${pushed.log}`);
      assert.deepEqual(await contents(relayDir), [
        "deep/a/b/big.bin",
        "dé/ü日本.txt",
        "hello.txt",
        "sub/deeper/n.txt",
      ]);
      const pulled = await sync();
      assert.match(pulled, /pulled sub\/deeper\/n\.txt/);
      await assertSameFiles(esc, hop, "pulled from Escale");
      // consumed as Escale consumes: contents gone, each placeholder names the puller
      assert.deepEqual(await contents(relayDir), []);
      assert.match(
        await readFile(join(relayDir, "sub", "deeper", ".n.txt.placeholder"), "utf8"),
        /^placeholder%1\.0\npusher: esc\ntimestamp: 1600000001\nchecksum: [0-9a-f]{128}\n---pullers---\nhop$/,
      );
      assert.match(await sync(), /pulled 0, pushed 0,/);

      // Escale learns at its first push in a process that the server answers SIZE, and
      // pulls files in folders only then (see the module doc): it runs on, and pushes a
      // file of its own in its first pass, before hop pushes
      await put(esc, "from-esc.txt", "Escale's first push\n", T + 5);
      const loop = await startEscale(escLoopConf, { home, netns: ns });
      try {
        await loop.waitFor(/uploading file 'from-esc\.txt'[\s\S]*reset adaptive timer/);
        await put(hop, "from-hop/ü日本/new.txt", "new from hop\n", T + 10);
        await put(hop, "sub/deeper/n.txt", "nested, changed by hop\n", T + 11);
        await put(hop, "hello.txt", "hello, changed by hop\n", T + 12);
        const out = await sync();
        assert.match(out, /pulled from-esc\.txt/);
        assert.match(out, /pushed from-hop\/ü日本\/new\.txt/);
        assert.match(out, /pushed sub\/deeper\/n\.txt/);
        // Escale pulls all three on its next passes; a pass has ended (the files are
        // written, decrypted) when it logs the reset of its timer after the last of them
        const pulls = ["from-hop/ü日本/new.txt", "sub/deeper/n.txt", "hello.txt"].map(
          (p) => new RegExp(`(downloading|updating local) file '${p}'`),
        );
        const done = (log: string) => {
          const at = pulls.map((re) => log.search(re));
          return !at.includes(-1) && log.indexOf("reset adaptive timer", Math.max(...at)) > 0;
        };
        await loop.waitFor(done);
      } finally {
        const log = await loop.stop();
        assert.doesNotMatch(log, /Traceback|\[CRITICAL\]/, `Escale crashed:\n${log}`);
      }
      await assertSameFiles(hop, esc, "pulled by Escale");
      assert.deepEqual(await contents(relayDir), []);
      assert.match(
        await readFile(join(relayDir, "from-hop", "ü日本", ".new.txt.placeholder"), "utf8"),
        /^placeholder%1\.0\npusher: hop\ntimestamp: 1600000010\n[\s\S]*---pullers---\nesc$/,
      );
      assert.match(await sync(), /pulled 0, pushed 0,/);
    } finally {
      await relay?.srv.stop();
      await relay?.net.destroy();
      await clean();
    }
  });
}

Deno.test("placeholder scheme over FTP: Escale's own fault on files in folders, with no hop client", async () => {
  const [dir, clean] = await tempDir("hop-escale-placeholder-ftp-fault-");
  let relay: Awaited<ReturnType<typeof ftpRelay>> | undefined;
  try {
    const [root, e1, e2, h1, h2] = await makeDirs(dir, ["ftp", "e1", "e2", "home1", "home2"]);
    relay = await ftpRelay(root);
    const { ns, srv } = relay;
    const conf1 = join(h1, "escale.conf");
    const conf2 = join(h2, "escale.conf");
    await writeFile(conf1, section(srv, e1, "e1", ["refresh = 900", `cache dir = ${h1}`]));
    await writeFile(conf2, section(srv, e2, "e2", ["refresh = 900", `cache dir = ${h2}`]));
    const relayDir = join(root, "relay");
    // one Escale client pushes a file in a folder; another, in a new process, pulls it
    await put(e1, "sub/n.txt", "nested\n", T);
    const push = await escalePass(conf1, { home: h1, netns: ns });
    assert.ok(!push.crashed, push.log);
    assert.deepEqual((await readdir(join(relayDir, "sub"))).sort(), [
      ".n.txt.placeholder",
      "n.txt",
    ]);
    for (const round of [1, 2]) {
      const pull = await startEscale(conf2, { home: h2, netns: ns });
      let log: string;
      try {
        // it crashes, goes on, and repairs what it left: its copy and the placeholder go
        log = await pull.waitFor(
          /fixing uncomplete transfer: 'sub\/n\.txt'[\s\S]*(reset adaptive timer|up to date)/,
          120_000,
          true,
        );
      } finally {
        await pull.stop();
      }
      assert.match(
        log,
        /missing meta information for file: 'sub\/n\.txt'[\s\S]*updatePlaceholder[\s\S]*ValueError: neither 'timestamp' nor 'checksum' are defined/,
        `round ${round}`,
      );
      assert.deepEqual(await readdir(join(relayDir, "sub")), [], `round ${round}: relay`);
      assert.deepEqual(await readdir(join(e2, "sub")).catch(() => []), [], `round ${round}: e2`);
      // so its pusher sends it again, and the next new process does the same
      const again = await escalePass(conf1, { home: h1, netns: ns });
      assert.match(again.log, /uploading file 'sub\/n\.txt'/, `round ${round}`);
    }
  } finally {
    await relay?.srv.stop();
    await relay?.net.destroy();
    await clean();
  }
});
