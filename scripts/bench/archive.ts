/**
 * Archive engine benchmark: tar.bz2 write and read throughput and peak RSS of
 * `hop archive` against native GNU `tar -cjf` / `tar -xjf` on the same
 * generated tree, in the same run.
 *
 * Options: --size-mb N (default 200; the RSS target is stated for 2000).
 *
 * @module
 */
import { existsSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { generateTree, hop, measure, ratioLine, ROOT } from "./_lib.ts";

export async function run(args: string[]): Promise<void> {
  const sizeArg = args.find((a) => a.startsWith("--size-mb="));
  const sizeMB = sizeArg ? Number(sizeArg.split("=")[1]) : 200;
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
  const mb = sizeMB;

  const nativeWrite = await measure(["tar", "-cjf", out("native.tar.bz2"), "-C", tree, "."]);
  const oursWrite = await measure([
    ...hop(),
    "--quiet",
    "archive",
    "create",
    tree,
    out("ours.tar.bz2"),
  ]);
  await mkdir(out("x-native"), { recursive: true });
  const nativeRead = await measure([
    "tar",
    "-xjf",
    join(work, "native.tar.bz2"),
    "-C",
    join(work, "x-native"),
  ]);
  const oursRead = await measure([
    ...hop(),
    "--quiet",
    "archive",
    "extract",
    join(work, "ours.tar.bz2"),
    out("x-ours"),
  ]);
  const oursForeign = await measure([
    ...hop(),
    "--quiet",
    "archive",
    "extract",
    join(work, "native.tar.bz2"),
    out("x-foreign"),
  ]);

  const rate = (s: number) => `${(mb / s).toFixed(1)} MB/s`;
  console.log(`tree: ${mb} MB`);
  console.log(
    `native tar -cjf:        ${nativeWrite.seconds.toFixed(2)} s  ${
      rate(nativeWrite.seconds)
    }  peak RSS ${nativeWrite.peakRssMB.toFixed(0)} MB`,
  );
  console.log(
    `hop archive create:     ${oursWrite.seconds.toFixed(2)} s  ${
      rate(oursWrite.seconds)
    }  peak RSS ${oursWrite.peakRssMB.toFixed(0)} MB`,
  );
  console.log(
    `native tar -xjf:        ${nativeRead.seconds.toFixed(2)} s  ${
      rate(nativeRead.seconds)
    }  peak RSS ${nativeRead.peakRssMB.toFixed(0)} MB`,
  );
  console.log(
    `hop extract (ours):     ${oursRead.seconds.toFixed(2)} s  ${
      rate(oursRead.seconds)
    }  peak RSS ${oursRead.peakRssMB.toFixed(0)} MB`,
  );
  console.log(
    `hop extract (foreign):  ${oursForeign.seconds.toFixed(2)} s  ${
      rate(oursForeign.seconds)
    }  peak RSS ${oursForeign.peakRssMB.toFixed(0)} MB`,
  );
  console.log(ratioLine("write vs tar -cjf", nativeWrite.seconds, oursWrite.seconds, 1.3));
  console.log(ratioLine("read of ours vs tar -xjf", nativeRead.seconds, oursRead.seconds, 1.4));
  console.log(
    ratioLine(
      "read of foreign single-stream vs tar -xjf",
      nativeRead.seconds,
      oursForeign.seconds,
      0.8,
    ),
  );
  const peak = Math.max(oursWrite.peakRssMB, oursRead.peakRssMB, oursForeign.peakRssMB);
  console.log(
    `peak RSS: ${peak.toFixed(0)} MB (target <= 200 MB for a 2 GB tree) ${
      peak <= 200 ? "MET" : "MISSED"
    }${mb < 2000 ? " (measured on " + mb + " MB; run --size-mb=2000 for the stated case)" : ""}`,
  );
}
