/**
 * `deno task bench [name...] [--options]`: runs the benchmarks in scripts/bench/ (all,
 * or the named ones). Each measures hop against references run in the same run
 * (native tools, other servers) and records rows: hop's figure, the references',
 * ratios hop / reference, targets MET or MISSED, peak RSS and the machine's load. None
 * of them is a test and none fails on a missed target. At the end the whole table is
 * printed and written as JSON (`.bench/results/<time>.json`, or `--json=FILE`), so two
 * runs can be compared:
 *
 *   deno task bench --compare OLD.json NEW.json
 *
 * They measure the binary (`dist/hop`, built first; or `HOP_BIN`), or the sources on
 * Deno with `--sources`. `sh scripts/dev.sh bench` (what `deno task bench` runs)
 * installs the reference tools first (rsync, lftp, vsftpd, lbzip2, iproute2, ...).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { benchName, formatRow, type Row, rows } from "./bench/_lib.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const argv = process.argv.slice(2);

/** The results a run wrote. */
interface Results {
  started: string;
  finished: string;
  measured: string;
  cpus: number;
  args: string[];
  rows: Row[];
}

if (argv[0] === "--compare") {
  const [a, b] = argv.slice(1).map((f) => JSON.parse(readFileSync(f, "utf8")) as Results);
  if (!a || !b) {
    console.error("usage: deno task bench --compare OLD.json NEW.json");
    process.exit(2);
  }
  console.log(`old: ${a.started} (${a.measured}); new: ${b.started} (${b.measured})`);
  console.log("| work | reference | old ratio | new ratio | change | old hop | new hop |");
  console.log("|---|---|---|---|---|---|---|");
  const key = (r: Row) => `${r.bench}\u0000${r.work}`;
  const olds = new Map(a.rows.map((r) => [key(r), r]));
  for (const n of b.rows) {
    const o = olds.get(key(n));
    const refs = new Set([...Object.keys(n.ratios), ...Object.keys(o?.ratios ?? {})]);
    const hopOf = (r?: Row) => r ? `${r.hop.value.toPrecision(3)} ${r.hop.unit ?? "s"}` : "-";
    if (refs.size === 0) {
      console.log(`| ${n.work} | - | - | - | - | ${hopOf(o)} | ${hopOf(n)} |`);
    }
    for (const ref of refs) {
      const ov = o?.ratios[ref];
      const nv = n.ratios[ref];
      const ch = ov !== undefined && nv !== undefined
        ? `${nv < ov ? "" : "+"}${(((nv - ov) / ov) * 100).toFixed(0)}%`
        : "-";
      console.log(
        `| ${n.work} | ${ref} | ${ov?.toFixed(2) ?? "-"} | ${nv?.toFixed(2) ?? "-"} | ${ch} | ${
          hopOf(o)
        } | ${hopOf(n)} |`,
      );
    }
  }
  process.exit(0);
}

const dir = new URL("./bench/", import.meta.url);
const wanted = argv.filter((a) => !a.startsWith("-"));
const names = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
  .map((f) => f.slice(0, -3))
  .filter((n) => wanted.length === 0 || wanted.includes(n));
if (names.length === 0) {
  console.error(`no benchmark named ${wanted.join(", ")}`);
  process.exit(2);
}
// The binary users download is what is measured: built now, unless HOP_BIN names one or
// --sources asks for the sources on Deno.
if (argv.includes("--sources")) delete process.env.HOP_BIN;
else if (!process.env.HOP_BIN) {
  const b = spawnSync(process.execPath, ["run", "-A", `${root}scripts/compile.ts`], {
    cwd: root,
    stdio: "inherit",
  });
  if (b.status !== 0) process.exit(b.status ?? 1);
  process.env.HOP_BIN = `${root}dist/hop`;
}
const measured = process.env.HOP_BIN ?? "the sources on Deno (--sources)";
const started = new Date();
console.log(`measuring ${measured}; load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
const failed: string[] = [];
for (const name of names) {
  console.log(`\n## bench: ${name}`);
  benchName(name);
  const mod = await import(new URL(`${name}.ts`, dir).href);
  try {
    await mod.run(argv.filter((a) => a.startsWith("-")));
  } catch (e) {
    // one benchmark failing leaves the others' rows
    console.error(`bench ${name} failed: ${(e as Error).stack ?? e}`);
    failed.push(name);
  }
}
console.log(`\n## all rows (ratio = hop / reference; below 1 hop is faster)\n`);
console.log("| work | hop (peak RSS) | references | ratios | targets | load |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) console.log(formatRow(r));
const results: Results = {
  started: started.toISOString(),
  finished: new Date().toISOString(),
  measured,
  cpus: cpus().length,
  args: argv,
  rows,
};
const out = argv.find((a) => a.startsWith("--json="))?.slice(7) ??
  join(root, ".bench", "results", `${started.toISOString().replace(/[:.]/g, "-")}.json`);
mkdirSync(join(out, ".."), { recursive: true });
writeFileSync(out, JSON.stringify(results, null, 1) + "\n");
console.log(`\nresults: ${out} (compare two with: deno task bench --compare OLD.json NEW.json)`);
if (failed.length) {
  console.error(`failed: ${failed.join(", ")}`);
  process.exit(1);
}
