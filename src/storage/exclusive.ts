/**
 * Exclusive create where a storage has no create-if-absent of its own (FTP,
 * WebDAV and S3 servers that ignore `If-None-Match: *`, rclone remotes): each
 * racer writes a claim file of its own beside the name, then lists the
 * folder.
 *
 * 1. If `name` exists: false.
 * 2. Write `.hop-tmp-x-<name>.<random>` (the claim; a temp name, so cleanup
 *    removes what a crash leaves).
 * 3. List the folder: if another live claim for `name` is there, or `name`
 *    exists, remove the own claim: false.
 * 4. Write `name` (atomically), then remove the own claim: true.
 *
 * Two racers cannot both win: each writes its claim before it lists, so of
 * two claims the later-listed one sees the other (or, once the other removed
 * its claim, the name it wrote first). Both may lose a round: each then backs
 * off for a random while and tries again, a few rounds. This needs a storage whose listing shows every write
 * that completed before it (read-after-write consistent listings: local and
 * network file systems, FTP, SFTP, WebDAV servers on a file system, S3 since
 * 2020 and most S3-compatible servers; not some eventually consistent cloud
 * remotes, where rclone's own docs say what to expect). A claim older than
 * `graceMs` by the storage's own clock (its mtime against the new claim's)
 * was left by a crash and is ignored.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { type Driver, joinPath, parentOf, TEMP_PREFIX } from "./types.ts";

/** Claims older than this (ms, storage clock) are a crash's leftovers. */
export const CLAIM_GRACE_MS = 60_000;

/** Rounds of the scheme before giving up (racers back off for a random while between them). */
const ROUNDS = 4;

/**
 * Creates `path` exclusively by the listing scheme (see the module doc). A
 * round that sees a rival backs off for a random while (a multiple of how long
 * the round took) and tries again, so that racers spread out; after the last
 * round it reports false.
 */
export async function createExclusiveByListing(
  d: Driver,
  path: string,
  data: Uint8Array,
  graceMs = CLAIM_GRACE_MS,
): Promise<boolean> {
  for (let round = 1;; round++) {
    const started = Date.now();
    const r = await claimRound(d, path, data, graceMs);
    if (r !== "rival" || round >= ROUNDS) return r === "won";
    // Racers meet again unless their rounds start further apart than a round lasts:
    // the back-off grows with the round's own length (an rclone call takes a second),
    // not with a fixed step.
    const span = Math.max(150, Date.now() - started);
    await new Promise((res) => setTimeout(res, Math.random() * span * 2 * round));
  }
}

async function claimRound(
  d: Driver,
  path: string,
  data: Uint8Array,
  graceMs: number,
): Promise<"won" | "taken" | "rival"> {
  if (await d.stat(path)) return "taken";
  const dir = parentOf(path);
  const base = path.slice(dir.length ? dir.length + 1 : 0);
  const prefix = `${TEMP_PREFIX}x-${base}.`;
  const mine = prefix + randomBytes(8).toString("hex");
  // empty: written in place where the driver can (nothing to see half-written)
  await d.write(joinPath(dir, mine), new Uint8Array(0), { direct: true });
  let won = false;
  try {
    const entries = await d.list(dir);
    const own = entries.find((e) => e.name === mine);
    const now = own?.mtimeMs ?? null;
    const rival = entries.some((e) =>
      e.name !== mine && e.name.startsWith(prefix) &&
      /^[0-9a-f]{16}$/.test(e.name.slice(prefix.length)) &&
      (now === null || e.mtimeMs === null || now - e.mtimeMs < graceMs)
    );
    if (entries.some((e) => e.name === base)) return "taken";
    if (rival) return "rival";
    // A rival claim removed while the listing was made (some listings stat each
    // file and leave out what vanished) was a loser's, or a winner's that wrote
    // the name before removing its claim: look at the name once more.
    if (await d.stat(path)) return "taken";
    await d.write(path, data);
    won = true;
    return "won";
  } finally {
    await d.delete(joinPath(dir, mine)).catch((e) => {
      if (!won) throw e;
    });
  }
}
