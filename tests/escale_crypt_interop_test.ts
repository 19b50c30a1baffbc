/**
 * Escale's encryption both ways with the real Escale 0.7.13 client: on a
 * folder relay in the index scheme, Escale pushes an encrypted update that
 * `hop relay sync` pulls byte for byte with its mtimes, then hop pushes one
 * that Escale pulls; for `encryption = yes` (Fernet) and `blowfish`. hop,
 * configured with the wrong encryption, refuses the relay and writes nothing.
 */
import { makeDirs } from "./helpers/temp.ts";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runEscale } from "./helpers/escale.ts";
import { runHop } from "./helpers/hop.ts";
import { snapshot, tempDir } from "./relay_helpers.ts";

const FERNET_KEY = "m3r-9qY6P4cA2rP8l8V3s1bQmJ3Ykz0cM1h3c2h2Y2E=";

async function mtimes(root: string, paths: string[]): Promise<number[]> {
  return await Promise.all(
    paths.map(async (p) => Math.floor((await stat(join(root, p))).mtimeMs / 1000)),
  );
}

for (
  const [encryption, passphrase] of [["yes", FERNET_KEY], ["blowfish", "a blowfish passphrase"]]
) {
  Deno.test(`encryption = ${encryption}: Escale -> hop -> Escale through an encrypted relay`, async () => {
    const [dir, clean] = await tempDir("hop-escale-crypt-");
    try {
      const [relay, esc, hop] = await makeDirs(dir, ["relay", "escale", "hop"]);
      await mkdir(join(esc, "sub"));
      await writeFile(join(esc, "hello.txt"), "hello from escale\n");
      const blob = new Uint8Array(300_000).map((_, i) => (i * 131) % 251);
      await writeFile(join(esc, "sub", "blob.bin"), blob);
      await utimes(join(esc, "hello.txt"), 1_600_000_000, 1_600_000_000);
      const conf = (local: string, client: string, mode: string) =>
        [
          `[enc]`,
          `local path = ${local}`,
          `relay path = ${relay}`,
          `protocol = file`,
          `index = 1`,
          `client name = ${client}`,
          `mode = ${mode}`,
          `refresh = 1`,
          `encryption = ${encryption}`,
          `passphrase = ${passphrase}`,
          "",
        ].join("\n");
      await writeFile(join(dir, "escale-up.conf"), conf(esc, "escale", "upload"));
      await writeFile(join(dir, "hop.conf"), conf(hop, "hop", "shared"));

      // Escale pushes an encrypted update
      const up = await runEscale(join(dir, "escale-up.conf"), 8, { home: dir });
      const names = await readdir(relay);
      const data = names.find((n) => /^\.0\.\d+\.data$/.test(n));
      assert.ok(data, `Escale pushed nothing: ${names.join(" ")}\n${up.output}`);

      // hop with the wrong encryption refuses the relay and writes nothing
      await writeFile(
        join(dir, "plain.conf"),
        conf(hop, "hop", "shared").replace(/^encryption.*$/m, "encryption = no"),
      );
      const before = (await readdir(relay)).sort();
      const refused = await runHop(["relay", "sync", "-c", join(dir, "plain.conf"), "--once"]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /is encrypted with Escale's|encrypted in a way/);
      assert.deepEqual((await readdir(relay)).sort(), before);

      // hop pulls it: same bytes, same mtimes
      const pulled = await runHop(["relay", "sync", "-c", join(dir, "hop.conf"), "--once"]);
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.deepEqual(await snapshot(hop), await snapshot(esc));
      const paths = ["hello.txt", "sub/blob.bin"];
      assert.deepEqual(await mtimes(hop, paths), await mtimes(esc, paths));

      // hop pushes a new file, encrypted; Escale pulls it
      await writeFile(join(hop, "from-hop.txt"), "pushed by hop\n");
      await utimes(join(hop, "from-hop.txt"), 1_700_000_000, 1_700_000_000);
      const pushed = await runHop(["relay", "sync", "-c", join(dir, "hop.conf"), "--once"]);
      assert.equal(pushed.code, 0, pushed.stderr);
      const mine = (await readdir(relay)).find((n) => /^\.0\.\d+\.data$/.test(n));
      assert.ok(mine, "hop pushed no update");
      const head = new Uint8Array(await readFile(join(relay, mine)));
      assert.notEqual(
        new TextDecoder("latin1").decode(head.subarray(0, 3)),
        "BZh",
        "the archive is not encrypted",
      );
      await writeFile(join(dir, "escale-down.conf"), conf(esc, "escale", "download"));
      const down = await runEscale(join(dir, "escale-down.conf"), 8, { home: dir });
      assert.deepEqual(await snapshot(esc), await snapshot(hop), down.output);
      assert.deepEqual(await mtimes(esc, ["from-hop.txt"]), [1_700_000_000]);
      assert.ok(
        !(await readdir(relay)).some((n) => n.startsWith(".hop-crypt")),
        "hop's key file on the relay",
      );
    } finally {
      await clean();
    }
  });
}
