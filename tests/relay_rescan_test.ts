/**
 * The rescan shortcut: once a client's base agrees with a page's `.P.index`,
 * later passes skip reading the index while nothing changed locally, and
 * still push every local change and deletion, and still pull others' changes.
 */
import { makeDirs } from "./helpers/temp.ts";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { closePool } from "../src/archive/bzip2.ts";
import { openRelayIO, type RelayIO } from "../src/relay/io.ts";
import { closeSync, openSync, type PassResult, syncPass } from "../src/relay/sync.ts";
import { ROOT } from "./helpers/hop.ts";
import { folderCfg, recorder, snapshot, tempDir } from "./relay_helpers.ts";

globalThis.addEventListener("unload", () => closePool());

/** One pass of `client` on `local`, counting reads of persistent indexes. */
async function pass(
  local: string,
  relay: string,
  client: string,
): Promise<PassResult & { indexReads: number; agreed: number; filesRead: number }> {
  const io = await openRelayIO(relay);
  let indexReads = 0;
  const counted: RelayIO = {
    ...io,
    readBytes: (name: string) => {
      if (/^\.[^.]*\.index$/.test(name)) indexReads++;
      return io.readBytes(name);
    },
  };
  // a clock ahead of the relay's: every index read counts as settled
  const ctx = await openSync(folderCfg(local, relay, client), recorder(), {
    io: counted,
    now: () => Date.now() + 60_000,
  });
  try {
    const r = await syncPass(ctx, { first: true });
    return {
      ...r,
      indexReads,
      agreed: Object.keys(ctx.state.agreed ?? {}).length,
      filesRead: ctx.cache.filesRead,
    };
  } finally {
    await closeSync(ctx);
  }
}

Deno.test("rescan: unchanged pages are not read again; changes still go both ways", async () => {
  const [dir, clean] = await tempDir("hop-rescan-");
  try {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    await writeFile(join(a, "x.txt"), "x1");
    await writeFile(join(a, "y.txt"), "y1");
    assert.equal((await pass(a, relay, "a")).pushed, 2);
    assert.equal((await pass(b, relay, "b")).pulled, 2); // consumed by all: the update goes

    const first = await pass(a, relay, "a");
    assert.equal(first.pushed, 0);
    assert.equal(first.agreed, 1, "base found to agree with the index");
    const again = await pass(a, relay, "a");
    assert.equal(again.pushed, 0);
    assert.equal(again.indexReads, 0, "nothing changed: the index is not read");

    // a local change is pushed and reaches b
    await writeFile(join(a, "x.txt"), "x2, longer");
    assert.equal((await pass(a, relay, "a")).pushed, 1);
    assert.equal((await pass(b, relay, "b")).pulled, 1);
    assert.deepEqual(await snapshot(b), await snapshot(a));

    // a change on b reaches a, and a does not push anything back
    await pass(a, relay, "a");
    await writeFile(join(b, "y.txt"), "y2 from b");
    assert.equal((await pass(b, relay, "b")).pushed, 1);
    const pulled = await pass(a, relay, "a");
    assert.equal(pulled.pulled, 1);
    assert.equal(pulled.pushed, 0);
    assert.deepEqual(await snapshot(a), await snapshot(b));

    // settle, then a local deletion is pushed and applied on b
    await pass(a, relay, "a");
    assert.equal((await pass(a, relay, "a")).indexReads, 0);
    await rm(join(a, "x.txt"));
    assert.equal((await pass(a, relay, "a")).deletionsPushed, 1);
    assert.equal((await pass(b, relay, "b")).deletedLocally, 1);
    assert.deepEqual(await snapshot(b), { ...await snapshot(a) });
    assert.deepEqual(Object.keys(await snapshot(b)), ["y.txt"]);
  } finally {
    await clean();
  }
});

/** The sources of hop run by the runtime this test is not running on (Bun from Deno, or Deno from Bun). */
function otherRuntime(): string[] {
  const bin = join(ROOT, "tools", "node_modules", ".bin");
  return process.versions.bun
    ? [join(bin, "deno"), "run", "-A", "--quiet", "--no-check", join(ROOT, "cli.ts")]
    : [join(bin, "bun"), join(ROOT, "cli.ts")];
}

Deno.test("rescan: what one runtime remembered is used by the other (no file or index read again)", async () => {
  const [dir, clean] = await tempDir("hop-rescan-rt-");
  try {
    const [relay, a] = await makeDirs(dir, ["relay", "a"]);
    for (let i = 0; i < 20; i++) await writeFile(join(a, `f${i}.txt`), `file ${i}\n`);
    // times below the millisecond (Deno reports them truncated, Bun with a fraction), set by
    // touch: Deno's utimes itself keeps whole milliseconds
    const touch = (t: string, files: string[]) => {
      const r = spawnSync("touch", ["-m", "-d", t, ...files], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    };
    touch("@1704110400.123456789", (await readdir(a)).map((f) => join(a, f)));
    const [cmd, ...pre] = otherRuntime();
    const other = () => {
      const r = spawnSync(cmd, [
        ...pre,
        "--quiet",
        "relay",
        "sync",
        a,
        relay,
        "--once",
        "--client-name",
        "a",
      ], {
        encoding: "utf8",
      });
      assert.equal(r.status, 0, `${cmd} relay sync failed: ${r.stderr}`);
    };
    other(); // pushes all 20 and remembers their checksums
    // the relay's files as if written an hour ago: the next pass may trust what it reads
    touch(
      `@${Math.floor(Date.now() / 1000) - 3600}.456789123`,
      (await readdir(relay)).map((f) => join(relay, f)),
    );
    other(); // finds its files in the index and remembers that it agrees with it
    const here = await pass(a, relay, "a");
    assert.equal(here.pushed, 0);
    assert.equal(here.filesRead, 0, "no file read again for its checksum");
    assert.equal(here.indexReads, 0, "the index is not read again");
  } finally {
    await clean();
  }
});
