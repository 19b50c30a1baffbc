/**
 * The real Escale 0.7.13 client as a test peer (../shared/peers): where it
 * is, and running it on a configuration for a while (`escale.sh CONFIG
 * SECONDS`: it loops until killed; exit 124 then is normal). `npm test`
 * installs what it needs (Debian's python3-requests and python3-cryptography).
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The peers folder beside the repository's parent. */
export const PEERS = fileURLToPath(new URL("../../../shared/peers/", import.meta.url));
/** Escale's source folder (importable with Python: `sys.path.insert(0, ESCALE_DIR)`). */
export const ESCALE_DIR = PEERS + "escale-0.7.13";

/** What an Escale run printed and how it ended. */
export interface EscaleRun {
  code: number;
  /** stdout and stderr together (Escale logs to stderr). */
  output: string;
}

/**
 * Runs Escale on `configFile` for `seconds`, then stops it (exit 124 is the
 * stop); `home` becomes its HOME, where it keeps its caches and pid file.
 */
export function runEscale(
  configFile: string,
  seconds: number,
  opts: { home: string; cwd?: string },
): Promise<EscaleRun> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [PEERS + "escale.sh", configFile, String(seconds)], {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: opts.home, LANG: "C.UTF-8" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}
