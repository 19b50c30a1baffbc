/**
 * Mixed relays never lose an edit: one real Escale 0.7.13 client and two hop
 * clients share a relay in shared mode (`index = 1`), on a folder relay and
 * on an FTP relay (pyftpdlib). Round after round, random clients edit, add
 * and delete files (same-second edits included) and then pass in a random
 * order; the clients then pass in turn until nothing moves. After every
 * round, every folder is the same tree, every version written in the round
 * is in every folder (as the file or as a conflict copy), and Escale never
 * crashed.
 *
 * Escale runs one pass at a time (`escalePass`), so that the order of the
 * clients' passes is the test's choice and not the clock's: a looping Escale
 * removes its own update on its next pass, whenever that comes. On FTP,
 * Escale 0.7.13's index mode reads no mtimes from listings and fails an
 * assertion in `loaded()` when it pushes to a page whose index it read in
 * the same run, which a shared client does on every pass once the relay has
 * an index (seen here on the first pass: it pulls, then crashes): so each of
 * its passes on FTP is a `download` run then an `upload` run of the same
 * client (same name, section and checksum cache), which is what a shared
 * pass does, in two processes. Escale also connects to port 21 whatever the
 * address says, so the FTP relay lives in a network namespace made by the
 * test, where pyftpdlib listens on 127.0.0.1:21 and Escale and hop run.
 *
 * Edits are generated around two behaviours of Escale that hop cannot
 * change (the README says so): an Escale client that has not pushed its
 * change of a file yet replaces it with a newer version that arrives (it
 * decides by mtime alone), so when Escale and a hop client change the same
 * file in a round, Escale's change gets the later (or the same) second; and
 * files deleted on one side come back when another client still has them
 * (Escale restores what it finds missing, and never sends deletions).
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import {
  converge,
  makeWorld,
  pass,
  type Peer,
  put,
  type RelaySpec,
  sha,
  type World,
} from "./helpers/mixed_relay.ts";
import { makeNet, type Net } from "./helpers/netns.ts";
import { rng } from "./helpers/prng.ts";
import { snapshot, tempDir } from "./relay_helpers.ts";

/** A shuffled copy of `xs` (Fisher-Yates on `rand`). */
function shuffle<T>(xs: T[], rand: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

type Op = { peer: Peer; kind: "edit" | "add" | "delete"; path: string; content?: string };

/** One round: random changes, random passes, then convergence and the checks. */
async function round(
  w: World,
  r: number,
  rand: () => number,
): Promise<string> {
  const [esc] = w.peers;
  const existing = Object.keys(await snapshot(w.peers[1].dir)).sort();
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const sameSecond = rand() < 0.4;
  const t0 = 1_700_000_000 + r * 1000;
  const ops: Op[] = [];
  const add = (peer: Peer, kind: Op["kind"], path: string) => {
    if (ops.some((o) => o.peer === peer && o.path === path)) return;
    const content = kind === "delete"
      ? undefined
      : `round ${r}, ${peer.name}, ${path}: ${"x".repeat(1 + Math.floor(rand() * 300))}\n`;
    ops.push({ peer, kind, path, content });
  };
  // most rounds, two or three clients change the same file (a new one, in some)
  if (rand() < 0.8) {
    const fresh = existing.length === 0 || rand() < 0.2;
    const path = fresh ? `sub/both-${r}.txt` : pick(existing);
    const who = shuffle(w.peers, rand).slice(0, 2 + Math.floor(rand() * 2));
    for (const [i, peer] of who.entries()) {
      add(peer, fresh ? "add" : i > 0 && rand() < 0.25 ? "delete" : "edit", path);
    }
  }
  for (let i = Math.floor(rand() * 3) + (ops.length === 0 ? 1 : 0); i > 0; i--) {
    const roll = rand();
    const kind = existing.length === 0 || roll > 0.85 ? "add" : roll > 0.65 ? "delete" : "edit";
    add(
      pick(w.peers),
      kind,
      kind === "add" ? pick([`new-${r}.txt`, `d${r}/new.txt`]) : pick(existing),
    );
  }
  // Escale replaces a change it has not pushed by any newer version that arrives: its change
  // of a file some hop client also changes this round gets the later (or, for half of the
  // rounds, the same) second, so that it survives whatever the order of the passes
  const mtime = new Map<Op, number>();
  ops.forEach((o, i) => mtime.set(o, sameSecond ? t0 : t0 + i));
  for (const o of ops) {
    if (o.peer !== esc || !o.content) continue;
    const hop = ops.filter((x) => x.peer !== esc && x.path === o.path && x.content);
    for (const h of hop) mtime.set(o, Math.max(mtime.get(o)!, mtime.get(h)!));
  }
  for (const o of ops) {
    if (o.content) await put(o.peer.dir, o.path, o.content, mtime.get(o)!);
    else await rm(join(o.peer.dir, o.path), { force: true });
  }
  const passes: Peer[] = [];
  for (const p of shuffle(w.peers, rand)) {
    passes.push(p);
    if (rand() < 0.3) passes.push(pick(w.peers));
  }
  const story = `round ${r}${sameSecond ? " (same second)" : ""}: ` +
    ops.map((o) => `${o.peer.name} ${o.kind} ${o.path}`).join(", ") +
    `; passes ${passes.map((p) => p.name).join(" ")}`;
  w.log.push(`=== ${story}`);
  for (const p of passes) await pass(w, p);
  await converge(w, story);
  // every version written this round is in every folder, as the file or a conflict copy
  for (const p of w.peers) {
    const contents = new Set(Object.values(await snapshot(p.dir)));
    for (const o of ops) {
      if (!o.content) continue;
      assert.ok(
        contents.has(sha(o.content)),
        `${story}: ${o.peer.name}'s version of ${o.path} is not in ${p.name}'s folder\n` +
          w.log.slice(-12).join("\n"),
      );
    }
  }
  return story;
}

async function mixedRelay(
  dir: string,
  relay: RelaySpec,
  netns: string | undefined,
  rounds: number,
  seed: number,
): Promise<void> {
  const w = await makeWorld(dir, relay, netns);
  const peers = w.peers;
  // a first tree, from one hop client
  for (const [i, p] of ["a.txt", "b.txt", "docs/c.md", "docs/d.md", "data/e.bin"].entries()) {
    await put(peers[1].dir, p, `first ${p}\n`.repeat(i + 1), 1_699_000_000 + i);
  }
  await converge(w, "the first tree");
  const rand = rng(seed).next;
  const stories: string[] = [];
  for (let r = 1; r <= rounds; r++) stories.push(await round(w, r, rand));
  const all = w.log.join("\n");
  const count = (re: RegExp) => all.match(new RegExp(re, "g"))?.length ?? 0;
  console.log(stories.join("\n"));
  console.log(
    `conflicts ${count(/conflict on /)}, asked ${count(/asked for \d+ file/)}, ` +
      `sent ${count(/sent \d+ file\(s\) other clients asked for/)}, ` +
      `echoes ${count(/send back/)}, deletions ${count(/deletion\(s\) on page/)}`,
  );
}

Deno.test("one Escale and two hop clients on a folder relay: every edit kept, every client converges", async () => {
  const [dir, clean] = await tempDir("hop-mixed-");
  try {
    const relay = join(dir, "relay");
    await mkdir(relay);
    const at = `relay path = ${relay}\nprotocol = file`;
    await mixedRelay(dir, { dir: relay, escale: at, hop: at }, undefined, 5, 7);
  } finally {
    await clean();
  }
});

Deno.test("one Escale and two hop clients on an FTP relay: every edit kept, every client converges", async () => {
  const [dir, clean] = await tempDir("hop-mixed-ftp-");
  let net: Net | undefined;
  let srv: TestFtpServer | undefined;
  try {
    // one host: every client and the server share its loopback
    net = await makeNet(["esc"]);
    const ns = net.ns("esc");
    const root = join(dir, "ftp");
    await mkdir(join(root, "relay"), { recursive: true });
    const user = "u" + randomBytes(4).toString("hex");
    const password = randomBytes(12).toString("hex");
    srv = await startPyftpdlib({ root, user, password, port: 21, netns: ns });
    const escale = `host address = ftp://127.0.0.1/relay\nuser = ${user}\npassword = ${password}`;
    const hop = `host address = ftp://127.0.0.1:21/relay\nuser = ${user}\npassword = ${password}`;
    await mixedRelay(
      dir,
      { dir: join(root, "relay"), escale, hop, escaleSplit: true },
      ns,
      4,
      11,
    );
  } finally {
    await srv?.stop();
    await net?.destroy();
    await clean();
  }
});
