/**
 * Progress of a sync pass across its pages: the pass works out first how much
 * it will pull (the archives of the updates it will consume) and push (the
 * files changed since they last agreed with the relay), and each page's step
 * reports against those totals, so a person sees one line for the whole pass
 * (`pushing 12/40 files 120 MB/410 MB 11 MB/s 26 s left`) and a script one
 * `progress` event a second with `rate` and `etaSeconds`.
 *
 * @module
 */
import type { Reporter } from "../ui/report.ts";

/** What a pass has done and will do, for pulls or pushes. */
export interface PassTotals {
  /** Done by the pages finished so far. */
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
}

/** Where a step reports: the context's reporter and the pass's totals, when known. */
export interface ProgressContext {
  reporter: Reporter;
  pass?: { pull?: PassTotals; push?: PassTotals };
}

/**
 * Reports the progress of one page's pull or push (`p`: what this page did
 * so far) against the pass's totals; without them, for the page alone.
 */
export function stepProgress(
  ctx: ProgressContext,
  kind: "pull" | "push",
  page: string,
  p: { files: number; bytes: number; totalFiles?: number; totalBytes?: number },
): void {
  const verb = kind === "pull" ? "pulling" : "pushing";
  const t = ctx.pass?.[kind];
  if (!t) return ctx.reporter.progress({ label: `${verb} page ${page}`, ...p });
  ctx.reporter.progress({
    label: verb,
    files: t.files + p.files,
    totalFiles: t.totalFiles,
    bytes: t.bytes + p.bytes,
    totalBytes: t.totalBytes,
  });
}
