import assert from "node:assert/strict";
import { concatBytes } from "../bytes.ts";
import { CodecError, EncodeError } from "./errors.ts";
import {
  decodeMeta,
  decodePersistentIndex,
  decodeUpdateHead,
  decodeUpdateIndex,
  encodeMeta,
  encodePersistentIndex,
  encodePersistentIndexBytes,
  encodeUpdateIndex,
  encodeUpdateIndexBytes,
  type EntryMeta,
  GROUP_END,
  GROUP_START,
  type IndexEntry,
  indexName,
  lockName,
  pageOf,
  pagePrefix,
  parseRelayName,
  updateDataName,
  updateIndexName,
  withUpdatePullers,
} from "./escale_index.ts";
import { type Rng, rng, SAFE_CHARS } from "../../tests/helpers/prng.ts";

const SUM = "ab".repeat(64);
const meta = (o: Partial<EntryMeta> = {}): EntryMeta => ({
  placeholder: "placeholder%1.0",
  pusher: "alice",
  timestamp: 1577934245,
  checksum: SUM,
  extra: [],
  ...o,
});
const BLOCK =
  `placeholder%1.0\npusher: alice\ntimestamp: 1577934245\nchecksum: ${SUM}\n---pullers---\n`;

function codecError(fn: () => unknown, line: number, source = "src.index"): CodecError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CodecError, `expected CodecError, got ${e}`);
    assert.equal(e.source, source);
    assert.equal(e.line, line, e.message);
    assert.ok(e.message.startsWith(`${source}:${line}: `), e.message);
    return e;
  }
  assert.fail("no error thrown");
}

Deno.test("update index: N counts characters, header splits at the last whitespace", () => {
  const text = `sub/file with space.txt ${BLOCK.length}\n${BLOCK}`;
  assert.equal(BLOCK.length, 205);
  const idx = decodeUpdateIndex(text, "x");
  assert.deepEqual(idx, {
    entries: [{ path: "sub/file with space.txt", meta: meta() }],
    pullers: [],
  });
  assert.equal(encodeUpdateIndex(idx), text);
  // A run of whitespace before N is one separator (as Python's rsplit).
  assert.equal(decodeUpdateIndex(`a b \t 0\n`, "x").entries[0].path, "a b");
});

Deno.test("update index: UTF-8 paths and non-ASCII metadata count code points, not bytes", () => {
  const m = meta({ extra: [["note", "été 😀"]] });
  const text = encodeUpdateIndex({ entries: [{ path: "été/日本 😀.txt", meta: m }], pullers: [] });
  const body = text.slice(text.indexOf("\n") + 1);
  assert.equal(Number(text.split("\n")[0].split(" ").pop()), [...body].length);
  assert.notEqual([...body].length, new TextEncoder().encode(body).length);
  assert.deepEqual(decodeUpdateIndex(new TextEncoder().encode(text), "x").entries[0].meta, m);
});

Deno.test("update index: pullers section, no phantom names", () => {
  const entries = `a ${BLOCK.length}\n${BLOCK}`;
  assert.deepEqual(decodeUpdateIndex(entries + "---pullers---\nbob\ncarol", "x").pullers, [
    "bob",
    "carol",
  ]);
  assert.deepEqual(decodeUpdateIndex(entries + "---pullers---\n", "x").pullers, []);
  assert.deepEqual(decodeUpdateIndex(entries + "---pullers---", "x").pullers, []);
  // What the reference client writes back after reading its phantom empty name.
  assert.deepEqual(decodeUpdateIndex(entries + "---pullers---\n\nbob", "x").pullers, ["bob"]);
  // After an empty line ending the entries.
  assert.deepEqual(decodeUpdateIndex(entries + "\n---pullers---\nbob", "x").pullers, ["bob"]);
  const idx = { entries: decodeUpdateIndex(entries, "x").entries, pullers: ["bob", "carol"] };
  assert.equal(encodeUpdateIndex(idx), entries + "---pullers---\nbob\ncarol");
  assert.deepEqual(decodeUpdateIndex("---pullers---\nbob", "x"), { entries: [], pullers: ["bob"] });
  assert.deepEqual(decodeUpdateIndex("", "x"), { entries: [], pullers: [] });
});

Deno.test("entry metadata: N=0 is null, extra keys and unusual layouts survive", () => {
  const text = "empty file 0\n";
  assert.deepEqual(decodeUpdateIndex(text, "x").entries, [{ path: "empty file", meta: null }]);
  assert.equal(encodeUpdateIndex(decodeUpdateIndex(text, "x")), text);
  const block =
    `placeholder%1.0\npusher: alice\nparts: 3\ntimestamp: 5\nzz: \nchecksum: ${SUM}\nkey:x: y: z\n---pullers---\n`;
  const t2 = `f ${block.length}\n${block}`;
  const e = decodeUpdateIndex(t2, "x").entries[0];
  assert.deepEqual(e.meta?.extra, [["parts", "3"], ["zz", ""], ["key:x", "y: z"]]);
  assert.deepEqual(e.meta?.layout, ["pusher", "parts", "timestamp", "zz", "checksum", "key:x"]);
  assert.equal(encodeUpdateIndex(decodeUpdateIndex(t2, "x")), t2);
  // The persistent index keeps the extras' positions among the body lines.
  const p = encodePersistentIndex([e]);
  assert.ok(p.includes("\nparts: 3\ntimestamp: 5\nzz: \nchecksum: "), p);
  assert.deepEqual(decodePersistentIndex(p, "x"), [e]);
});

Deno.test("update index: entries with equal extra lines share one frozen list", () => {
  const base = (b: string) => meta({ extra: [["base", b], ["note", "x"]] });
  const entries: IndexEntry[] = [
    { path: "a", meta: base("-") },
    { path: "b", meta: base("-") },
    { path: "c", meta: base(SUM) },
    { path: "d", meta: base(SUM) },
    { path: "e", meta: meta() },
  ];
  const got = decodeUpdateIndex(encodeUpdateIndex({ entries, pullers: [] }), "u").entries;
  assert.deepEqual(got, entries);
  assert.equal(got[0].meta!.extra, got[1].meta!.extra);
  assert.notEqual(got[1].meta!.extra, got[2].meta!.extra);
  assert.equal(got[2].meta!.extra, got[3].meta!.extra);
  assert.ok(Object.isFrozen(got[0].meta!.extra) && Object.isFrozen(got[0].meta!.extra[0]));
  assert.throws(() => got[0].meta!.extra.push(["more", "y"]), TypeError);
});

Deno.test("persistent index: groups in order of first appearance, entries in given order", () => {
  const entries: IndexEntry[] = [
    { path: "z", meta: meta({ pusher: "bob" }) },
    { path: "a", meta: meta() },
    { path: "n", meta: null },
    { path: "y", meta: meta({ pusher: "bob", timestamp: -3 }) },
    { path: "b", meta: meta({ placeholder: "placeholder%2.0" }) },
  ];
  const text = encodePersistentIndex(entries);
  const groups = text.split("\n").filter((_l, i, a) =>
    a[i - 1] === "---group---" || a[i - 2] === "---group---"
  );
  assert.deepEqual(groups, [
    "placeholder%1.0",
    "pusher: bob",
    "placeholder%1.0",
    "pusher: alice",
    "placeholder%2.0",
    "pusher: alice",
  ]);
  assert.ok(text.startsWith("n 0\n---group---\n"));
  assert.deepEqual(decodePersistentIndex(text, "x").map((e) => e.path), ["n", "z", "y", "a", "b"]);
  assert.equal(encodePersistentIndex(decodePersistentIndex(text, "x")), text);
  assert.deepEqual(decodePersistentIndex("", "x"), []);
  assert.deepEqual(decodePersistentIndex("n 0\n\n\n", "x"), [{ path: "n", meta: null }]);
});

Deno.test("malformed update indexes: CodecError naming source and line", () => {
  const ok = `a ${BLOCK.length}\n${BLOCK}`;
  codecError(() => decodeUpdateIndex("no-length\n", "src.index"), 1);
  codecError(() => decodeUpdateIndex(ok + "b x\n", "src.index"), 7);
  codecError(() => decodeUpdateIndex(ok + "b 999\nshort\n", "src.index"), 7);
  codecError(() => decodeUpdateIndex(`a 5\nabcdef`, "src.index"), 1); // block without final newline
  codecError(() => decodeUpdateIndex(`a 6\nabcde\n`, "src.index"), 2); // no placeholder
  const bad = (b: string) => `x 1\n` + `a ${b.length}\n${b}`; // first line is a bad header
  codecError(() => decodeUpdateIndex(bad(""), "src.index"), 1);
  const noTerm = `placeholder%1.0\npusher: a\ntimestamp: 1\nchecksum: ab\n`;
  codecError(() => decodeUpdateIndex(`a ${noTerm.length}\n${noTerm}`, "src.index"), 5);
  const badTs = `placeholder%1.0\npusher: a\ntimestamp: 1.5\nchecksum: ab\n---pullers---\n`;
  codecError(() => decodeUpdateIndex(`a ${badTs.length}\n${badTs}`, "src.index"), 4);
  const badSum = `placeholder%1.0\npusher: a\ntimestamp: 1\nchecksum: xyz\n---pullers---\n`;
  codecError(() => decodeUpdateIndex(`q 0\na ${badSum.length}\n${badSum}`, "src.index"), 6);
  const noSum = `placeholder%1.0\npusher: a\ntimestamp: 1\n---pullers---\n`;
  codecError(() => decodeUpdateIndex(`a ${noSum.length}\n${noSum}`, "src.index"), 1);
  const dup = `placeholder%1.0\npusher: a\npusher: b\ntimestamp: 1\nchecksum: ab\n---pullers---\n`;
  codecError(() => decodeUpdateIndex(`a ${dup.length}\n${dup}`, "src.index"), 4);
  const noColon = `placeholder%1.0\npusher: a\njunk\ntimestamp: 1\nchecksum: ab\n---pullers---\n`;
  codecError(() => decodeUpdateIndex(`a ${noColon.length}\n${noColon}`, "src.index"), 4);
  const after = `placeholder%1.0\npusher: a\ntimestamp: 1\nchecksum: ab\n---pullers---\nbob\n`;
  codecError(() => decodeUpdateIndex(`a ${after.length}\n${after}`, "src.index"), 7);
  codecError(() => decodeUpdateIndex(ok + "\nb 0\n", "src.index"), 8);
  codecError(
    () => decodeUpdateIndex(new Uint8Array([0x61, 0x20, 0x30, 0x0a, 0xff, 0x0a]), "src.index"),
    2,
  );
  codecError(() => decodeUpdateIndex(`a 99999999999999999999\n`, "src.index"), 1);
});

Deno.test("malformed persistent indexes: CodecError naming source and line", () => {
  codecError(
    () => decodePersistentIndex("---group---\nplaceholder%1.0\npusher: a\n", "src.index"),
    4,
  );
  codecError(() => decodePersistentIndex("---group---\n---group---\n", "src.index"), 2);
  const body = `timestamp: 1\nchecksum: ab\n---pullers---\n`;
  // No placeholder in the group: the error points at the entry's first group line.
  codecError(
    () =>
      decodePersistentIndex(
        `---group---\npusher: a\n-----------\na ${body.length}\n${body}`,
        "src.index",
      ),
    2,
  );
  codecError(() => decodePersistentIndex("a 0\n\nb 0\n", "src.index"), 3);
  codecError(() => decodePersistentIndex("---pullers---\nbob", "src.index"), 1);
});

Deno.test("encoders refuse what the format cannot hold", () => {
  const bad: IndexEntry[] = [
    { path: "a\nb", meta: null },
    { path: "", meta: null },
    { path: "trailing ", meta: null },
    { path: "a", meta: meta({ pusher: "a\nb" }) },
    { path: "a", meta: meta({ pusher: "" }) },
    { path: "a", meta: meta({ timestamp: 1.5 }) },
    { path: "a", meta: meta({ checksum: "" }) },
    { path: "a", meta: meta({ placeholder: "nope" }) },
    { path: "a", meta: meta({ extra: [["k: x", "v"]] }) },
    { path: "a", meta: meta({ extra: [["timestamp", "v"]] }) },
    { path: "a", meta: meta({ extra: [["k", "v\r"]] }) },
  ];
  for (const e of bad) {
    assert.throws(
      () => encodeUpdateIndex({ entries: [e], pullers: [] }),
      EncodeError,
      JSON.stringify(e),
    );
    assert.throws(() => encodePersistentIndex([e]), EncodeError, JSON.stringify(e));
  }
  assert.throws(() => encodeUpdateIndex({ entries: [], pullers: [""] }), EncodeError);
  assert.throws(() => encodeUpdateIndex({ entries: [], pullers: ["a\nb"] }), EncodeError);
});

const PATH_CHARS = SAFE_CHARS + "  /é日😀%#:$\t";

function randomMeta(r: Rng, pusherFirst: boolean): EntryMeta {
  const extraKeys = ["parts", "size", "mode", "k:x", "note", "x y", "😀"];
  const m = meta({
    placeholder: r.pick(["placeholder%1.0", "placeholder%2.0", "placeholder"]),
    pusher: r.pick(["alice", "bob", "carol d", "é"]),
    timestamp: r.int(-2e9, 4e9),
    checksum: r.string("0123456789abcdef", 1, 128),
    extra: Array.from(
      { length: r.int(0, 3) },
      () => [r.pick(extraKeys), r.string(PATH_CHARS.replace("\t", ""), 0, 8)],
    ),
  });
  if (r.chance(0.3)) {
    // Known keys at random places among the extras, which keep their order.
    const layout = m.extra.map(([k]) => k);
    for (const k of pusherFirst ? ["timestamp", "checksum"] : ["pusher", "timestamp", "checksum"]) {
      layout.splice(r.int(0, layout.length), 0, k);
    }
    if (pusherFirst) layout.unshift("pusher");
    const usual = ["pusher", "timestamp", "checksum", ...m.extra.map(([k]) => k)];
    if (layout.some((k, i) => k !== usual[i])) m.layout = layout;
  }
  return m;
}

function randomPath(r: Rng): string {
  let p = r.string(PATH_CHARS, 1, 30).replace(/\s+$/, "");
  if (p === "") p = "x";
  return p;
}

Deno.test("property: update indexes round-trip (600 random cases)", () => {
  const r = rng(0x5eed1);
  for (let i = 0; i < 600; i++) {
    const idx = {
      entries: Array.from({ length: r.int(0, 6) }, () => ({
        path: randomPath(r),
        meta: r.chance(0.1) ? null : randomMeta(r, false),
      })),
      pullers: Array.from({ length: r.int(0, 3) }, () => r.string(SAFE_CHARS + " é", 1, 10)),
    };
    const text = encodeUpdateIndex(idx);
    const back = decodeUpdateIndex(
      r.chance(0.5) ? text : new TextEncoder().encode(text),
      `case${i}`,
    );
    assert.deepEqual(back, idx, `case ${i}: ${JSON.stringify(text)}`);
    assert.equal(encodeUpdateIndex(back), text);
  }
});

Deno.test("update index head: pusher and pullers without the entries; pullers replaced in place", () => {
  const entries = `n 0\na ${BLOCK.length}\n${BLOCK}b ${BLOCK.length}\n${BLOCK}`;
  // the pusher is the first entry's with metadata
  assert.deepEqual(decodeUpdateHead(entries, "x"), { pusher: "alice", pullers: [] });
  assert.deepEqual(decodeUpdateHead("", "x"), { pusher: undefined, pullers: [] });
  for (
    const text of [
      entries + "---pullers---\nbob",
      entries + "---pullers---\n\nbob",
      entries + "\n---pullers---\nbob",
    ]
  ) {
    const full = decodeUpdateIndex(text, "x");
    assert.deepEqual(decodeUpdateHead(text, "x"), { pusher: "alice", pullers: full.pullers });
    const added = withUpdatePullers(text, [...full.pullers, "carol"], "x");
    assert.ok(added.startsWith(text.slice(0, text.indexOf("---pullers---"))), added);
    assert.deepEqual(decodeUpdateIndex(added, "x"), {
      entries: full.entries,
      pullers: ["bob", "carol"],
    });
  }
  // written as the encoder writes it
  const idx = decodeUpdateIndex(entries, "x");
  assert.equal(
    withUpdatePullers(new TextEncoder().encode(entries), ["bob", "carol"], "x"),
    encodeUpdateIndex({ ...idx, pullers: ["bob", "carol"] }),
  );
  assert.equal(withUpdatePullers(entries + "---pullers---\nbob", [], "x"), entries);
  assert.throws(() => withUpdatePullers(entries, ["a\nb"], "x"), EncodeError);
  // malformed: the same errors as the full decoder, where the walk meets them
  codecError(() => decodeUpdateHead("no-length\n", "src.index"), 1);
  codecError(() => decodeUpdateHead(`a ${BLOCK.length}\n${BLOCK}b 999\nshort\n`, "src.index"), 7);
  codecError(() => withUpdatePullers(`a ${BLOCK.length}\n${BLOCK}b x\n`, [], "src.index"), 7);
  codecError(() => decodeUpdateHead(entries + "\nb 0\n", "src.index"), 15);
});

Deno.test("property: update index heads agree with the full decoder (600 random cases)", () => {
  const r = rng(0x5eed4);
  for (let i = 0; i < 600; i++) {
    const idx = {
      entries: Array.from({ length: r.int(0, 6) }, () => ({
        path: randomPath(r),
        meta: r.chance(0.2) ? null : randomMeta(r, false),
      })),
      pullers: Array.from({ length: r.int(0, 3) }, () => r.string(SAFE_CHARS + " é", 1, 10)),
    };
    const text = encodeUpdateIndex(idx);
    const head = decodeUpdateHead(text, `case${i}`);
    assert.deepEqual(head, {
      pusher: idx.entries.find((e) => e.meta)?.meta?.pusher,
      pullers: idx.pullers,
    });
    const more = [...idx.pullers, "zed"];
    assert.equal(
      withUpdatePullers(text, more, `case${i}`),
      encodeUpdateIndex({ ...idx, pullers: more }),
    );
  }
});

Deno.test("property: persistent indexes round-trip (600 random cases)", () => {
  const r = rng(0x5eed2);
  for (let i = 0; i < 600; i++) {
    const entries: IndexEntry[] = Array.from({ length: r.int(0, 8) }, () => ({
      path: randomPath(r),
      meta: r.chance(0.1) ? null : randomMeta(r, true),
    }));
    const text = encodePersistentIndex(entries);
    const back = decodePersistentIndex(text, `case${i}`);
    // Decoding yields the entries regrouped: null metadata first, then by group.
    const keyOf = (e: IndexEntry) => e.meta ? `${e.meta.placeholder}\n${e.meta.pusher}` : "";
    const order = [...new Set(["", ...entries.map(keyOf)])];
    const expected = order.flatMap((k) => entries.filter((e) => keyOf(e) === k));
    assert.deepEqual(back, expected, `case ${i}: ${JSON.stringify(text)}`);
    assert.equal(encodePersistentIndex(back), text);
  }
});

Deno.test("large indexes come as UTF-8 chunks of whole characters that decode back", () => {
  // past 64 KB the text is cut into chunks; random paths and metadata put multi-byte
  // characters (é, 😀) across the cuts
  const r = rng(0x5eed6);
  const whole = new TextDecoder("utf-8", { fatal: true });
  const entries: IndexEntry[] = Array.from({ length: 2000 }, (_, i) => ({
    path: `${randomPath(r)}/${i}`,
    meta: r.chance(0.05) ? null : randomMeta(r, true),
  }));
  const idx = { entries, pullers: ["bob", "é"] };
  const update = encodeUpdateIndexBytes(idx);
  assert.ok(update.length > 2, `${update.length} chunk(s)`);
  for (const c of update) whole.decode(c);
  assert.deepEqual(decodeUpdateIndex(concatBytes(update), "big"), idx);
  assert.equal(whole.decode(concatBytes(update)), encodeUpdateIndex(idx));

  const persistent = encodePersistentIndexBytes(entries);
  assert.ok(persistent.length > 2, `${persistent.length} chunk(s)`);
  for (const c of persistent) whole.decode(c);
  const back = decodePersistentIndex(concatBytes(persistent), "big");
  assert.equal(back.length, entries.length);
  assert.deepEqual(
    new Map(back.map((e) => [e.path, e])),
    new Map(entries.map((e) => [e.path, e])),
  );
  // an empty index is one empty chunk
  assert.deepEqual(encodeUpdateIndexBytes({ entries: [], pullers: [] }), [new Uint8Array(0)]);
});

Deno.test("property: index entries read as their blocks alone read (600 random and corrupted cases)", () => {
  // Entries in their usual form are read without splitting their blocks into lines
  // (usualMeta); decodeMeta reads a block the general way. Both must agree on every block,
  // well-formed or not: the same metadata, or both a CodecError.
  const r = rng(0x5eed5);
  const outcome = (fn: () => EntryMeta | null): unknown => {
    try {
      return fn();
    } catch (e) {
      assert.ok(e instanceof CodecError, String(e));
      return "CodecError";
    }
  };
  const mutate = (block: string): string => {
    if (r.chance(0.3)) return block;
    const at = r.int(0, block.length - 1);
    return block.slice(0, at) +
      r.pick(["\n", " ", "x", "9", "", ": ", "-", "😀", "checksum: a\n", "---pullers---\n"]) +
      block.slice(at + r.int(0, 2));
  };
  for (let i = 0; i < 600; i++) {
    const m = randomMeta(r, true);
    if (r.chance(0.5)) delete m.layout;
    if (r.chance(0.3)) m.extra = [["base", r.pick(["-", SUM])]];
    // update index: the whole block follows its header
    const block = mutate(encodeMeta(m, "x"));
    const len = [...block].length;
    const general = outcome(() => decodeMeta(block, "x", "x"));
    const viaUpdate = outcome(() => decodeUpdateIndex(`p ${len}\n${block}`, "x").entries[0].meta);
    assert.deepEqual(viaUpdate, general, `case ${i}: ${JSON.stringify(block)}`);
    // persistent index: the group holds the placeholder and pusher lines
    const [head, ...rest] = encodePersistentIndex([{ path: "p", meta: m }]).split("\n");
    const group = mutate(`${head}\n${rest[0]}\n${rest[1]}\n${rest[2]}\n`);
    const body = mutate(rest.slice(4).join("\n"));
    const groupLines = group.split("\n").slice(1, -2).join("\n");
    const whole = `${group}p ${[...body].length}\n${body}`;
    if (!group.startsWith(`${GROUP_START}\n`) || !group.endsWith(`\n${GROUP_END}\n`)) continue;
    if (groupLines.includes(GROUP_START) || groupLines.includes(GROUP_END)) continue;
    const general2 = outcome(() => decodeMeta(`${groupLines}\n${body}`, "x", "x"));
    const viaPersistent = outcome(() => decodePersistentIndex(whole, "x")[0]?.meta ?? null);
    assert.deepEqual(viaPersistent, general2, `case ${i}: ${JSON.stringify(whole)}`);
  }
});

Deno.test("property: truncated or corrupted indexes never crash, they throw CodecError or decode", () => {
  const r = rng(0x5eed3);
  for (let i = 0; i < 400; i++) {
    const idx = {
      entries: Array.from(
        { length: r.int(1, 4) },
        () => ({ path: randomPath(r), meta: randomMeta(r, true) }),
      ),
      pullers: [],
    };
    let text = r.chance(0.5) ? encodeUpdateIndex(idx) : encodePersistentIndex(idx.entries);
    const at = r.int(0, text.length - 1);
    text = r.chance(0.5)
      ? text.slice(0, at)
      : text.slice(0, at) + r.pick(["\n", " ", "x", "9", ""]) + text.slice(at + 1);
    for (const decode of [decodeUpdateIndex, decodePersistentIndex]) {
      try {
        decode(text, "fuzz");
      } catch (e) {
        assert.ok(e instanceof CodecError, `case ${i}: ${e}`);
        assert.ok(
          e.line >= 1 && e.line <= text.split("\n").length + 1,
          `case ${i}: line ${e.line}`,
        );
      }
    }
  }
});

Deno.test("relay names: parse and format", () => {
  assert.deepEqual(parseRelayName(".0.index"), { kind: "index", page: "0" });
  assert.deepEqual(parseRelayName(".docs.1795372311.index"), {
    kind: "update-index",
    page: "docs",
    time: 1795372311,
  });
  assert.deepEqual(parseRelayName(".A_B.17.data"), { kind: "update-data", page: "A_B", time: 17 });
  assert.deepEqual(parseRelayName(".0.lock"), { kind: "lock", page: "0" });
  for (
    const n of [
      "0.index",
      ".0.x.index",
      ".a.b.c.index",
      "..index",
      ".0.12.lock",
      ".0.index.tmp",
      ".0.1.2.data",
      "x",
    ]
  ) {
    assert.equal(parseRelayName(n), null, n);
  }
  assert.equal(indexName("0"), ".0.index");
  assert.equal(updateIndexName("0", 1795372303), ".0.1795372303.index");
  assert.equal(updateDataName("media", 5), ".media.5.data");
  assert.equal(lockName("docs"), ".docs.lock");
  assert.throws(() => indexName("a.b"), EncodeError);
  assert.throws(() => lockName(""), EncodeError);
  assert.throws(() => updateDataName("a", -1), EncodeError);
  const r = rng(7);
  for (let i = 0; i < 300; i++) {
    const page = r.string(SAFE_CHARS.replace(".", "") + " é", 1, 12);
    const time = r.int(0, 2 ** 40);
    assert.deepEqual(parseRelayName(updateIndexName(page, time)), {
      kind: "update-index",
      page,
      time,
    });
    assert.deepEqual(parseRelayName(updateDataName(page, time)), {
      kind: "update-data",
      page,
      time,
    });
    assert.deepEqual(parseRelayName(indexName(page)), { kind: "index", page });
    assert.deepEqual(parseRelayName(lockName(page)), { kind: "lock", page });
  }
});

Deno.test("pages: topdir naming as the reference describes", () => {
  assert.equal(pageOf("A/B/f", 1), "A");
  assert.equal(pageOf("f", 1), "0");
  assert.equal(pageOf("A/B/f", 2), "A_B");
  assert.equal(pageOf("A/f", 2), "0");
  assert.equal(pageOf("A.x/B.y/C/f", 2), "A_x_B_y");
  assert.equal(pageOf("A/B/f", 0), "0");
  // Collisions are visible through the prefix.
  assert.equal(pageOf("A_B/C/f", 2), pageOf("A/B_C/f", 2));
  assert.notEqual(pagePrefix("A_B/C/f", 2), pagePrefix("A/B_C/f", 2));
  assert.equal(pagePrefix("A/f", 2), null);
  // the first `levels` directories of the path, empty names included
  const r = rng(0x5eed6);
  for (let i = 0; i < 500; i++) {
    const path = r.string("ab/", 0, 10);
    const levels = r.int(0, 4);
    const dirs = path.split("/").slice(0, -1);
    const want = levels < 1 || dirs.length < levels ? null : dirs.slice(0, levels).join("/");
    assert.equal(pagePrefix(path, levels), want, `${JSON.stringify(path)} ${levels}`);
  }
});
