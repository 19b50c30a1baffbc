/**
 * Tests of the remembered heads of update indexes: read once per relay
 * version of the index, read again when it changed, forgotten once gone.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PLACEHOLDER, updateIndexName } from "../codec/escale_index.ts";
import { openRelayIO, type RelayIO } from "./io.ts";
import { writeUpdateIndex } from "./pages.ts";
import { tempName, tempTarget } from "./backend/types.ts";
import {
  HEAD_SETTLE_MS,
  pruneUpdateHeads,
  readUpdateHead,
  rollBackPush,
  type UpdateHead,
} from "./pullers.ts";

const entry = (path: string) => ({
  path,
  meta: { placeholder: PLACEHOLDER, pusher: "a", timestamp: 1, checksum: "ff", extra: [] },
});

Deno.test("update heads: read once per version of the index", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-heads-"));
  const io = await openRelayIO(pathToFileURL(dir).href);
  try {
    let reads = 0;
    const counted: RelayIO = {
      ...io,
      readBytes: (name: string) => {
        reads++;
        return io.readBytes(name);
      },
    };
    const name = updateIndexName("0", 100);
    const listed = async () => (await io.stat(name))!;
    await writeUpdateIndex(io, "0", 100, { entries: [entry("x"), entry("y")], pullers: [] });
    const heads: Record<string, UpdateHead> = {};
    // read within the second of its name + HEAD_SETTLE_MS: the name may still be reused
    const early = (100 + 1) * 1000 + HEAD_SETTLE_MS - 1;
    await readUpdateHead(counted, "0", 100, await listed(), heads, early);
    await readUpdateHead(counted, "0", 100, await listed(), heads, early);
    assert.equal(reads, 2, "an early read is not trusted");
    const later = early + 1;
    assert.deepEqual(
      await readUpdateHead(counted, "0", 100, await listed(), heads, later),
      {
        mtimeMs: (await listed()).mtimeMs,
        size: (await listed()).size,
        readAt: later,
        pusher: "a",
        pullers: [],
      },
    );
    assert.equal(reads, 3);
    await readUpdateHead(counted, "0", 100, await listed(), heads, later + 5000);
    assert.equal(reads, 3, "same mtime and size, read late enough: not read again");

    await writeUpdateIndex(io, "0", 100, { entries: [entry("x"), entry("y")], pullers: ["b"] });
    const head = await readUpdateHead(counted, "0", 100, await listed(), heads, later);
    assert.equal(reads, 4, "a puller was added: read again");
    assert.deepEqual(head.pullers, ["b"]);

    pruneUpdateHeads(heads, await io.list());
    assert.deepEqual(Object.keys(heads), [name]);
    await io.delete(name);
    pruneUpdateHeads(heads, await io.list());
    assert.deepEqual(heads, {});
  } finally {
    await io.close();
    await rm(dir, { recursive: true });
  }
});

Deno.test("rollBackPush removes the temp files of the page's cut writes, and only those", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-rollback-"));
  const io = await openRelayIO(pathToFileURL(dir).href);
  try {
    const mine = tempName(".0.100.data");
    const other = tempName(".1.100.data");
    await writeFile(join(dir, mine), "cut");
    await writeFile(join(dir, other), "another page's");
    await writeFile(join(dir, ".hop-tmp-legacy0123"), "an old-style temp file");
    const done = await rollBackPush(io, "0");
    assert.deepEqual(done, [`removed the temporary file ${mine} of a cut write`]);
    assert.deepEqual((await readdir(dir)).sort(), [".hop-tmp-legacy0123", other].sort());
    assert.equal(tempTarget(other), ".1.100.data");
    assert.equal(tempTarget(".hop-tmp-legacy0123"), null);
  } finally {
    await io.close();
    await rm(dir, { recursive: true, force: true });
  }
});
