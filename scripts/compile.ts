/**
 * Builds the single `hop` executable users download, with `bun build --compile`
 * (npm package `bun`, pinned in tools/package.json). The test suite runs this
 * binary, so it is the one compiler: a second one would ship a runtime the
 * tests never saw. The commit and build date are baked in (`HOP_BUILD`, read by
 * `src/cli/version.ts`), and the result is smoke-tested (`hop --version`)
 * before it is kept.
 *
 * Usage: deno run -A scripts/compile.ts [--target linux-x64|linux-arm64|darwin-x64|
 *        darwin-arm64|windows-x64] [--out FILE]
 *
 * Without `--target` it writes `dist/hop` for this machine. With `--target X` it
 * writes `dist/hop-X` (`.exe` for Windows), never `dist/hop`; bun downloads
 * that platform's runtime, so cross targets need the network. Through npm:
 * `npm run build -- --target windows-x64`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { arch, platform } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const version: string = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).version;

const TARGETS: Record<string, { bun: string; exe: string }> = {
  "linux-x64": { bun: "bun-linux-x64", exe: "" },
  "linux-arm64": { bun: "bun-linux-arm64", exe: "" },
  "darwin-x64": { bun: "bun-darwin-x64", exe: "" },
  "darwin-arm64": { bun: "bun-darwin-arm64", exe: "" },
  "windows-x64": { bun: "bun-windows-x64", exe: ".exe" },
};

function hostTarget(): string {
  const os = platform() === "win32" ? "windows" : platform();
  return `${os}-${arch() === "arm64" ? "arm64" : "x64"}`;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function fail(message: string, hint: string): never {
  console.error(`compile: ${message}\n  ${hint}`);
  process.exit(1);
}

/** The pinned bun of tools/, installed there when missing. */
function bun(): string {
  const local = join(root, "tools", "node_modules", ".bin", "bun");
  if (existsSync(local)) return local;
  const r = spawnSync("npm", ["ci", "--prefix", "tools", "--no-audit", "--no-fund"], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (r.status !== 0 || !existsSync(local)) {
    fail(
      "could not install bun into tools/",
      "Run: npm ci --prefix tools (it needs npm's registry).",
    );
  }
  return local;
}

/** The commit these sources are at, `+dirty` when they differ from it. */
function commit(): string {
  const git = (...a: string[]) => spawnSync("git", a, { cwd: root, encoding: "utf8" });
  const head = git("rev-parse", "HEAD");
  if (head.status !== 0) return "unknown";
  const dirty = git("status", "--porcelain", "--untracked-files=no").stdout.trim() !== "";
  return head.stdout.trim() + (dirty ? "+dirty" : "");
}

const targetArg = arg("--target");
const target = targetArg ?? hostTarget();
if (!TARGETS[target]) {
  console.error(`compile: unknown target ${target}; one of ${Object.keys(TARGETS).join(", ")}`);
  process.exit(2);
}
const out = resolve(
  root,
  arg("--out") ?? join("dist", (targetArg ? `hop-${target}` : "hop") + TARGETS[target].exe),
);
mkdirSync(dirname(out), { recursive: true });
// The name ends like `out` (bun adds `.exe` to a Windows outfile that lacks it).
const tmp = join(dirname(out), `.building-${basename(out)}`);
rmSync(tmp, { force: true });

const build = { commit: commit(), date: new Date().toISOString().slice(0, 10) };
const bunBin = bun();
const bunVersion = spawnSync(bunBin, ["--version"], { encoding: "utf8" }).stdout.trim();
const r = spawnSync(bunBin, [
  "build",
  "--compile",
  "--minify",
  "--sourcemap=none",
  `--target=${TARGETS[target].bun}`,
  `--define`,
  `HOP_BUILD=${JSON.stringify(build)}`,
  // ssh2's optional native CPU probe (a .node addon, never built here): ssh2
  // loads it in a try and goes without it, so it stays out of the binary.
  "--external",
  "cpu-features",
  "cli.ts",
  "--outfile",
  tmp,
], { cwd: root, encoding: "utf8" });
if (r.status !== 0) {
  rmSync(tmp, { force: true });
  const why = `${r.stderr ?? ""}${r.stdout ?? ""}`.trim().split("\n").slice(-3).join("\n  ");
  fail(
    `bun ${bunVersion} could not build hop for ${target}: ${why || r.error?.message}`,
    target === hostTarget()
      ? "See bun's message above."
      : `A cross build downloads bun's ${target} runtime: it needs the network.`,
  );
}

// The binary must run its embedded code: `--version` names our version.
if (target === hostTarget()) {
  const smoke = spawnSync(tmp, ["--version"], { encoding: "utf8", cwd: "/" });
  if (smoke.status !== 0 || !smoke.stdout.startsWith(`hop ${version} `)) {
    rmSync(tmp, { force: true });
    fail(
      `the built binary does not run: ${
        (smoke.error?.message ?? smoke.stdout + smoke.stderr).trim()
      }`,
      "This is a bug in the build; run `bun build --compile cli.ts` by hand to see more.",
    );
  }
}
renameSync(tmp, out);
console.error(
  `built ${relative(process.cwd(), out) || out} with bun ${bunVersion} build --compile ` +
    `(${target}, hop ${version}, commit ${build.commit.slice(0, 12)}): bun is hop's one ` +
    `compiler, the runtime the test suite checks` +
    (target === hostTarget() ? "" : "; not run here (another platform)"),
);
