/**
 * Escale's default scheme (no `index` line: one placeholder per file) both
 * ways with the real Escale 0.7.13 client, on a folder relay: Escale pushes,
 * `hop relay sync` pulls byte for byte with the mtimes (UTF-8 and spaced
 * names, nested folders, a 3 MB file); hop pushes new and changed files that
 * Escale pulls likewise; an Escale edit of a file hop has replaces it, and a
 * file both changed keeps both versions. The relay holds what Escale writes
 * (content removed once pulled, the placeholder naming the puller). Then
 * the same both ways with Escale's encryption (`encryption = yes`, Fernet).
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { escalePass } from "./helpers/escale.ts";
import { runHop } from "./helpers/hop.ts";
import { makeDirs } from "./helpers/temp.ts";
import { assertSameFiles, put, snapshot } from "./helpers/trees.ts";
import { tempDir } from "./relay_helpers.ts";

const FERNET_KEY = "m3r-9qY6P4cA2rP8l8V3s1bQmJ3Ykz0cM1h3c2h2Y2E=";
const T = 1_600_000_000;

for (const encryption of ["no", "yes"]) {
  Deno.test(`placeholder scheme (encryption = ${encryption}): Escale -> hop -> Escale`, async () => {
    const [dir, clean] = await tempDir("hop-escale-placeholder-");
    try {
      const [relay, esc, hop, home] = await makeDirs(dir, ["relay", "escale", "hop", "home"]);
      const conf = (local: string, client: string, mode: string) =>
        [
          `[docs]`,
          `local path = ${local}`,
          `relay path = ${relay}`,
          `protocol = file`,
          `client name = ${client}`,
          `mode = ${mode}`,
          `refresh = 900`,
          ...(encryption === "yes" ? ["encryption = yes", `passphrase = ${FERNET_KEY}`] : []),
          "",
        ].join("\n");
      const escConf = join(dir, "escale.conf");
      const hopConf = join(dir, "hop.conf");
      // Escale's checksum cache goes to `cache dir` (else into the synced folder)
      await writeFile(escConf, conf(esc, "esc", "shared") + `cache dir = ${home}\n`);
      await writeFile(hopConf, conf(hop, "hop", "shared"));
      const escale = async () => {
        const r = await escalePass(escConf, { home });
        assert.ok(!r.crashed, `Escale crashed:\n${r.log}`);
        return r.log;
      };
      const sync = async () => {
        const r = await runHop(["relay", "sync", "-c", hopConf, "--once"], {
          timeoutMs: 120_000,
        });
        assert.equal(r.code, 0, `hop failed:\n${r.stdout}${r.stderr}`);
        return r.stdout + r.stderr;
      };

      // Escale pushes; hop pulls every file with its mtime
      await put(esc, "hello.txt", "hello from Escale\n", T);
      await put(esc, "sub/with space.txt", "spaced\n", T + 1);
      await put(esc, "dé/ü 日本.txt", "utf-8 names\n", T + 2);
      await put(esc, "deep/a/b/big.bin", randomBytes(3 << 20), T + 3);
      await escale();
      assert.deepEqual(
        (await readdir(relay)).sort(),
        [".hello.txt.placeholder", "deep", "dé", "hello.txt", "sub"],
        "Escale's own layout",
      );
      const pulled = await sync();
      await assertSameFiles(esc, hop, "pulled from Escale");
      assert.match(pulled, /pulled hello\.txt/);
      // consumed as Escale consumes: content gone, the placeholder names the puller
      assert.deepEqual((await readdir(relay)).filter((n) => !n.startsWith(".")).sort(), [
        "deep",
        "dé",
        "sub",
      ]);
      const ph = await readFile(join(relay, ".hello.txt.placeholder"), "utf8");
      assert.match(
        ph,
        /^placeholder%1\.0\npusher: esc\ntimestamp: 1600000000\nchecksum: [0-9a-f]{128}\n---pullers---\nhop$/,
      );
      // a second pass changes nothing
      assert.match(await sync(), /pulled 0, pushed 0,/);

      // hop pushes a new file and a change; Escale pulls both with their mtimes
      await put(hop, "from-hop/new.txt", "new from hop\n", T + 10);
      await put(hop, "hello.txt", "hello, changed by hop\n", T + 11);
      const pushed = await sync();
      assert.match(pushed, /pushed from-hop\/new\.txt/);
      assert.match(pushed, /pushed hello\.txt/);
      const ours = await readFile(join(relay, "from-hop", ".new.txt.placeholder"), "utf8");
      assert.match(ours, /^placeholder%1\.0\npusher: hop\ntimestamp: 1600000010\n/);
      await escale();
      await assertSameFiles(hop, esc, "pulled by Escale");
      assert.ok(!(await readdir(relay)).includes("hello.txt"), "Escale consumed hop's push");

      // Escale edits a file hop has, unchanged here: hop takes the new version
      await put(esc, "sub/with space.txt", "spaced, edited by Escale\n", T + 20);
      await escale();
      await sync();
      await assertSameFiles(esc, hop, "Escale's edit");

      // both change one file: Escale's reaches the relay first and keeps the name; hop's
      // becomes its conflict copy, pushed and pulled by Escale: everyone has both
      await put(esc, "hello.txt", "hello, Escale's edit\n", T + 30);
      await put(hop, "hello.txt", "hello, hop's concurrent edit\n", T + 31);
      await escale();
      const both = await sync();
      assert.match(both, /conflict on hello\.txt/);
      await escale();
      await sync();
      const tree = await snapshot(hop);
      const copy = Object.keys(tree).find((p) => p.startsWith("hello.conflict-hop-"));
      assert.ok(copy, `no conflict copy in ${Object.keys(tree).join(" ")}`);
      assert.equal(await readFile(join(hop, "hello.txt"), "utf8"), "hello, Escale's edit\n");
      assert.equal(await readFile(join(hop, copy), "utf8"), "hello, hop's concurrent edit\n");
      await assertSameFiles(hop, esc, "both versions everywhere");
    } finally {
      await clean();
    }
  });
}

Deno.test("placeholder scheme: a stale lock is taken over, a lock nothing needs is named, a pre-0.5 placeholder is read, a malformed one is a clear error", async () => {
  const [dir, clean] = await tempDir("hop-placeholder-faults-");
  try {
    const [relay, hop] = await makeDirs(dir, ["relay", "hop"]);
    const sum = (s: string) => createHash("sha512").update(s).digest("hex");
    const placeholder = (s: string, t: number) =>
      `placeholder%1.0\npusher: esc\ntimestamp: ${t}\nchecksum: ${sum(s)}\n---pullers---`;
    await put(relay, "a.txt", "a from esc\n");
    await put(relay, ".a.txt.placeholder", placeholder("a from esc\n", T));
    // left long ago by an Escale client that crashed (its locks never expire)
    await put(relay, ".a.txt.lock", "lock%1.0\nowner: esc\nmode: w", T);
    // a puller stopped in a pull that took the content: its lock stays, no file of hop's needs it
    await put(relay, "sub/.c.txt.placeholder", placeholder("c from esc\n", T));
    await put(relay, "sub/.c.txt.lock", "lock%1.0\nowner: esc\nmode: r");
    // pushed by an Escale older than 0.5 (a bare time), pulled by bob
    await put(relay, "b.txt", "b from esc\n");
    await put(relay, ".b.txt.placeholder", "200102_030405\nbob");
    await put(relay, "e.txt", "e from esc\n");
    await put(relay, ".e.txt.placeholder", "placeholder%1.0\npusher esc\n---pullers---");
    const hopConf = join(dir, "hop.conf");
    await writeFile(
      hopConf,
      `[docs]\nlocal path = ${hop}\nrelay path = ${relay}\nprotocol = file\nclient name = hop\n`,
    );
    const r = await runHop(["relay", "sync", "-c", hopConf, "--once"], { timeoutMs: 60_000 });
    const said = r.stdout + r.stderr;
    assert.equal(r.code, 1, said);
    assert.match(
      said,
      /a\.txt: took over the lock of esc \(w, for \d+ s\), older than lock timeout/,
    );
    assert.match(said, /pulling e\.txt: .*\.e\.txt\.placeholder:2: malformed Escale placeholder/);
    assert.match(said, /sub\/c\.txt is locked by esc \(r, for \d+ s\)\n/);
    assert.deepEqual(await snapshot(hop), {
      "a.txt": sum("a from esc\n"),
      "b.txt": sum("b from esc\n"),
    });
    assert.equal(Math.floor((await stat(join(hop, "a.txt"))).mtimeMs / 1000), T);
    assert.equal(Math.floor((await stat(join(hop, "b.txt"))).mtimeMs / 1000), 1577934245);
    assert.equal(
      await readFile(join(relay, ".b.txt.placeholder"), "utf8"),
      "200102_030405\nbob\nhop",
    );
    assert.deepEqual((await readdir(relay)).sort(), [
      ".a.txt.placeholder",
      ".b.txt.placeholder",
      ".e.txt.placeholder",
      "e.txt",
      "sub",
    ]);
  } finally {
    await clean();
  }
});

Deno.test("placeholder scheme with Escale's `checksum = no`: both ways, versions known by mtime", async () => {
  const [dir, clean] = await tempDir("hop-escale-placeholder-nosum-");
  try {
    const [relay, esc, hop, home] = await makeDirs(dir, ["relay", "escale", "hop", "home"]);
    const conf = (local: string, client: string, extra: string[]) =>
      [
        `[docs]`,
        `local path = ${local}`,
        `relay path = ${relay}`,
        `protocol = file`,
        `client name = ${client}`,
        `mode = shared`,
        ...extra,
        "",
      ].join("\n");
    const escConf = join(dir, "escale.conf");
    const hopConf = join(dir, "hop.conf");
    await writeFile(escConf, conf(esc, "esc", ["checksum = no", "refresh = 900"]));
    await writeFile(hopConf, conf(hop, "hop", []));
    const escale = async () => {
      const r = await escalePass(escConf, { home });
      assert.ok(!r.crashed, `Escale crashed:\n${r.log}`);
    };
    const sync = async () => {
      const r = await runHop(["relay", "sync", "-c", hopConf, "--once"], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, `hop failed:\n${r.stdout}${r.stderr}`);
      return r.stdout + r.stderr;
    };

    // Escale pushes placeholders without checksum; hop pulls by content, with the mtimes
    await put(esc, "a.txt", "a from Escale\n", T);
    await put(esc, "sub/b.txt", "b from Escale\n", T + 1);
    await escale();
    const ph = join(relay, ".a.txt.placeholder");
    assert.equal(
      await readFile(ph, "utf8"),
      "placeholder%1.0\npusher: esc\ntimestamp: 1600000000\n---pullers---",
    );
    assert.match(await sync(), /pulled sub\/b\.txt/);
    await assertSameFiles(esc, hop, "pulled from Escale");
    // the puller is added to the placeholder in its own form
    assert.equal(
      await readFile(ph, "utf8"),
      "placeholder%1.0\npusher: esc\ntimestamp: 1600000000\n---pullers---\nhop",
    );
    // known by its mtime: neither pushed again nor asked for again
    const again = await sync();
    assert.match(again, /pulled 0, pushed 0,/);
    assert.doesNotMatch(again, /asked for it again|conflict on/);
    assert.match(await readFile(ph, "utf8"), /^placeholder%1\.0\npusher: esc\n.*\nhop$/s);

    // hop changes a file: pushed with its checksum, which Escale ignores; it pulls by mtime
    await put(hop, "a.txt", "a, changed by hop\n", T + 10);
    assert.match(await sync(), /pushed a\.txt/);
    await escale();
    await assertSameFiles(hop, esc, "pulled by Escale");

    // Escale changes one: hop takes it
    await put(esc, "sub/b.txt", "b, changed by Escale\n", T + 20);
    await escale();
    assert.match(await sync(), /pulled sub\/b\.txt/);
    await assertSameFiles(esc, hop, "Escale's change");
    const quiet = await sync();
    assert.match(quiet, /pulled 0, pushed 0,/);
    assert.doesNotMatch(quiet, /asked for it again|conflict on/);
    assert.ok((await readdir(join(relay, "sub"))).includes(".b.txt.placeholder"));
    await escale();
    await assertSameFiles(esc, hop, "in sync");
  } finally {
    await clean();
  }
});
