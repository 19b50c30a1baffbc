/**
 * Relay sync benchmark (issue 3), on generated data, each figure against a
 * reference measured in the same run:
 *
 * - first sync of `--files` files / `--size-mb` MB (default 5,000 / 500) from
 *   folder A to folder B through a folder relay (`hop relay sync A
 *   file:///relay --once --client-name a`, then `b`; repeated while A has files
 *   waiting, since a page carries at most maxpagesize per update), against the
 *   floor: native `tar -cjf` into the relay plus `tar -xjf` out of it. Floor and
 *   ours alternate `--runs` times (default 1); the best of each is kept.
 * - the same first sync through a pyftpdlib relay: its ratio to the folder one.
 * - rescan of `--rescan-files` (default 100,000) unchanged small files: a
 *   second `--once` pass with nothing to do, plus the local scan alone in a
 *   child process that reports the checksum cache's count of files read.
 * - peak RSS of every hop process.
 *
 * Options: --files=N --size-mb=N --rescan-files=N --runs=N --no-ftp.
 *
 * @module
 */
import { existsSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";
import { generateFiles, hop, measure, type Measured, ROOT, startFtpd, treeStats } from "./_lib.ts";

function opt(args: string[], name: string, def: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : def;
}

const verdict = (ok: boolean) => (ok ? "MET" : "MISSED");
const fmt = (m: Measured) => `${m.seconds.toFixed(2)} s, peak RSS ${m.peakRssMB.toFixed(0)} MB`;

/** Fresh (emptied) folder under the work dir. */
async function fresh(p: string): Promise<string> {
  rmSync(p, { recursive: true, force: true });
  await mkdir(p, { recursive: true });
  return p;
}

/** Native floor: tar -cjf into the relay, tar -xjf out of it. */
async function floor(src: string, relay: string, dst: string): Promise<Measured> {
  await fresh(relay);
  await fresh(dst);
  const w = await measure(["tar", "-cjf", join(relay, "x.tar.bz2"), "-C", src, "."]);
  const r = await measure(["tar", "-xjf", join(relay, "x.tar.bz2"), "-C", dst]);
  return { seconds: w.seconds + r.seconds, peakRssMB: Math.max(w.peakRssMB, r.peakRssMB) };
}

/**
 * hop's first sync A -> relay -> B: alternating `--once` passes of a then b
 * until B holds every file of A (at most 20 rounds).
 */
async function hopSync(
  src: string,
  relayUrl: string,
  dst: string,
  expect: { files: number; bytes: number },
): Promise<Measured & { passes: number }> {
  rmSync(join(src, ".hop"), { recursive: true, force: true });
  await fresh(dst);
  let seconds = 0;
  let peak = 0;
  let passes = 0;
  const each: string[] = [];
  for (let round = 0; round < 20; round++) {
    for (const [dir, name] of [[src, "a"], [dst, "b"]]) {
      const m = await measure([
        ...hop(),
        "--quiet",
        "relay",
        "sync",
        dir,
        relayUrl,
        "--once",
        "--client-name",
        name,
      ]);
      seconds += m.seconds;
      peak = Math.max(peak, m.peakRssMB);
      passes++;
      each.push(`${name} ${m.seconds.toFixed(1)} s/${m.peakRssMB.toFixed(0)} MB`);
    }
    const got = await treeStats(dst);
    if (got.files === expect.files && got.bytes === expect.bytes) {
      console.log(`    passes: ${each.join(", ")}`);
      return { seconds, peakRssMB: peak, passes };
    }
  }
  throw new Error(`B did not receive all of A after 20 rounds (${passes} passes)`);
}

export async function run(args: string[]): Promise<void> {
  const files = opt(args, "files", 5000);
  const sizeMB = opt(args, "size-mb", 500);
  const rescanFiles = opt(args, "rescan-files", 100_000);
  const runs = opt(args, "runs", 1);
  const work = join(ROOT, ".bench", "relay");
  const src = join(work, `src-${files}-${sizeMB}`);
  if (!existsSync(join(src, "d0"))) {
    console.log(`generating ${files} files / ${sizeMB} MB in ${src} ...`);
    await fresh(src);
    await generateFiles(src, files, sizeMB);
  }
  const tree = await treeStats(src);
  console.log(`tree: ${tree.files} files, ${(tree.bytes / 1e6).toFixed(0)} MB; best of ${runs}`);

  // --- first sync through a folder relay, interleaved with the floor -----------
  let bestFloor: Measured | undefined;
  let bestOurs: (Measured & { passes: number }) | undefined;
  const relayDir = join(work, "relay");
  for (let i = 0; i < runs; i++) {
    const f = await floor(src, join(work, "floor-relay"), join(work, "floor-dst"));
    console.log(`  floor (tar -cjf + tar -xjf): ${fmt(f)}`);
    if (!bestFloor || f.seconds < bestFloor.seconds) bestFloor = f;
    await fresh(relayDir);
    const o = await hopSync(src, pathToFileURL(relayDir).href, join(work, "dst"), tree);
    console.log(`  hop relay sync (folder):    ${fmt(o)} (${o.passes} passes)`);
    if (!bestOurs || o.seconds < bestOurs.seconds) bestOurs = o;
  }
  const ratio = bestOurs!.seconds / bestFloor!.seconds;
  console.log(
    `first sync, folder relay: ${bestOurs!.seconds.toFixed(2)} s vs floor ${
      bestFloor!.seconds.toFixed(2)
    } s = ${ratio.toFixed(2)}x the floor (target <= 1.0x) ${verdict(ratio <= 1.0)}`,
  );
  console.log(
    `first sync peak RSS: ${bestOurs!.peakRssMB.toFixed(0)} MB (target <= 250 MB) ${
      verdict(bestOurs!.peakRssMB <= 250)
    }`,
  );

  // --- the same through a pyftpdlib relay ---------------------------------------
  if (!args.includes("--no-ftp")) {
    const ftpRoot = await fresh(join(work, "ftp-relay"));
    const ftpd = await startFtpd(ftpRoot, "bench", "pw");
    try {
      const o = await hopSync(
        src,
        `ftp://bench:pw@127.0.0.1:${ftpd.port}/`,
        join(work, "dst-ftp"),
        tree,
      );
      console.log(`  hop relay sync (pyftpdlib): ${fmt(o)} (${o.passes} passes)`);
      console.log(
        `first sync, pyftpdlib relay: ${o.seconds.toFixed(2)} s = ${
          (o.seconds / bestOurs!.seconds).toFixed(2)
        }x the folder relay, ${(o.seconds / bestFloor!.seconds).toFixed(2)}x the floor; ` +
          `peak RSS ${o.peakRssMB.toFixed(0)} MB ${verdict(o.peakRssMB <= 250)}`,
      );
    } finally {
      await ftpd.stop();
    }
  }

  // --- rescan of unchanged small files ---------------------------------------------
  const many = join(work, `many-${rescanFiles}`);
  if (!existsSync(join(many, "d0"))) {
    console.log(`generating ${rescanFiles} small files in ${many} ...`);
    await fresh(many);
    await generateFiles(many, rescanFiles, rescanFiles / 1000, 3);
  }
  const manyTree = await treeStats(many);
  rmSync(join(many, ".hop"), { recursive: true, force: true });
  const manyRelay = pathToFileURL(await fresh(join(work, "relay-many"))).href;
  const syncArgv = [...hop(), "--quiet", "relay", "sync", many, manyRelay, "--once"];
  const first = await measure([...syncArgv, "--client-name", "a"]);
  console.log(
    `  first pass over ${manyTree.files} files (${(manyTree.bytes / 1e6).toFixed(0)} MB): ${
      fmt(first)
    }`,
  );
  const scanArgv = [
    process.execPath,
    "run",
    "-A",
    join(ROOT, "scripts/bench/_relay_scan.ts"),
    many,
  ];
  let bestPass: Measured | undefined;
  let bestScan: (Measured & { filesRead: number; inner: number }) | undefined;
  for (let i = 0; i < Math.max(runs, 3); i++) {
    const p = await measure([...syncArgv, "--client-name", "a"]);
    if (!bestPass || p.seconds < bestPass.seconds) bestPass = p;
    const s = await measure(scanArgv, { stdout: true });
    const r = JSON.parse(s.stdout!.trim().split("\n").pop()!);
    if (r.files !== manyTree.files) throw new Error(`scan saw ${r.files} files`);
    if (!bestScan || s.seconds < bestScan.seconds) {
      bestScan = { ...s, filesRead: r.filesRead, inner: r.seconds };
    }
  }
  const readMB = (bestPass!.io?.rchar ?? NaN) / 1e6;
  console.log(
    `rescan, second --once pass over ${manyTree.files} unchanged files: ${
      fmt(bestPass!)
    } (process start included), read calls ${readMB.toFixed(1)} MB in all ` +
      `vs ${(manyTree.bytes / 1e6).toFixed(0)} MB of file content`,
  );
  console.log(
    `rescan, scan + checksum lookups alone: ${bestScan!.inner.toFixed(2)} s in process ` +
      `(${fmt(bestScan!)} with start), files read: ${bestScan!.filesRead}`,
  );
  console.log(
    `rescan time: ${bestPass!.seconds.toFixed(2)} s (target <= 2 s) ${
      verdict(bestPass!.seconds <= 2)
    }`,
  );
  console.log(
    `rescan reads no file content: ${bestScan!.filesRead} files read ${
      verdict(bestScan!.filesRead === 0)
    }`,
  );
  console.log(
    `rescan peak RSS: ${bestPass!.peakRssMB.toFixed(0)} MB (target <= 250 MB) ${
      verdict(bestPass!.peakRssMB <= 250)
    }`,
  );
}
