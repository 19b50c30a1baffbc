// The single binary on its own: copied alone into an empty folder (when
// HOP_BIN names it), it round-trips a tree through its archive engine, and
// GNU tar reads what it wrote. Without HOP_BIN the same runs from the sources.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { runHop } from "../helpers/hop.ts";

Deno.test("hop archive round-trips a tree from an empty folder", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hop-e2e-"));
  try {
    let bin: string | undefined;
    if (process.env.HOP_BIN) {
      // Alone in an empty folder: nothing beside the binary to lean on.
      const binDir = join(dir, "bin");
      mkdirSync(binDir);
      copyFileSync(process.env.HOP_BIN, join(binDir, "hop"));
      chmodSync(join(binDir, "hop"), 0o755);
      bin = join(binDir, "hop");
    }
    const work = join(dir, "work");
    mkdirSync(join(work, "tree", "sub dir"), { recursive: true });
    writeFileSync(join(work, "tree", "hello.txt"), "hello\n");
    const big = new Uint8Array(3_000_000).map((_, i) => (i * 7919) % 251);
    writeFileSync(join(work, "tree", "sub dir", "big.bin"), big);
    utimesSync(join(work, "tree", "hello.txt"), 1_000_000_000, 1_000_000_000);

    const child = (args: string[]) => runHop(args, { cwd: work, bin });
    const created = await child(["archive", "create", "tree", "out.tar.bz2"]);
    assert.equal(created.code, 0, created.stderr);

    const listing = execFileSync("tar", ["-tjf", join(work, "out.tar.bz2")], { encoding: "utf8" });
    assert.match(listing, /hello\.txt/);
    assert.match(listing, /sub dir\/big\.bin/);

    const extracted = await child(["archive", "extract", "out.tar.bz2", "back"]);
    assert.equal(extracted.code, 0, extracted.stderr);
    assert.equal(readFileSync(join(work, "back", "hello.txt"), "utf8"), "hello\n");
    assert.deepEqual(new Uint8Array(readFileSync(join(work, "back", "sub dir", "big.bin"))), big);
    assert.equal(statSync(join(work, "back", "hello.txt")).mtimeMs, 1_000_000_000_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
