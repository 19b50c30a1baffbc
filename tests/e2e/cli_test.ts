// The hop command's surface: help on every level, version, exit codes, and
// subcommands that are not built yet failing honestly. Runs against the built
// binary when HOP_BIN is set.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import process from "node:process";
import { ROOT, runHop } from "../helpers/hop.ts";

const version = JSON.parse(readFileSync(ROOT + "deno.json", "utf8")).version;

Deno.test("hop --version names the version, commit, build and runtime; --json as an object", async () => {
  const r = await runHop(["--version"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout.trim(),
    new RegExp(
      `^hop ${version.replaceAll(".", "\\.")} \\(commit [0-9a-f]{12}, ` +
        `(built \\d{4}-\\d\\d-\\d\\d|run from the sources), (bun|deno) \\d+\\.\\d+\\.\\d+\\)$`,
    ),
  );
  const j = await runHop(["--json", "--version"]);
  assert.equal(j.code, 0, j.stderr);
  const v = JSON.parse(j.stdout);
  assert.equal(v.version, version);
  assert.match(v.commit, /^[0-9a-f]{40}(\+dirty)?$/);
  assert.ok(["bun", "deno"].includes(v.runtime), v.runtime);
  if (process.env.HOP_BIN) {
    assert.equal(v.runtime, "bun", "the binary is built by bun");
    assert.match(v.built, /^\d{4}-\d\d-\d\d$/);
  } else assert.equal(v.built, null);
});

Deno.test("--help works on every level", async () => {
  for (
    const args of [
      [],
      ["relay"],
      ["relay", "sync"],
      ["cluster"],
      ["cluster", "serve"],
      ["cluster", "node", "serve"],
      ["relay", "status"],
      ["relay", "forget"],
      ["cluster", "store"],
      ["cluster", "replicate"],
      ["cluster", "queue"],
      ["cluster", "node", "retire"],
      ["cluster", "node", "lost"],
      ["cluster", "user", "add"],
      ["cleanup"],
      ["audit"],
      ["archive", "create"],
    ]
  ) {
    const r = await runHop([...args, "--help"]);
    assert.equal(r.code, 0, `hop ${args.join(" ")} --help: ${r.stderr}`);
    assert.match(r.stdout, /Usage: hop/, `hop ${args.join(" ")} --help`);
  }
});

Deno.test("usage errors exit 2 and say what is wrong", async () => {
  const unknown = await runHop(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const badOption = await runHop(["archive", "create", "--nope"]);
  assert.equal(badOption.code, 2);
  assert.match(badOption.stderr, /unknown option '--nope'/);
  const missing = await runHop(["archive", "extract"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing required argument/);
});

Deno.test("a failing command exits 1 with a hint on stderr", async () => {
  const r = await runHop(["archive", "extract", "/nonexistent/a.tar.bz2", "/tmp/hop-never"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^hop: .*nonexistent\/a\.tar\.bz2/m);
  assert.match(r.stderr, /^ {2}\S/m, "a hint line follows the error");
});
