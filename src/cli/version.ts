/**
 * What `hop --version` says: hop's version, the commit and date it was built
 * from, and the runtime it runs on. `scripts/compile.ts` bakes the commit and
 * date into the binary (`HOP_BUILD`); run from the sources, hop asks git.
 *
 * @example
 * ```ts
 * const v = versionInfo();
 * console.log(formatVersion(v)); // "hop 0.1.0 (commit 1a2b3c4, built 2026-12-02, bun 1.3.3)"
 * ```
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import denoConfig from "../../deno.json" with { type: "json" };

/** hop's version, from deno.json. */
export const VERSION: string = denoConfig.version;

/** Set by `bun build --define` in `scripts/compile.ts`; absent when run from the sources. */
declare const HOP_BUILD: { commit: string; date: string } | undefined;

/** Everything `hop --version` reports. */
export interface VersionInfo {
  version: string;
  /** Git commit (full hash) the binary was built from; "unknown" outside a checkout. */
  commit: string;
  /** ISO date of the build, or null when running from the sources. */
  built: string | null;
  /** `bun` or `deno` (or `node`). */
  runtime: string;
  runtimeVersion: string;
}

/** The version facts of this process. */
export function versionInfo(): VersionInfo {
  const build = typeof HOP_BUILD === "undefined" ? undefined : HOP_BUILD;
  const v = process.versions as Record<string, string | undefined>;
  const runtime = v.bun ? "bun" : v.deno ? "deno" : "node";
  return {
    version: VERSION,
    commit: build?.commit ?? sourceCommit(),
    built: build?.date ?? null,
    runtime,
    runtimeVersion: v[runtime] ?? process.version,
  };
}

/** One line for people. */
export function formatVersion(v: VersionInfo): string {
  const commit = v.commit === "unknown" ? "commit unknown" : `commit ${v.commit.slice(0, 12)}`;
  const built = v.built ? `built ${v.built}` : "run from the sources";
  return `hop ${v.version} (${commit}, ${built}, ${v.runtime} ${v.runtimeVersion})`;
}

/** The commit of the checkout these sources sit in (with `+dirty` when changed). */
function sourceCommit(): string {
  const cwd = fileURLToPath(new URL("../../", import.meta.url));
  const git = (...args: string[]) => spawnSync("git", args, { cwd, encoding: "utf8" });
  const head = git("rev-parse", "HEAD");
  if (head.status !== 0) return "unknown";
  const dirty = git("status", "--porcelain", "--untracked-files=no").stdout.trim() !== "";
  return head.stdout.trim() + (dirty ? "+dirty" : "");
}
