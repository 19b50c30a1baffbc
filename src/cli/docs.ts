/**
 * hop's words about itself: `hop completion bash|zsh|fish` and `hop man`, both
 * made from the commander program that makes `--help` (see `completion.ts`
 * and `manpage.ts`).
 *
 * @module
 */
import process from "node:process";
import { Argument, type Command } from "commander";
import { examples } from "./common.ts";
import { completionScript, SHELLS } from "./completion.ts";
import { manPage } from "./manpage.ts";
import { VERSION, versionInfo } from "./version.ts";

/** Adds `hop completion` and `hop man` to `program`. */
export function registerDocCommands(program: Command): void {
  examples(
    program.command("completion")
      .description("print the shell completion script for bash, zsh or fish")
      .addArgument(new Argument("<shell>", "the shell").choices(SHELLS)),
    [
      "hop completion bash > ~/.local/share/bash-completion/completions/hop",
      "hop completion zsh > ~/.zfunc/_hop    # with fpath+=(~/.zfunc) before compinit",
      "hop completion fish > ~/.config/fish/completions/hop.fish",
    ],
  ).action((shell: string) => {
    process.stdout.write(completionScript(program, shell));
  });
  examples(
    program.command("man").description("print hop's man page (roff, section 1)"),
    [
      "hop man > ~/.local/share/man/man1/hop.1 && man hop",
      "hop man | man -l -",
    ],
  ).action(() => {
    const built = versionInfo().built ?? new Date().toISOString();
    process.stdout.write(manPage(program, VERSION, built.slice(0, 10)));
  });
}
