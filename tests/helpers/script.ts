/**
 * Runs a TypeScript file of the test suite in a child process on the runtime
 * the suite runs on (Deno, or Bun in the Bun lane), for tests that need a
 * second process of their own making (crash tests of a module, say).
 *
 * @example
 * ```ts
 * const child = spawnScript(new URL("./x_test.ts", import.meta.url).pathname, ["drain", dir]);
 * const { code, lines } = await child.done;
 * ```
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

/** A child started by {@linkcode spawnScript}. */
export interface ScriptProcess {
  child: ChildProcess;
  /** Resolves once the first complete stdout line arrived (or the child ended). */
  firstLine: Promise<void>;
  /** Complete stdout lines so far. */
  readonly lineCount: number;
  /** Its complete stdout lines (a line cut by a kill is left out), exit code or signal, stderr. */
  done: Promise<{ lines: string[]; code: number | null; signal: string | null; stderr: string }>;
}

/** argv that runs `file` on this runtime: `deno run -A FILE` or `bun FILE`. */
export function scriptCommand(file: string): [string, string[]] {
  return [process.execPath, process.versions.bun ? [file] : ["run", "-A", "--no-check", file]];
}

/** Starts `file` with `args` on this runtime. */
export function spawnScript(file: string, args: string[]): ScriptProcess {
  const [cmd, pre] = scriptCommand(file);
  const child = spawn(cmd, [...pre, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  let stderr = "";
  let onFirst: () => void = () => {};
  const firstLine = new Promise<void>((r) => onFirst = r);
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    text += d;
    if (text.includes("\n")) onFirst();
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => stderr += d);
  const done = new Promise<
    { lines: string[]; code: number | null; signal: string | null; stderr: string }
  >((resolve) =>
    child.on("close", (code, signal) => {
      onFirst();
      resolve({ lines: text.split("\n").slice(0, -1), code, signal, stderr });
    })
  );
  return {
    child,
    firstLine,
    done,
    get lineCount() {
      return text.split("\n").length - 1;
    },
  };
}
