#!/usr/bin/env -S deno run -A
/**
 * The `hop` command: wires the words of each domain (`src/relay/cli.ts`,
 * `src/cluster/cli.ts`, `src/archive/cli.ts`, `src/cli/maintenance.ts`) into one
 * program (commander), runs one subcommand, and turns errors into exit codes:
 * 0 ok, 1 failure, 2 usage.
 *
 * @module
 */
import process from "node:process";
import { Command, CommanderError } from "commander";
import { errorCode, explainError } from "./src/errors.ts";
import { examples, type GlobalOptions, increase, reportOptions } from "./src/cli/common.ts";
import { registerDocCommands } from "./src/cli/docs.ts";
import { reportFailure } from "./src/ui/report.ts";
import { registerArchiveCommands } from "./src/archive/cli.ts";
import { registerClusterCommands } from "./src/cluster/cli.ts";
import { registerMaintenanceCommands } from "./src/cli/maintenance.ts";
import { registerRelayCommands } from "./src/relay/cli.ts";
import { formatVersion, VERSION, versionInfo } from "./src/cli/version.ts";

export { VERSION };

/** Builds the command tree; exported so tests can inspect it. */
export function buildProgram(): Command {
  const program = new Command("hop")
    .description(
      "Move files through places that are not peers: sync folders through a relay, " +
        "or serve an FTP cluster whose data lives on ordinary FTP servers.",
    )
    .option("-V, --version", "print hop's version, commit, build date and runtime")
    .option("--json", "print one JSON event per line (for scripts)")
    .option("-q, --quiet", "print nothing but errors")
    .option("-v, --verbose", "say more (-vv: more still)", increase)
    .option("--log-file <file>", "also append every message, with its time, to this file")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program.on("option:version", () => {
    const v = versionInfo();
    const json = program.opts().json || process.argv.includes("--json");
    process.stdout.write((json ? JSON.stringify(v) : formatVersion(v)) + "\n");
    throw new CommanderError(0, "commander.version", "");
  });

  registerRelayCommands(program);
  registerClusterCommands(program);
  registerMaintenanceCommands(program);
  registerArchiveCommands(program);
  registerDocCommands(program);
  examples(program, [
    "hop relay sync ./work file:///mnt/relay --once",
    "hop cluster serve --http 127.0.0.1:8021",
    "hop <command> --help              # every command has examples",
  ]);

  for (const c of [program, ...allCommands(program)]) {
    c.exitOverride().showHelpAfterError("(run with --help for usage)");
  }
  return program;
}

function allCommands(c: Command): Command[] {
  return c.commands.flatMap((sub) => [sub, ...allCommands(sub)]);
}

/** Runs hop with `argv` (without the program name); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "commander.help") return 0;
      // commander already printed the message; scripts also get it as an event
      if (argv.includes("--json")) {
        reportFailure({ json: true }, { message: e.message, code: "usage" });
      }
      return 2;
    }
    const g = program.opts() as GlobalOptions;
    const opts = reportOptions({ ...g, json: g.json || argv.includes("--json") });
    const debug = Boolean(process.env.HOP_DEBUG);
    const known = explainError(e);
    if (known) {
      const cause = debug && known.cause instanceof Error ? known.cause.stack : undefined;
      reportFailure(opts, {
        message: known.message,
        hint: known.hint,
        code: errorCode(known),
        stack: debug ? cause ?? known.stack : undefined,
      });
      return known.exitCode;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    reportFailure(opts, {
      message: `unexpected error: ${err.message}`,
      hint: debug
        ? "This is a bug in hop; please report it with the stack below."
        : "This is a bug in hop; run again with HOP_DEBUG=1 (which adds the stack) and report it.",
      code: "bug",
      stack: debug ? err.stack : undefined,
    });
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // Workers or sockets left open must not keep a finished command alive.
  const { closePool } = await import("./src/archive/bzip2.ts");
  closePool();
}
