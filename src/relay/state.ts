/**
 * What a client remembers about one relay, in its folder's `.hop/` directory:
 * the checksum of every file at the last moment this client and the relay
 * agreed on it (the base of conflict and deletion detection), and which
 * deletion records it has already applied.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { HopError } from "../errors.ts";
import { stateDir } from "./scan.ts";

/** The remembered state of one (folder, relay, client). */
export interface SyncState {
  v: 1;
  relay: string;
  client: string;
  /** path -> checksum of the version last agreed with the relay. */
  base: Record<string, string>;
  /** relay file name -> mtime (ms) of the version already processed. */
  seen: Record<string, number>;
}

/** The state file of a folder for a relay and client name. */
export function stateFile(root: string, relayUrl: string, client: string): string {
  const id = createHash("sha256").update(`${relayUrl}\n${client}`).digest("hex").slice(0, 16);
  return join(root, ".hop", `relay-${id}.json`);
}

/** Loads the state (a fresh one when absent). A damaged file is an error, not a reset. */
export async function loadState(
  root: string,
  relayUrl: string,
  client: string,
): Promise<SyncState> {
  const file = stateFile(root, relayUrl, client);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return { v: 1, relay: relayUrl, client, base: {}, seen: {} };
  }
  try {
    const s = JSON.parse(text) as SyncState;
    if (s.v === 1 && typeof s.base === "object" && typeof s.seen === "object") return s;
  } catch {
    // fall through
  }
  throw new HopError(`the sync state ${file} is damaged`, {
    hint: "Remove it: the next pass then treats every differing file as a conflict and " +
      "keeps both versions.",
  });
}

/** Writes the state atomically. */
export async function saveState(root: string, s: SyncState): Promise<void> {
  await stateDir(root);
  const file = stateFile(root, s.relay, s.client);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(s));
  await rename(tmp, file);
}
