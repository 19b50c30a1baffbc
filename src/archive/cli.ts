/**
 * The archive engine's words on the command line: `hop archive create |
 * extract | list`. Each action loads its module on use.
 *
 * @module
 */
import type { Command } from "commander";
import { examples, reporterFor } from "../cli/common.ts";

/** Adds `hop archive ...` to `program`. */
export function registerArchiveCommands(program: Command): void {
  const archive = examples(
    program.command("archive").description(
      "tar.bz2 archives on the parallel WebAssembly bzip2 engine",
    ),
    ["hop archive create ./photos photos.tar.bz2", "hop archive extract photos.tar.bz2 ./restore"],
  );
  examples(archive.command("create"), [
    "hop archive create ./photos photos.tar.bz2",
    "hop archive create ./photos some.tar.bz2 2024/a.jpg 2024/b.jpg",
  ])
    .description("write a tar.bz2 of a folder (or of some files in it)")
    .argument("<folder>", "folder to archive")
    .argument("<archive>", "archive to write (.tar.bz2)")
    .argument("[files...]", "relative paths inside the folder (default: all files)")
    .action(async (folder: string, out: string, files: string[], _o, cmd: Command) => {
      const { createArchiveCommand } = await import("./command.ts");
      await createArchiveCommand(folder, out, files, reporterFor(cmd));
    });
  examples(archive.command("extract"), [
    "hop archive extract photos.tar.bz2 ./restore",
    "hop archive extract backup-from-gnu-tar.tar.bz2 ./restore",
  ])
    .description("extract a tar.bz2 safely into a folder")
    .argument("<archive>", "archive to read (.tar.bz2, any bzip2 tool's)")
    .argument("<folder>", "folder to extract into (created if missing)")
    .action(async (input: string, folder: string, _o, cmd: Command) => {
      const { extractArchiveCommand } = await import("./command.ts");
      await extractArchiveCommand(input, folder, reporterFor(cmd));
    });
  examples(archive.command("list"), [
    "hop archive list photos.tar.bz2",
    "hop --json archive list photos.tar.bz2",
  ])
    .description("list the entries of a tar.bz2")
    .argument("<archive>", "archive to read")
    .action(async (input: string, _o, cmd: Command) => {
      const { listArchiveCommand } = await import("./command.ts");
      await listArchiveCommand(input, reporterFor(cmd));
    });
}
