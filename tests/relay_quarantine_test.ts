/**
 * A bad update does not block its page: an update every client refuses (a
 * hostile path, an entry without metadata, a malformed index, an archive
 * that is not a .tar.bz2, that lacks a file its index names, or a sealed
 * archive that fails authentication) is moved aside by the first client
 * that pulls it, which says so once; the page then takes new pushes and the
 * clients converge. `hop audit` and `hop relay status` name it, `hop
 * cleanup` removes it. A transfer cut by the network, a stream that ends
 * early, or a wrong passphrase moves nothing aside. On a folder relay, and
 * over FTP (pyftpdlib).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { closePool } from "../src/archive/bzip2.ts";
import { writeArchive } from "../src/archive/tar.ts";
import {
  encodeUpdateIndex,
  type IndexEntry,
  PLACEHOLDER,
  updateDataName,
  updateIndexName,
} from "../src/codec/escale_index.ts";
import { openRelayIO, type RelayIO } from "../src/relay/io.ts";
import { auditRelay } from "../src/relay/audit.ts";
import { viewRelay } from "../src/relay/pages.ts";
import { decodeRecord, QUARANTINE_PREFIX, quarantineUpdate } from "../src/relay/quarantine.ts";
import { closeSync, openSync, syncPass } from "../src/relay/sync.ts";
import { StorageError } from "../src/storage/types.ts";
import { makeDirs } from "./helpers/temp.ts";
import { jsonEvents, relayPass, runHop } from "./helpers/hop.ts";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import { folderCfg, recorder, snapshot, syncOnce, tempDir } from "./relay_helpers.ts";

globalThis.addEventListener("unload", () => closePool());

const T = 1_700_000_000;
const sha512 = (s: string) => createHash("sha512").update(s).digest("hex");

/** An index entry by `pusher` for `content` (null content: no metadata). */
function entry(path: string, content: string | null, pusher = "mallory"): IndexEntry {
  return {
    path,
    meta: content === null ? null : {
      placeholder: PLACEHOLDER,
      pusher,
      timestamp: T,
      checksum: sha512(content),
      extra: [],
    },
  };
}

/** A .tar.bz2 of `files`, made by hop's archive module from a scratch folder. */
async function tarOf(scratch: string, files: Record<string, string>): Promise<Uint8Array> {
  const [root] = await makeDirs(scratch, [`tar-${Object.keys(files).join("-")}`]);
  for (const [p, c] of Object.entries(files)) await writeFile(join(root, p), c);
  const s = writeArchive({ root, files: Object.keys(files) });
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** Writes update T of page 0 by hand: its index text and its archive bytes. */
async function craft(relay: string, index: string | Uint8Array, data: Uint8Array, time = T) {
  await writeFile(join(relay, updateDataName("0", time)), data);
  await writeFile(join(relay, updateIndexName("0", time)), index);
}

const quarantined = async (relay: string) =>
  (await readdir(relay)).filter((n) => n.startsWith(QUARANTINE_PREFIX)).sort();

Deno.test("a hostile update is moved aside once; the page takes a new push; audit, status and cleanup name it", async () => {
  const [dir, clean] = await tempDir("hop-quarantine-");
  try {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    await writeFile(join(a, "f.txt"), "one");
    assert.equal((await relayPass(a, relay, "alice")).code, 0);
    assert.equal((await relayPass(b, relay, "bob")).code, 0);
    assert.equal(await readFile(join(b, "f.txt"), "utf8"), "one");
    assert.equal((await relayPass(a, relay, "alice")).code, 0); // the update consumed, removed

    // mallory's update: a sane archive, an index naming a path outside the folder
    const data = await tarOf(dir, { x: "evil" });
    const index = encodeUpdateIndex({ entries: [entry("../x", "evil")], pullers: [] });
    await craft(relay, index, data);
    const size = data.length + new TextEncoder().encode(index).length;

    const first = await relayPass(a, relay, "alice");
    assert.equal(first.code, 0, first.stderr);
    const q = first.events.filter((e) => e.event === "quarantined");
    assert.equal(q.length, 1, first.stdout + first.stderr);
    assert.equal(q[0].pusher, "mallory");
    assert.equal(q[0].by, "alice");
    assert.equal(q[0].size, size);
    assert.match(
      q[0].message,
      /page 0: the update pushed by mallory at 1700000000 cannot be pulled/,
    );
    assert.match(q[0].message, /"\.\.\/x"/);
    assert.match(q[0].message, /mallory should push again \(.*\); `hop cleanup` removes/);
    assert.equal(first.events.find((e) => e.event === "pass").quarantined, 1);
    const moved = await quarantined(relay);
    assert.deepEqual(moved, [
      `${QUARANTINE_PREFIX}0-${T}-1-data`,
      `${QUARANTINE_PREFIX}0-${T}-1-index`,
      `${QUARANTINE_PREFIX}0-${T}-1-record`,
    ]);
    // nothing deleted: the moved files hold the update's bytes
    assert.deepEqual(await readFile(join(relay, moved[0])), Buffer.from(data));
    assert.equal(await readFile(join(relay, moved[1]), "utf8"), index);
    assert.ok(!(await readdir(relay)).includes(updateIndexName("0", T)));
    assert.deepEqual((await readdir(dir)).sort(), ["a", "b", "relay", "tar-x"]);

    // the page is free: bob's edit goes through, alice gets it, and nobody repeats the news
    await writeFile(join(b, "f.txt"), "two");
    const push = await relayPass(b, relay, "bob");
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.events.find((e) => e.event === "pass").message, /pushed 1 file/);
    const pull = await relayPass(a, relay, "alice");
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal(pull.events.filter((e) => e.event === "quarantined").length, 0);
    assert.deepEqual(await snapshot(a), await snapshot(b));
    assert.equal(await readFile(join(a, "f.txt"), "utf8"), "two");

    // hop audit names it (a warning: exit 0), with page, time, pusher, reason and size
    const audit = await runHop(["--json", "audit", a, relay, "--client-name", "alice"]);
    assert.equal(audit.code, 0, audit.stderr);
    const found = jsonEvents(audit.stdout).filter((e) =>
      e.event === "audit" && e.kind === "quarantined"
    );
    assert.equal(found.length, 1, audit.stdout);
    assert.equal(found[0].page, "0");
    assert.match(
      found[0].detail,
      new RegExp(
        `update ${T} of page 0 pushed by mallory \\(${size} bytes\\), moved aside by ` +
          `alice at .*Z: .*\\.\\./x.*hop cleanup`,
      ),
    );
    // hop relay status names it too
    const status = await runHop(["relay", "status", a, relay, "--client-name", "alice"]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`moved aside: update ${T} of page 0 pushed by mallory`));

    // hop cleanup --dry-run lists it and leaves it; hop cleanup removes it
    const dry = await runHop(["cleanup", "--dry-run", a, relay, "--client-name", "alice"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would remove quarantined \.hop-quarantine-0-1700000000-1-/);
    assert.equal((await quarantined(relay)).length, 3);
    const gone = await runHop(["cleanup", a, relay, "--client-name", "alice"]);
    assert.equal(gone.code, 0, gone.stderr);
    assert.match(gone.stdout, /removed quarantined .*update 1700000000 of page 0/);
    assert.deepEqual(await quarantined(relay), []);
    const again = await runHop(["--json", "audit", a, relay, "--client-name", "alice"]);
    assert.ok(!/"kind":"quarantined"/.test(again.stdout), again.stdout);
  } finally {
    await clean();
  }
});

Deno.test("every content fault is moved aside: no metadata, malformed index, corrupt or truncated archive, a file missing", async () => {
  const [dir, clean] = await tempDir("hop-quarantine-kinds-");
  try {
    const good = await tarOf(dir, { "g.txt": "good" });
    const cases: [string, string | Uint8Array, Uint8Array, RegExp][] = [
      [
        "no metadata",
        encodeUpdateIndex({ entries: [entry("g.txt", null)], pullers: [] }),
        good,
        /"g\.txt" has no metadata/,
      ],
      ["malformed index", "g.txt\nnot a number\n", good, /malformed/],
      [
        "corrupt bzip2",
        encodeUpdateIndex({ entries: [entry("g.txt", "good")], pullers: [] }),
        new TextEncoder().encode("BZh91AY&SY and then no bzip2 block at all, only text"),
        /corrupt/,
      ],
      [
        "truncated archive",
        encodeUpdateIndex({ entries: [entry("g.txt", "good")], pullers: [] }),
        good.subarray(0, good.length >> 1),
        /corrupt|truncated/,
      ],
      [
        "a file missing from the archive",
        encodeUpdateIndex({ entries: [entry("g.txt", "good"), entry("h.txt", "h")], pullers: [] }),
        good,
        /h\.txt: missing from/,
      ],
    ];
    for (const [what, index, data, why] of cases) {
      const [relay, local] = await makeDirs(join(dir, what.replaceAll(" ", "-")), ["relay", "b"]);
      await craft(relay, index, data);
      // still in place (a relay written before quarantines existed): audit names it an error
      const found = await auditRelay({ local, relay, clientName: "bob", reporter: recorder() });
      assert.ok(
        found.some((f) => f.severity === "error" && /\.0\.1700000000\.(index|data)/.test(f.name!)),
        `${what}: ${JSON.stringify(found)}`,
      );
      const r = await syncOnce(folderCfg(local, relay, "bob"), true);
      assert.equal(r.errors, 0, `${what}: ${r.warns.join("\n")}`);
      assert.equal(r.quarantined, 1, what);
      const names = await quarantined(relay);
      assert.equal(names.length, 3, what);
      const rec = decodeRecord(await readFile(join(relay, names[2])));
      assert.match(rec!.reason, why, what);
      assert.equal(rec!.by, "bob");
      assert.ok(!(await readdir(relay)).some((n) => n.startsWith(".0.1700000000.")), what);
      // the next pass is quiet: nothing left to refuse
      const next = await syncOnce(folderCfg(local, relay, "bob"), false);
      assert.equal(next.errors + (next.quarantined ?? 0), 0, what);
    }
  } finally {
    await clean();
  }
});

/** The file relay at `url` whose update archives are cut (an error) or end early (no error). */
async function faultyRelay(url: string, fault: "cut" | "short"): Promise<RelayIO> {
  const io = await openRelayIO(url);
  const read = io.read.bind(io);
  io.read = async (name) => {
    const s = await read(name);
    if (!name.endsWith(".data")) return s;
    const bytes = new Uint8Array(await new Response(s).arrayBuffer());
    return new ReadableStream({
      start(c) {
        c.enqueue(bytes.subarray(0, bytes.length >> 1));
        if (fault === "cut") c.error(new StorageError("connect", "connection reset by peer"));
        else c.close();
      },
    });
  };
  return io;
}

Deno.test("a cut transfer, a stream ending early and a wrong passphrase move nothing aside", async () => {
  const [dir, clean] = await tempDir("hop-quarantine-transient-");
  try {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const A = folderCfg(a, relay, "alice", { passphrase: "right one" });
    const B = folderCfg(b, relay, "bob", { passphrase: "right one" });
    await syncOnce(B, true);
    await writeFile(join(a, "f.txt"), "x".repeat(100_000));
    assert.equal((await syncOnce(A, true)).pushed, 1);
    const before = (await readdir(relay)).sort();

    for (const fault of ["cut", "short"] as const) {
      const rep = recorder();
      const ctx = await openSync(B, rep, { io: await faultyRelay(B.relayUrl, fault) });
      try {
        const r = await syncPass(ctx, { first: false });
        assert.equal(r.errors, 1, `${fault}: ${rep.warns.join("\n")}`);
        assert.equal(r.quarantined ?? 0, 0, fault);
      } finally {
        await closeSync(ctx);
      }
      assert.deepEqual(await quarantined(relay), [], fault);
    }
    const wrong = await syncOnce(folderCfg(b, relay, "bob", { passphrase: "wrong" }), false)
      .then(() => "opened", (e) => (e as Error).message);
    assert.match(wrong, /wrong passphrase/);
    assert.deepEqual((await readdir(relay)).sort(), before);

    // the update was fine all along: a clean pass takes it
    const ok = await syncOnce(B, false);
    assert.equal(ok.pulled, 1, ok.warns.join("\n"));
    assert.deepEqual(await snapshot(b), await snapshot(a));

    // a sealed archive altered on the relay fails authentication under the verified key: moved
    await writeFile(join(a, "f.txt"), "y".repeat(100_000));
    assert.equal((await syncOnce(A, false)).pushed, 1);
    const dataName = (await readdir(relay)).find((n) => /^\.0\.\d+\.data$/.test(n))!;
    const sealed = await readFile(join(relay, dataName));
    sealed[sealed.length >> 1] ^= 0xff;
    await writeFile(join(relay, dataName), sealed);
    const r = await syncOnce(B, false);
    assert.equal(r.quarantined, 1, r.warns.join("\n"));
    assert.ok(r.warns.some((w) => /failed authentication/.test(w)), r.warns.join("\n"));
    assert.equal(await readFile(join(b, "f.txt"), "utf8"), "x".repeat(100_000));
  } finally {
    await clean();
  }
});

Deno.test("a hop pusher's update damaged on the relay is moved aside, and the file still arrives", async () => {
  const [dir, clean] = await tempDir("hop-quarantine-damaged-");
  try {
    const [relay, a, b] = await makeDirs(dir, ["relay", "a", "b"]);
    const A = folderCfg(a, relay, "alice");
    const B = folderCfg(b, relay, "bob");
    await syncOnce(B, true);
    await writeFile(join(a, "f.txt"), "z".repeat(200_000));
    assert.equal((await syncOnce(A, true)).pushed, 1);
    // the archive loses its second half on the relay (a storage fault after the push)
    const dataName = (await readdir(relay)).find((n) => /^\.0\.\d+\.data$/.test(n))!;
    const bytes = await readFile(join(relay, dataName));
    await writeFile(join(relay, dataName), bytes.subarray(0, bytes.length >> 1));
    const r = await syncOnce(B, false);
    assert.equal(r.quarantined, 1, r.warns.join("\n"));
    assert.equal(r.errors, 0, r.warns.join("\n"));
    // no one pushes by hand: bob asks for the version the index names, alice sends it
    for (let i = 0; i < 4 && (await snapshot(b))["f.txt"] === undefined; i++) {
      await syncOnce(A, false);
      await syncOnce(B, false);
    }
    assert.deepEqual(await snapshot(b), await snapshot(a));
  } finally {
    await clean();
  }
});

Deno.test("an update that changed since it was listed is judged again, not moved", async () => {
  const [dir, clean] = await tempDir("hop-quarantine-changed-");
  try {
    const [relay, b] = await makeDirs(dir, ["relay", "b"]);
    await craft(relay, "g.txt\nnot a number\n", await tarOf(dir, { "g.txt": "g" }));
    const ctx = await openSync(folderCfg(b, relay, "bob"), recorder());
    try {
      const listed = await ctx.io.list();
      const upd = viewRelay(listed).pages.get("0")!.updates[0];
      // the index as listed was shorter: it was still being written when it was read
      const stale = { ...upd, index: { ...upd.index!, size: upd.index!.size - 3 } };
      const q = await quarantineUpdate(ctx, "0", stale, new Error("malformed"), undefined);
      assert.equal(q.record, undefined);
      assert.match(q.notDone!, /changed or was removed since it was listed/);
      assert.deepEqual(await quarantined(relay), []);
      // as listed now, it is moved
      const now = await quarantineUpdate(ctx, "0", upd, new Error("malformed"), undefined);
      assert.equal(now.record?.reason, "malformed");
      assert.equal((await quarantined(relay)).length, 3);
    } finally {
      await closeSync(ctx);
    }
  } finally {
    await clean();
  }
});

Deno.test("over FTP: a hostile index and a corrupt archive are moved aside on the server", async () => {
  const [dir, clean] = await tempDir("hop-quarantine-ftp-");
  let srv: TestFtpServer | undefined;
  try {
    const [root, b] = await makeDirs(dir, ["root", "b"]);
    const [relay] = await makeDirs(root, ["relay"]);
    srv = await startPyftpdlib({ root });
    const B = folderCfg(b, srv.loginUrl("relay"), "bob");
    const good = await tarOf(dir, { "g.txt": "good" });
    await craft(
      relay,
      encodeUpdateIndex({ entries: [entry("/etc/g", "good")], pullers: [] }),
      good,
    );
    const first = await syncOnce(B, true);
    assert.equal(first.quarantined, 1, first.warns.join("\n"));
    assert.ok(first.warns.some((w) => /"\/etc\/g"/.test(w)), first.warns.join("\n"));
    // a second bad update on the same page, now free: its archive is no bzip2 stream
    await craft(
      relay,
      encodeUpdateIndex({ entries: [entry("g.txt", "good")], pullers: [] }),
      new TextEncoder().encode("BZh91AY&SY" + "x".repeat(5000)),
      T + 1,
    );
    const second = await syncOnce(B, false);
    assert.equal(second.quarantined, 1, second.warns.join("\n"));
    assert.equal(second.errors, 0, second.warns.join("\n"));
    const names = await quarantined(relay);
    assert.deepEqual(names.map((n) => n.replace(/-(index|data|record)$/, "")), [
      `${QUARANTINE_PREFIX}0-${T}-1`,
      `${QUARANTINE_PREFIX}0-${T}-1`,
      `${QUARANTINE_PREFIX}0-${T}-1`,
      `${QUARANTINE_PREFIX}0-${T + 1}-1`,
      `${QUARANTINE_PREFIX}0-${T + 1}-1`,
      `${QUARANTINE_PREFIX}0-${T + 1}-1`,
    ]);
    assert.deepEqual(await snapshot(b), {});
  } finally {
    await srv?.stop();
    await clean();
  }
});
