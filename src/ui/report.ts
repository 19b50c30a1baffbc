/**
 * What a long operation tells its user: progress on a terminal, one line per
 * thing that happened, JSON events for scripts (`--json`), nothing but errors
 * with `--quiet`. Every command reports through one {@linkcode Reporter}.
 *
 * @example
 * ```ts
 * const r = createReporter({ json: false, quiet: false });
 * r.progress({ label: "packing", files: 3, bytes: 1024 });
 * r.info("packed 3 files");
 * r.close();
 * ```
 *
 * @module
 */
import process from "node:process";

/** A progress snapshot; `total*` fields are optional. */
export interface Progress {
  label: string;
  files?: number;
  bytes?: number;
  totalFiles?: number;
  totalBytes?: number;
}

/** Where a command reports what it does. */
export interface Reporter {
  /** Something happened worth one line (human) or one event (JSON). */
  info(message: string, event?: Record<string, unknown>): void;
  /** A problem that did not stop the command. Always shown (stderr), even with --quiet. */
  warn(message: string, event?: Record<string, unknown>): void;
  /** Progress of a long operation: shown only on an interactive terminal. */
  progress(p: Progress): void;
  /** Clears the progress line. */
  close(): void;
}

/** Output modes chosen by the global `--json` and `--quiet` flags. */
export interface ReportOptions {
  json?: boolean;
  quiet?: boolean;
  /** Defaults to process.stdout / process.stderr; injectable for tests. */
  out?: { write(s: string): unknown };
  err?: { write(s: string): unknown; isTTY?: boolean };
}

/** Formats a byte count for people: `1.5 MB`. */
export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** Creates the reporter for one command run. */
export function createReporter(opts: ReportOptions = {}): Reporter {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const tty = !opts.json && !opts.quiet && Boolean(err.isTTY);
  const started = Date.now();
  let lastDraw = 0;
  let drawn = false;

  const clear = () => {
    if (drawn) {
      err.write("\r\x1b[2K");
      drawn = false;
    }
  };
  const emit = (level: string, message: string, event?: Record<string, unknown>) => {
    out.write(JSON.stringify({ level, message, ...event, time: new Date().toISOString() }) + "\n");
  };

  return {
    info(message, event) {
      if (opts.json) return emit("info", message, event);
      if (opts.quiet) return;
      clear();
      out.write(message + "\n");
    },
    warn(message, event) {
      if (opts.json) return emit("warn", message, event);
      clear();
      err.write(`hop: warning: ${message}\n`);
    },
    progress(p) {
      if (!tty) return;
      const now = Date.now();
      if (now - lastDraw < 100) return;
      lastDraw = now;
      const secs = Math.max((now - started) / 1000, 0.001);
      const parts = [p.label];
      if (p.files !== undefined) {
        parts.push(`${p.files}${p.totalFiles !== undefined ? "/" + p.totalFiles : ""} files`);
      }
      if (p.bytes !== undefined) {
        parts.push(
          `${formatBytes(p.bytes)}${
            p.totalBytes !== undefined ? "/" + formatBytes(p.totalBytes) : ""
          }`,
          `${formatBytes(p.bytes / secs)}/s`,
        );
      }
      err.write("\r\x1b[2K" + parts.join("  "));
      drawn = true;
    },
    close: clear,
  };
}
