/**
 * What a long operation tells its user: progress on a terminal (with rate and
 * time left), one line per thing that happened, details with `-v`/`-vv`, JSON
 * events for scripts (`--json`: info, warn, progress and error events, one per
 * line), nothing but errors with `--quiet`, and every line also appended to
 * `--log-file`. Every command reports through one {@linkcode Reporter}.
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
import { appendFileSync } from "node:fs";
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
  /** A detail shown with `-v` (level 1, the default) or `-vv` (level 2), and in the log file. */
  debug?(message: string, level?: 1 | 2): void;
  /**
   * Progress of a long operation: a line on an interactive terminal, a
   * `progress` event (at most one a second per label) with `--json`.
   */
  progress(p: Progress): void;
  /** Clears the progress line. */
  close(): void;
}

/** Output modes chosen by the global `--json`, `--quiet`, `-v` and `--log-file` flags. */
export interface ReportOptions {
  json?: boolean;
  quiet?: boolean;
  /** 0 (default), 1 (`-v`) or 2 (`-vv`). */
  verbose?: number;
  /** Every line is also appended here, with its time. */
  logFile?: string;
  /** Defaults to process.stdout / process.stderr; injectable for tests. */
  out?: { write(s: string): unknown };
  err?: { write(s: string): unknown; isTTY?: boolean };
  /** Clock in ms (tests). */
  now?: () => number;
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

/** Formats seconds for people: `45 s`, `3 min 20 s`, `2 h 5 min`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  const m = Math.floor((s % 3600) / 60);
  return `${Math.floor(s / 3600)} h${m ? ` ${m} min` : ""}`;
}

/** Rate (bytes/s) and time left of a progress snapshot, `elapsed` seconds after its start. */
export function progressRate(
  p: Progress,
  elapsedSeconds: number,
): { rate?: number; etaSeconds?: number } {
  if (p.bytes === undefined || elapsedSeconds <= 0) return {};
  const rate = p.bytes / elapsedSeconds;
  if (p.totalBytes === undefined || rate <= 0) return { rate };
  return { rate, etaSeconds: Math.max(0, (p.totalBytes - p.bytes) / rate) };
}

/** One progress line for a terminal. */
export function formatProgress(p: Progress, elapsedSeconds: number): string {
  const parts = [p.label];
  if (p.files !== undefined) {
    parts.push(`${p.files}${p.totalFiles !== undefined ? "/" + p.totalFiles : ""} files`);
  }
  if (p.bytes !== undefined) {
    parts.push(
      `${formatBytes(p.bytes)}${p.totalBytes !== undefined ? "/" + formatBytes(p.totalBytes) : ""}`,
    );
    const { rate, etaSeconds } = progressRate(p, elapsedSeconds);
    if (rate !== undefined) parts.push(`${formatBytes(rate)}/s`);
    if (etaSeconds !== undefined) parts.push(`${formatDuration(etaSeconds)} left`);
  }
  return parts.join("  ");
}

/** Creates the reporter for one command run. */
export function createReporter(opts: ReportOptions = {}): Reporter {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const now = opts.now ?? Date.now;
  const verbose = opts.verbose ?? 0;
  const tty = !opts.json && !opts.quiet && Boolean(err.isTTY);
  /** Per label: when its progress started, when it was last shown, and its last byte count. */
  const shown = new Map<string, { start: number; last: number; bytes: number }>();
  let drawn = false;

  const log = (level: string, message: string) => {
    if (!opts.logFile) return;
    try {
      appendFileSync(opts.logFile, `${new Date(now()).toISOString()} ${level} ${message}\n`);
    } catch {
      // a log file that cannot be written must not stop the work; said once below
      if (!logFailed) {
        logFailed = true;
        err.write(`hop: warning: cannot write the log file ${opts.logFile}\n`);
      }
    }
  };
  let logFailed = false;
  const clear = () => {
    if (drawn) {
      err.write("\r\x1b[2K");
      drawn = false;
    }
  };
  const emit = (level: string, message: string, event?: Record<string, unknown>) => {
    out.write(
      JSON.stringify({ level, message, ...event, time: new Date(now()).toISOString() }) + "\n",
    );
  };
  const timing = (p: Progress) => {
    let t = shown.get(p.label);
    const bytes = p.bytes ?? 0;
    // a label seen again from zero (the next pass) starts a new rate
    if (!t || bytes < t.bytes || (bytes === 0 && !p.files)) {
      shown.set(p.label, t = { start: now(), last: -Infinity, bytes });
    }
    t.bytes = bytes;
    return t;
  };

  return {
    info(message, event) {
      log("info", message);
      if (opts.json) return emit("info", message, event);
      if (opts.quiet) return;
      clear();
      out.write(message + "\n");
    },
    warn(message, event) {
      log("warn", message);
      if (opts.json) return emit("warn", message, event);
      clear();
      err.write(`hop: warning: ${message}\n`);
    },
    debug(message, level = 1) {
      if (level <= Math.max(verbose, 1)) log("debug", message);
      if (level > verbose) return;
      if (opts.json) return emit("debug", message, { event: "debug", verbosity: level });
      clear();
      err.write(`hop: ${message}\n`);
    },
    progress(p) {
      if (!tty && !opts.json) return;
      const t = timing(p);
      const at = now();
      const elapsed = (at - t.start) / 1000;
      const finished = (p.totalFiles !== undefined && p.files === p.totalFiles) ||
        (p.totalBytes !== undefined && p.bytes === p.totalBytes);
      if (opts.json) {
        if (at - t.last < 1000 && !finished) return;
        t.last = at;
        const { rate, etaSeconds } = progressRate(p, elapsed);
        return emit("progress", formatProgress(p, elapsed), {
          event: "progress",
          ...p,
          ...(rate !== undefined ? { rate: Math.round(rate) } : {}),
          ...(etaSeconds !== undefined ? { etaSeconds: Math.round(etaSeconds) } : {}),
        });
      }
      if (at - t.last < 100) return;
      t.last = at;
      err.write("\r\x1b[2K" + formatProgress(p, elapsed));
      drawn = true;
    },
    close: clear,
  };
}

/** The reporter's view of a failure that ends a command, as `main` prints it. */
export function reportFailure(
  opts: ReportOptions,
  e: { message: string; hint?: string; code: string; stack?: string },
): void {
  const err = opts.err ?? process.stderr;
  const out = opts.out ?? process.stdout;
  if (opts.logFile) {
    try {
      appendFileSync(
        opts.logFile,
        `${new Date().toISOString()} error ${e.message}${e.hint ? ` (${e.hint})` : ""}\n`,
      );
    } catch {
      // reported below anyway
    }
  }
  if (opts.json) {
    out.write(
      JSON.stringify({
        level: "error",
        event: "error",
        code: e.code,
        message: e.message,
        ...(e.hint ? { hint: e.hint } : {}),
        ...(e.stack ? { stack: e.stack } : {}),
        time: new Date().toISOString(),
      }) + "\n",
    );
    return;
  }
  err.write(`hop: ${e.message}\n`);
  if (e.hint) err.write(`  ${e.hint}\n`);
  if (e.stack) err.write(e.stack + "\n");
}
