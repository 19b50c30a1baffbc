/**
 * Unit tests of virtual path resolution: `..` stops at the root, homes, quoting.
 *
 * @module
 */

import assert from "node:assert/strict";
import { joinHome, quotePath, resolveVirtual } from "./path.ts";

Deno.test("paths: .. stops at the root, homes are joined, quotes doubled", () => {
  assert.equal(resolveVirtual("/a/b", "../../../etc"), "/etc");
  assert.equal(resolveVirtual("/a", "./x//y/."), "/a/x/y");
  assert.equal(resolveVirtual("/a", "/"), "/");
  assert.equal(resolveVirtual("/", ".."), "/");
  assert.equal(joinHome("/", "/x"), "/x");
  assert.equal(joinHome("/home/u", "/"), "/home/u");
  assert.equal(joinHome("/home/u/", "/x"), "/home/u/x");
  assert.equal(quotePath('/a"b'), '"/a""b"');
});
