/**
 * Unit tests of listing formats: `ls -l` lines, MLSx facts, time-val.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  LIST_CHUNK_BYTES,
  listChunks,
  listLine,
  MLST_FACTS,
  mlsxLine,
  mlsxLines,
  sortByName,
  timeVal,
} from "./listing.ts";
import type { FtpFileInfo } from "./types.ts";

Deno.test("listing: ls -l lines, MLSx facts, time-val", () => {
  const now = Date.UTC(2024, 5, 1);
  const recent = {
    name: "a b.txt",
    type: "file" as const,
    size: 42,
    mtime: Date.UTC(2024, 4, 2, 3, 4),
    owner: "joe",
  };
  assert.equal(
    listLine(recent, now),
    "-rw-r--r-- 1 joe      joe                42 May 02 03:04 a b.txt",
  );
  const old = {
    name: "d",
    type: "dir" as const,
    size: 0,
    mtime: Date.UTC(2020, 0, 9),
    mode: 0o750,
  };
  assert.equal(listLine(old, now), "drwxr-x--- 1 ftp      ftp                 0 Jan 09  2020 d");
  assert.equal(timeVal(Date.UTC(2021, 11, 31, 23, 59, 58)), "20211231235958");
  const facts = new Set(["type", "size", "modify", "perm"]);
  assert.equal(
    mlsxLine(recent, "a b.txt", facts, false),
    "type=file;size=42;modify=20240502030400;perm=rwadf; a b.txt",
  );
  assert.equal(mlsxLine(old, "d", new Set(["type", "perm"]), true), "type=dir;perm=el; d");
});

Deno.test("listing: owner, group and mode facts (UNIX.*)", () => {
  const f = {
    name: "r.pdf",
    type: "file" as const,
    size: 1,
    mtime: 0,
    owner: "alice",
    group: "cluster",
    mode: 0o640,
  };
  const all = new Set(["UNIX.mode", "UNIX.owner", "UNIX.group"]);
  assert.equal(
    mlsxLine(f, "r.pdf", all, false),
    "UNIX.mode=0640;UNIX.owner=alice;UNIX.group=cluster; r.pdf",
  );
  const d = { name: "d", type: "dir" as const, size: 0, mtime: 0, owner: "odd;name =x" };
  assert.equal(
    mlsxLine(d, "d", all, false),
    "UNIX.mode=0755;UNIX.owner=odd_name__x;UNIX.group=odd_name__x; d",
  );
});

const HALF_YEAR = 182 * 24 * 3600 * 1000;

/** Entries of every kind the fast paths treat apart: times, modes, owners, names. */
function variedEntries(now: number): FtpFileInfo[] {
  const times = [
    now,
    now + 90_000,
    now - 1,
    now - 61_234.5,
    // the six-month mark, on both sides and both ways, within one minute
    now - HALF_YEAR,
    now - HALF_YEAR + 1,
    now - HALF_YEAR - 1,
    now - HALF_YEAR + 30_000,
    now - HALF_YEAR - 30_000,
    now + HALF_YEAR,
    now + HALF_YEAR - 1,
    now + HALF_YEAR + 0.5,
    Date.UTC(2020, 1, 29, 23, 59, 59, 999),
    Date.UTC(2020, 2, 1),
    Date.UTC(1999, 11, 31, 23, 59, 30),
    0,
    -0.5,
    -1,
    -59_999.5,
    -60_000,
    -60_000.5,
    1.5,
    8.64e15,
    -8.64e15,
    8.64e15 + 1,
    NaN,
    Infinity,
  ];
  const owners: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ["joe", undefined],
    ["joe", "cluster"],
    ["a long owner name", "grp with\ttab"],
    ["odd;name =x", "cluster"],
    [undefined, "staff"],
  ];
  const modes = [undefined, 0o644, 0o755, 0o4755, 0o100600, 0o7777, 0];
  const names = ["a", "é #1.txt", "日本語.pdf", "😀 smile", "name with  spaces ", "x;y=z"];
  const out: FtpFileInfo[] = [];
  let i = 0;
  for (const mtime of times) {
    for (const type of ["file", "dir"] as const) {
      const [owner, group] = owners[i % owners.length];
      out.push({
        name: names[i % names.length] + i,
        type,
        size: [0, 7, 123_456_789_012, 1_234_567_890_123_456][i % 4],
        mtime,
        owner,
        group,
        mode: modes[i % modes.length],
        unique: i % 3 === 0 ? `u${i}` : undefined,
        perm: i % 5 === 0 ? "r" : undefined,
      });
      i++;
    }
  }
  // the same times again in another order: what was made once is used again
  return [...out, ...out.slice().reverse()];
}

Deno.test("listing: listChunks gives the UTF-8 of listLine of each entry with CRLFs, in bounded chunks", () => {
  const now = Date.UTC(2024, 5, 1, 12, 0, 30, 250);
  const entries = variedEntries(now);
  entries.push(
    { name: "long-" + "ü😀x".repeat(3000), type: "file", size: 1, mtime: now },
    { name: "lone \ud800 surrogate", type: "file", size: 2, mtime: now - 5 },
    { name: "\udc00", type: "dir", size: 0, mtime: 0, owner: "ünïcode owner" },
  );
  const text = entries.map((e) => listLine(e, now));
  // both sides of the six-month mark show: one date column was not taken for the other
  assert.ok(text.some((l) => / \d\d:\d\d /.test(l)) && text.some((l) => / {2}\d{4} /.test(l)));
  const lines = text.map((l) => new TextEncoder().encode(l + "\r\n"));
  const want = new Uint8Array(lines.flatMap((l) => [...l]));
  const longest = Math.max(...lines.map((l) => l.byteLength));
  for (const size of [1, 100, 4096, LIST_CHUNK_BYTES]) {
    const chunks = [...listChunks(entries, now, size)];
    const got = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let at = 0;
    for (const c of chunks) {
      assert.ok(c.byteLength > 0, "no empty chunk");
      // cut once it holds `size` bytes: at most one line more
      assert.ok(c.byteLength < size + longest, `chunk of ${c.byteLength}`);
      got.set(c, at);
      at += c.byteLength;
    }
    assert.deepEqual(got, want, `chunks of ${size}`);
    if (size === 100) assert.ok(chunks.length > entries.length / 2, "small chunks were cut");
  }
  assert.deepEqual([...listChunks([], now)], []);
});

Deno.test("listing: mlsxLines gives mlsxLine's text for every entry and fact choice", () => {
  const now = Date.UTC(2024, 5, 1, 12, 0, 30, 250);
  const entries = variedEntries(now);
  const choices = [
    new Set<string>(MLST_FACTS),
    new Set<string>(),
    new Set(["type", "size", "modify", "perm"]),
    new Set(["modify", "unique", "UNIX.owner"]),
    new Set(["UNIX.mode", "UNIX.group"]),
  ];
  for (const facts of choices) {
    for (const ro of [false, true]) {
      const fast = mlsxLines(entries, facts, ro);
      assert.equal(fast.length, entries.length);
      entries.forEach((e, i) =>
        assert.equal(fast[i], mlsxLine(e, e.name, facts, ro), `${[...facts]} ${JSON.stringify(e)}`)
      );
    }
  }
});

Deno.test("listing: sortByName orders by UTF-16 code units, equal names stay in order", () => {
  const cmp = (a: { name: string }, b: { name: string }) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  const names = ["b", "a", "B", "é", "e\u0301", "\uffff", "😀", "a-b", "a", "", "Z", "10", "9"];
  const unique = [...new Set(names)].map((name, i) => ({ name, i }));
  assert.deepEqual(sortByName(unique), unique.slice().sort(cmp));
  assert.deepEqual(
    sortByName(unique).map((e) => e.name).slice(-2),
    ["😀", "\uffff"], // a surrogate pair sorts below U+FFFF, as `<` has it
  );
  const twice = names.map((name, i) => ({ name, i }));
  const sorted = sortByName(twice);
  assert.deepEqual(sorted, twice.slice().sort(cmp));
  assert.deepEqual(sorted.filter((e) => e.name === "a").map((e) => e.i), [1, 8]);
  assert.deepEqual(twice.map((e) => e.i), names.map((_, i) => i), "input left as it was");
});
