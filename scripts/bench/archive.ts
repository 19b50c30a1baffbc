/**
 * Archive engine benchmark: `hop archive create` and `extract` of a generated tree
 * (`--size-mb`, default 200) against GNU tar with bzip2 (`tar -cjf` / `tar -xjf`) and
 * with lbzip2 (`tar -I lbzip2`, the parallel floor) on the same tree, alternated
 * `--runs` times (default 3), medians. Extraction reads hop's own archive (multi-stream,
 * as a relay holds) with all three, and hop also reads tar's single-stream one.
 *
 * Options: --size-mb=N --runs=N.
 *
 * @module
 */
import { existsSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { alternate, atMost, fig, generateTree, hop, measure, opt, record, ROOT } from "./_lib.ts";

export async function run(args: string[]): Promise<void> {
  const sizeMB = opt(args, "size-mb", 200);
  const runs = opt(args, "runs", 3);
  const work = join(ROOT, ".bench", "archive");
  const tree = join(work, `tree-${sizeMB}`);
  if (!existsSync(tree)) {
    console.log(`generating a ${sizeMB} MB tree in ${tree} ...`);
    await mkdir(tree, { recursive: true });
    const t = await generateTree(tree, sizeMB);
    console.log(`  ${t.files} files, ${(t.bytes / 1e6).toFixed(0)} MB`);
  }
  const out = (name: string) => {
    const p = join(work, name);
    rmSync(p, { recursive: true, force: true });
    return p;
  };
  const into = async (name: string) => {
    const p = out(name);
    await mkdir(p, { recursive: true });
    return p;
  };
  const ours = join(work, "ours.tar.bz2");
  const native = join(work, "native.tar.bz2");

  const w = await alternate(runs, {
    "tar -cjf": () => measure(["tar", "-cjf", out("native.tar.bz2"), "-C", tree, "."]),
    "tar lbzip2": () => measure(["tar", "-I", "lbzip2", "-cf", out("l.tar.bz2"), "-C", tree, "."]),
    hop: () => measure([...hop(), "--quiet", "archive", "create", tree, out("ours.tar.bz2")]),
  });
  record(`archive create, ${sizeMB} MB`, fig(w.hop), {
    "tar -cjf": fig(w["tar -cjf"]),
    lbzip2: fig(w["tar lbzip2"]),
  }, [
    atMost({ lbzip2: fig(w["tar lbzip2"]) }, w.hop.seconds, "lbzip2", 1.5),
    { what: "peak RSS <= 200 MB", met: w.hop.peakRssMB <= 200 },
  ]);

  const r = await alternate(runs, {
    "tar -xjf": async () => measure(["tar", "-xjf", ours, "-C", await into("x-tar")]),
    "tar lbzip2": async () =>
      measure(["tar", "-I", "lbzip2", "-xf", ours, "-C", await into("x-lbzip2")]),
    hop: () => measure([...hop(), "--quiet", "archive", "extract", ours, out("x-ours")]),
    "hop, tar's archive": () =>
      measure([...hop(), "--quiet", "archive", "extract", native, out("x-foreign")]),
  });
  const lb = { lbzip2: fig(r["tar lbzip2"]) };
  record(`archive extract, ${sizeMB} MB`, fig(r.hop), {
    "tar -xjf": fig(r["tar -xjf"]),
    ...lb,
  }, [
    atMost(lb, r.hop.seconds, "lbzip2", 1.5),
    { what: "peak RSS <= 200 MB", met: r.hop.peakRssMB <= 200 },
  ]);
  record(
    `archive extract of tar's single-stream archive, ${sizeMB} MB`,
    fig(r["hop, tar's archive"]),
    {
      "tar -xjf": fig(r["tar -xjf"]),
      ...lb,
    },
    [atMost(lb, r["hop, tar's archive"].seconds, "lbzip2", 2)],
  );
}
