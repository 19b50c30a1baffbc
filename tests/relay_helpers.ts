/**
 * Shared helpers of the relay sync tests: temp folders, a recording reporter,
 * fixture copies, tree snapshots.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { chmod, cp, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Reporter } from "../src/ui/report.ts";
import { type FolderConfig, oneOffConfig } from "../src/relay/config.ts";

export const FIXTURES = new URL("../../shared/fixtures/escale-0.7/", import.meta.url).pathname;

/** A reporter that records what it was told. */
export function recorder(): Reporter & { infos: string[]; warns: string[] } {
  const infos: string[] = [];
  const warns: string[] = [];
  return {
    infos,
    warns,
    info: (m) => void infos.push(m),
    warn: (m) => void warns.push(m),
    progress: () => {},
    close: () => {},
  };
}

/** A temp dir removed by the returned function. */
export async function tempDir(prefix = "hop-relay-"): Promise<[string, () => Promise<void>]> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  return [d, () => rm(d, { recursive: true, force: true })];
}

/** Copies a fixture relay to `dest` (made writable); the shared fixtures stay untouched. */
export async function copyFixtureRelay(caseName: string, dest: string): Promise<void> {
  await cp(join(FIXTURES, caseName, "relay"), dest, { recursive: true });
  await chmod(dest, 0o755);
  for (const f of await readdir(dest)) await chmod(join(dest, f), 0o644);
}

/** path -> sha512 of every non-hidden file under root. */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string) => {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      if (d.name.startsWith(".")) continue;
      if (d.isDirectory()) await walk(join(dir, d.name), prefix + d.name + "/");
      else {
        out[prefix + d.name] = createHash("sha512").update(await readFile(join(dir, d.name)))
          .digest("hex");
      }
    }
  };
  await walk(root, "");
  return out;
}

/** mtime in whole seconds. */
export async function mtimeOf(path: string): Promise<number> {
  return Math.floor((await stat(path)).mtimeMs / 1000);
}

/** A one-off folder config for tests. */
export function folderCfg(
  local: string,
  relay: string,
  client: string,
  extra: Partial<FolderConfig> = {},
): FolderConfig {
  return { ...oneOffConfig({ local, relay, clientName: client }), ...extra };
}
