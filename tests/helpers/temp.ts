/**
 * Temp folders for tests: one per test, removed by the function that comes
 * with it, and the folders a test lays out inside it.
 *
 * @module
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A new folder under the system's temp folder and the function that removes it. */
export async function tempDir(prefix = "hop-test-"): Promise<[string, () => Promise<void>]> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  return [d, () => rm(d, { recursive: true, force: true })];
}

/** Runs `fn` with a new temp folder, removed afterwards whatever happens. */
export async function withTempDir<T>(
  fn: (dir: string) => Promise<T>,
  prefix = "hop-test-",
): Promise<T> {
  const [dir, clean] = await tempDir(prefix);
  try {
    return await fn(dir);
  } finally {
    await clean();
  }
}

/** Makes the folders `names` (with their parents) under `dir`; their paths, in order. */
export async function makeDirs(dir: string, names: string[]): Promise<string[]> {
  const out = names.map((n) => join(dir, n));
  for (const d of out) await mkdir(d, { recursive: true });
  return out;
}
