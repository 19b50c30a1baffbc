/**
 * The cluster file system called directly (no FTP): names at rest, paths that try to
 * leave the root, owners, DELE/RNTO through `.deleted/`, aborted uploads, missing data.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { encodeLink } from "../codec/link.ts";
import type { FtpFileSystem, FtpUser } from "../ftp/types.ts";
import { type ClusterContext, createClusterFs, createSerial } from "./fs.ts";
import { type JobQueue, openJobQueue } from "./jobs.ts";
import { clusterLayout, diskPath, initLayout } from "./layout.ts";
import { readFileLink, stagedId, writeInfo } from "./links.ts";
import { openNode } from "./nodes.ts";
import { startStoreWorker, storeOnce } from "./store.ts";

const admin: FtpUser = { name: "admin", home: "/", readOnly: false, admin: true, id: 0 };
const joe: FtpUser = { name: "joe", home: "/", readOnly: false, admin: false, id: 1000 };

async function withCluster(
  names: "strict" | "blanks" | "any",
  f: (fs: FtpFileSystem, ctx: ClusterContext, queue: JobQueue, tmp: string) => void | Promise<void>,
) {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-fs-"));
  const l = clusterLayout(path.join(tmp, "root"));
  await initLayout(l);
  await fsp.mkdir(path.join(tmp, "node"));
  const node = openNode(pathToFileURL(path.join(tmp, "node")).href);
  const queue = openJobQueue(l.queue);
  const ctx: ClusterContext = {
    layout: l,
    names,
    nodes: new Map([[node.key, node]]),
    jobs: queue,
    userName: (uid) => ({ 0: "admin", 1000: "joe" } as Record<number, string>)[uid],
    serial: createSerial(),
    activeUploads: new Set(),
    log: () => {},
  };
  try {
    await f(createClusterFs(ctx), ctx, queue, tmp);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

async function put(fs: FtpFileSystem, p: string, user: FtpUser, text: string, opts = {}) {
  const up = await fs.openWrite(p, user, opts);
  const w = up.writable.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  await up.commit();
}

async function get(fs: FtpFileSystem, p: string, offset = 0): Promise<string> {
  return await new Response(await fs.openRead(p, admin, offset)).text();
}

Deno.test("cluster fs: names are %-encoded at rest, # names unreachable, policy enforced", async () => {
  await withCluster("any", async (fs, ctx) => {
    await fs.mkdir("/New Folder", admin);
    await put(fs, "/New Folder/é #1.txt", admin, "x");
    const root = ctx.layout.root;
    assert.ok(await fsp.stat(path.join(root, "New%20Folder")));
    assert.ok(await readFileLink(path.join(root, "New%20Folder", "%C3%A9%20%231.txt#")));
    assert.deepEqual((await fs.list("/New Folder", admin)).map((e) => e.name), ["é #1.txt"]);
    assert.equal(await get(fs, "/New Folder/é #1.txt"), "x");
    // A client's "name#" is another name (stored as name%23), never the link file.
    assert.equal(await fs.stat("/New Folder/é #1.txt#", admin), null);
  });
  await withCluster("strict", async (fs) => {
    await assert.rejects(
      put(fs, "/a b", admin, "x"),
      (e: Error & { kind?: string }) => e.kind === "bad-name",
    );
    await assert.rejects(fs.mkdir("/x#", admin), /incompatible filename/);
    for (const bad of ["/.passwd", "/.queue/x", "/.staging", "/.deleted/y"]) {
      await assert.rejects(
        put(fs, bad, admin, "x"),
        (e: Error & { kind?: string }) => e.kind === "permission" || e.kind === "bad-name",
      );
      assert.equal(await fs.stat(bad, admin), null, bad);
    }
    assert.deepEqual((await fs.list("/", admin)).map((e) => e.name), ["lost+found"]);
  });
});

Deno.test("cluster fs: paths never leave the root", async () => {
  await withCluster("any", (_fs, ctx) => {
    const l = ctx.layout;
    for (const p of ["/../x", "/a/../../x", "/%2e%2e/x", "/a\0b", "/a\r\nb"]) {
      let ok = false;
      try {
        const d = diskPath(l, p);
        ok = d.startsWith(l.root + path.sep);
      } catch {
        ok = true;
      }
      assert.ok(ok, p);
    }
  });
});

Deno.test("cluster fs: owners modify, others read; RMD non-empty refused; rename onto a file deletes it", async () => {
  await withCluster("strict", async (fs, ctx, queue) => {
    await fs.mkdir("/pub", admin);
    await assert.rejects(fs.mkdir("/pub/joes", joe), /Permission denied/);
    await fs.mkdir("/joe", admin);
    // Admin hands /joe to joe (what SITE CHOWN does): joe may now write there.
    const { writeInfo } = await import("./links.ts");
    await writeInfo(ctx.layout.tmp, path.join(ctx.layout.root, "joe#"), {
      kind: "dir",
      uid: 1000,
      mtime: 0,
      extra: [],
    });
    await put(fs, "/joe/a.txt", joe, "joe's");
    await put(fs, "/pub/b.txt", admin, "admin's");
    assert.deepEqual((await fs.list("/joe", joe)).map((e) => [e.name, e.owner, e.perm]), [[
      "a.txt",
      "joe",
      undefined,
    ]]);
    assert.deepEqual((await fs.list("/pub", joe)).map((e) => [e.name, e.owner, e.perm]), [[
      "b.txt",
      "admin",
      "r",
    ]]);
    await assert.rejects(fs.remove("/pub/b.txt", joe), /Permission denied/);
    await assert.rejects(fs.rename("/pub/b.txt", "/joe/b.txt", joe), /Permission denied/);
    assert.equal(await get(fs, "/pub/b.txt"), "admin's");
    await assert.rejects(fs.rmdir("/joe", admin), /not empty/);
    // Rename onto an existing file: the old target is deleted the DELE way.
    await put(fs, "/joe/c.txt", joe, "c");
    await fs.rename("/joe/c.txt", "/joe/a.txt", joe);
    assert.equal(await get(fs, "/joe/a.txt"), "c");
    assert.equal((await fsp.readdir(ctx.layout.deleted)).length, 1);
    const types = (await queue.list()).map((j) => j.type);
    assert.deepEqual(types.filter((t) => t === "delete").length, 1);
    // Stored, then read from the node; deleted: node copy removed by the worker.
    const stats = await storeOnce(ctx, queue, { replicas: 2 });
    assert.equal(stats.deleted, 1);
    const link = (await readFileLink(path.join(ctx.layout.root, "joe", "a.txt#")))!;
    assert.equal(stagedId(link), null);
    assert.equal(link.copies.length, 1, "replicas capped by the one node");
    assert.equal(await get(fs, "/joe/a.txt", 1), "");
    assert.equal(await get(fs, "/joe/a.txt"), "c");
    await fs.remove("/joe/a.txt", joe);
    await storeOnce(ctx, queue);
    assert.deepEqual(await fsp.readdir(ctx.layout.deleted), []);
    const nodeFiles = (await fsp.readdir(path.join(ctx.layout.root, "..", "node"), {
      recursive: true,
      withFileTypes: true,
    }))
      .filter((e) => e.isFile());
    assert.equal(nodeFiles.length, 1, "only pub/b.txt remains on the node");
    await fs.rmdir("/joe", joe);
    assert.equal(await fs.stat("/joe", admin), null);
  });
});

Deno.test("cluster fs: an aborted upload leaves nothing; a link with no copy left is a clear 550", async () => {
  await withCluster("strict", async (fs, ctx, queue) => {
    const up = await fs.openWrite("/x.bin", admin, {});
    const w = up.writable.getWriter();
    await w.write(new Uint8Array(10));
    await up.abort();
    assert.equal(await fs.stat("/x.bin", admin), null);
    assert.deepEqual((await fsp.readdir(ctx.layout.staging)).filter((n) => n !== "tmp"), []);
    await put(fs, "/y.bin", admin, "data");
    await storeOnce(ctx, queue);
    const link = (await readFileLink(path.join(ctx.layout.root, "y.bin#")))!;
    await fsp.rm(path.join(ctx.layout.root, "..", "node", link.copies[0].path));
    await assert.rejects(fs.openRead("/y.bin", admin, 0), /no copy of this file can be read/);
  });
});

Deno.test("cluster fs: a big upload, flushed while it arrives, and MFMT after it: one node copy, byte-exact", async () => {
  await withCluster("strict", async (fs, ctx, queue) => {
    // 80 MB in writes of 1 byte to 3 MB: they straddle the first MB (written at once), the
    // 1 MB batches written ahead, and the fdatasyncs on the way (every 32 MB).
    const hash = createHash("sha256");
    const up = await fs.openWrite("/big.bin", admin, {});
    const w = up.writable.getWriter();
    const sizes = [1000, 1, 1 << 20, 3 << 20, 7, (1 << 20) - 7, 65536];
    let total = 0;
    for (let i = 0; total < 80 << 20; i++) {
      const block = randomBytes(Math.min(sizes[i % sizes.length], (80 << 20) - total));
      hash.update(block);
      await w.write(block);
      block.fill(0); // the caller's buffer is its own again once the write resolved
      total += block.length;
    }
    await w.close();
    await up.commit();
    const staged = (await readFileLink(path.join(ctx.layout.root, "big.bin#")))!;
    assert.equal(staged.size, 80 << 20);
    // MFMT right after STOR queues no second job: the STOR's job stores the file (its
    // mtime is older than the link's now).
    await fs.setMtime!("/big.bin", admin, Date.UTC(2020, 0, 1));
    assert.equal((await queue.list()).length, 1, "one upload job");
    const stats = await storeOnce(ctx, queue);
    assert.deepEqual([stats.stored, stats.dropped], [1, 0]);
    const link = (await readFileLink(path.join(ctx.layout.root, "big.bin#")))!;
    assert.equal(stagedId(link), null);
    assert.equal(link.copies.length, 1);
    assert.equal(link.mtime, Date.UTC(2020, 0, 1) / 1000);
    const back = createHash("sha256");
    for await (const chunk of await fs.openRead("/big.bin", admin, 0)) back.update(chunk);
    assert.equal(back.digest("hex"), hash.digest("hex"));
  });
});

/** Waits until `cond()` holds, at most `ms`; whether it did. */
async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return await cond();
}

Deno.test("cluster store worker: holds off while uploads arrive, then stores", async () => {
  await withCluster("strict", async (fs, ctx, queue) => {
    const link = path.join(ctx.layout.root, "a.txt#");
    const staged = async () => stagedId((await readFileLink(link))!) !== null;
    const worker = startStoreWorker(ctx, queue, {
      pollMs: 20,
      holdOff: { quietMs: 400, maxMs: 60_000 },
    });
    try {
      await put(fs, "/a.txt", admin, "a");
      await new Promise((r) => setTimeout(r, 150));
      assert.ok(await staged(), "right after an upload: not stored yet");
      // An upload under way holds it off as long as it lasts (here past the quiet time).
      const up = await fs.openWrite("/b.txt", admin, {});
      await new Promise((r) => setTimeout(r, 600));
      assert.ok(await staged(), "an upload under way: not stored yet");
      await up.abort();
      assert.ok(await until(async () => !(await staged()), 5000), "stored once quiet");
      assert.equal(await get(fs, "/a.txt"), "a");
    } finally {
      await worker.stop();
    }
  });
});

Deno.test("cluster store worker: holds off for uploads at most maxMs", async () => {
  await withCluster("strict", async (fs, ctx, queue) => {
    const link = path.join(ctx.layout.root, "a.txt#");
    const staged = async () => stagedId((await readFileLink(link))!) !== null;
    const worker = startStoreWorker(ctx, queue, {
      pollMs: 20,
      holdOff: { quietMs: 60_000, maxMs: 300 },
    });
    try {
      await put(fs, "/a.txt", admin, "a");
      // Uploads never pause here (60 s of quiet wanted): the worker goes on after maxMs.
      assert.ok(await until(async () => !(await staged()), 5000), "stored after maxMs");
    } finally {
      await worker.stop();
    }
  });
});

Deno.test("cluster fs: renaming a directory re-queues the uploads still staged in it", async () => {
  await withCluster("strict", async (fs, ctx, queue) => {
    await fs.mkdir("/d", admin);
    await fs.mkdir("/d/e", admin);
    await put(fs, "/d/e/f.txt", admin, "f");
    await fs.rename("/d", "/g", admin);
    const stats = await storeOnce(ctx, queue);
    assert.equal(stats.stored, 1, "stored at its new path");
    assert.equal(stats.dropped, 1, "the job at the old path is stale");
    assert.equal(
      stagedId((await readFileLink(path.join(ctx.layout.root, "g", "e", "f.txt#")))!),
      null,
    );
    assert.equal(await get(fs, "/g/e/f.txt"), "f");
  });
});

Deno.test("cluster fs: foreign files with raw names are listed and read, never changed", async () => {
  await withCluster("strict", async (fs, ctx) => {
    await fsp.mkdir(path.join(ctx.layout.root, "their dir"));
    await fsp.writeFile(path.join(ctx.layout.root, "their dir", "my file.txt"), "theirs");
    assert.deepEqual((await fs.list("/", admin)).map((e) => e.name).sort(), [
      "lost+found",
      "their dir",
    ]);
    const [entry] = await fs.list("/their dir", admin);
    assert.deepEqual([entry.name, entry.owner, entry.perm], ["my file.txt", "foreign", "r"]);
    assert.equal(await get(fs, "/their dir/my file.txt"), "theirs");
    await assert.rejects(fs.remove("/their dir/my file.txt", admin), /never modified/);
    await assert.rejects(fs.rename("/their dir/my file.txt", "/x", admin), /never modified/);
    await assert.rejects(put(fs, "/their dir/my file.txt", admin, "x"), /incompatible filename/);
    assert.equal(
      await fsp.readFile(path.join(ctx.layout.root, "their dir", "my file.txt"), "utf8"),
      "theirs",
    );
  });
});

Deno.test("cluster fs: symlinks never lead out of the root", async () => {
  await withCluster("any", async (fs, ctx, _q, tmp) => {
    await fsp.mkdir(path.join(tmp, "outside"));
    await fsp.writeFile(path.join(tmp, "outside", "secret.txt"), "secret");
    await fsp.symlink(path.join(tmp, "outside"), path.join(ctx.layout.root, "evil"));
    await fsp.symlink(
      path.join(tmp, "outside", "secret.txt"),
      path.join(ctx.layout.root, "evil.txt"),
    );
    await fsp.writeFile(path.join(tmp, "outside", "fake#"), "fake 6 0 0\n");
    await fsp.symlink(path.join(tmp, "outside", "fake#"), path.join(ctx.layout.root, "fake#"));
    assert.deepEqual((await fs.list("/", admin)).map((e) => e.name), ["lost+found"]);
    for (const p of ["/evil", "/evil/secret.txt", "/evil.txt", "/fake"]) {
      assert.equal(await fs.stat(p, admin), null, p);
      await assert.rejects(fs.openRead(p, admin, 0), p);
    }
    await assert.rejects(put(fs, "/evil/new.txt", admin, "x"));
    await assert.rejects(fs.mkdir("/evil/d", admin));
    assert.deepEqual((await fsp.readdir(path.join(tmp, "outside"))).sort(), [
      "fake#",
      "secret.txt",
    ]);
  });
});

for (const [count, what] of [[1000, "big"], [10, "small"]] as const) {
  Deno.test(`cluster fs: a ${what} folder's listing shows links changed since the last one`, async () => {
    await withCluster("any", async (fs, ctx) => {
      const l = ctx.layout;
      await fs.mkdir("/big", admin);
      const link = (i: number, size: number) => ({
        kind: "file" as const,
        name: `f${i}`,
        size,
        uid: 0,
        mtime: 1_700_000_000,
        copies: [],
        extra: [],
      });
      const dir = path.join(l.root, "big");
      for (let i = 0; i < count; i++) {
        await fsp.writeFile(path.join(dir, `f${i}#`), encodeLink(link(i, i)));
      }
      // the folder's stamp must be old enough to be trusted (dir_cache.ts)
      await new Promise((r) => setTimeout(r, 2100));
      const sizes = async () =>
        new Map((await fs.list("/big", admin)).map((e) => [e.name, e.size] as const));
      assert.equal((await sizes()).get("f7"), 7);
      assert.equal((await sizes()).get("f7"), 7);
      await writeInfo(l.tmp, path.join(dir, "f7#"), link(7, 70));
      await fsp.rm(path.join(dir, "f8#"));
      // edited in place (no rename): its own stamp changed
      await fsp.writeFile(path.join(dir, "f9#"), encodeLink(link(9, 90)));
      for (const wait of [0, 2100, 0]) {
        // at once (the folder's new stamp is young), once it is old enough to be kept, and
        // again from what was kept
        await new Promise((r) => setTimeout(r, wait));
        const after = await sizes();
        assert.equal(after.get("f7"), 70);
        assert.equal(after.get("f9"), 90);
        assert.equal(after.has("f8"), false);
        assert.equal(after.size, count - 1);
      }
    });
  });
}

Deno.test("cluster fs: a listing of links, folders, foreign files and two spellings of a name", async () => {
  await withCluster("any", async (fs, ctx) => {
    const dir = path.join(ctx.layout.root, "mix");
    await fs.mkdir("/mix", admin);
    await fs.mkdir("/mix/joe's", admin);
    // given to joe: its info file says so
    await writeInfo(ctx.layout.tmp, diskPath(ctx.layout, "/mix/joe's") + "#", {
      kind: "dir",
      uid: 1000,
      mtime: 1_700_000_000,
      extra: [],
    });
    await fs.mkdir("/mix/plain", admin);
    await put(fs, "/mix/theirs.txt", admin, "admin");
    const link = (name: string, uid: number) =>
      encodeLink({
        kind: "file",
        name,
        size: 5,
        uid,
        mtime: 1_700_000_000,
        copies: [],
        extra: [],
      });
    // a folder made by something else (no info file), a foreign file, and a foreign file
    // that a link file of the same name hides
    await fsp.mkdir(path.join(dir, "made by hand"));
    await fsp.writeFile(path.join(dir, "foreign.bin"), "123");
    await fsp.writeFile(path.join(dir, "covered"), "raw bytes");
    await fsp.writeFile(path.join(dir, "covered#"), link("covered", 1000));
    // "aA" twice: %-encoded and plain; one shows
    await fsp.writeFile(path.join(dir, "a%41#"), link("aA", 1000));
    await fsp.writeFile(path.join(dir, "aA#"), link("aA", 0));
    await fsp.writeFile(path.join(dir, "mine.txt#"), link("mine.txt", 1000));
    // a link of an unknown uid
    await fsp.writeFile(path.join(dir, "nobody's#"), link("nobody's", 4242));
    const rows = (await fs.list("/mix", joe)).map((e) => [e.name, e.type, e.owner, e.perm]);
    rows.sort((a, b) => a[0]! < b[0]! ? -1 : 1);
    const aA = rows.find((r) => r[0] === "aA");
    assert.deepEqual(rows.filter((r) => r[0] !== "aA"), [
      ["covered", "file", "joe", undefined],
      ["foreign.bin", "file", "foreign", "r"],
      ["joe's", "dir", "joe", undefined],
      ["made by hand", "dir", "root", "el"],
      ["mine.txt", "file", "joe", undefined],
      ["nobody's", "file", "4242", "r"],
      ["plain", "dir", "admin", "el"],
      ["theirs.txt", "file", "admin", "r"],
    ]);
    assert.equal(rows.filter((r) => r[0] === "aA").length, 1);
    assert.ok(aA && aA[1] === "file");
    const sizes = new Map((await fs.list("/mix", admin)).map((e) => [e.name, e.size]));
    assert.equal(sizes.get("covered"), 5);
    assert.equal(sizes.get("foreign.bin"), 3);
  });
});
