import assert from "node:assert/strict";
import { splitWords } from "./text.ts";
import { rng } from "../../tests/helpers/prng.ts";

Deno.test("splitWords: blanks separate words, quotes keep them together", () => {
  assert.deepEqual(splitWords("USERADD bob secret"), ["USERADD", "bob", "secret"]);
  assert.deepEqual(splitWords('  bob  "my long pass"  /home/bob '), [
    "bob",
    "my long pass",
    "/home/bob",
  ]);
  assert.deepEqual(splitWords('a "with \\"quote\\" and \\\\" b'), [
    "a",
    'with "quote" and \\',
    "b",
  ]);
  assert.deepEqual(splitWords('""'), [""]);
  assert.deepEqual(splitWords("a\\b"), ["a\\b"], "backslashes outside quotes are plain");
  assert.deepEqual(splitWords(""), []);
  assert.equal(splitWords('bob "unterminated'), null);
  assert.equal(splitWords('bob "ends with \\"'), null);
});

Deno.test("splitWords: any words quoted back round-trip", () => {
  const r = rng(5);
  for (let i = 0; i < 300; i++) {
    const words = Array.from({ length: r.int(0, 5) }, () => r.string('ab c"\\\té', 0, 8));
    const line = words.map((w) => `"${w.replace(/[\\"]/g, (c) => "\\" + c)}"`).join(" ");
    assert.deepEqual(splitWords(line), words);
  }
});
