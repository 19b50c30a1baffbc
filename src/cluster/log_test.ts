import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { clusterLayout } from "./layout.ts";
import { escapeControl, openClusterLog } from "./log.ts";

Deno.test("cluster log: control characters escaped, one line per event", () => {
  assert.equal(
    escapeControl("a\x1b[31mb\r\nc\x00\x7f\x9b"),
    "a\\x1b[31mb\\x0d\\x0ac\\x00\\x7f\\x9b",
  );
  assert.equal(escapeControl("plain é ü"), "plain é ü");
});

Deno.test("cluster log: rotated by size, a bounded number of files, owner-only", async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-log-"));
  try {
    const l = clusterLayout(dir);
    await fsp.mkdir(l.log, { mode: 0o777 });
    await fsp.writeFile(path.join(l.log, "cluster.log"), "old line\n", { mode: 0o644 });
    await fsp.chmod(path.join(l.log, "cluster.log"), 0o644);
    const log = openClusterLog(l, { maxBytes: 1000, keep: 2 });
    for (let i = 0; i < 100; i++) log.line(`event ${i} \x1b[2J ${"x".repeat(40)}`);
    await log.close();
    const names = (await fsp.readdir(l.log)).sort();
    assert.deepEqual(names, ["cluster.log", "cluster.log.1", "cluster.log.2"]);
    let total = 0;
    for (const n of names) {
      const st = await fsp.stat(path.join(l.log, n));
      assert.equal(st.mode & 0o777, 0o600, `${n} is readable by its owner only`);
      assert.ok(st.size <= 1000, `${n} is ${st.size} bytes`);
      total += st.size;
      const text = await fsp.readFile(path.join(l.log, n), "utf8");
      assert.ok(!text.includes("\x1b"), "no raw escape character");
    }
    assert.ok(total <= 3000);
    assert.equal((await fsp.stat(l.log)).mode & 0o777, 0o700);
    const last = await fsp.readFile(path.join(l.log, "cluster.log"), "utf8");
    assert.match(last, /event 99 \\x1b\[2J/);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
