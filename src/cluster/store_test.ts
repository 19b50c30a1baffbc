/**
 * Node paths of stored files, the listen address parser, jobs the worker leaves alone.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openJobQueue } from "./jobs.ts";
import { parseListen } from "./serve.ts";
import { nodePathFor, nodeStamp } from "./store.ts";

Deno.test("node paths: spreading dirs from the seed, UTC stamp, encoded name", () => {
  const ms = Date.UTC(2003, 1, 10, 3, 39, 21);
  assert.equal(nodeStamp(ms), "030210-033921");
  const p = nodePathFor("seed-1", "rfc 0959.txt", ms);
  assert.match(p, /^[0-9a-f]{2}\/[0-9a-f]{2}\/030210-033921-[0-9a-f]{8}-rfc%200959\.txt$/);
  assert.equal(nodePathFor("seed-1", "rfc 0959.txt", ms), p, "deterministic");
  const dirs = new Set(
    Array.from({ length: 200 }, (_, i) => nodePathFor(`s${i}`, "x", ms).slice(0, 5)),
  );
  assert.ok(dirs.size > 150, "seeds spread over many directories");
  // 20,000 uploads of one name in one second (staging ids are random): no two share a
  // node path (two levels of spreading alone, 65,536 places, met ~3,000 times here).
  const paths = new Set(
    Array.from({ length: 20_000 }, () => nodePathFor(randomBytes(16).toString("hex"), "x", ms)),
  );
  assert.equal(paths.size, 20_000, "files of one name and one second never share a node path");
});

Deno.test("listen addresses", () => {
  assert.deepEqual(parseListen("127.0.0.1:2121"), { host: "127.0.0.1", port: 2121 });
  assert.deepEqual(parseListen("[::1]:0"), { host: "::1", port: 0 });
  for (const bad of ["127.0.0.1", ":21", "host:99999", "::1:21"]) {
    assert.throws(() => parseListen(bad), /bad listen/);
  }
});

Deno.test("store worker leaves replicate jobs queued", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-q-"));
  try {
    const q = openJobQueue(dir);
    await q.enqueue({ type: "replicate", link: "a#", size: 1, mtime: 2, nodes: [] });
    assert.equal(await q.take(), null);
    assert.deepEqual((await q.list()).map((j) => j.type), ["replicate"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
