/**
 * One Escale 0.7.13 client (`esc`) and two hop clients (`h1`, `h2`) sharing
 * a relay in shared mode (`index = 1`), for the mixed-relay interop tests:
 * their folders and configurations, one pass of a client, and passes in turn
 * until nothing moves. Escale runs one pass at a time (`escalePass`), so the
 * order of the passes is the test's.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readdir, utimes, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { snapshot } from "../relay_helpers.ts";
import { escalePass } from "./escale.ts";
import { runHop } from "./hop.ts";
import { inNetns } from "./netns.ts";

/** A client of the relay. */
export interface Peer {
  name: string;
  kind: "escale" | "hop";
  dir: string;
  /** Its configuration; Escale: the files one of its passes runs on, in turn. */
  confs: string[];
  home: string;
}

/** The three clients (`esc`, `h1`, `h2`, in that order) and their relay. */
export interface World {
  peers: Peer[];
  /** The relay's folder (the FTP server's folder for an FTP relay). */
  relayDir: string;
  netns?: string;
  /** What the passes said, newest last (for failure reports). */
  log: string[];
}

/** SHA-512 of a text, as `snapshot` gives file contents. */
export const sha = (s: string): string => createHash("sha512").update(s).digest("hex");

/** One pass of a client (both runs of a split Escale pass); fails on a hop error or an Escale crash. */
export async function pass(w: World, p: Peer): Promise<void> {
  if (p.kind === "hop") {
    const r = await runHop(["relay", "sync", "-c", p.confs[0], "--once"], {
      wrap: inNetns(w.netns, []),
      timeoutMs: 240_000,
    });
    w.log.push(`--- ${p.name} (exit ${r.code})\n${r.stdout}${r.stderr}`);
    assert.equal(r.code, 0, `${p.name} failed:\n${w.log.slice(-6).join("\n")}`);
    assert.doesNotMatch(r.stderr, /bug in hop/i);
  } else {
    for (const conf of p.confs) {
      const r = await escalePass(conf, { home: p.home, netns: w.netns });
      const interesting = r.log.split("\n").filter((l) =>
        /INFO|WARNING|ERROR|CRITICAL|Traceback|Error/.test(l)
      );
      w.log.push(`--- ${p.name}\n${interesting.join("\n")}`);
      assert.ok(!r.crashed, `Escale crashed:\n${r.log}`);
    }
  }
}

/** Writes `content` at `path` with mtime `mtime` (whole seconds). */
export async function put(
  dir: string,
  path: string,
  content: string,
  mtime: number,
): Promise<void> {
  await mkdir(dirname(join(dir, path)), { recursive: true });
  await writeFile(join(dir, path), content);
  await utimes(join(dir, path), mtime, mtime);
}

/** What is in flight on the relay: pending updates, hop requests and sends. */
export async function inFlight(relayDir: string): Promise<string[]> {
  return (await readdir(relayDir)).filter((n) =>
    n.startsWith(".hop-requests-") || n.startsWith(".hop-send-") ||
    /^\.[^.]+\.\d+\.(index|data)$/.test(n)
  );
}

/**
 * Passes in turn until the three folders are the same tree with nothing in
 * flight on the relay, and another pass of each hop client (which would ask
 * the Escale client to send back what it took, if something was) changes
 * nothing.
 */
export async function converge(w: World, what: string): Promise<void> {
  const relayDir = w.relayDir;
  const [esc, h1, h2] = w.peers;
  const trees = () => Promise.all(w.peers.map((p) => snapshot(p.dir)));
  const settled = (t: Record<string, string>[]) =>
    t.every((x) => JSON.stringify(x) === JSON.stringify(t[0]));
  for (let turn = 0; turn < 14; turn++) {
    for (const p of [h1, h2, esc]) await pass(w, p);
    const t = await trees();
    if (!settled(t) || (await inFlight(relayDir)).length > 0) continue;
    for (const p of [h1, h2]) await pass(w, p);
    if (
      JSON.stringify(await trees()) === JSON.stringify(t) && (await inFlight(relayDir)).length === 0
    ) {
      return;
    }
  }
  const named = await Promise.all(w.peers.map(async (p) => [p.name, await snapshot(p.dir)]));
  assert.fail(
    `${what}: the clients did not converge:\n${JSON.stringify(named, null, 1)}\n` +
      `relay: ${(await inFlight(relayDir)).join(" ")}\n${w.log.slice(-12).join("\n")}`,
  );
}

/**
 * Where the relay is, as each client's configuration says it. `escaleSplit`:
 * run each Escale pass as a download-mode run, then an upload-mode run of the
 * same client (FTP, see the module doc).
 */
export interface RelaySpec {
  dir: string;
  escale: string;
  hop: string;
  escaleSplit?: boolean;
}

/** The three clients of {@linkcode makeWorld} on a folder relay `relay/` made under `dir`. */
export async function folderWorld(dir: string): Promise<World> {
  const relayDir = join(dir, "relay");
  await mkdir(relayDir);
  const at = `relay path = ${relayDir}\nprotocol = file`;
  return await makeWorld(dir, { dir: relayDir, escale: at, hop: at });
}

/** The three clients' folders and configurations under `dir`. */
export async function makeWorld(dir: string, relay: RelaySpec, netns?: string): Promise<World> {
  const peers: Peer[] = [];
  for (const [name, kind] of [["esc", "escale"], ["h1", "hop"], ["h2", "hop"]] as const) {
    const home = join(dir, `${name}-home`);
    const local = join(dir, name);
    await mkdir(join(home, "cache"), { recursive: true });
    await mkdir(local);
    const section = (mode: string, extra: string[]) =>
      [
        `[shared]`,
        `local path = ${local}`,
        kind === "escale" ? relay.escale : relay.hop,
        `index = 1`,
        `client name = ${name}`,
        `mode = ${mode}`,
        ...extra,
        "",
      ].join("\n");
    // each client's configuration in a folder of its own: Escale keeps its log beside it, and
    // its checksum cache in `cache dir`, which its two runs share when a pass is split
    const confs: string[] = [];
    if (kind === "hop") {
      // every update waits for the other hop client and Escale
      confs.push(join(home, "hop.conf"));
      await writeFile(confs[0], section("shared", ["puller count = 2"]));
    } else {
      for (const mode of relay.escaleSplit ? ["download", "upload"] : ["shared"]) {
        const conf = join(home, `escale-${mode}.conf`);
        // one pass per run: it sleeps `refresh` seconds after it, and is stopped then
        await writeFile(
          conf,
          section(mode, ["refresh = 900", `cache dir = ${join(home, "cache")}`]),
        );
        confs.push(conf);
      }
    }
    peers.push({ name, kind, dir: local, confs, home });
  }
  return { peers, relayDir: relay.dir, netns, log: [] };
}
