import assert from "node:assert/strict";
import { CodecError, EncodeError } from "./errors.ts";
import type { EntryMeta } from "./escale_index.ts";
import {
  decodePlaceholder,
  encodePlaceholder,
  lockFileName,
  parsePlaceholderName,
  type Placeholder,
  placeholderFileName,
} from "./escale_placeholder.ts";
import { rng, SAFE_CHARS } from "../../tests/helpers/prng.ts";

// What Escale 0.7.13 wrote for a.txt ("hello\n", mtime 2020-01-02 03:04:05 UTC), pushed by esc.
const SUM =
  "e7c22b994c59d9cf2b48e549b1e24666636045930d3da7c1acb299d1c3b7f931f94aae41edda2c2b207a36e10f8bcb8d45223e54878f5b316e7ce3b6bc019629";
const ESCALE =
  `placeholder%1.0\npusher: esc\ntimestamp: 1577934245\nchecksum: ${SUM}\n---pullers---`;
const meta = (o: Partial<EntryMeta> = {}): EntryMeta => ({
  placeholder: "placeholder%1.0",
  pusher: "esc",
  timestamp: 1577934245,
  checksum: SUM,
  extra: [],
  ...o,
});

function codecError(fn: () => unknown, line: number): CodecError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CodecError, `expected CodecError, got ${e}`);
    assert.equal(e.line, line, e.message);
    assert.ok(e.message.startsWith(`src.placeholder:${line}: `), e.message);
    return e;
  }
  throw new Error("expected a CodecError");
}

Deno.test("placeholder: Escale's own text decodes and encodes back byte for byte", () => {
  const p = decodePlaceholder(ESCALE, "src.placeholder");
  assert.deepEqual(p, { meta: meta(), pullers: [] });
  assert.equal(encodePlaceholder(p), ESCALE);
  // each puller appends "\n<name>" (Escale's markAsRead)
  const read = ESCALE + "\nbob\ncarol";
  assert.deepEqual(decodePlaceholder(read, "src.placeholder").pullers, ["bob", "carol"]);
  assert.equal(encodePlaceholder(decodePlaceholder(read, "src.placeholder")), read);
  // bytes in, and extra keys kept in their place
  const extra = ESCALE.replace("---pullers---", "parts: 3\n---pullers---");
  const q = decodePlaceholder(new TextEncoder().encode(extra), "src.placeholder");
  assert.deepEqual(q.meta.extra, [["parts", "3"]]);
  assert.equal(encodePlaceholder(q), extra);
  // a trailing newline or empty lines among the pullers are not names
  assert.deepEqual(decodePlaceholder(ESCALE + "\n\nbob\n", "x").pullers, ["bob"]);
});

Deno.test("placeholder: random metadata and pullers round-trip", () => {
  const r = rng(0x9e11);
  const word = (n: number) => r.string(SAFE_CHARS, 1, n);
  for (let i = 0; i < 300; i++) {
    const p = {
      meta: meta({
        pusher: word(12),
        timestamp: r.int(0, 2 ** 40),
        checksum: r.string("0123456789abcdef", 1, 128),
        extra: r.chance(0.3) ? [["parts", String(r.int(0, 9))] as [string, string]] : [],
      }),
      pullers: Array.from({ length: r.int(0, 3) }, () => word(10)),
    };
    const text = encodePlaceholder(p);
    assert.deepEqual(decodePlaceholder(text, "x"), p);
    assert.equal(encodePlaceholder(decodePlaceholder(text, "x")), text);
  }
});

Deno.test("placeholder: malformed input names the file and line", () => {
  codecError(() => decodePlaceholder("", "src.placeholder"), 1);
  // pre-0.5 form: not a time
  codecError(() => decodePlaceholder("2001020_30405\nbob", "src.placeholder"), 1);
  codecError(() => decodePlaceholder("201302_030405", "src.placeholder"), 1); // month 13
  codecError(() => decodePlaceholder("200230_030405", "src.placeholder"), 1); // 30 February
  codecError(() => decodePlaceholder("lock%1.0\nowner: a", "src.placeholder"), 1);
  codecError(
    () => decodePlaceholder("placeholder%1.0\npusher: a\ntimestamp: 1", "src.placeholder"),
    3,
  );
  const noTime = "placeholder%1.0\npusher: a\n---pullers---";
  codecError(() => decodePlaceholder(noTime, "src.placeholder"), 1);
  const badSum = "placeholder%1.0\npusher: a\ntimestamp: 1\nchecksum: xyz\n---pullers---";
  codecError(() => decodePlaceholder(badSum, "src.placeholder"), 4);
  const badTs = `placeholder%1.0\npusher: a\ntimestamp: 1.5\nchecksum: ab\n---pullers---`;
  codecError(() => decodePlaceholder(badTs, "src.placeholder"), 3);
  const junk = `placeholder%1.0\npusher: a\njunk\ntimestamp: 1\nchecksum: ab\n---pullers---`;
  codecError(() => decodePlaceholder(junk, "src.placeholder"), 3);
  codecError(() => decodePlaceholder(new Uint8Array([0xff, 0xfe]), "src.placeholder"), 1);
});

Deno.test("placeholder: Escale's older forms decode with its meaning and encode back as they were", () => {
  // written by an Escale client with `checksum = no`
  const noSum = "placeholder%1.0\npusher: esc\ntimestamp: 1577934245\n---pullers---\nbob";
  const p = decodePlaceholder(noSum, "src.placeholder");
  assert.deepEqual(p, { meta: meta({ checksum: "" }), pullers: ["bob"], form: "no-checksum" });
  assert.equal(encodePlaceholder(p), noSum);
  assert.equal(encodePlaceholder({ ...p, pullers: ["bob", "hop"] }), noSum + "\nhop");
  // before Escale 0.5: a bare UTC time (%y%m%d_%H%M%S), then the pullers
  const former = decodePlaceholder("200102_030405\nbob", "src.placeholder");
  assert.deepEqual(former, {
    meta: { placeholder: "", pusher: "", timestamp: 1577934245, checksum: "", extra: [] },
    pullers: ["bob"],
    form: "pre-0.5",
  });
  assert.equal(encodePlaceholder(former), "200102_030405\nbob");
  assert.equal(encodePlaceholder({ ...former, pullers: [] }), "200102_030405");
  // Python's %y: 69-99 are the 1900s
  assert.equal(decodePlaceholder("700101_000000", "x").meta.timestamp, 0);
  assert.equal(decodePlaceholder("690101_000000", "x").meta.timestamp, -31536000);
  assert.equal(decodePlaceholder("681231_235959", "x").meta.timestamp, 3124223999);
  const r = rng(0x0505);
  for (let i = 0; i < 200; i++) {
    const t = r.int(-31536000, 3124223999);
    const q: Placeholder = { ...former, meta: { ...former.meta, timestamp: t } };
    assert.deepEqual(decodePlaceholder(encodePlaceholder(q), "x"), q);
  }
  // what the older forms cannot hold
  assert.throws(
    () => encodePlaceholder({ ...former, meta: { ...former.meta, timestamp: 3124224000 } }),
    EncodeError,
  );
  assert.throws(
    () => encodePlaceholder({ ...former, meta: { ...former.meta, pusher: "esc" } }),
    EncodeError,
  );
  assert.throws(() => encodePlaceholder({ ...p, meta: meta() }), EncodeError); // a checksum
  assert.throws(() => encodePlaceholder({ ...p, form: undefined }), EncodeError); // none
});

Deno.test("placeholder: values the format cannot hold are refused", () => {
  assert.throws(() => encodePlaceholder({ meta: meta(), pullers: ["a\nb"] }), EncodeError);
  assert.throws(() => encodePlaceholder({ meta: meta(), pullers: [""] }), EncodeError);
  assert.throws(() => encodePlaceholder({ meta: meta({ pusher: "" }), pullers: [] }), EncodeError);
  assert.throws(
    () => encodePlaceholder({ meta: meta({ checksum: "xyz" }), pullers: [] }),
    EncodeError,
  );
});

Deno.test("placeholder: relay names", () => {
  assert.equal(placeholderFileName("b c.txt"), ".b c.txt.placeholder");
  assert.equal(lockFileName("a.txt"), ".a.txt.lock");
  assert.deepEqual(parsePlaceholderName(".b c.txt.placeholder"), {
    kind: "placeholder",
    target: "b c.txt",
  });
  assert.deepEqual(parsePlaceholderName(".a.txt.lock"), { kind: "lock", target: "a.txt" });
  assert.deepEqual(parsePlaceholderName("a.txt"), { kind: "file" });
  assert.deepEqual(parsePlaceholderName(".placeholder"), { kind: "other" });
  assert.deepEqual(parsePlaceholderName("..x.lock"), { kind: "other" }); // a hidden target
  assert.deepEqual(parsePlaceholderName(".hop-tmp-a.txt~12ab"), { kind: "other" });
  assert.deepEqual(parsePlaceholderName(".0.index"), { kind: "other" });
});
