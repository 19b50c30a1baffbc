/**
 * Unit tests of the quarantine's pure parts: its file names (round trip, and
 * that they are neither Escale's nor hop's page files), its record, the
 * grouping of a listing, and which faults count as the update's content.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseRelayName } from "../codec/escale_index.ts";
import { CodecError } from "../codec/errors.ts";
import { HopError } from "../errors.ts";
import { StorageError } from "../storage/types.ts";
import { UnsafeEntryError } from "../archive/extract.ts";
import { viewRelay } from "./pages.ts";
import {
  BadUpdateError,
  decodeRecord,
  describeQuarantined,
  encodeRecord,
  isContentFault,
  listQuarantined,
  parseQuarantineName,
  quarantineName,
  type QuarantineRecord,
} from "./quarantine.ts";

Deno.test("quarantine names round-trip and are no page, update or lock name", () => {
  for (const page of ["0", "a", "my-docs", "x_y"]) {
    for (const part of ["index", "data", "record"] as const) {
      const name = quarantineName(page, 1700000000, 2, part);
      assert.deepEqual(parseQuarantineName(name), { page, time: 1700000000, n: 2, part });
      assert.equal(parseRelayName(name), null);
      // Escale's patterns: a page index is `.P.index` with no '.' in P; a lock ends `.lock`
      assert.ok(!name.endsWith(".index") && !name.endsWith(".data") && !name.endsWith(".lock"));
      assert.ok(name.startsWith("."));
    }
  }
  assert.equal(parseQuarantineName(".0.17.index"), null);
  assert.equal(parseQuarantineName(".hop-quarantine-0-17-1-other"), null);
  assert.equal(parseQuarantineName(".hop-quarantine-a.b-17-1-data"), null);
  // hop's own view of a relay sees no update in them
  const view = viewRelay([{ name: quarantineName("0", 5, 1, "index"), size: 1, mtimeMs: 0 }]);
  assert.equal(view.pages.size, 0);
});

Deno.test("a quarantine record round-trips; a damaged one is undefined", () => {
  const r: QuarantineRecord = {
    v: 1,
    page: "0",
    time: 17,
    pusher: "eve",
    reason: 'it names "../x"',
    by: "bob",
    at: 20,
    size: 300,
  };
  assert.deepEqual(decodeRecord(encodeRecord(r)), r);
  const { pusher: _, ...noPusher } = r;
  assert.deepEqual(decodeRecord(encodeRecord(noPusher as QuarantineRecord)), noPusher);
  for (const bad of ["", "{", "null", '{"v":2}', JSON.stringify({ ...r, time: "17" })]) {
    assert.equal(decodeRecord(new TextEncoder().encode(bad)), undefined, bad);
  }
});

Deno.test("a listing groups quarantined updates with their sizes, oldest first", async () => {
  const f = (name: string, size: number) => ({ name, size, mtimeMs: 0 });
  const qs = await listQuarantined([
    f(quarantineName("b", 9, 1, "data"), 100),
    f(quarantineName("a", 3, 1, "index"), 10),
    f(quarantineName("a", 3, 1, "data"), 20),
    f(quarantineName("a", 3, 1, "record"), 99),
    f(".0.index", 5),
  ]);
  assert.deepEqual(qs.map((q) => [q.page, q.time, q.size, q.files.length]), [
    ["a", 3, 30, 3],
    ["b", 9, 100, 1],
  ]);
  assert.match(describeQuarantined(qs[1]), /^update 9 of page b .*100 bytes.*record is missing/);
});

Deno.test("content faults quarantine; network, storage, disk and interruption faults never do", () => {
  assert.ok(isContentFault(new BadUpdateError("bad")));
  assert.ok(isContentFault(new CodecError("update index", "x", 1, "garbled")));
  assert.ok(isContentFault(new UnsafeEntryError("../x", "parent")));
  assert.ok(isContentFault(new HopError("failed authentication", { code: "sealed-damaged" })));
  assert.ok(!isContentFault(new HopError("something")));
  assert.ok(!isContentFault(new Error("bug")));
  const net = Object.assign(new Error("reset"), { code: "ECONNRESET" });
  assert.ok(!isContentFault(new BadUpdateError("looked bad", { cause: net })));
  assert.ok(
    !isContentFault(new BadUpdateError("x", { cause: new StorageError("connect", "gone") })),
  );
  assert.ok(!isContentFault(new HopError("full", { code: "disk-full" })));
  const abort = new DOMException("stop", "AbortError");
  assert.ok(!isContentFault(new BadUpdateError("x", { cause: abort })));
});
