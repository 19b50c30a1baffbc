import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { decodeJob, type QueueJob } from "../codec/queue_job.ts";
import { CodecError } from "../codec/errors.ts";
import { HopError } from "../errors.ts";
import {
  complete,
  enqueue,
  forgetInstance,
  list,
  newJobId,
  recover,
  release,
  take,
} from "./queue.ts";
import { rng } from "../../tests/helpers/prng.ts";
import { spawnScript } from "../../tests/helpers/script.ts";
import { jobFor } from "../../tests/helpers/queue_child.ts";

/** The queue worker processes of the crash tests (see that file). */
const CHILD = new URL("../../tests/helpers/queue_child.ts", import.meta.url).pathname;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "hop-queue-"));
  try {
    await fn(join(dir, ".queue"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A queue worker process (tests/helpers/queue_child.ts). */
function spawnChild(args: string[]) {
  return spawnScript(CHILD, args);
}

Deno.test("queue: enqueue, list in order, take, complete, release", async () => {
  await withDir(async (dir) => {
    assert.deepEqual(await list(dir), []);
    assert.equal(await take(dir), null);
    const ids: string[] = [];
    for (let n = 0; n < 20; n++) ids.push(await enqueue(dir, jobFor(n)));
    assert.deepEqual([...ids].sort(), ids, "ids sort in creation order");
    const listed = await list(dir);
    assert.deepEqual(listed.map((e) => e.id), ids);
    assert.deepEqual(listed.map((e) => e.job), ids.map((_, n) => jobFor(n)));
    assert.ok(listed.every((e) => e.claimedBy === null));

    const a = await take(dir);
    assert.equal(a?.id, ids[0]);
    assert.equal(a?.claimedBy, process.pid);
    assert.deepEqual(a?.job, jobFor(0));
    assert.equal((await list(dir))[0].claimedBy, process.pid);
    const b = await take(dir);
    assert.equal(b?.id, ids[1]);
    await release(dir, b!.id);
    await complete(dir, a!.id);
    // Released: back at its place, first in line.
    assert.equal((await take(dir))?.id, ids[1]);
    await assert.rejects(() => complete(dir, a!.id), HopError);
    await assert.rejects(() => release(dir, "nonsense"), HopError);
    // A filter leaves skipped jobs queued.
    const odd = await take(dir, (j) => j.type === "upload" && j.size % 2 === 1 && j.size > 2);
    assert.equal(odd?.id, ids[3]);
    assert.equal((await list(dir)).length, 19);
  });
});

Deno.test("queue: concurrent takers in one process each get a different job", async () => {
  await withDir(async (dir) => {
    for (let n = 0; n < 30; n++) await enqueue(dir, jobFor(n));
    const got = await Promise.all(Array.from({ length: 40 }, () => take(dir)));
    const ids = got.filter((g) => g !== null).map((g) => g!.id);
    assert.equal(ids.length, 30);
    assert.equal(new Set(ids).size, 30);
    assert.equal(await take(dir), null);
  });
});

Deno.test("queue: stale claims and temp files of dead processes are recovered", async () => {
  await withDir(async (dir) => {
    const id = await enqueue(dir, jobFor(1));
    const id2 = await enqueue(dir, jobFor(2));
    // A process that is surely gone: a child that already exited.
    const dead = spawn("true");
    await new Promise((r) => dead.once("close", r));
    const names = await readdir(dir);
    const { rename } = await import("node:fs/promises");
    await rename(join(dir, `${id}.job`), join(dir, `${id}.claimed.${dead.pid}`));
    // A claim with our own pid that this process never made (pid reused after a restart).
    await rename(join(dir, `${id2}.job`), join(dir, `${id2}.claimed.${process.pid}`));
    await writeFile(join(dir, `.tmp.${dead.pid}.${newJobId()}`), "upload half");
    assert.equal(names.length, 2);
    // take() picks the stale claim first (oldest id).
    const got = await take(dir);
    assert.equal(got?.id, id);
    await release(dir, id);
    const r = await recover(dir);
    assert.deepEqual(r, { requeued: [id2], removedTemp: 1 });
    assert.deepEqual((await readdir(dir)).sort(), [`${id}.job`, `${id2}.job`]);
    // A live claim of another process is left alone.
    await rename(join(dir, `${id}.job`), join(dir, `${id}.claimed.1`));
    assert.equal((await take(dir))?.id, id2);
    assert.deepEqual((await recover(dir)).requeued, []);
  });
});

Deno.test("queue: claims and temp files of another host or PID namespace wait until it is declared gone", async () => {
  await withDir(async (dir) => {
    const { rename, utimes } = await import("node:fs/promises");
    const id = await enqueue(dir, jobFor(1));
    const other = "0123456789ab";
    // A pid that does not exist here means nothing for a claim made elsewhere.
    const dead = spawnSync("true");
    await rename(join(dir, `${id}.job`), join(dir, `${id}.claimed.${dead.pid}@${other}`));
    const young = join(dir, `.tmp.${dead.pid}@${other}.${newJobId()}`);
    const old = join(dir, `.tmp.${dead.pid}@${other}.${newJobId()}`);
    await writeFile(young, "being written elsewhere");
    await writeFile(old, "left two hours ago");
    const then = new Date(Date.now() - 2 * 3_600_000);
    await utimes(old, then, then);
    assert.equal(await take(dir), null);
    assert.deepEqual(await recover(dir), { requeued: [], removedTemp: 1 });
    const [entry] = await list(dir);
    assert.equal(entry.claimedBy, dead.pid);
    assert.equal(entry.claimedOn, other);
    forgetInstance(other);
    assert.deepEqual(await recover(dir), { requeued: [id], removedTemp: 1 });
    const got = await take(dir);
    assert.equal(got?.id, id);
    assert.ok((await readdir(dir)).some((n) => n.startsWith(`${id}.claimed.${process.pid}@`)));
    await complete(dir, id);
    assert.deepEqual(await readdir(dir), []);
  });
});

Deno.test("queue: an undecodable job file is set aside, named in the error", async () => {
  await withDir(async (dir) => {
    await enqueue(dir, jobFor(1));
    const badId = newJobId().replace(/^\d{14}/, "00000000000000");
    await writeFile(join(dir, `${badId}.job`), "fly me\n");
    await assert.rejects(
      () => list(dir),
      (e) => e instanceof CodecError && e.source.endsWith(`${badId}.job`),
    );
    await assert.rejects(() => take(dir), CodecError);
    assert.ok((await readdir(dir)).includes(`${badId}.bad`));
    assert.deepEqual((await take(dir))?.job, jobFor(1));
  });
});

Deno.test("queue: takers in separate processes never get the same job", async () => {
  await withDir(async (dir) => {
    const ids = new Set<string>();
    for (let n = 0; n < 150; n++) ids.add(await enqueue(dir, jobFor(n)));
    const children = Array.from({ length: 3 }, () => spawnChild(["drain", dir]));
    const outs = await Promise.all(children.map(async (c) => {
      const r = await c.done;
      assert.equal(r.code, 0, r.stderr);
      return r.lines;
    }));
    const taken = outs.flat().map((l) => l.slice(2));
    assert.equal(taken.length, 150, "each job taken exactly once");
    assert.deepEqual(new Set(taken), ids);
    assert.deepEqual(await readdir(dir), []);
  });
});

Deno.test("queue: SIGKILL at random moments (50 rounds) loses no job and leaves no half-written one", async () => {
  await withDir(async (dir) => {
    const r = rng(0xc0ffee);
    const enqueued = new Map<string, number>();
    const completing = new Set<string>();
    let leftClaims = 0;
    let leftTemps = 0;
    for (let round = 1; round <= 50; round++) {
      const child = spawnChild(["crash", dir, String(round)]);
      await child.firstLine;
      // Kill at a random moment once the child got going (a slow start under load must
      // not make rounds that do nothing).
      const after = r.int(2, 40);
      while (child.lineCount < after && child.child.exitCode === null) {
        await new Promise((res) => setTimeout(res, 1));
      }
      child.child.kill("SIGKILL");
      const { lines: got, signal, stderr: err } = await child.done;
      assert.equal(signal, "SIGKILL", `round ${round} ended by itself: ${err}`);
      assert.equal(got[0], "ready", err);
      for (const l of got.slice(1)) {
        const [kind, id, n] = l.split(" ");
        if (kind === "E") enqueued.set(id, Number(n));
        else if (kind === "C") completing.add(id);
        else assert.equal(kind, "T", l);
      }
      const left = await readdir(dir).catch(() => [] as string[]); // made by the first enqueue
      leftClaims += left.filter((n) => n.includes(".claimed.")).length;
      leftTemps += left.filter((n) => n.startsWith(".tmp.")).length;
    }
    await recover(dir);
    const files = await readdir(dir);
    // Only queued jobs remain: claims of dead children were requeued, temp files removed.
    assert.ok(files.every((f) => /^\d{14}-\d{6}-[0-9a-f]{8}\.job$/.test(f)), files.join(" "));
    const present = new Map<string, QueueJob>();
    for (const f of files) {
      const text = await readFile(join(dir, f), "utf8");
      assert.ok(text.endsWith("\n") && text.indexOf("\n") === text.length - 1, `${f} is whole`);
      present.set(f.slice(0, -4), decodeJob(text.slice(0, -1), f));
    }
    for (const [id, n] of enqueued) {
      if (present.has(id)) assert.deepEqual(present.get(id), jobFor(n), id);
      else {assert.ok(
          completing.has(id),
          `job ${id} (#${n}) was reported enqueued, is gone, and was never completed`,
        );}
    }
    // Jobs whose enqueue was cut after the rename but before the report are whole too.
    for (const [id, job] of present) {
      if (enqueued.has(id)) continue;
      const n = Number(/f-(\d+)\.txt$/.exec(job.type === "upload" ? job.path : "")?.[1]);
      assert.deepEqual(job, jobFor(n), id);
    }
    assert.ok(enqueued.size > 100, `the children did work (${enqueued.size} jobs)`);
    assert.ok(completing.size > 20, `the children completed jobs (${completing.size})`);
    console.log(
      `crash test: ${enqueued.size} enqueued, ${completing.size} completed, ${present.size} left; ` +
        `killed with ${leftClaims} claims and ${leftTemps} temp files in flight`,
    );
    assert.ok(leftClaims + leftTemps > 0, "some kills landed inside an operation");
  });
});
