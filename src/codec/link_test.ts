import assert from "node:assert/strict";
import { CodecError, EncodeError } from "./errors.ts";
import {
  decodeLink,
  type DirInfo,
  encodeLink,
  type FileLink,
  formatNodeAddress,
  isNodeKey,
  linkFileName,
  nameOfLinkFile,
  parseNodeAddress,
} from "./link.ts";
import { rng, SAFE_CHARS, TRICKY_CHARS } from "../../tests/helpers/prng.ts";

const ORIGINAL = `rfc-0959.txt 147316 1000 1044844761
server 192.168.0.2:21 61/47/030210-033921-rfc-0959.txt
server 192.168.0.3:21 61/47/030210-033921-rfc-0959.txt
`;

function codecError(fn: () => unknown, line: number): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof CodecError, String(e));
    assert.equal(e.source, "RFCs/x#");
    assert.equal(e.line, line, e.message);
    return true;
  });
}

Deno.test("link: the original cluster's link file", () => {
  const link = decodeLink(ORIGINAL, "RFCs/rfc-0959.txt#");
  assert.deepEqual(link, {
    kind: "file",
    name: "rfc-0959.txt",
    size: 147316,
    uid: 1000,
    mtime: 1044844761,
    copies: [
      { node: "192.168.0.2:21", path: "61/47/030210-033921-rfc-0959.txt" },
      { node: "192.168.0.3:21", path: "61/47/030210-033921-rfc-0959.txt" },
    ],
    extra: [],
  });
  assert.equal(encodeLink(link), ORIGINAL);
  assert.deepEqual(decodeLink(ORIGINAL.trimEnd(), "x"), link);
});

Deno.test("link: blanks in names and node paths, IPv6 and URL node keys, no copies, extras", () => {
  const link: FileLink = {
    kind: "file",
    name: "New Folder 100%.txt",
    size: 0,
    uid: 0,
    mtime: -5,
    copies: [
      { node: "[::1]:2121", path: "aa/bb/260101-000000-New Folder 100%.txt" },
      { node: "file:///srv/node%201", path: "x" },
      { node: "node-a.example:21", path: "y" },
    ],
    extra: ["sha512 abc", "future line with: anything"],
  };
  const text = encodeLink(link);
  assert.equal(text.split("\n")[0], "New%20Folder%20100%25.txt 0 0 -5");
  assert.deepEqual(decodeLink(text, "x"), link);
  const empty: FileLink = { ...link, copies: [], extra: [] };
  assert.deepEqual(decodeLink(encodeLink(empty), "x"), empty);
});

Deno.test("dir info: format and extension lines", () => {
  const dir: DirInfo = { kind: "dir", uid: 1005, mtime: 1795372303, extra: [] };
  assert.equal(encodeLink(dir), "dir 1005 1795372303\n");
  assert.deepEqual(decodeLink("dir 1005 1795372303\n", "x"), dir);
  assert.deepEqual(decodeLink("dir 1 2\nmode 755\n", "x"), {
    kind: "dir",
    uid: 1,
    mtime: 2,
    extra: ["mode 755"],
  });
  // A file named "dir" is a file link (4 fields).
  assert.equal(decodeLink("dir 1 2 3\n", "x").kind, "file");
});

Deno.test("link: malformed files throw CodecError naming the line", () => {
  const src = "RFCs/x#";
  codecError(() => decodeLink("", src), 1);
  codecError(() => decodeLink("a 1 2\n", src), 1);
  codecError(() => decodeLink("a b 2 3\n", src), 1);
  codecError(() => decodeLink("a 1 -2 3\n", src), 1);
  codecError(() => decodeLink("a 1 2 3 4\n", src), 1);
  codecError(() => decodeLink("a 1 2 3\nserver 1.2.3.4:21\n", src), 2);
  codecError(() => decodeLink("a 1 2 3\nserver 1.2.3.4 p\n", src), 2);
  codecError(() => decodeLink("a 1 2 3\nserver 1.2.3.4:99999 p\n", src), 2);
  codecError(() => decodeLink("a 1 2 3\nserver [zz]:21 p\n", src), 2);
  codecError(() => decodeLink("a 1 2 3\nserver h:21 p\n\n", src), 3);
  codecError(() => decodeLink("a 1 2 3\nserver h:21 p\r\n", src), 2);
  codecError(() => decodeLink("dir x 2\n", src), 1);
  codecError(() => decodeLink("dir 1 2\n\n", src), 2);
  codecError(() => decodeLink(new Uint8Array([0x61, 0x0a, 0xff]), src), 2);
});

Deno.test("link: encoder refuses what the format cannot hold", () => {
  const base: FileLink = {
    kind: "file",
    name: "a",
    size: 1,
    uid: 1,
    mtime: 1,
    copies: [],
    extra: [],
  };
  for (
    const bad of [
      { ...base, name: "" },
      { ...base, size: -1 },
      { ...base, uid: 1.5 },
      { ...base, copies: [{ node: "no port", path: "p" }] },
      { ...base, copies: [{ node: "h:21", path: "" }] },
      { ...base, copies: [{ node: "h:21", path: "a\nb" }] },
      { ...base, extra: ["server h:21 p"] },
      { ...base, extra: [""] },
    ]
  ) assert.throws(() => encodeLink(bad), EncodeError, JSON.stringify(bad));
});

Deno.test("node addresses and link file names", () => {
  assert.deepEqual(parseNodeAddress("192.168.0.2:21"), { host: "192.168.0.2", port: 21 });
  assert.deepEqual(parseNodeAddress("[::1]:21"), { host: "::1", port: 21 });
  assert.deepEqual(parseNodeAddress("node-1.lan:2121"), { host: "node-1.lan", port: 2121 });
  for (const bad of ["::1:21", "h", "h:0", "h:65536", "[h]:21", "h_x:21", ":21", "h:21x"]) {
    assert.equal(parseNodeAddress(bad), null, bad);
  }
  assert.equal(formatNodeAddress({ host: "::1", port: 21 }), "[::1]:21");
  assert.equal(formatNodeAddress({ host: "10.0.0.1", port: 2100 }), "10.0.0.1:2100");
  assert.throws(() => formatNodeAddress({ host: "a b", port: 21 }), EncodeError);
  assert.ok(isNodeKey("file:///srv/n1"));
  assert.ok(!isNodeKey("file:///srv/n 1"));
  assert.equal(linkFileName("New Folder#"), "New%20Folder%23#");
  assert.equal(nameOfLinkFile("New%20Folder%23#"), "New Folder#");
  assert.equal(nameOfLinkFile("plain"), null);
  assert.equal(nameOfLinkFile("#"), null);
});

Deno.test("property: link and dir info files round-trip (600 random cases)", () => {
  const r = rng(0x11a);
  const nodes = ["10.0.0.1:21", "[fe80::1]:2121", "node-b:21", "file:///tmp/n%20x"];
  for (let i = 0; i < 600; i++) {
    const info: FileLink | DirInfo = r.chance(0.2)
      ? { kind: "dir", uid: r.int(0, 1e6), mtime: r.int(-1e9, 4e9), extra: [] }
      : {
        kind: "file",
        name: r.string(SAFE_CHARS + TRICKY_CHARS.replace("/", ""), 1, 20),
        size: r.int(0, 2 ** 50),
        uid: r.int(0, 1e6),
        mtime: r.int(-1e9, 4e9),
        copies: Array.from({ length: r.int(0, 3) }, () => ({
          node: r.pick(nodes),
          path: r.string(SAFE_CHARS + " /é%#", 1, 30),
        })),
        extra: [],
      };
    if (r.chance(0.2)) info.extra.push("x-" + r.string(SAFE_CHARS + " :", 0, 10));
    const text = encodeLink(info);
    assert.deepEqual(decodeLink(text, `c${i}`), info, text);
    assert.equal(encodeLink(decodeLink(text, `c${i}`)), text);
  }
});
