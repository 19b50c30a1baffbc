/**
 * The rescan shortcut: once a client's base agrees with a page's `.P.index`,
 * later passes skip reading the index while nothing changed locally, and
 * still push every local change and deletion, and still pull others' changes.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { openRelayIO, type RelayIO } from "../src/relay/io.ts";
import { closeSync, openSync, type PassResult, syncPass } from "../src/relay/sync.ts";
import { folderCfg, recorder, snapshot, tempDir } from "./relay_helpers.ts";

globalThis.addEventListener("unload", () => closePool());

/** One pass of `client` on `local`, counting reads of persistent indexes. */
async function pass(
  local: string,
  relay: string,
  client: string,
): Promise<PassResult & { indexReads: number; agreed: number }> {
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
    return { ...r, indexReads, agreed: Object.keys(ctx.state.agreed ?? {}).length };
  } finally {
    await closeSync(ctx);
  }
}

Deno.test("rescan: unchanged pages are not read again; changes still go both ways", async () => {
  const [dir, clean] = await tempDir("hop-rescan-");
  try {
    const relay = join(dir, "relay");
    const a = join(dir, "a");
    const b = join(dir, "b");
    for (const d of [relay, a, b]) await mkdir(d);
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
