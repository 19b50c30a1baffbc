/**
 * Cluster audit benchmark: `hop audit` over a generated cluster of N link files
 * (default 100000) with 2 copies each over 3 folder (file://) nodes, run as the `hop`
 * command. Reports the time, the files per second and the peak RSS of the audit
 * (the audit merges sorted runs instead of holding everything: memory should not grow
 * with N). Target: 100000 link files within 60 s.
 *
 * Options: --files=N.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { hop, measure, ROOT } from "./_lib.ts";

/**
 * Write a cluster of `files` link files under `dir/root` with copies on 2 of 3 node
 * folders `dir/n0..n2`; `damage` of them lose a copy and as many orphans are planted.
 * Returns the node URLs.
 */
export async function generateCluster(
  dir: string,
  files: number,
  damage = 0,
): Promise<string[]> {
  const nodes = [0, 1, 2].map((i) => join(dir, `n${i}`));
  const urls = nodes.map((n) => pathToFileURL(n).href);
  const keys = urls.map((u) => "file://" + new URL(u).pathname);
  const root = join(dir, "root");
  const mtime = Math.floor(Date.now() / 1000) - 7200;
  const madeDirs = new Set<string>();
  const mkdir = async (d: string) => {
    if (madeDirs.has(d)) return;
    await fsp.mkdir(d, { recursive: true });
    madeDirs.add(d);
  };
  const batch: Promise<void>[] = [];
  for (let i = 0; i < files; i++) {
    const h = createHash("sha256").update(String(i)).digest("hex");
    const name = `file-${i}.dat`;
    const p = `${h.slice(0, 2)}/${h.slice(2, 4)}/250101-120000-${name}`;
    const on = [i % 3, (i + 1) % 3];
    const body = `data of ${i}\n`;
    const linkDir = join(root, `d${Math.floor(i / 500)}`);
    batch.push((async () => {
      await mkdir(linkDir);
      for (const [k, n] of on.entries()) {
        if (k === 1 && i < damage) continue; // a copy missing
        await mkdir(join(nodes[n], h.slice(0, 2), h.slice(2, 4)));
        await fsp.writeFile(join(nodes[n], p), body);
      }
      const text = `${name} ${body.length} 1000 ${mtime}\n` +
        on.map((n) => `server ${keys[n]} ${p}\n`).join("");
      await fsp.writeFile(join(linkDir, `${name}#`), text);
      if (i < damage) {
        const o = join(nodes[2], "ff", "ff", `250101-120000-orphan-${i}`);
        await mkdir(join(nodes[2], "ff", "ff"));
        await fsp.writeFile(o, "orphan");
        const old = new Date(Date.now() - 7200_000);
        await fsp.utimes(o, old, old);
      }
    })());
    if (batch.length >= 64) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  return urls;
}

export async function run(args: string[]): Promise<void> {
  const arg = (k: string, d: number) => {
    const a = args.find((x) => x.startsWith(`--${k}=`));
    return a ? Number(a.split("=")[1]) : d;
  };
  const files = arg("files", 100_000);
  const work = join(ROOT, ".bench", "audit", String(files));
  const marker = join(work, "complete");
  if (!existsSync(marker)) {
    await fsp.rm(work, { recursive: true, force: true });
    console.log(`generating ${files} link files over 3 folder nodes in ${work} ...`);
    const t = Date.now();
    await generateCluster(work, files, 100);
    await fsp.writeFile(marker, "");
    console.log(`  done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const nodes = [0, 1, 2].map((i) => pathToFileURL(join(work, `n${i}`)).href);
  const m = await measure(
    [
      ...hop(),
      "--json",
      "audit",
      "--root",
      join(work, "root"),
      ...nodes.flatMap((n) => ["--node", n]),
    ],
    { stdout: true, codes: [0, 1] },
  );
  const s = m.stdout!.split("\n").filter((l) => l.includes('"event":"audit.summary"'))
    .map((l) => JSON.parse(l))[0] as {
      links: number;
      nodeFiles: number;
      counts: Record<string, number>;
    };
  const sec = m.seconds;
  console.log(
    `audit: ${s.links} link files, ${s.nodeFiles} node files in ${sec.toFixed(1)} s ` +
      `(${Math.round(s.links / sec)} links/s); peak RSS ${m.peakRssMB.toFixed(0)} MB`,
  );
  console.log(
    `  ok ${s.counts.ok}, missing ${s.counts.missing}, orphan ${s.counts.orphan}, ` +
      `under-replicated ${s.counts["under-replicated"]}`,
  );
  console.log(
    `  target 100000 links within 60 s: ${
      s.links >= 100_000 && sec <= 60 ? "MET" : files < 100_000 ? "n/a (fewer files)" : "MISSED"
    }`,
  );
}

if (import.meta.main) await run(process.argv.slice(2));
