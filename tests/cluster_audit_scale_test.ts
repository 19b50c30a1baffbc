/**
 * Audit at scale, the smaller version of `scripts/bench/audit.ts`: 10000 link files
 * with 2 copies over 3 folder nodes, sorted in runs of 5000 lines (so the merge of
 * many temp-file runs is what finds the results), 100 copies deleted and 100 orphans
 * planted: every one found, nothing else reported.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { openClusterAdmin } from "../src/cluster/admin.ts";
import { auditCluster, type AuditRecord } from "../src/cluster/audit.ts";
import { generateCluster } from "../scripts/bench/audit.ts";

Deno.test("audit: 10000 link files over 3 nodes, merged from sorted runs", async () => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-audit-scale-"));
  try {
    const nodes = await generateCluster(tmp, 10_000, 100);
    const adm = await openClusterAdmin({ root: path.join(tmp, "root"), nodes });
    try {
      const found: AuditRecord[] = [];
      const s = await auditCluster(adm.ctx, {
        chunkLines: 5000,
        tmpDir: tmp,
        onRecord: (r) => void found.push(r),
      });
      assert.equal(s.links, 10_000);
      assert.equal(s.nodeFiles, 19_900 + 100);
      assert.equal(s.counts.ok, 19_900);
      assert.equal(s.counts.missing, 100);
      assert.equal(s.counts.orphan, 100);
      assert.equal(s.counts["under-replicated"], 100);
      assert.equal(found.length, 300);
      const missing = new Set(found.filter((r) => r.kind === "missing").map((r) => r.link));
      for (let i = 0; i < 100; i++) assert.ok(missing.has(`d0/file-${i}.dat#`), `file-${i}`);
      assert.deepEqual(
        (await fsp.readdir(tmp)).sort(),
        ["n0", "n1", "n2", "root"],
        "sort runs removed",
      );
    } finally {
      await adm.close();
    }
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});
