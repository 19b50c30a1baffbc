/**
 * The small pieces every domain's command registration shares: the global
 * output flags turned into a {@linkcode Reporter}, option parsers, and the
 * signal handling of long-running commands.
 *
 * @example
 * ```ts
 * program.command("thing").option("--n <n>", "how many", positiveInt)
 *   .action(async (o, cmd) => reporterFor(cmd).info(`n = ${o.n}`));
 * ```
 *
 * @module
 */
import process from "node:process";
import { type Command, InvalidArgumentError } from "commander";
import { UsageError } from "../errors.ts";
import { createReporter, type Reporter, type ReportOptions } from "../ui/report.ts";

/** The flags every command inherits from `hop` itself. */
export interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
  /** `-v` 1, `-vv` 2. */
  verbose?: number;
  logFile?: string;
}

/** The reporter for a command, shaped by the global `--json`, `--quiet`, `-v` and `--log-file`. */
export function reporterFor(cmd: Command): Reporter {
  return createReporter(reportOptions(cmd.optsWithGlobals() as GlobalOptions));
}

/** The reporter options the global flags ask for. */
export function reportOptions(g: GlobalOptions): ReportOptions {
  return { json: g.json, quiet: g.quiet, verbose: g.verbose, logFile: g.logFile };
}

/** Commander collector of a counted flag (`-v`, `-vv`). */
export function increase(_value: unknown, previous: number | undefined): number {
  return (previous ?? 0) + 1;
}

/** Commander collector for repeatable options (`--node A --node B`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Commander parser of a whole number >= 1. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError("expected a whole number of at least 1");
  }
  return n;
}

/** Commander parser of a number > 0 (seconds may be fractional). */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a number above 0");
  return n;
}

/** `--tls-cert` / `--tls-key` as one option, or undefined when neither is given. */
export function tlsOption(
  o: { tlsCert?: string; tlsKey?: string },
): { cert: string; key: string } | undefined {
  if (!o.tlsCert && !o.tlsKey) return undefined;
  if (!o.tlsCert || !o.tlsKey) {
    throw new UsageError(
      "--tls-cert and --tls-key go together",
      "Give both PEM files, or neither.",
    );
  }
  return { cert: o.tlsCert, key: o.tlsKey };
}

/**
 * Runs `work` with a signal that SIGINT/SIGTERM abort: long-lived commands stop
 * cleanly after the step in progress. The first signal is acknowledged at once
 * on `reporter` (with `says`, when given); a second one exits at once (130),
 * leaving what the next run undoes.
 */
export async function untilSignal<T>(
  work: (signal: AbortSignal) => Promise<T>,
  ack?: { reporter: Reporter; says: string },
): Promise<T> {
  const ac = new AbortController();
  const stop = (sig: string) => {
    if (ac.signal.aborted) {
      ack?.reporter.close();
      process.stderr.write("hop: stopped at once; the next run undoes what was cut\n");
      process.exit(130);
    }
    if (ack) ack.reporter.warn(ack.says, { event: "stopping", signal: sig });
    ac.abort();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  try {
    return await work(ac.signal);
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

/** The examples of each command, for `--help` and the man page. */
const EXAMPLES = new WeakMap<Command, string[]>();

/** Adds examples to a command's `--help` (and to the man page); returns the command. */
export function examples(cmd: Command, lines: string[]): Command {
  EXAMPLES.set(cmd, lines);
  return cmd.addHelpText("after", `\nExamples:\n${lines.map((l) => `  ${l}`).join("\n")}\n`);
}

/** The examples given to `cmd` with {@linkcode examples}. */
export function examplesOf(cmd: Command): string[] {
  return EXAMPLES.get(cmd) ?? [];
}
