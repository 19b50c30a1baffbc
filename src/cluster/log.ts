/**
 * The cluster's log, `.log/cluster.log` of the root: one line per event, ISO time
 * first. Bounded and private: readable by its owner only (mode 0600, in a 0700
 * folder), rotated by size (`cluster.log` -> `cluster.log.1` -> ... up to `keep`
 * old files), and every control character a line carries (a client's bytes) is
 * written escaped (`\x1b`), so a line is one line and a terminal showing the log
 * runs nothing.
 *
 * @example
 * ```ts
 * const log = openClusterLog(layout, { maxBytes: 10 << 20, keep: 3 });
 * log.line("cluster: node 10.0.0.2:21 is DOWN");
 * await log.close();
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ClusterLayout } from "./layout.ts";

/** Default size at which the log is rotated (bytes). */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Default number of rotated files kept. */
export const DEFAULT_LOG_KEEP = 3;

/** An open cluster log. */
export interface ClusterLog {
  /** Append one line (the time is put first). */
  line(text: string): void;
  /** Flush and close. */
  close(): Promise<void>;
}

/** `text` with control characters (C0, DEL, C1) written as `\xNN`. */
export function escapeControl(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    return "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0");
  });
}

/** Open `.log/cluster.log` of the cluster at `l` for appending. */
export function openClusterLog(
  l: ClusterLayout,
  o: { maxBytes?: number; keep?: number } = {},
): ClusterLog {
  const maxBytes = o.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
  const keep = Math.max(1, o.keep ?? DEFAULT_LOG_KEEP);
  const file = path.join(l.log, "cluster.log");
  fs.mkdirSync(l.log, { recursive: true, mode: 0o700 });
  const privately = (p: string) => {
    try {
      fs.chmodSync(p, p === l.log ? 0o700 : 0o600);
    } catch { /* not there (yet) */ }
  };
  privately(l.log);
  let size = 0;
  // Written with plain synchronous appends: ordered, nothing buffered that a rotation
  // could misplace, and a line lost (a full disk) is just lost.
  const open = (): number | null => {
    try {
      const fd = fs.openSync(file, "a", 0o600);
      privately(file);
      size = fs.fstatSync(fd).size;
      return fd;
    } catch {
      return null;
    }
  };
  let fd = open();
  let closed = false;
  const rotate = () => {
    if (fd !== null) fs.closeSync(fd);
    try {
      for (let i = keep - 1; i >= 1; i--) {
        const from = `${file}.${i}`;
        if (fs.existsSync(from)) fs.renameSync(from, `${file}.${i + 1}`);
      }
      fs.renameSync(file, `${file}.1`);
    } catch { /* another process rotated it: go on with a fresh file */ }
    fd = open();
  };
  return {
    line(text) {
      const entry = Buffer.from(`${new Date().toISOString()} ${escapeControl(text)}\n`);
      if (size > 0 && size + entry.length > maxBytes) rotate();
      if (closed) return;
      fd ??= open();
      if (fd === null) return;
      try {
        fs.writeSync(fd, entry);
        size += entry.length;
      } catch { /* no room: the line is lost, the server goes on */ }
    },
    close() {
      closed = true;
      if (fd !== null) fs.closeSync(fd);
      fd = null;
      return Promise.resolve();
    },
  };
}
