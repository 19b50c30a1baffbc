/**
 * Passwords without putting them on the command line (where every user sees
 * them in `ps`): everywhere hop takes a password it also takes a file or an
 * environment variable. In URLs (`--node`, a relay URL, the cluster config's
 * `node` lines) the password is left out and named by a query parameter:
 * `ftp://store@10.0.0.2/data?password-file=/etc/hop/store.pw` or
 * `?password-env=NODE_PW`. A file's first line is the password (a final
 * newline is dropped).
 *
 * @example
 * ```ts
 * const { url, password } = urlSecret("ftp://store@h/data?password-env=PW");
 * // url = "ftp://store:SECRET@h/data" (for the code that connects), password = "SECRET"
 * ```
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { explainError, HopError, UsageError } from "./errors.ts";

/** Where a secret comes from: a file, an environment variable, or given as is. */
export interface SecretSource {
  value?: string;
  file?: string;
  env?: string;
}

/** Reads a secret from a file (its first line) or an environment variable; undefined if none. */
export function readSecret(src: SecretSource, what = "password"): string | undefined {
  const given = [src.value, src.file, src.env].filter((v) => v !== undefined).length;
  if (given > 1) {
    throw new UsageError(
      `give the ${what} one way: as is, from a file, or from an environment variable`,
    );
  }
  if (src.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(src.file, "utf8");
    } catch (e) {
      const err = explainError(e);
      throw new HopError(`cannot read the ${what} file ${src.file}: ${err?.message ?? e}`, {
        hint: err?.hint ?? "Give the path of a file whose first line is the secret.",
        code: err?.code,
      });
    }
    return text.split(/\r?\n/)[0];
  }
  if (src.env !== undefined) {
    const v = process.env[src.env];
    if (v === undefined) {
      throw new HopError(`the environment variable ${src.env} (the ${what}) is not set`, {
        hint: `Set it before running hop: export ${src.env}=...`,
      });
    }
    return v;
  }
  return src.value;
}

/**
 * A URL whose password may be named by `password-file` or `password-env`
 * query parameters: the URL with the password filled in (those parameters
 * removed), and the password. Other URLs are returned as they are.
 */
export function urlSecret(url: string): { url: string; password?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url };
  }
  const file = u.searchParams.get("password-file") ?? undefined;
  const env = u.searchParams.get("password-env") ?? undefined;
  if (file === undefined && env === undefined) {
    return { url, password: u.password ? decodeURIComponent(u.password) : undefined };
  }
  if (u.password) {
    throw new UsageError(
      `${u.protocol}//${u.host}: give the password in the URL or with password-file/password-env, not both`,
    );
  }
  const password = readSecret({ file, env }, `password of ${u.host}`)!;
  u.searchParams.delete("password-file");
  u.searchParams.delete("password-env");
  u.password = encodeURIComponent(password);
  return { url: u.href, password };
}
