/**
 * Unit tests of listing formats: `ls -l` lines, MLSx facts, time-val.
 *
 * @module
 */

import assert from "node:assert/strict";
import { listLine, mlsxLine, timeVal } from "./listing.ts";

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
