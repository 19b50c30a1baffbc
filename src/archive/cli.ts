/**
 * The archive engine's words on the command line: `hop archive create |
 * extract | list`. Each action loads its module on use.
 *
 * @module
 */
import type { Command } from "commander";
import { reporterFor } from "../cli/common.ts";

/** Adds `hop archive ...` to `program`. */
export function registerArchiveCommands(program: Command): void {
  const archive = program.command("archive").description(
    "tar.bz2 archives on the parallel WebAssembly bzip2 engine",
  );
  archive.command("create")
    .description("write a tar.bz2 of a folder (or of some files in it)")
    .argument("<folder>", "folder to archive")
    .argument("<archive>", "archive to write (.tar.bz2)")
    .argument("[files...]", "relative paths inside the folder (default: all files)")
    .action(async (folder: string, out: string, files: string[], _o, cmd: Command) => {
      const { createArchiveCommand } = await import("./command.ts");
      await createArchiveCommand(folder, out, files, reporterFor(cmd));
    });
  archive.command("extract")
    .description("extract a tar.bz2 safely into a folder")
    .argument("<archive>", "archive to read (.tar.bz2, any bzip2 tool's)")
    .argument("<folder>", "folder to extract into (created if missing)")
    .action(async (input: string, folder: string, _o, cmd: Command) => {
      const { extractArchiveCommand } = await import("./command.ts");
      await extractArchiveCommand(input, folder, reporterFor(cmd));
    });
  archive.command("list")
    .description("list the entries of a tar.bz2")
    .argument("<archive>", "archive to read")
    .action(async (input: string, _o, cmd: Command) => {
      const { listArchiveCommand } = await import("./command.ts");
      await listArchiveCommand(input, reporterFor(cmd));
    });
}
