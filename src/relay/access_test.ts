/**
 * Tests of the access modifiers: escalectl's spellings parse (and bad ones
 * are refused), they round-trip through `.hop/access.json`, `?` unsets, an
 * odd path such as `__proto__` is just a path, and a damaged file is an
 * error that says what to do, never a reset.
 *
 * @module
 */
import assert from "node:assert/strict";
import { stat, writeFile } from "node:fs/promises";
import { withTempDir } from "../../tests/helpers/temp.ts";
import {
  accessFile,
  type AccessTable,
  formatAccess,
  mayPush,
  mayWrite,
  parseModifiers,
  readAccess,
  setModifiers,
  writeAccess,
} from "./access.ts";

Deno.test("access: escalectl's spellings; bad ones refused", () => {
  assert.deepEqual(parseModifiers("r-"), { r: false });
  assert.deepEqual(parseModifiers("w"), { w: true });
  assert.deepEqual(parseModifiers("r?w+"), { r: null, w: true });
  assert.deepEqual(parseModifiers("w-r+"), { w: false, r: true });
  for (const bad of ["", "x", "r-r+", "r*", "rw--", "R-"]) {
    assert.throws(() => parseModifiers(bad), /bad access modifiers/, bad);
  }
  assert.equal(formatAccess(undefined), "r?w?");
  assert.equal(formatAccess({ r: false }), "r-w?");
  assert.equal(formatAccess({ r: true, w: false }), "r+w-");
});

Deno.test("access: set, unset, round trip through the folder's file", async () => {
  await withTempDir(async (root) => {
    assert.deepEqual({ ...(await readAccess(root)) }, {});
    const t: AccessTable = await readAccess(root);
    setModifiers(t, "a.txt", parseModifiers("r-"));
    setModifiers(t, "__proto__", parseModifiers("w-"));
    setModifiers(t, "b/c.txt", parseModifiers("r+w-"));
    setModifiers(t, "b/c.txt", parseModifiers("w?"));
    await writeAccess(root, t);
    const back = await readAccess(root);
    assert.deepEqual(Object.entries(back).sort(), [
      ["__proto__", { w: false }],
      ["a.txt", { r: false }],
      ["b/c.txt", { r: true }],
    ]);
    assert.equal(mayPush(back, "a.txt"), false);
    assert.equal(mayWrite(back, "a.txt"), true);
    assert.equal(mayWrite(back, "__proto__"), false);
    assert.equal(mayPush(back, "constructor"), true);
    assert.equal(mayWrite(back, "toString"), true);
    setModifiers(back, "a.txt", parseModifiers("r?"));
    assert.ok(!Object.hasOwn(back, "a.txt"), "all unset: the path goes");
    for (const p of ["__proto__", "b/c.txt"]) setModifiers(back, p, parseModifiers("r?w?"));
    await writeAccess(root, back);
    await assert.rejects(stat(accessFile(root)), "none left: the file goes");
  });
});

Deno.test("access: a damaged file is an error that says what to do", async () => {
  await withTempDir(async (root) => {
    await writeAccess(root, {});
    for (const text of ["{not json", '{"v":2,"files":{}}', '{"v":1,"files":{"a":"x+"}}']) {
      await writeFile(accessFile(root), text);
      await assert.rejects(readAccess(root), (e: Error & { hint?: string }) => {
        assert.match(e.message, /access modifiers file .* is damaged/);
        assert.match(e.hint ?? "", /Remove it/);
        return true;
      });
    }
  });
});
