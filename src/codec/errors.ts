/**
 * The one error every codec throws on malformed input: it names the file and
 * the line that could not be read, so a user can open the file and look.
 *
 * @module
 */
import { HopError } from "../errors.ts";

/** Malformed input to a codec. `source` is a file name (or a label), `line` is 1-based. */
export class CodecError extends HopError {
  readonly source: string;
  readonly line: number;
  readonly format: string;

  constructor(format: string, source: string, line: number, problem: string, hint?: string) {
    super(`${source}:${line}: malformed ${format}: ${problem}`, {
      hint: hint ??
        `Check ${source} around line ${line}; restore it from a good copy or remove it.`,
    });
    this.name = "CodecError";
    this.format = format;
    this.source = source;
    this.line = line;
  }
}

/**
 * A value a codec refuses to write because the format cannot hold it (a path
 * with a newline, a name with `:` in `.passwd`, ...). A programming or input
 * validation error, raised before anything is written.
 */
export class EncodeError extends HopError {
  readonly format: string;

  constructor(format: string, problem: string, hint?: string) {
    super(`cannot write ${format}: ${problem}`, {
      hint: hint ?? "The value cannot be stored in this format; rename or change it first.",
    });
    this.name = "EncodeError";
    this.format = format;
  }
}
