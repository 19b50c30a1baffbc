/**
 * Tests of the sync state file: an unchanged state is not written again,
 * and every kind of change is.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dropBase, loadState, saveState, setBase, stateFile } from "./state.ts";

const RELAY = "file:///relay/";

Deno.test("state: written when changed, left alone when not", async () => {
  const root = await mkdtemp(join(tmpdir(), "hop-state-"));
  try {
    const file = stateFile(root, RELAY, "a");
    const s = await loadState(root, RELAY, "a");
    await saveState(root, s); // a fresh state is written
    assert.deepEqual(JSON.parse(await readFile(file, "utf8")).base, {});
    setBase(s, "x.txt", "aa");
    await saveState(root, s);
    assert.deepEqual(JSON.parse(await readFile(file, "utf8")).base, { "x.txt": "aa" });

    // a marker shows whether the next saves write the file
    await writeFile(file, "marker");
    setBase(s, "x.txt", "aa"); // same value: no change
    await saveState(root, s);
    assert.equal(await readFile(file, "utf8"), "marker");
    dropBase(s, "absent.txt");
    await saveState(root, s);
    assert.equal(await readFile(file, "utf8"), "marker");

    for (
      const change of [
        () => setBase(s, "x.txt", "bb"),
        () => setBase(s, "y.txt", "cc"),
        () => dropBase(s, "x.txt"),
        () => (s.seen[".0.index"] = 1),
        () => (s.heads = { ".0.1.index": { mtimeMs: 1, size: 2, readAt: 3, pullers: [] } }),
      ]
    ) {
      await writeFile(file, "marker");
      change();
      await saveState(root, s);
      assert.deepEqual(JSON.parse(await readFile(file, "utf8")), s);
    }

    // a loaded state is as good as a written one
    const again = await loadState(root, RELAY, "a");
    assert.deepEqual(again.base, { "y.txt": "cc" });
    await writeFile(file, "marker");
    await saveState(root, again);
    assert.equal(await readFile(file, "utf8"), "marker");
  } finally {
    await rm(root, { recursive: true });
  }
});

Deno.test("state: between pages a changed state is written at most every atMostEveryMs", async () => {
  const root = await mkdtemp(join(tmpdir(), "hop-state-"));
  try {
    const file = stateFile(root, RELAY, "a");
    const s = await loadState(root, RELAY, "a");
    setBase(s, "x.txt", "aa");
    await saveState(root, s, { atMostEveryMs: 60_000 }); // never written yet: written now
    assert.deepEqual(JSON.parse(await readFile(file, "utf8")).base, { "x.txt": "aa" });
    setBase(s, "x.txt", "bb");
    await saveState(root, s, { atMostEveryMs: 60_000 }); // written a moment ago: waits
    assert.deepEqual(JSON.parse(await readFile(file, "utf8")).base, { "x.txt": "aa" });
    await saveState(root, s); // the pass's end: written
    assert.deepEqual(JSON.parse(await readFile(file, "utf8")).base, { "x.txt": "bb" });
    setBase(s, "x.txt", "cc");
    await new Promise((r) => setTimeout(r, 30));
    await saveState(root, s, { atMostEveryMs: 10 }); // long enough ago: written
    assert.deepEqual(JSON.parse(await readFile(file, "utf8")).base, { "x.txt": "cc" });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
