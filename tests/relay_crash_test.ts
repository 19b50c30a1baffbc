/**
 * Crash injection on a folder relay: three client processes in `shared` mode
 * loop quickly while one of them is killed with SIGKILL at random moments
 * (mid-push, mid-pull, anywhere), gets a new file, and is restarted. At the
 * end every client holds every file that was ever created, the trees are
 * equal, and no lock is left on the relay.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { startPyftpdlib } from "./helpers/ftp_servers.ts";
import { snapshot, tempDir } from "./relay_helpers.ts";

const DENO = process.execPath;
const CLIENT = new URL("./relay_client.ts", import.meta.url).pathname;
const ROUNDS = Number(Deno.env.get("HOP_CRASH_ROUNDS") ?? 12);

function start(local: string, relay: string, name: string) {
  const child = new Deno.Command(DENO, {
    args: ["run", "-A", "--no-check", CLIENT, local, relay, name, "loop", "0.2"],
    env: { HOP_CLIENT_LOG: `${local}.log` },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  return { child, status: child.status, err: new Response(child.stderr).text() };
}

function rnd(n: number): number {
  return Math.floor(Math.random() * n);
}

async function crashRounds(relay: string, relayUrl: string, label: string, waitMs: number) {
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
      procs.set(n, start(join(dir, n), relayUrl, n));
    }
    for (let round = 0; round < ROUNDS; round++) {
      await new Promise((r) => setTimeout(r, 150 + rnd(600)));
      const n = names[rnd(names.length)];
      const p = procs.get(n)!;
      try {
        p.child.kill("SIGKILL");
      } catch {
        throw new Error(`client ${n} had stopped by itself: ${await p.err}`);
      }
      await p.status;
      kills++;
      const f = `r${round}-${n}.bin`;
      await writeFile(join(dir, n, f), randomBytes(1000 + rnd(200_000)));
      expected.add(f);
      procs.set(n, start(join(dir, n), relayUrl, n));
    }
    const deadline = Date.now() + waitMs;
    let converged = false;
    while (!converged && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      const snaps = await Promise.all(names.map((n) => snapshot(join(dir, n))));
      if (Deno.env.get("HOP_CRASH_DEBUG")) {
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
    if (!converged) {
      for (const n of names) {
        const log = await readFile(join(dir, `${n}.log`), "utf8").catch(() => "");
        console.log(`--- ${n}:\n${log.split("\n").slice(-15).join("\n")}`);
      }
    }
    assert.ok(converged, `the clients did not converge within ${waitMs} ms after the last kill`);
  } finally {
    for (const p of procs.values()) {
      try {
        p.child.kill("SIGTERM");
      } catch {
        // already stopped
      }
    }
    for (const p of procs.values()) stopped.push([(await p.status).code, await p.err]);
    left = await readdir(relay).catch(() => []);
    await clean();
  }
  for (const [code, err] of stopped) assert.equal(code, 0, err);
  assert.ok(!left.some((n) => n.endsWith(".lock")), left.join(","));
}

Deno.test("folder relay: three clients killed at random points converge, no file lost", async () => {
  const [dir, clean] = await tempDir("hop-crash-relay-");
  try {
    await crashRounds(dir, dir, "folder", 45_000);
  } finally {
    await clean();
  }
});

Deno.test("pyftpdlib relay: three clients killed at random points converge, no file lost", async () => {
  const [root, clean] = await tempDir("hop-crash-ftp-");
  const srv = await startPyftpdlib({ root, user: "relay", password: "pw" });
  try {
    await crashRounds(root, `ftp://relay:pw@127.0.0.1:${srv.port}/`, "pyftpdlib", 45_000);
  } finally {
    await srv.stop();
    await clean();
  }
});
