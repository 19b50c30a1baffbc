/**
 * Relay compression (`compression = bzip2 | zstd | none`): round trips on a folder relay
 * with each, the relay's record (`.hop-format`) written by its first client, clients
 * configured otherwise refused before anything is written, and relays from before the
 * option (bzip2, no record: Escale's, older hop's) still synced with bzip2.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { archiveFormat, type Compression, FORMAT_FILE } from "../src/codec/compression.ts";
import type { FolderConfig } from "../src/relay/config.ts";
import { openSync } from "../src/relay/sync.ts";
import { runHop } from "./helpers/hop.ts";
import { makeDirs } from "./helpers/temp.ts";
import { folderState, put } from "./helpers/trees.ts";
import {
  copyFixtureRelay,
  folderCfg,
  recorder,
  snapshot,
  syncOnce,
  tempDir,
} from "./relay_helpers.ts";

/** A small tree: text, an empty file, bytes that do not compress, a folder two deep. */
async function makeTree(root: string): Promise<void> {
  await put(root, "notes.txt", "a line of notes\n".repeat(5000), 1_700_000_000);
  await put(root, "empty.txt", "");
  await put(
    root,
    "sub/deep/noise.bin",
    new Uint8Array(200_000).map((_, i) => (i * 2654435761) >>> 24),
  );
}

/** The archive of the one update on `relay`, if any: its name and codec. */
async function updateArchive(relay: string): Promise<{ name: string; format?: Compression }> {
  const name = (await readdir(relay)).find((n) => /^\.0\.\d+\.data$/.test(n));
  assert.ok(name, "no update on the relay");
  return { name, format: archiveFormat(await readFile(join(relay, name))) };
}

async function record(relay: string): Promise<unknown> {
  const text = await readFile(join(relay, FORMAT_FILE), "utf8").catch(() => undefined);
  return text === undefined ? undefined : JSON.parse(text);
}

for (const c of ["bzip2", "zstd", "none"] as const) {
  Deno.test(`compression = ${c}: a round trip both ways on a folder relay`, async () => {
    const [dir, clean] = await tempDir();
    try {
      const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
      const extra: Partial<FolderConfig> = c === "bzip2" ? {} : { compression: c };
      const A = folderCfg(a, relay, "alice", extra);
      const B = folderCfg(b, relay, "bob", extra);
      await syncOnce(B, true); // bob registers first: the update waits for him
      assert.deepEqual(await record(relay), c === "bzip2" ? undefined : { v: 1, compression: c });
      await makeTree(a);
      const pushed = await syncOnce(A, true);
      assert.deepEqual(pushed.warns, []);
      assert.equal(pushed.pushed, 3);
      assert.equal((await updateArchive(relay)).format, c);
      const pulled = await syncOnce(B, false);
      assert.deepEqual(pulled.warns, []);
      assert.equal(pulled.pulled, 3);
      assert.deepEqual(await snapshot(b), await snapshot(a));
      // and back
      await put(b, "sub/reply.txt", "bob's answer\n");
      assert.equal((await syncOnce(B, false)).pushed, 1);
      assert.equal((await updateArchive(relay)).format, c);
      assert.equal((await syncOnce(A, false)).pulled, 1);
      assert.deepEqual(await snapshot(a), await snapshot(b));
    } finally {
      await clean();
    }
  });
}

Deno.test("compression = zstd with encryption = hop: compressed, then sealed", async () => {
  const [dir, clean] = await tempDir();
  try {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const extra = { compression: "zstd" as const, passphrase: "open sesame" };
    await syncOnce(folderCfg(b, relay, "bob", extra), true);
    await makeTree(a);
    assert.equal((await syncOnce(folderCfg(a, relay, "alice", extra), true)).pushed, 3);
    const { name, format } = await updateArchive(relay);
    assert.equal(format, undefined, "the archive is sealed");
    assert.ok(!(await readFile(join(relay, name))).includes("a line of notes"));
    assert.deepEqual(await record(relay), { v: 1, compression: "zstd" });
    assert.equal((await syncOnce(folderCfg(b, relay, "bob", extra), false)).pulled, 3);
    assert.deepEqual(await snapshot(b), await snapshot(a));
  } finally {
    await clean();
  }
});

Deno.test("compression: a client configured otherwise than the relay is refused before writing", async () => {
  const [dir, clean] = await tempDir();
  try {
    const [relay, a, c] = await makeDirs(dir, ["relay", "a", "c"]);
    await makeTree(a);
    await syncOnce(folderCfg(a, relay, "alice", { compression: "zstd" }), true);
    await put(c, "mine.txt", "carol's own file\n");
    const relayBefore = await folderState(relay);
    const localBefore = await folderState(c);
    for (const extra of [{}, { compression: "none" as const }]) {
      const cfg = folderCfg(c, relay, "carol", extra);
      await assert.rejects(() => openSync(cfg, recorder()), (e: Error & { hint?: string }) => {
        assert.match(e.message, /records compression = zstd \(\.hop-format\), but command line/);
        assert.match(e.hint ?? "", /^Nothing was written\. .*--compression zstd/);
        return true;
      });
      assert.deepEqual(await folderState(relay), relayBefore);
      assert.deepEqual(await folderState(c), localBefore);
    }
    // a look or a repair (audit, cleanup) writes no archive: any configuration opens it
    const look = await openSync(folderCfg(c, relay, "carol"), recorder(), { keepStaging: true });
    await look.io.close();
    // a record from a newer hop: this build says so, and touches nothing
    await writeFile(join(relay, FORMAT_FILE), '{"v":2,"compression":"zstd","dict":"x"}');
    const newer = await folderState(relay);
    for (const keepStaging of [false, true]) {
      const cfg = folderCfg(c, relay, "carol", { compression: "zstd" });
      await assert.rejects(
        () => openSync(cfg, recorder(), { keepStaging }),
        (e: Error & { hint?: string }) => {
          assert.match(e.message, /record version 2: this hop build cannot read/);
          assert.match(e.hint ?? "", /update hop/);
          return true;
        },
      );
      assert.deepEqual(await folderState(relay), newer);
    }
  } finally {
    await clean();
  }
});

Deno.test("compression: a relay from before the option (bzip2, no record) stays bzip2", async () => {
  const [dir, clean] = await tempDir();
  try {
    const relay = join(dir, "relay");
    const [bob, dave] = await makeDirs(dir, ["bob", "dave"]);
    await copyFixtureRelay("case1", relay); // written by Escale 0.7
    const before = await folderState(relay);
    // zstd is refused: the relay's clients read bzip2
    await assert.rejects(
      () => openSync(folderCfg(dave, relay, "dave", { compression: "zstd" }), recorder()),
      (e: Error & { hint?: string }) => {
        assert.match(e.message, /is already used with bzip2 \(it holds \.[^ ]+ and records no/);
        assert.match(e.hint ?? "", /^Nothing was written\. Escale clients/);
        return true;
      },
    );
    assert.deepEqual(await folderState(relay), before);
    // a client without `compression` syncs it as before, in bzip2, and records nothing
    const pulled = await syncOnce(folderCfg(bob, relay, "bob"), true);
    assert.deepEqual(pulled.warns, []);
    assert.ok(pulled.pulled > 0);
    await put(bob, "from-bob.txt", "new\n");
    assert.equal((await syncOnce(folderCfg(bob, relay, "bob"), false)).pushed, 1);
    assert.equal((await updateArchive(relay)).format, "bzip2");
    assert.equal(await record(relay), undefined);
  } finally {
    await clean();
  }
});

Deno.test("compression: hop relay sync --compression (the binary), refused when it differs", async () => {
  const [dir, clean] = await tempDir();
  try {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    await makeTree(a);
    const up = await runHop(
      ["relay", "sync", a, relay, "--once", "--client-name", "alice", "--compression", "zstd"],
    );
    assert.equal(up.code, 0, up.stderr);
    assert.equal((await updateArchive(relay)).format, "zstd");
    const before = await folderState(relay);
    const refused = await runHop(["relay", "sync", b, relay, "--once", "--client-name", "bob"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /records compression = zstd/);
    assert.match(refused.stderr, /--compression zstd/);
    assert.deepEqual(await folderState(relay), before);
    assert.deepEqual(await snapshot(b), {});
    // a configuration file's section says it the same way
    await writeFile(
      join(dir, "hop.conf"),
      `[b]\nlocal path = ${b}\nrelay path = ${relay}\nindex = 1\nclient name = bob\n` +
        "compression = zstd\n",
    );
    const down = await runHop(["relay", "sync", "-c", join(dir, "hop.conf"), "--once"]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await snapshot(b), await snapshot(a));
    const bad = await runHop(["relay", "sync", b, relay, "--once", "--compression", "gzip"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /gzip/);
  } finally {
    await clean();
  }
});

globalThis.addEventListener("unload", () => closePool());
