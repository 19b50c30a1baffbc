/**
 * `deno task bench [name...]`: runs the benchmarks in scripts/bench/ (all, or
 * the named ones). Each prints its figures and its ratios against a reference
 * measured in the same run; none of them is a test and none of them fails on
 * a missed target: they say MET or MISSED. They measure the binary (`dist/hop`,
 * built first; or `HOP_BIN`), or the sources on Deno with `--sources`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

const dir = new URL("./bench/", import.meta.url);
const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
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
if (process.argv.includes("--sources")) delete process.env.HOP_BIN;
else if (!process.env.HOP_BIN) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const b = spawnSync(process.execPath, ["run", "-A", `${root}scripts/compile.ts`], {
    cwd: root,
    stdio: "inherit",
  });
  if (b.status !== 0) process.exit(b.status ?? 1);
  process.env.HOP_BIN = `${root}dist/hop`;
}
console.log(`measuring ${process.env.HOP_BIN ?? "the sources on Deno (--sources)"}`);
for (const name of names) {
  console.log(`\n## bench: ${name}`);
  const mod = await import(new URL(`${name}.ts`, dir).href);
  await mod.run(process.argv.slice(2).filter((a) => a.startsWith("-")));
}
