import assert from "node:assert/strict";
import {
  checkName,
  decodeName,
  decodePath,
  encodeName,
  encodePath,
  isNameAllowed,
  NAME_POLICIES,
} from "./names.ts";
import { rng, SAFE_CHARS, TRICKY_CHARS } from "../../tests/helpers/prng.ts";

Deno.test("names: policies", () => {
  assert.equal(checkName("rfc-0959.txt", "strict"), null);
  assert.equal(checkName("a+b_c.d-E9", "strict"), null);
  assert.match(checkName("New Folder", "strict")!, /' ' is not allowed .*strict/);
  assert.equal(checkName("New Folder", "blanks"), null);
  assert.match(checkName("a#b", "blanks")!, /'#' is not allowed/);
  assert.match(checkName("tab\there", "blanks")!, /U\+0009 is not allowed/);
  for (const odd of ["a#", "100%", "été", "日本 😀", "a:b", "x\ny", "#"]) {
    assert.equal(checkName(odd, "any"), null, odd);
  }
  for (const policy of NAME_POLICIES) {
    assert.match(checkName("", policy)!, /empty/);
    assert.match(checkName(".", policy)!, /not a file name/);
    assert.match(checkName("..", policy)!, /not a file name/);
    assert.match(checkName("a/b", policy)!, /'\/'/);
    assert.match(checkName("a\0b", policy)!, /NUL|not allowed/);
    assert.match(checkName("x".repeat(255), policy)!, /too long/);
    assert.equal(checkName("x".repeat(254), policy), null);
  }
  assert.match(checkName("\ud800", "any")!, /Unicode/);
  assert.match(checkName("é".repeat(50), "any")!, /too long/); // 300 bytes encoded
  assert.equal(isNameAllowed("a b", "strict"), false);
});

Deno.test("names: %-encoding at rest", () => {
  assert.equal(encodeName("New Folder"), "New%20Folder");
  assert.equal(encodeName("100%"), "100%25");
  assert.equal(encodeName("a#"), "a%23");
  assert.equal(encodeName("été"), "%C3%A9t%C3%A9");
  assert.equal(encodeName("rfc-0959.txt"), "rfc-0959.txt");
  assert.equal(decodeName("New%20Folder"), "New Folder");
  assert.equal(decodeName("%c3%a9"), "é");
  // Stored by hand or under another policy: stays readable, never throws.
  assert.equal(decodeName("100%"), "100%");
  assert.equal(decodeName("50%off"), "50%off");
  assert.equal(decodeName("bad%C3x"), "bad%C3x");
  assert.equal(decodeName("raw space é"), "raw space é");
  assert.equal(encodePath("New Folder/a b#"), "New%20Folder/a%20b%23");
  assert.equal(decodePath("New%20Folder/a%20b%23"), "New Folder/a b#");
});

Deno.test("property: names round-trip, stored names are safe (2000 random cases)", () => {
  const r = rng(0xa11);
  for (let i = 0; i < 2000; i++) {
    const name = r.string(SAFE_CHARS + TRICKY_CHARS.replace("/", "").replace("\0", ""), 1, 20);
    const stored = encodeName(name);
    assert.match(stored, /^[A-Za-z0-9\-+_.%]+$/);
    assert.ok(!stored.endsWith("#"));
    assert.equal(decodeName(stored), name, JSON.stringify(name));
    const policy = r.pick(NAME_POLICIES);
    const reason = checkName(name, policy);
    const strictOk = /^[A-Za-z0-9\-+_.]+$/.test(name) && name !== "." && name !== "..";
    if (policy === "strict") assert.equal(reason === null, strictOk, JSON.stringify(name));
    if (policy === "blanks") {
      assert.equal(
        reason === null,
        /^[A-Za-z0-9\-+_. ]+$/.test(name) && name !== "." && name !== "..",
      );
    }
    if (policy === "any") assert.equal(reason === null, name !== "." && name !== "..");
    // A strict name is stored as is.
    if (strictOk) assert.equal(stored, name);
    // Any text decodes without throwing.
    const junk = r.string("%0123456789ABCDEFxyz", 0, 12);
    assert.equal(typeof decodeName(junk), "string");
  }
});
