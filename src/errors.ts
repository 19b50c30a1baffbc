/**
 * Errors hop reports to its user. Every error says what failed and what to do.
 *
 * @module
 */

/** An error meant for the user: `message` says what failed, `hint` what to do. */
export class HopError extends Error {
  /** What the user can do about it, shown on its own line. */
  readonly hint?: string;
  /** Process exit code when this error ends the command (1 failure, 2 usage). */
  readonly exitCode: number;

  constructor(
    message: string,
    options: { hint?: string; exitCode?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "HopError";
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A command line that does not make sense: exit code 2. */
export class UsageError extends HopError {
  constructor(message: string, hint?: string) {
    super(message, { hint, exitCode: 2 });
    this.name = "UsageError";
  }
}
