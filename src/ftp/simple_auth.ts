/**
 * The simple authorizer of a plain folder server: one user with a password from
 * the options, and optionally anonymous read-only access ("anonymous" or "ftp").
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { FtpAuthorizer, FtpUser } from "./types.ts";

/** Options of `createSimpleAuthorizer`. */
export interface SimpleAuthOptions {
  user?: string;
  password?: string;
  /** Allow "anonymous"/"ftp" with any password, read-only. */
  anonymous?: boolean;
  /** Let the named user only read. */
  readOnly?: boolean;
}

const ANONYMOUS = new Set(["anonymous", "ftp"]);

/**
 * One named user (full access, admin) plus optional anonymous read-only access.
 *
 * @example createSimpleAuthorizer({ user: "node", password: "secret" })
 */
export function createSimpleAuthorizer(opts: SimpleAuthOptions): FtpAuthorizer {
  const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();
  const want = opts.password !== undefined ? digest(opts.password) : null;
  return {
    isAnonymous: (name) => Boolean(opts.anonymous) && ANONYMOUS.has(name.toLowerCase()),
    authenticate(name, password): Promise<FtpUser | null> {
      if (opts.anonymous && ANONYMOUS.has(name.toLowerCase())) {
        return Promise.resolve({ name: "anonymous", home: "/", readOnly: true, admin: false });
      }
      if (opts.user === undefined || want === null || name !== opts.user) {
        return Promise.resolve(null);
      }
      if (!timingSafeEqual(digest(password), want)) return Promise.resolve(null);
      return Promise.resolve({ name, home: "/", readOnly: Boolean(opts.readOnly), admin: true });
    },
  };
}
