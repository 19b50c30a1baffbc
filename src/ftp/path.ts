/**
 * Virtual path handling for the FTP engine: resolving a client argument against
 * the session's working directory (never above "/"), and joining the user's home.
 *
 * @module
 */

/**
 * Resolve `arg` (absolute or relative to `cwd`) to a normalized '/'-rooted path.
 * `..` stops at the root, `.` and empty segments vanish.
 *
 * @example resolveVirtual("/a/b", "../../../etc") // "/etc"
 */
export function resolveVirtual(cwd: string, arg: string): string {
  const base = arg.startsWith("/") ? [] : cwd.split("/");
  const parts: string[] = [];
  for (const seg of [...base, ...arg.split("/")]) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return "/" + parts.join("/");
}

/** Join a normalized home ("/" or "/x/y") and a normalized client path. */
export function joinHome(home: string, path: string): string {
  const h = resolveVirtual("/", home);
  if (h === "/") return path;
  return path === "/" ? h : h + path;
}

/** Parent of a normalized path ("/" for "/" and top-level entries). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** Last segment of a normalized path ("" for "/"). */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Quote a path for a 257 reply (RFC 959: embedded double quotes are doubled). */
export function quotePath(path: string): string {
  return '"' + path.replaceAll('"', '""') + '"';
}
