/**
 * `deno task bench [name...]`: runs the benchmarks in scripts/bench/ (all, or
 * the named ones). Each prints its figures and its ratios against a reference
 * measured in the same run; none of them is a test and none of them fails on
 * a missed target: they say MET or MISSED.
 *
 * @module
 */
import { readdirSync } from "node:fs";
import process from "node:process";

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
for (const name of names) {
  console.log(`\n## bench: ${name}`);
  const mod = await import(new URL(`${name}.ts`, dir).href);
  await mod.run(process.argv.slice(2).filter((a) => a.startsWith("-")));
}
