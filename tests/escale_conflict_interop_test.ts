/**
 * The lost edits of issue 9, replayed with the real Escale 0.7.13 client and
 * two hop clients on a folder relay, one pass at a time (see
 * `helpers/mixed_relay.ts`):
 *
 * - edits in turn (each client gets the last version before it edits): no
 *   conflict copy, everyone ends with the last edit;
 * - Escale's edit first, then a hop client's that did not know it (Escale's
 *   update still there, or already removed by Escale): Escale's version
 *   keeps the name, the hop client's becomes its conflict copy, and it says so;
 * - a hop client's edit first, then Escale's made before Escale received it
 *   (Escale skips an incoming file older than its own, and pushes its own);
 * - the same two edits in the same second, in both orders (Escale then
 *   neither pulls nor pushes: hop asks it to send back what it has);
 * - deletions: Escale restores what it finds missing, so a deleted file
 *   comes back everywhere.
 *
 * @module
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { converge, folderWorld, pass, put, sha, type World } from "./helpers/mixed_relay.ts";
import { snapshot, tempDir } from "./relay_helpers.ts";

const T = 1_700_000_000;

/** `path.conflict-<client>-<mtime as YYYYMMDD-HHMMSS>.ext`. */
function copyName(path: string, client: string, mtime: number): string {
  const stamp = new Date(mtime * 1000).toISOString().replace(/[-:]/g, "").replace("T", "-")
    .slice(0, 15);
  return path.replace(/(\.[^.]+)$/, `.conflict-${client}-${stamp}$1`);
}

/** Every folder is the same tree, whose files hold `expect` (path -> content). */
async function expectTree(w: World, expect: Record<string, string>, what: string): Promise<void> {
  const want = Object.fromEntries(Object.entries(expect).map(([p, c]) => [p, sha(c)]));
  for (const p of w.peers) {
    const tree = await snapshot(p.dir);
    for (const [path, sum] of Object.entries(want)) {
      assert.equal(tree[path], sum, `${what}: ${p.name}'s ${path}\n${w.log.slice(-9).join("\n")}`);
    }
    const copies = Object.keys(tree).filter((n) => n.includes(".conflict-"));
    const expected = Object.keys(want).filter((n) => n.includes(".conflict-"));
    assert.deepEqual(copies.sort(), expected.sort(), `${what}: conflict copies in ${p.name}`);
  }
}

/** True when a pass of `client` since log line `from` reported a conflict on `path`. */
function told(w: World, from: number, client: string, path: string): boolean {
  return w.log.slice(from).some((l) =>
    l.startsWith(`--- ${client} `) && l.includes(`conflict on ${path}:`)
  );
}

Deno.test("Escale and hop clients editing the same files: in turn, concurrently, in the same second", async () => {
  const [dir, clean] = await tempDir("hop-escale-conflicts-");
  try {
    const w = await folderWorld(dir);
    const [esc, h1, h2] = w.peers;
    const files: Record<string, string> = {};
    for (const f of ["f1.txt", "f2.txt", "f3.txt", "f4.txt", "f5.txt", "f6.txt", "f7.txt"]) {
      files[f] = `first ${f}\n`;
      await put(h1.dir, f, files[f], T);
    }
    await converge(w, "the first tree");

    // in turn: each edit made on the last version; nothing to keep twice
    let t = T + 10;
    for (const p of [h1, esc, h2, esc, h1]) {
      files["f1.txt"] = `f1 edited by ${p.name} at ${t}\n`;
      await put(p.dir, "f1.txt", files["f1.txt"], t);
      await converge(w, `f1.txt edited by ${p.name}`);
      await expectTree(w, files, `f1.txt edited in turn, last by ${p.name}`);
      t += 10;
    }

    // Escale's edit first; a hop client edits before it received it. Escale's update is
    // still on the relay (f2), or Escale already removed it on its next pass (f3).
    for (const [f, escalePasses] of [["f2.txt", 1], ["f3.txt", 2]] as const) {
      const from = w.log.length;
      const e = `${f}: Escale's edit\n`;
      const h = `${f}: h1's edit, made without Escale's\n`;
      await put(esc.dir, f, e, t);
      for (let i = 0; i < escalePasses; i++) await pass(w, esc);
      await put(h1.dir, f, h, t + 1);
      await pass(w, h1);
      await converge(w, `${f}: Escale first`);
      files[f] = e;
      files[copyName(f, "h1", t + 1)] = h;
      await expectTree(w, files, `${f}: Escale's edit first`);
      assert.ok(told(w, from, "h1", f), `h1 did not say its ${f} became a conflict copy`);
      t += 10;
    }

    // a hop client's edit first; Escale's, newer, made before Escale received it
    {
      const from = w.log.length;
      const h = "f4.txt: h1's edit\n";
      const e = "f4.txt: Escale's edit, made before it got h1's\n";
      await put(h1.dir, "f4.txt", h, t);
      await pass(w, h1);
      await pass(w, h2);
      await put(esc.dir, "f4.txt", e, t + 1);
      await pass(w, esc);
      await converge(w, "f4.txt: hop first");
      files["f4.txt"] = e;
      files[copyName("f4.txt", "h1", t)] = h;
      await expectTree(w, files, "f4.txt: hop's edit first");
      assert.ok(told(w, from, "h1", "f4.txt"), "h1 did not say its f4.txt became a copy");
      t += 10;
    }

    // the same second on both sides: hop's pass first (f5), Escale's first (f6)
    for (const [f, escFirst] of [["f5.txt", false], ["f6.txt", true]] as const) {
      const from = w.log.length;
      const h = `${f}: h1's edit, same second\n`;
      const e = `${f}: Escale's edit, same second\n`;
      await put(h1.dir, f, h, t);
      await put(esc.dir, f, e, t);
      for (const p of escFirst ? [esc, h1, h2] : [h1, h2, esc]) await pass(w, p);
      await converge(w, `${f}: same second`);
      files[f] = e;
      files[copyName(f, "h1", t)] = h;
      await expectTree(w, files, `${f}: same second, ${escFirst ? "Escale" : "hop"} first`);
      assert.ok(told(w, from, "h1", f), `h1 did not say its ${f} became a conflict copy`);
      t += 10;
    }

    // deletions do not go through Escale: it restores what it finds missing
    await rm(join(h2.dir, "f7.txt"));
    await converge(w, "f7.txt deleted by h2");
    await expectTree(w, files, "f7.txt deleted by h2, restored by Escale");
    await rm(join(esc.dir, "f1.txt"));
    await converge(w, "f1.txt deleted by Escale");
    await expectTree(w, files, "f1.txt deleted by Escale, sent to it again");
  } finally {
    await clean();
  }
});
