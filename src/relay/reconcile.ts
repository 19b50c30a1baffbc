/**
 * What one path should become when this client's copy, the version it last
 * agreed on with the relay (its base) and the relay's version differ: the
 * decisions of relay sync, as pure functions, and the names of conflict
 * copies.
 *
 * The rule that keeps every edit: a version on the relay is never replaced
 * by one that did not know it. When both sides changed a path, the relay's
 * version keeps the name (it got there first, and an Escale client, which
 * decides by modification time alone, cannot be made to give its version
 * up), and the local version is renamed to a conflict copy, which is then
 * pushed as a new file; the client whose version that is is the one that
 * renames it, so it is always told.
 *
 * Whether the relay's version knew ours is read from its `base:` line (hop
 * pushers write the checksum they changed from). Escale writes none: an
 * Escale version replaces ours as an update, unless ours is a version this
 * client pushed that the Escale client was never seen to have (it decides
 * by mtime, so it skips an incoming file when its own copy is newer, or of
 * the same second, and then pushes its own over it).
 *
 * @module
 */

/** A version of a path on the relay: an index entry, or an entry of an update. */
export interface RelayVersion {
  checksum: string;
  /** Modification time, whole seconds. */
  timestamp: number;
  pusher: string;
  /**
   * The version the pusher changed (hop pushers): its checksum, null for a new
   * file. Undefined: not pushed by hop (an Escale client), so unknown.
   */
  base: string | null | undefined;
}

/** What this client knows of a path. */
export interface PathState {
  /** Checksum of the local file; undefined when there is none. */
  local?: string;
  /** Checksum of the version last agreed with the relay. */
  base?: string;
  /** A version this client asked the others to send again (it replaces `base`). */
  wanted?: string;
  /** A version this client pushed that an Escale client on the relay has not confirmed. */
  unconfirmed?: string;
}

/**
 * True when `r` was made from what this client has as its base (or from the
 * version it asked for), so taking it loses nothing.
 */
export function supersedes(r: RelayVersion, s: PathState): boolean {
  if (s.base === undefined) return false;
  if (r.base === undefined) return s.unconfirmed !== s.base;
  return r.base === s.base || (s.wanted !== undefined && r.base === s.wanted);
}

/** What to do about a path whose relay index entry is `r`. */
export type IndexedAction =
  /** The local file is the relay's version. */
  | "agree"
  /** Changed here only: push it. */
  | "push"
  /** Deleted here only: push the deletion. */
  | "delete"
  /** Changed on the relay only (or deleted here and changed there): get the relay's version. */
  | "fetch"
  /** Both changed: the local version becomes a conflict copy, then get the relay's. */
  | "keep-fetch";

/** Decides a path present in the relay's index (see the module doc). */
export function decideIndexed(r: RelayVersion, s: PathState): IndexedAction {
  if (s.local === r.checksum) return "agree";
  if (r.checksum === s.base) return s.local === undefined ? "delete" : "push";
  if (s.local === undefined) return "fetch";
  if (s.local === s.base && supersedes(r, s)) return "fetch";
  return "keep-fetch";
}

/** What to do with an entry of an update this client consumes. */
export type IncomingAction =
  | "agree"
  /** No local file: write it. */
  | "write"
  /** The local file is the version the incoming one replaced: replace it. */
  | "overwrite"
  /** Both changed: the local file becomes a conflict copy, the incoming one takes the name. */
  | "keep-write"
  /** Conservative mode: the local file stays, the incoming one is written as a conflict copy. */
  | "copy-incoming";

/** Decides an incoming update entry `r` against the local file. */
export function decideIncoming(
  r: RelayVersion,
  s: PathState,
  conservative: boolean,
): IncomingAction {
  if (s.local === r.checksum) return "agree";
  if (s.local === undefined) return "write";
  if (conservative) return "copy-incoming";
  if (s.local === s.base && supersedes(r, s)) return "overwrite";
  return "keep-write";
}

/**
 * `dir/name.conflict-<client>-<YYYYMMDD-HHMMSS>.ext` for `dir/name.ext`: the
 * client whose version it is and that version's modification time (UTC), so
 * that clients holding the same version name its copy alike. `n` > 1 adds
 * `-n` (when that name is taken by other content).
 */
export function conflictName(path: string, client: string, mtimeSeconds: number, n = 1): string {
  const stamp = new Date(mtimeSeconds * 1000).toISOString().replace(/[-:]/g, "").replace("T", "-")
    .slice(0, 15);
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  const dot = base.lastIndexOf(".");
  // a version with no pusher (Escale's pre-0.5 placeholders name none) is "unknown"
  const safeClient = client.replace(/[^A-Za-z0-9_-]/g, "_") || "unknown";
  const tag = `.conflict-${safeClient}-${stamp}${n > 1 ? `-${n}` : ""}`;
  return dot > 0 ? `${dir}${base.slice(0, dot)}${tag}${base.slice(dot)}` : `${dir}${base}${tag}`;
}
