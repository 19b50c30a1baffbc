/**
 * A cluster queue worker in its own process, for the queue's crash tests
 * (src/cluster/queue_test.ts), which kill it at random moments:
 *
 * - `queue_child.ts crash <dir> <seed>`: enqueue/take/complete forever, printing
 *   each step only once its call has returned (`E id n`, `T id`), and `C id`
 *   just before completing;
 * - `queue_child.ts drain <dir>`: take and complete until empty, printing `T id`.
 *
 * @module
 */
import { writeSync } from "node:fs";
import process from "node:process";
import type { QueueJob } from "../../src/codec/queue_job.ts";
import { complete, enqueue, recover, release, take } from "../../src/cluster/queue.ts";
import { rng } from "./prng.ts";

/** The job a child enqueues as its n-th job (so the parent can check contents). */
export function jobFor(n: number): QueueJob {
  return {
    type: "upload",
    path: `dir with space/f-${n}.txt`,
    uid: n % 997,
    size: n,
    mtime: 1795372302 + n,
    nodes: ["10.0.0.1:21"],
  };
}

if (import.meta.main) {
  const [mode, dir, seedText] = process.argv.slice(2);
  // Synchronous: a step is reported before the next one starts, even if killed right after.
  const out = (s: string) => writeSync(1, s + "\n");
  if (mode === "crash") {
    const r = rng(Number(seedText));
    await recover(dir);
    out("ready");
    for (let n = Number(seedText) * 1_000_000;; n++) {
      if (r.chance(0.55)) {
        const id = await enqueue(dir, jobFor(n));
        out(`E ${id} ${n}`);
      } else {
        const got = await take(dir);
        if (!got) continue;
        out(`T ${got.id}`);
        if (r.chance(0.1)) {
          await release(dir, got.id);
          continue;
        }
        out(`C ${got.id}`);
        await complete(dir, got.id);
      }
    }
  } else if (mode === "drain") {
    for (let got = await take(dir); got; got = await take(dir)) {
      out(`T ${got.id}`);
      await complete(dir, got.id);
    }
  }
}
