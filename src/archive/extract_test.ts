import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { HopError } from "../errors.ts";
import { extractArchive, UnsafeEntryError } from "./extract.ts";
import {
  bytesStream,
  CODECS,
  fileStream,
  listTree,
  PYTHON,
  run,
  withTempDir,
} from "../../tests/archive_helpers.ts";

/** An entry for {@link pyArchive}: Python's tarfile writes what modern-tar would refuse. */
interface PyEntry {
  name: string;
  type?: "file" | "dir" | "symlink" | "link" | "fifo" | "chr" | "blk";
  data?: string;
  /** Size of a file of zeros (instead of data). */
  zeros?: number;
  /** Size of a file of random bytes (instead of data). */
  random?: number;
  linkname?: string;
  mode?: number;
  mtime?: number;
}

const PY_WRITER = `
import io, json, os, sys, tarfile
spec = json.loads(sys.argv[1])
types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
         "link": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE,
         "blk": tarfile.BLKTYPE}
class Zeros(io.RawIOBase):
    def __init__(self, n): self.n = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as t:
    for e in spec:
        ti = tarfile.TarInfo(e["name"])
        ti.type = types[e.get("type", "file")]
        ti.mode = e.get("mode", 0o644)
        ti.mtime = e.get("mtime", 1577934245)
        ti.linkname = e.get("linkname", "")
        if ti.type == tarfile.REGTYPE:
            if "zeros" in e:
                ti.size = e["zeros"]; t.addfile(ti, io.BufferedReader(Zeros(e["zeros"])))
            elif "random" in e:
                ti.size = e["random"]; t.addfile(ti, io.BytesIO(os.urandom(e["random"])))
            else:
                data = e.get("data", "").encode()
                ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        else:
            t.addfile(ti)
`;

/**
 * Writes a tar.bz2 made by Python's tarfile (piped through the bzip2 CLI, or `compress`:
 * `zstd -q -c`, `cat`) to `dest`.
 */
async function pyArchive(dest: string, entries: PyEntry[], compress = "bzip2 -c"): Promise<void> {
  const arg = JSON.stringify(entries).replaceAll("'", "'\\''");
  await run("sh", ["-c", `${PYTHON} -c '${PY_WRITER}' '${arg}' | ${compress} > '${dest}'`]);
}

/** Every path under `dir` (recursive), for "nothing else was created" checks. */
async function allPaths(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

interface Hostile {
  what: string;
  entries: PyEntry[];
  /** The entry the error must name, and the reason. */
  entry: string;
  reason: RegExp;
  opts?: { maxRatio?: number; maxBytes?: number };
  /** Files expected in the target afterwards (entries before the refused one). */
  left?: string[];
  /** Prepare the target before extracting. */
  setup?: (target: string, outside: string) => Promise<void>;
}

const HOSTILE: Hostile[] = [
  {
    what: "dot-dot",
    entries: [{ name: "ok.txt", data: "ok" }, { name: "../evil", data: "x" }],
    entry: "../evil",
    reason: /path leaves the target folder/,
    left: ["ok.txt"],
  },
  {
    what: "absolute path",
    entries: [{ name: "/tmp/hop-abs-evil", data: "x" }],
    entry: "/tmp/hop-abs-evil",
    reason: /absolute path/,
  },
  {
    what: "dot-dot in the middle",
    entries: [{ name: "a/../../x", data: "x" }],
    entry: "a/../../x",
    reason: /path leaves the target folder/,
  },
  {
    what: "backslash",
    entries: [{ name: "..\\..\\evil", data: "x" }],
    entry: "..\\..\\evil",
    reason: /backslash/,
  },
  {
    what: "symlink to /etc then a file through it",
    entries: [{ name: "etc", type: "symlink", linkname: "/etc" }, {
      name: "etc/hop-evil",
      data: "x",
    }],
    entry: "etc",
    reason: /symbolic links are not extracted/,
  },
  {
    what: "relative symlink out",
    entries: [{ name: "up", type: "symlink", linkname: "../outside" }],
    entry: "up",
    reason: /symbolic links are not extracted/,
  },
  {
    what: "hard link out",
    entries: [{ name: "pw", type: "link", linkname: "/etc/passwd" }],
    entry: "pw",
    reason: /hard links are not extracted/,
  },
  {
    what: "fifo",
    entries: [{ name: "pipe", type: "fifo" }],
    entry: "pipe",
    reason: /FIFOs are not extracted/,
  },
  {
    what: "character device",
    entries: [{ name: "null", type: "chr" }],
    entry: "null",
    reason: /device files are not extracted/,
  },
  {
    what: "block device",
    entries: [{ name: "sda", type: "blk" }],
    entry: "sda",
    reason: /device files are not extracted/,
  },
  {
    what: "a symlink already in the target as parent",
    entries: [{ name: "pre/pwned", data: "x" }],
    entry: "pre/pwned",
    reason: /'pre' in the target is a symbolic link/,
    setup: (target, outside) => symlink(outside, join(target, "pre")),
  },
  {
    what: "a file in the way of a folder",
    entries: [{ name: "f/x", data: "x" }],
    entry: "f/x",
    reason: /'f' in the target is not a folder/,
    setup: (target) => writeFile(join(target, "f"), "keep"),
    left: ["f"],
  },
  {
    what: "an existing file without overwrite",
    entries: [{ name: "keep.txt", data: "new" }],
    entry: "keep.txt",
    reason: /already exists/,
    setup: (target) => writeFile(join(target, "keep.txt"), "old"),
    left: ["keep.txt"],
  },
  {
    what: "the same file twice",
    entries: [{ name: "d.txt", data: "1" }, { name: "d.txt", data: "2" }],
    entry: "d.txt",
    reason: /appears twice/,
    left: ["d.txt"],
  },
  {
    what: "more bytes than maxBytes",
    entries: [{ name: "a", zeros: 1000 }, { name: "b", zeros: 1000 }, { name: "c", zeros: 1000 }],
    entry: "c",
    reason: /more than the 2500 bytes allowed/,
    opts: { maxBytes: 2500 },
    left: ["a", "b"],
  },
  {
    what: "a decompression bomb (200 MB of zeros)",
    entries: [{ name: "small.txt", data: "hi" }, { name: "bomb", zeros: 200 * 1024 * 1024 }],
    entry: "bomb",
    reason: /expands more than 100 times/,
    opts: { maxRatio: 100 },
    left: ["small.txt"],
  },
];

// zstd and plain tar archives (hop-only relays' `compression`), found by their first bytes,
// meet the same refusals
const FORMATS = [
  ...CODECS.map(({ name, codec }) => ({ name, codec, compress: "bzip2 -c" })),
  { name: "zstd CLI, detected", codec: {}, compress: "zstd -q -c" },
  { name: "plain tar, detected", codec: {}, compress: "cat" },
];

for (const { name: codecName, codec, compress } of FORMATS) {
  // a plain tar expands to its own size: no bomb to refuse
  for (const h of HOSTILE.filter((h) => compress !== "cat" || !h.opts?.maxRatio)) {
    Deno.test(`extract (${codecName}): refuses ${h.what}`, async () => {
      await withTempDir(async (dir) => {
        const archive = join(dir, "a.tar.bz2");
        const target = join(dir, "target");
        const outside = join(dir, "outside");
        await mkdir(target);
        await mkdir(outside);
        await pyArchive(archive, h.entries, compress);
        await h.setup?.(target, outside);
        const before = await allPaths(target);
        const err = await extractArchive(await fileStream(archive), target, {
          ...codec,
          ...h.opts,
        }).then(() => undefined, (e) => e);
        assert.ok(err instanceof UnsafeEntryError, `expected a refusal, got ${err}`);
        assert.equal(err.entry, h.entry);
        assert.match(err.reason, h.reason);
        assert.ok(err.message.startsWith(`archive entry '${h.entry}' refused: `), err.message);
        // Nothing outside the target, no temp file, only the entries before the refused one.
        assert.deepEqual((await readdir(dir)).sort(), ["a.tar.bz2", "outside", "target"].sort());
        assert.deepEqual(await readdir(outside), []);
        const after = await allPaths(target);
        assert.ok(!after.some((p) => p.includes(".hop-tmp-")), `temp left: ${after}`);
        assert.deepEqual(after, [...new Set([...before, ...(h.left ?? [])])].sort());
        if (h.what.includes("without overwrite")) {
          assert.equal(await readFile(join(target, "keep.txt"), "utf8"), "old");
        }
      });
    });
  }
}

for (const { name: codecName, codec } of CODECS) {
  Deno.test(`extract (${codecName}): a truncated archive leaves no half-written file`, async () => {
    await withTempDir(async (dir) => {
      const archive = join(dir, "a.tar.bz2");
      await pyArchive(archive, [{ name: "first.txt", data: "one" }, {
        name: "big.txt",
        random: 2 * 1024 * 1024,
      }]);
      const whole = await readFile(archive);
      // Cut the compressed stream, and (separately) a valid bzip2 of a cut tar.
      await run("sh", ["-c", `bzip2 -dc '${archive}' > '${join(dir, "whole.tar")}'`]);
      const tarBytes = await readFile(join(dir, "whole.tar"));
      await writeFile(join(dir, "cut.tar"), tarBytes.subarray(0, 512 * 4 + 1024 * 1024));
      await run("sh", ["-c", `bzip2 -c '${join(dir, "cut.tar")}' > '${join(dir, "cut.tbz")}'`]);
      const sources: [string, () => Promise<ReadableStream<Uint8Array>>][] = [
        [
          "cut compressed stream",
          () => Promise.resolve(bytesStream(whole.subarray(0, whole.length - 200))),
        ],
        ["cut tar", () => fileStream(join(dir, "cut.tbz"))],
      ];
      for (const [what, source] of sources) {
        const target = join(dir, `t-${what.replaceAll(" ", "-")}`);
        await assert.rejects(
          extractArchive(await source(), target, codec),
          (e: Error) => e instanceof HopError && !(e instanceof UnsafeEntryError),
          what,
        );
        const left = await allPaths(target);
        assert.ok(!left.includes("big.txt"), `${what}: ${left}`);
        assert.ok(!left.some((p) => p.includes(".hop-tmp-")), `${what}: temp left: ${left}`);
      }
    });
  });

  Deno.test(`extract (${codecName}): overwrite replaces files and links, not their targets`, async () => {
    await withTempDir(async (dir) => {
      const archive = join(dir, "a.tar.bz2");
      const target = join(dir, "target");
      await mkdir(target);
      await writeFile(join(dir, "victim"), "untouched");
      await writeFile(join(target, "a.txt"), "old");
      await symlink(join(dir, "victim"), join(target, "b.txt"));
      await pyArchive(archive, [
        { name: "a.txt", data: "new a", mode: 0o600, mtime: 1000000000 },
        { name: "b.txt", data: "new b" },
      ]);
      const res = await extractArchive(await fileStream(archive), target, {
        ...codec,
        overwrite: true,
      });
      assert.deepEqual(res.entries.map((e) => e.path), ["a.txt", "b.txt"]);
      assert.equal(await readFile(join(target, "a.txt"), "utf8"), "new a");
      assert.equal(await readFile(join(target, "b.txt"), "utf8"), "new b");
      assert.equal(await readFile(join(dir, "victim"), "utf8"), "untouched");
      const st = await stat(join(target, "a.txt"));
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(Math.floor(st.mtimeMs / 1000), 1000000000);
    });
  });

  Deno.test(`extract (${codecName}): filter, onEntry, ./ prefixes, directory attributes`, async () => {
    await withTempDir(async (dir) => {
      const archive = join(dir, "a.tar.bz2");
      const target = join(dir, "new", "target"); // created
      await pyArchive(archive, [
        { name: "./", type: "dir", mode: 0o755 },
        { name: "./keep", type: "dir", mode: 0o700, mtime: 1200000000 },
        { name: "./keep/yes.txt", data: "yes", mtime: 1300000000 },
        { name: "./keep/no.txt", data: "no" },
      ]);
      const seen: string[] = [];
      const res = await extractArchive(await fileStream(archive), target, {
        ...codec,
        filter: (p) => !p.endsWith("no.txt"),
        onEntry: (e) => seen.push(`${e.type}:${e.path}:${e.size}`),
      });
      assert.deepEqual(seen, ["directory:keep:0", "file:keep/yes.txt:3"]);
      assert.deepEqual(res.skipped, ["keep/no.txt"]);
      assert.equal(res.bytes, 3);
      const tree = await listTree(target);
      assert.deepEqual([...tree.keys()], ["keep", "keep/yes.txt"]);
      assert.equal(tree.get("keep")!.mode, 0o700);
      assert.equal(tree.get("keep")!.mtime, 1200000000);
      assert.equal(tree.get("keep/yes.txt")!.mtime, 1300000000);
    });
  });
}

Deno.test("extract: fresh staging folder, checksums as written, mtimes from the caller", async () => {
  await withTempDir(async (dir) => {
    const archive = join(dir, "a.tar.bz2");
    const target = join(dir, "staging");
    await mkdir(target);
    await pyArchive(archive, [
      { name: "top.txt", data: "top", mode: 0o640, mtime: 1000000000 },
      { name: "d/e/deep.txt", data: "deep", mtime: 1100000000 },
    ]);
    const res = await extractArchive(await fileStream(archive), target, {
      fresh: true,
      checksum: "sha512",
      mtimeOf: (p) => p === "d/e/deep.txt" ? 1500000000 : undefined,
      sync: false,
    });
    const sha = (s: string) => createHash("sha512").update(s).digest("hex");
    assert.deepEqual(
      res.entries.filter((e) => e.type === "file").map((e) => [e.path, e.checksum, e.mtime]),
      [["top.txt", sha("top"), 1000000000], ["d/e/deep.txt", sha("deep"), 1500000000]],
    );
    const tree = await listTree(target);
    assert.equal(tree.get("top.txt")!.mode, 0o640);
    assert.equal(tree.get("top.txt")!.mtime, 1000000000);
    assert.equal(tree.get("d/e/deep.txt")!.mtime, 1500000000);
    assert.ok(![...tree.keys()].some((p) => p.includes(".hop-tmp-")));
    // a fresh extraction that fails removes the file it was writing
    const cut = join(dir, "cut.tbz");
    await pyArchive(join(dir, "big.tbz"), [{ name: "ok.txt", data: "ok" }, {
      name: "big.bin",
      random: 1024 * 1024,
    }]);
    await run("sh", [
      "-c",
      `bzip2 -dc '${join(dir, "big.tbz")}' | head -c 600000 | bzip2 -c > '${cut}'`,
    ]);
    const t2 = join(dir, "staging2");
    await mkdir(t2);
    await assert.rejects(extractArchive(await fileStream(cut), t2, { fresh: true }));
    assert.deepEqual(await allPaths(t2), ["ok.txt"]);
  });
});

Deno.test("extract: rejects nonsense limits", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      extractArchive(bytesStream(new Uint8Array(0)), dir, { maxRatio: 0 }),
      /maxRatio must be a positive number/,
    );
  });
});
