/**
 * Crash injection on a relay (`relay_crash_test.ts`, `relay_crash_drivers_test.ts`):
 * three client processes in `shared` mode loop quickly while one of them is
 * killed with SIGKILL at random moments (mid-push, mid-pull, anywhere), gets a
 * new file, and is restarted. At the end every client holds every file that
 * was ever created, the trees are equal, and no lock is left on the relay.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { snapshot, tempDir } from "../relay_helpers.ts";
import { spawnHop } from "./hop.ts";

const ROUNDS = Number(process.env.HOP_CRASH_ROUNDS ?? 12);
/**
 * How long the clients may take to converge after the last kill: generous, because a
 * loaded machine (a CI runner, tests in parallel) makes every pass slow; the clients
 * are checked every half second, so a quick convergence ends the wait at once.
 */
export const CONVERGE_MS = 180_000;

/**
 * `hop relay sync` of one folder, looping every 0.2 s, with `extra` options; what it prints
 * goes to `<local>.log`.
 */
function start(local: string, relay: string, name: string, extra: string[]) {
  return spawnHop(
    ["--json", "relay", "sync", local, relay, "--client-name", name, "--refresh", "0.2", ...extra],
    { logFile: `${local}.log` },
  );
}

function rnd(n: number): number {
  return Math.floor(Math.random() * n);
}

/**
 * The crash rounds on the relay at `relayUrl`, whose files are in the folder `relay` here;
 * `extra`: options every client gets (keys, TLS).
 */
export async function crashRounds(
  relay: string,
  relayUrl: string,
  label: string,
  waitMs: number,
  extra: string[] = [],
) {
  const [dir, clean] = await tempDir("hop-crash-");
  const names = ["ann", "ben", "cat"];
  const procs = new Map<string, ReturnType<typeof start>>();
  const expected = new Set<string>();
  let kills = 0;
  const stopped: [number, string][] = [];
  let left: string[] = [];
  try {
    for (const n of names) {
      await mkdir(join(dir, n));
      const f = `seed-${n}.txt`;
      await writeFile(join(dir, n, f), `seed of ${n}\n`.repeat(1000));
      expected.add(f);
      procs.set(n, start(join(dir, n), relayUrl, n, extra));
    }
    for (let round = 0; round < ROUNDS; round++) {
      await new Promise((r) => setTimeout(r, 150 + rnd(600)));
      const n = names[rnd(names.length)];
      const p = procs.get(n)!;
      const ended = await Promise.race([p.done, Promise.resolve(null)]);
      if (ended) throw new Error(`client ${n} had stopped by itself: ${ended.stderr}`);
      await p.stop("SIGKILL");
      kills++;
      const f = `r${round}-${n}.bin`;
      await writeFile(join(dir, n, f), randomBytes(1000 + rnd(200_000)));
      expected.add(f);
      procs.set(n, start(join(dir, n), relayUrl, n, extra));
    }
    const deadline = Date.now() + waitMs;
    let converged = false;
    while (!converged && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      const snaps = await Promise.all(names.map((n) => snapshot(join(dir, n))));
      if (process.env.HOP_CRASH_DEBUG) {
        console.log(
          Date.now() - deadline,
          snaps.map((s) => Object.keys(s).length),
          expected.size,
          (await readdir(relay).catch(() => [])).join(" "),
        );
      }
      converged = snaps.every((s) =>
        Object.keys(s).length === expected.size && [...expected].every((f) => f in s) &&
        JSON.stringify(s) === JSON.stringify(snaps[0])
      );
    }
    console.log(
      `crash test (${label}): ${ROUNDS} rounds, ${kills} SIGKILLs survived, converged: ${converged}`,
    );
    // what a CI log needs to tell why, in the failure message itself: the relay's files
    // (locks with their text), what each client holds, and the end of each client's log
    let why = "";
    if (!converged) {
      const onRelay = await readdir(relay).catch(() => [] as string[]);
      why += `\nrelay: ${onRelay.join(" ")}`;
      for (const f of onRelay.filter((f) => f.endsWith(".lock"))) {
        why += `\n${f}: ${JSON.stringify(await readFile(join(relay, f), "utf8").catch(() => ""))}`;
      }
      for (const n of names) {
        const have = Object.keys(await snapshot(join(dir, n)));
        const missing = [...expected].filter((f) => !have.includes(f));
        const log = await readFile(join(dir, `${n}.log`), "utf8").catch(() => "");
        why += `\n--- ${n}: ${have.length} of ${expected.size} files, missing ${
          missing.join(" ") || "none"
        }\n${
          // what happened, not the routine lines of each pass
          log.split("\n").filter((l) => !/"level":"progress"|"event":"(next-)?pass"/.test(l))
            .slice(-25).join("\n")}`;
      }
    }
    assert.ok(
      converged,
      `the clients did not converge within ${waitMs} ms after the last kill${why}`,
    );
  } finally {
    for (const p of procs.values()) {
      const r = await p.stop("SIGTERM");
      stopped.push([r.code, r.stderr]);
    }
    left = await readdir(relay).catch(() => []);
    await clean();
  }
  for (const [code, err] of stopped) assert.equal(code, 0, err);
  assert.ok(!left.some((n) => n.endsWith(".lock")), left.join(","));
}
