/**
 * A relay holding a quarantined update still syncs for the real Escale
 * 0.7.13 client: a hop client moves a hostile update aside (its files keep
 * hidden `.hop-quarantine-…` names), then Escale and two hop clients
 * exchange files both ways, Escale never crashes on the moved files, and
 * leaves them alone. An Escale update damaged on the relay is moved aside
 * too, and Escale sends the file again without being told.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeArchive } from "../src/archive/tar.ts";
import {
  encodeUpdateIndex,
  PLACEHOLDER,
  updateDataName,
  updateIndexName,
} from "../src/codec/escale_index.ts";
import { QUARANTINE_PREFIX } from "../src/relay/quarantine.ts";
import { converge, folderWorld, pass, put, sha } from "./helpers/mixed_relay.ts";
import { snapshot, tempDir } from "./relay_helpers.ts";

const T = 1_700_000_000;

Deno.test("Escale syncs past a quarantined update and leaves its files alone; its own damaged update is sent again", async () => {
  const [dir, clean] = await tempDir("hop-escale-quarantine-");
  try {
    const w = await folderWorld(dir);
    const relayDir = w.relayDir;
    const [esc, h1, h2] = w.peers;

    // a hostile update on page 0: its index names a file outside the folder
    const scratch = join(dir, "scratch");
    await mkdir(scratch);
    await writeFile(join(scratch, "x"), "evil");
    const data = new Uint8Array(
      await new Response(writeArchive({ root: scratch, files: ["x"] })).arrayBuffer(),
    );
    await writeFile(join(relayDir, updateDataName("0", T)), data);
    await writeFile(
      join(relayDir, updateIndexName("0", T)),
      encodeUpdateIndex({
        entries: [{
          path: "../x",
          meta: {
            placeholder: PLACEHOLDER,
            pusher: "mallory",
            timestamp: T,
            checksum: createHash("sha512").update("evil").digest("hex"),
            extra: [],
          },
        }],
        pullers: [],
      }),
    );

    // h1 moves it aside and, the page free, pushes its file in the same pass
    await put(h1.dir, "from-hop.txt", "hop\n", T + 10);
    await pass(w, h1);
    const moved = (await readdir(relayDir)).filter((n) => n.startsWith(QUARANTINE_PREFIX)).sort();
    assert.equal(moved.length, 3, `${moved.join(" ")}\n${w.log.join("\n")}`);
    assert.match(w.log.join("\n"), /moved aside to \.hop-quarantine-0-1700000000-1-/);

    // everyone converges with Escale in the loop (`pass` fails on an Escale crash)
    await converge(w, "hop's file, past the quarantined update");
    assert.equal((await snapshot(esc.dir))["from-hop.txt"], sha("hop\n"));
    await put(esc.dir, "from-escale.txt", "escale\n", T + 20);
    await converge(w, "Escale's file");
    for (const p of [h1, h2]) {
      assert.equal((await snapshot(p.dir))["from-escale.txt"], sha("escale\n"), p.name);
    }
    // nothing left the folders, and Escale did not touch the moved files
    assert.deepEqual(Object.keys(await snapshot(esc.dir)).sort(), [
      "from-escale.txt",
      "from-hop.txt",
    ]);
    assert.deepEqual(
      (await readdir(relayDir)).filter((n) => n.startsWith(QUARANTINE_PREFIX)).sort(),
      moved,
    );
    assert.ok(!(await readdir(dir)).includes("x"));

    // an Escale update damaged on the relay: moved aside, and Escale sends the file again
    await put(esc.dir, "again.txt", "y".repeat(100_000), T + 30);
    await pass(w, esc);
    const data2 = (await readdir(relayDir)).find((n) => /^\.0\.\d+\.data$/.test(n));
    assert.ok(data2, `Escale pushed nothing:\n${w.log.slice(-2).join("\n")}`);
    const bytes = await readFile(join(relayDir, data2));
    await writeFile(join(relayDir, data2), bytes.subarray(0, bytes.length >> 1));
    await pass(w, h1);
    assert.match(w.log.at(-1)!, /update pushed by esc at \d+ cannot be pulled .*moved aside/);
    await converge(w, "Escale's damaged update, sent again");
    for (const p of [h1, h2]) {
      assert.equal((await snapshot(p.dir))["again.txt"], sha("y".repeat(100_000)), p.name);
    }
  } finally {
    await clean();
  }
});
