/**
 * What hop writes to a folder relay, read back by an independent reader in
 * Python that follows the Escale 0.7 format notes (headers split at the last
 * space, N characters of metadata, group headers in the bzip2 persistent
 * index, a tar.bz2 read by `tarfile`), checking every archived file against
 * its index checksum, the same way an Escale puller would consume it.
 */
import { makeDirs, withTempDir } from "./helpers/temp.ts";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { closeSync, openSync, syncPass } from "../src/relay/sync.ts";
import { folderCfg, recorder } from "./relay_helpers.ts";

const READER = String.raw`
import bz2, hashlib, io, json, os, re, sys, tarfile
relay, out = sys.argv[1], sys.argv[2]

def entries(text, grouped):
    res, group, i = [], [], 0
    lines = text.split("\n")
    pos = 0
    def readline():
        nonlocal pos
        if pos >= len(text):
            return None
        j = text.find("\n", pos)
        if j < 0:
            j = len(text)
        line = text[pos:j]
        pos = j + 1
        return line
    while True:
        line = readline()
        if line is None or line == "":
            break
        if line == "---pullers---":
            pos = len(text)
            break
        if grouped and line == "---group---":
            group = []
            while True:
                g = readline()
                if g == "-----------":
                    break
                group.append(g)
            continue
        path, n = line.rsplit(None, 1)
        body = text[pos:pos + int(n)]
        pos += int(n)
        meta = group + body.split("\n")[:-1]
        assert meta[0].startswith("placeholder"), meta
        assert meta[-1] == "---pullers---", meta
        kv = dict(l.split(": ", 1) for l in meta[1:-1])
        res.append((path, kv))
    return res

report = {"pages": {}}
for name in sorted(os.listdir(relay)):
    m = re.match(r"^\.([^.]+)\.index$", name)
    if m:
        text = bz2.decompress(open(os.path.join(relay, name), "rb").read()).decode("utf-8")
        report["pages"].setdefault(m.group(1), {})["persistent"] = sorted(p for p, _ in entries(text, True))
for name in sorted(os.listdir(relay)):
    m = re.match(r"^\.([^.]+)\.(\d+)\.index$", name)
    if not m:
        continue
    page, t = m.group(1), m.group(2)
    ents = entries(open(os.path.join(relay, name), encoding="utf-8").read(), False)
    tar = tarfile.open(os.path.join(relay, ".%s.%s.data" % (page, t)), "r:bz2")
    dest = os.path.join(out, page)
    tar.extractall(dest)
    for path, kv in ents:
        data = open(os.path.join(dest, path), "rb").read()
        assert hashlib.sha512(data).hexdigest() == kv["checksum"], path
        assert int(tar.getmember(path).mtime) == int(kv["timestamp"]), path
    report["pages"][page]["update"] = sorted(p for p, _ in ents)
    report["pages"][page]["pusher"] = sorted(set(kv["pusher"] for _, kv in ents))
print(json.dumps(report))
`;

Deno.test("an Escale-style reader consumes what hop pushes (topdir pages, spaces, old mtimes)", async () => {
  await withTempDir(async (dir) => {
    const [relay, a, out] = await makeDirs(dir, ["relay", "a", "out"]);
    await mkdir(join(a, "docs", "deep"), { recursive: true });
    await writeFile(join(a, "top file.txt"), "top");
    await utimes(join(a, "top file.txt"), 1_577_934_245, 1_577_934_245);
    await writeFile(join(a, "docs", "deep", "ü name.md"), "unicode");
    await writeFile(join(a, "docs", "b.bin"), crypto.getRandomValues(new Uint8Array(50_000)));
    const ctx = await openSync(folderCfg(a, relay, "alice", { pageDepth: 1 }), recorder());
    try {
      assert.equal((await syncPass(ctx, { first: true })).pushed, 3);
    } finally {
      await closeSync(ctx);
    }
    const report = JSON.parse(
      execFileSync("/usr/bin/python3", ["-c", READER, relay, out], { encoding: "utf8" }),
    );
    assert.deepEqual(report, {
      pages: {
        "0": { persistent: ["top file.txt"], update: ["top file.txt"], pusher: ["alice"] },
        docs: {
          persistent: ["docs/b.bin", "docs/deep/ü name.md"],
          update: ["docs/b.bin", "docs/deep/ü name.md"],
          pusher: ["alice"],
        },
      },
    });
  });
});

globalThis.addEventListener("unload", () => closePool());
