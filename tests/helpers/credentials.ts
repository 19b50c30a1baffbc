/**
 * Credentials for tests, made anew on every run and never fixed: every login a
 * test gives a server or a client comes from here (the server helpers call it
 * when a test names none). Passwords are 24 hex digits (random bytes), safe
 * unquoted in URLs, config files, FTP commands and argv; user names are a role
 * and a random suffix.
 *
 * @module
 */
import { randomBytes } from "node:crypto";

/** A login: who to be and the password. */
export interface Login {
  user: string;
  password: string;
}

/** A password made for this run. */
export function newPassword(): string {
  return randomBytes(12).toString("hex");
}

/** A user name for this run: `role` and a random suffix (e.g. `node-3fa9c1`). */
export function newUser(role = "user"): string {
  return `${role}-${randomBytes(3).toString("hex")}`;
}

/** A user name and password for this run. */
export function newLogin(role = "user"): Login {
  return { user: newUser(role), password: newPassword() };
}

/**
 * A login made for this run whose user name has a dot and an underscore and whose password
 * has a colon, a space and a non-ASCII letter around its random part: for tests of quoting
 * and encoding in URLs, FTP commands and config files. (vsftpd refuses spaces in user names.)
 */
export function newAwkwardLogin(role = "relay"): Login {
  const r = randomBytes(3).toString("hex");
  return { user: `${role}.user_${r}`, password: `pa:ss ${randomBytes(6).toString("hex")} wörd` };
}
