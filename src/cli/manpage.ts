/**
 * hop's man page (`hop man`, roff for section 1), generated from the commander
 * program that also makes `--help` and the shell completions: every command
 * with its usage, description, options and examples, then the environment,
 * files and exit status.
 *
 * @example
 * ```sh
 * hop man > ~/.local/share/man/man1/hop.1 && man hop
 * ```
 *
 * @module
 */
import type { Command } from "commander";
import { examplesOf } from "./common.ts";

/** Text for roff: backslashes and dashes escaped, no line starting with a control character. */
function esc(s: string): string {
  return s.replace(/\\/g, "\\e").replace(/-/g, "\\-").split("\n").map((l) =>
    /^[.']/.test(l) ? "\\&" + l : l
  ).join("\n");
}

function fullName(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(" ");
}

function optionsBlock(c: Command): string[] {
  const out: string[] = [];
  for (const o of c.options) {
    if (o.hidden) continue;
    out.push(".TP", `.B ${esc(o.flags)}`, esc(o.description));
  }
  return out;
}

function examplesBlock(c: Command): string[] {
  const ex = examplesOf(c);
  if (ex.length === 0) return [];
  return [".PP", "Examples:", ".PP", ".RS 4", ".nf", ...ex.map(esc), ".fi", ".RE"];
}

/** The man page of `program`, version `version`, dated `date` (YYYY-MM-DD). */
export function manPage(program: Command, version: string, date: string): string {
  const out: string[] = [
    `.TH HOP 1 "${date}" "hop ${esc(version)}" "User Commands"`,
    ".SH NAME",
    `hop \\- ${esc(program.description())}`,
    ".SH SYNOPSIS",
    ".B hop",
    "[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]",
    ".SH DESCRIPTION",
    esc(
      "hop syncs folders through a relay (a folder or an FTP account) with the protocol of " +
        "Escale 0.7, and serves an FTP cluster whose data lives on ordinary FTP servers. " +
        "Every command answers --help with examples.",
    ),
    ".SH GLOBAL OPTIONS",
    ...optionsBlock(program),
    ".SH COMMANDS",
  ];
  const walk = (c: Command) => {
    for (const s of c.commands) {
      out.push(`.SS "${esc(`${fullName(s)} ${s.usage()}`)}"`, esc(s.description()));
      out.push(...optionsBlock(s), ...examplesBlock(s));
      walk(s);
    }
  };
  walk(program);
  out.push(
    ".SH ENVIRONMENT",
    ".TP",
    ".B HOP_DEBUG",
    esc("Set to 1: an unexpected error (a bug in hop) is printed with its stack."),
    ".TP",
    ".B HOP_NODE_PASSWORD",
    esc(
      "The password of hop cluster node serve when neither --password nor --password-file is given.",
    ),
    ".PP",
    esc(
      "Passwords never need to appear on the command line: options that take one have a " +
        "--password-file twin, and URLs name theirs with ?password-file=FILE or ?password-env=VAR.",
    ),
    ".SH FILES",
    ".TP",
    ".B ~/.config/hop/relay.conf",
    esc(
      "The relay configuration hop relay sync reads when given neither -c nor a folder and a relay " +
        "(then Escale's: ~/.config/escale/escale.conf, ~/.escale/escale.conf, /etc/escale.conf).",
    ),
    ".TP",
    ".B FOLDER/.hop/",
    esc("A synced folder's state: what it last agreed with the relay, its lock (sync.lock)."),
    ".TP",
    ".B ROOT/.log/cluster.log",
    esc("The cluster server's log."),
    ".SH EXIT STATUS",
    esc(
      "0 done, 1 failed (the message says what failed and what to do), 2 usage error, " +
        "130 stopped by Ctrl-C.",
    ),
    ".SH SEE ALSO",
    ".BR escale (1),",
    ".BR lftp (1),",
    ".BR curl (1)",
    "",
  );
  return out.join("\n");
}
