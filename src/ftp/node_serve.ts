/**
 * Serving a plain folder over FTP (`hop cluster node serve --root DIR`): the
 * folder file system, the simple authorizer and the generic engine put together.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { HopError } from "../errors.ts";
import { createFolderFs } from "./folder_fs.ts";
import { type FtpServerHandle, type FtpServerOptions, startFtpServer } from "./server.ts";
import { createSimpleAuthorizer } from "./simple_auth.ts";

export { startFtpServer } from "./server.ts";
export type { FtpServerHandle, FtpServerOptions } from "./server.ts";

/** Options of `serveFolder`; the engine's tuning options pass through. */
export interface ServeFolderOptions extends Omit<FtpServerOptions, "fs" | "authorizer" | "tls"> {
  /** The folder to serve. */
  root: string;
  /** Login name of the one full-access user. */
  user?: string;
  password?: string;
  /** Allow anonymous read-only logins. */
  anonymous?: boolean;
  /** PEM text or path of a PEM file, for each of cert and key: enables AUTH TLS. */
  tls?: { cert: string; key: string; required?: boolean };
}

/**
 * Serve `root` over FTP until `close()`.
 *
 * @example
 * const srv = await serveFolder({ root: "/srv/node1", port: 2121, user: "node", password: "pw" });
 * // ... later
 * await srv.close();
 */
export async function serveFolder(opts: ServeFolderOptions): Promise<FtpServerHandle> {
  if (!opts.anonymous && (opts.user === undefined || opts.password === undefined)) {
    throw new HopError("FTP node server: nobody could log in", {
      hint: "give a user and a password, or allow anonymous read-only access",
      exitCode: 2,
    });
  }
  const fs = createFolderFs(opts.root);
  const authorizer = createSimpleAuthorizer({
    user: opts.user,
    password: opts.password,
    anonymous: opts.anonymous,
  });
  const tls = opts.tls
    ? {
      cert: pem(opts.tls.cert, "certificate"),
      key: pem(opts.tls.key, "key"),
      required: opts.tls.required,
    }
    : undefined;
  return await startFtpServer({ ...opts, fs, authorizer, tls });
}

function pem(value: string, what: string): string {
  if (value.includes("-----BEGIN")) return value;
  try {
    return readFileSync(value, "utf8");
  } catch (err) {
    throw new HopError(`FTP node server: cannot read the TLS ${what} file ${value}`, {
      hint: "give the path of a PEM file (or the PEM text itself)",
      cause: err,
    });
  }
}
