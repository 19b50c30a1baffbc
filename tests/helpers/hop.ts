/**
 * Runs the `hop` command in tests: the built binary when `HOP_BIN` is set
 * (CI's end-to-end run), otherwise `deno run -A cli.ts` from the sources.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** argv prefix that starts hop. */
export function hopCommand(bin = process.env.HOP_BIN): string[] {
  if (bin) return [bin];
  return [process.execPath, "run", "-A", "--quiet", ROOT + "cli.ts"];
}

/** What a finished hop run printed and how it exited. */
export interface HopResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs hop with `args` to completion (kills it after `timeoutMs`). */
export function runHop(
  args: string[],
  opts: {
    cwd?: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    input?: string;
    /** A hop binary to run instead of HOP_BIN. */
    bin?: string;
  } = {},
): Promise<HopResult> {
  const [cmd, ...pre] = hopCommand(opts.bin);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...pre, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}
