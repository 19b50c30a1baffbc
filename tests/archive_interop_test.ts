/**
 * Interoperability of hop's update archives (tar layer + bzip2 engine) with the tools
 * Escale peers use: our archives pass `bzip2 -t`, GNU tar and Python's tarfile; we read
 * archives from GNU tar (bzip2, pbzip2, lbzip2), Python's tarfile and the Escale 0.7 fixtures.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { extractArchive } from "../src/archive/extract.ts";
import { readArchive, writeArchiveFile } from "../src/archive/tar.ts";
import {
  CODECS,
  fileStream,
  listTree,
  makeSampleTree,
  PYTHON,
  run,
  type TreeNode,
  withTempDir,
} from "./archive_helpers.ts";

const FIXTURES = fileURLToPath(new URL("../../shared/fixtures/escale-0.7/", import.meta.url));

/** Asserts two trees hold the same paths, types, contents, modes and mtimes. */
function assertSameTree(got: Map<string, TreeNode>, want: Map<string, TreeNode>, what: string) {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), what);
  for (const [p, node] of want) assert.deepEqual(got.get(p), node, `${what}: ${p}`);
}

const PY_LIST = `
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:bz2") as t:
    for m in t:
        h = hashlib.sha256(t.extractfile(m).read()).hexdigest() if m.isfile() else None
        out.append([m.name, "dir" if m.isdir() else "file" if m.isfile() else "other",
                    m.mode, m.mtime, h])
print(json.dumps(out))
`;

for (const { name, codec } of CODECS) {
  Deno.test(`interop (${name}): bzip2 -t, GNU tar and Python's tarfile read our archives`, async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, "src");
      await mkdir(src);
      const files = await makeSampleTree(src);
      const archive = join(dir, "our.tar.bz2");
      await writeArchiveFile(archive, { root: src, files, ...codec });
      const want = await listTree(src);

      await run("bzip2", ["-t", archive]);

      const gnu = join(dir, "gnu");
      await mkdir(gnu);
      await run("tar", ["-xjf", archive, "-C", gnu]);
      assertSameTree(await listTree(gnu), want, "GNU tar");

      const listed = JSON.parse(await run(PYTHON, ["-c", PY_LIST, archive])) as [
        string,
        string,
        number,
        number,
        string | null,
      ][];
      const names = listed.map((e) => e[0]);
      assert.deepEqual([...names].sort(), [...want.keys()].sort());
      // Each folder is listed once, before its contents.
      names.forEach((p, i) => {
        const parent = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : undefined;
        if (parent) assert.ok(names.indexOf(parent) >= 0 && names.indexOf(parent) < i, p);
      });
      for (const [path, type, mode, mtime, sha] of listed) {
        const node = want.get(path)!;
        assert.equal(type === "dir" ? "directory" : type, node.type, path);
        assert.equal(mode, node.mode, path);
        assert.equal(mtime, node.mtime, path);
        if (node.content) assert.equal(sha, sha256(node.content), path);
      }
    });
  });

  Deno.test(`interop (${name}): we read GNU tar (bzip2, pbzip2, lbzip2) and Python archives`, async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, "src");
      await mkdir(src);
      await makeSampleTree(src);
      const want = await listTree(src);
      const makers: [string, string[]][] = [
        ["tar -cjf", ["tar", "-C", src, "-cjf", "%OUT%", "."]],
        ["tar -I pbzip2", ["tar", "-C", src, "-I", "pbzip2", "-cf", "%OUT%", "."]],
        ["tar -I lbzip2", ["tar", "-C", src, "-I", "lbzip2", "-cf", "%OUT%", "."]],
        ["tar --format=pax -cjf", ["tar", "-C", src, "--format=pax", "-cjf", "%OUT%", "."]],
        ["python w:bz2", [
          PYTHON,
          "-c",
          "import sys, tarfile, os\n" +
          "with tarfile.open(sys.argv[1], 'w:bz2') as t:\n" +
          "    for n in sorted(os.listdir(sys.argv[2])): t.add(os.path.join(sys.argv[2], n), n)",
          "%OUT%",
          src,
        ]],
      ];
      for (const [what, cmd] of makers) {
        const archive = join(dir, `${what.replace(/\W+/g, "_")}.tbz`);
        await run(cmd[0], cmd.slice(1).map((a) => a === "%OUT%" ? archive : a));
        const out = join(dir, `out_${what.replace(/\W+/g, "_")}`);
        const res = await extractArchive(await fileStream(archive), out, codec);
        assert.equal(res.files, [...want.values()].filter((n) => n.type === "file").length, what);
        assertSameTree(await listTree(out), want, what);
      }
    });
  });

  Deno.test(`interop (${name}): the Escale 0.7 fixtures' update archives hold the trees`, async () => {
    await withTempDir(async (dir) => {
      for (const c of ["case1", "case2"]) {
        const relay = join(FIXTURES, c, "relay");
        const out = join(dir, c);
        const datas = (await readdir(relay)).filter((n) => n.endsWith(".data")).sort();
        assert.ok(datas.length > 0, `${c}: no .data`);
        const mtimes = new Map<string, number>();
        for (const d of datas) {
          for await (const e of readArchive(await fileStream(join(relay, d)), codec)) {
            if (e.type === "file") mtimes.set(e.path, Math.floor(e.mtime));
            await e.body.cancel();
          }
          await extractArchive(await fileStream(join(relay, d)), out, codec);
        }
        const tree = await listTree(join(FIXTURES, c, "tree"));
        const got = await listTree(out);
        const files = (m: Map<string, TreeNode>) =>
          [...m].filter(([, n]) => n.type === "file").map(([p]) => p).sort();
        assert.deepEqual(files(got), files(tree), c);
        for (const p of files(tree)) {
          assert.deepEqual(got.get(p)!.content, tree.get(p)!.content, `${c}: ${p}`);
          // The mtime that counts is the archive's (git does not keep the tree's).
          assert.equal(got.get(p)!.mtime, mtimes.get(p), `${c}: ${p}`);
          assert.equal(got.get(p)!.mode, 0o644, `${c}: ${p}`);
        }
      }
      const hello = (await listTree(join(dir, "case1"))).get("hello.txt")!;
      assert.equal(hello.mtime, 1577934245);
      assert.equal(
        new TextDecoder().decode(hello.content),
        await readFile(join(FIXTURES, "case1/tree/hello.txt"), "utf8"),
      );
    });
  });
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}
