/**
 * Tests of the reporter: progress with rate and time left, `--json` progress
 * events (at most one a second per label), `-v`/`-vv`, and the log file.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createReporter, formatDuration, formatProgress } from "./report.ts";

function sink(isTTY = false) {
  const lines: string[] = [];
  return { lines, isTTY, write: (s: string) => void lines.push(s) };
}

Deno.test("progress: totals, rate and time left", () => {
  assert.equal(
    formatProgress({ label: "pushing", files: 2, totalFiles: 4, bytes: 5e6, totalBytes: 2e7 }, 5),
    "pushing  2/4 files  5.0 MB/20.0 MB  1.0 MB/s  15 s left",
  );
  assert.equal(formatDuration(200), "3 min 20 s");
  assert.equal(formatDuration(7500), "2 h 5 min");
});

Deno.test("--json: progress events with rate and ETA, one a second per label", () => {
  let t = 0;
  const out = sink();
  const r = createReporter({ json: true, out, err: sink(), now: () => t });
  r.progress({ label: "pulling", bytes: 0, totalBytes: 1000 });
  t = 500;
  r.progress({ label: "pulling", bytes: 100, totalBytes: 1000 }); // within the second: dropped
  t = 2000;
  r.progress({ label: "pulling", bytes: 400, totalBytes: 1000 });
  const events = out.lines.map((l) => JSON.parse(l));
  assert.equal(events.length, 2);
  assert.equal(events[1].event, "progress");
  assert.equal(events[1].rate, 200);
  assert.equal(events[1].etaSeconds, 3);
});

Deno.test("-v and -vv, and every line in the log file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-report-"));
  try {
    const log = join(dir, "hop.log");
    const err = sink();
    const r = createReporter({ verbose: 1, logFile: log, out: sink(), err });
    r.info("did a thing");
    r.debug!("a detail");
    r.debug!("a finer detail", 2);
    assert.deepEqual(err.lines, ["hop: a detail\n"]);
    const text = await readFile(log, "utf8");
    assert.match(text, /info did a thing\n.*debug a detail\n$/);
    const quiet = sink();
    createReporter({ verbose: 2, quiet: true, out: quiet, err: sink() }).info("hidden");
    assert.deepEqual(quiet.lines, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
