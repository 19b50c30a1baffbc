#!/usr/bin/env -S deno run -A
/**
 * The `hop` command: parses the command line (commander), runs one
 * subcommand, and turns errors into exit codes: 0 ok, 1 failure, 2 usage.
 *
 * Subcommands live with their domain (`src/relay`, `src/cluster`, ...); this
 * file only wires words to functions.
 *
 * @module
 */
import process from "node:process";
import { Command, CommanderError, Option } from "commander";
import { HopError, UsageError } from "./src/errors.ts";
import { createReporter, type Reporter } from "./src/ui/report.ts";
import denoConfig from "./deno.json" with { type: "json" };

/** hop's version, from deno.json. */
export const VERSION: string = denoConfig.version;

interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
}

function reporterFor(cmd: Command): Reporter {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  return createReporter({ json: g.json, quiet: g.quiet });
}

/** A subcommand whose issue is not done yet: it fails, it never pretends. */
function notImplemented(what: string): never {
  throw new HopError(`${what}: not implemented yet`, {
    hint: "This subcommand is planned but not built in this version of hop; see the README.",
  });
}

/** Builds the command tree; exported so tests can inspect it. */
export function buildProgram(): Command {
  const program = new Command("hop")
    .description(
      "Move files through places that are not peers: sync folders through a relay, " +
        "or serve an FTP cluster whose data lives on ordinary FTP servers.",
    )
    .version(VERSION, "-V, --version", "print hop's version")
    .option("--json", "print one JSON event per line (for scripts)")
    .option("-q, --quiet", "print nothing but errors")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  // --- relay -----------------------------------------------------------
  const relay = program.command("relay").description(
    "keep local folders in sync through a relay (a folder or an FTP account)",
  );
  relay.command("sync")
    .description("synchronize local folders with their relays (Escale 0.7 compatible)")
    .argument("[local]", "local folder (one-off use without a config file)")
    .argument("[relay]", "relay URL: file:///path or ftp://host:port/dir")
    .option("-c, --config <file>", "INI configuration (an escale.conf works)")
    .option("--once", "run one pull/push pass, then exit")
    .action(() => notImplemented("hop relay sync"));
  relay.command("status")
    .description("show pages, pending updates, locks and clients of a relay")
    .option("-c, --config <file>", "INI configuration")
    .action(() => notImplemented("hop relay status"));

  // --- cluster ---------------------------------------------------------
  const cluster = program.command("cluster").description(
    "the FTP cluster: link files on the server, data on ordinary FTP servers (nodes)",
  );
  cluster.command("serve")
    .description("serve the cluster over FTP (default: ./hop-cluster on 127.0.0.1:2121)")
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:2121")
    .option("--node <url>", "storage node URL (repeatable)", collect, [])
    .option("--replicas <n>", "copies of each file", "2")
    .addOption(
      new Option("--names <policy>", "file name policy").choices(["strict", "blanks", "any"])
        .default("strict"),
    )
    .option("--tls-cert <file>", "TLS certificate (enables FTPS)")
    .option("--tls-key <file>", "TLS private key")
    .action(() => notImplemented("hop cluster serve"));
  const node = cluster.command("node").description("storage nodes");
  node.command("serve")
    .description("serve a plain folder over FTP (a storage node)")
    .requiredOption("--root <dir>", "folder to serve")
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:2122")
    .option("--user <name>", "login name", "node")
    .option("--password <pw>", "password (or HOP_NODE_PASSWORD)")
    .action(() => notImplemented("hop cluster node serve"));

  // --- maintenance -----------------------------------------------------
  program.command("cleanup")
    .description("process deletion queues, remove stale locks, updates and leftovers")
    .option("--dry-run", "show what would be done")
    .action(() => notImplemented("hop cleanup"));
  program.command("audit")
    .description("compare indexes and link files with what storage holds")
    .option("--repair", "apply a reviewed repair report")
    .action(() => notImplemented("hop audit"));

  // --- archive ---------------------------------------------------------
  const archive = program.command("archive").description(
    "tar.bz2 archives on the parallel WebAssembly bzip2 engine",
  );
  archive.command("create")
    .description("write a tar.bz2 of a folder (or of some files in it)")
    .argument("<folder>", "folder to archive")
    .argument("<archive>", "archive to write (.tar.bz2)")
    .argument("[files...]", "relative paths inside the folder (default: all files)")
    .action(async (folder: string, out: string, files: string[], _o, cmd: Command) => {
      const { createArchiveCommand } = await import("./src/archive/command.ts");
      await createArchiveCommand(folder, out, files, reporterFor(cmd));
    });
  archive.command("extract")
    .description("extract a tar.bz2 safely into a folder")
    .argument("<archive>", "archive to read (.tar.bz2, any bzip2 tool's)")
    .argument("<folder>", "folder to extract into (created if missing)")
    .action(async (input: string, folder: string, _o, cmd: Command) => {
      const { extractArchiveCommand } = await import("./src/archive/command.ts");
      await extractArchiveCommand(input, folder, reporterFor(cmd));
    });
  archive.command("list")
    .description("list the entries of a tar.bz2")
    .argument("<archive>", "archive to read")
    .action(async (input: string, _o, cmd: Command) => {
      const { listArchiveCommand } = await import("./src/archive/command.ts");
      await listArchiveCommand(input, reporterFor(cmd));
    });

  for (const c of allCommands(program)) {
    c.exitOverride().showHelpAfterError("(run with --help for usage)");
  }
  return program;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
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
      return 2; // commander already printed the message
    }
    if (e instanceof HopError) {
      process.stderr.write(`hop: ${e.message}\n`);
      if (e.hint) process.stderr.write(`  ${e.hint}\n`);
      if (process.env.HOP_DEBUG && e.cause) console.error(e.cause);
      return e.exitCode;
    }
    process.stderr.write(`hop: unexpected error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.stderr.write("  This is a bug in hop; run again with HOP_DEBUG=1 and report it.\n");
    if (process.env.HOP_DEBUG) console.error(e);
    return 1;
  }
}

export { UsageError };

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // Workers or sockets left open must not keep a finished command alive.
  const { closePool } = await import("./src/archive/bzip2.ts");
  closePool();
}
