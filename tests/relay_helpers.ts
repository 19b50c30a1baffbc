/**
 * Shared helpers of the relay sync tests: temp folders, a recording reporter,
 * fixture copies, tree snapshots.
 *
 * @module
 */
import { chmod, cp, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Reporter } from "../src/ui/report.ts";
import { type FolderConfig, oneOffConfig } from "../src/relay/config.ts";
import { closeSync, openSync, type PassResult, syncPass } from "../src/relay/sync.ts";

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

/**
 * One sync pass of `cfg` in process: its result and what it reported (`rep`, `warns`).
 * `open` goes to openSync (a relay IO of the test's, say).
 */
export async function syncOnce(
  cfg: FolderConfig,
  first: boolean,
  open?: Parameters<typeof openSync>[2],
): Promise<PassResult & { rep: ReturnType<typeof recorder>; warns: string[] }> {
  const rep = recorder();
  const ctx = await openSync(cfg, rep, open);
  try {
    return { ...(await syncPass(ctx, { first })), rep, warns: rep.warns };
  } finally {
    await closeSync(ctx);
  }
}

/** Temp folders (one way to make them, in helpers/temp.ts). */
export { tempDir } from "./helpers/temp.ts";

/** Copies a fixture relay to `dest` (made writable); the shared fixtures stay untouched. */
export async function copyFixtureRelay(caseName: string, dest: string): Promise<void> {
  await cp(join(FIXTURES, caseName, "relay"), dest, { recursive: true });
  await chmod(dest, 0o755);
  for (const f of await readdir(dest)) await chmod(join(dest, f), 0o644);
}

/** Tree snapshots (one way to take them, in helpers/trees.ts). */
export { snapshot } from "./helpers/trees.ts";

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
