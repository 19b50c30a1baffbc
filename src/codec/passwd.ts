/**
 * The cluster's `.passwd` file: one `login:password:uid:home` line per user,
 * plus the pseudo user `_` whose uid field is the next uid to hand out
 * (`_::1005:`). Passwords are stored as scrypt hashes in a self-describing
 * form without `:`:
 *
 * ```
 * _::1006:
 * alice:scrypt$16384$8$1$<salt base64>$<hash base64>:1005:/alice
 * bob:secret:1004:/bob
 * ```
 *
 * A password field not starting with `scrypt$` is a legacy cleartext
 * password (the original cluster's): it is read with `legacy: true` and
 * written hashed by the next {@linkcode encodePasswd}. An empty password
 * field means the account cannot log in (`legacy: false`). Empty lines are
 * skipped.
 *
 * {@linkcode hashPassword} and {@linkcode verifyPassword} use node:crypto
 * (scrypt, constant-time comparison); they do no I/O. Both run scrypt on the
 * runtime's thread pool (one derive for both): a server verifying a login or
 * hashing a new password (about 100 ms of CPU) goes on serving its other sessions
 * meanwhile.
 *
 * @module
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { CodecError, EncodeError } from "./errors.ts";
import { type CodecInput, parseIntStrict, splitLines, toText } from "./text.ts";

/** One account. */
export interface PasswdUser {
  login: string;
  /**
   * The stored password field: a `scrypt$...` hash, or (when `legacy`) the
   * cleartext password, or "" (login disabled).
   */
  password: string;
  /** True when `password` is a legacy cleartext password, hashed on the next encode. */
  legacy: boolean;
  uid: number;
  /** Home directory (cluster path). */
  home: string;
}

/** The whole `.passwd` file. */
export interface PasswdFile {
  users: PasswdUser[];
  /** The uid the next new user gets (the `_` line). */
  nextUid: number;
}

/** The login of the pseudo user that holds the next uid. */
export const NEXT_UID_LOGIN = "_";
/** Next uid when a file has no `_` line and no user. */
export const FIRST_UID = 1000;
/** Scrypt cost parameters of new hashes. */
export const SCRYPT_PARAMS = { N: 16384, r: 8, p: 1 } as const;

const FORMAT = ".passwd file";
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const HASH = /^scrypt\$([0-9]+)\$([0-9]+)\$([0-9]+)\$([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*)$/;

interface ScryptHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/** Parses a `scrypt$N$r$p$salt$hash` field; null when it is not a sane one. */
function parseHash(field: string): ScryptHash | null {
  const m = HASH.exec(field);
  if (!m) return null;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounds keep a crafted file from making a login cost gigabytes or minutes.
  const sane = N >= 2 && N <= 2 ** 20 && (N & (N - 1)) === 0 && r >= 1 && r <= 32 && p >= 1 &&
    p <= 16 &&
    128 * N * r <= 512 * 1024 * 1024;
  if (!sane) return null;
  const salt = Buffer.from(m[4], "base64");
  const key = Buffer.from(m[5], "base64");
  if (salt.length < 8 || key.length < 16) return null;
  return { N, r, p, salt, key };
}

/** scrypt's options for `h`, with the memory it needs. */
function scryptOptions(h: { N: number; r: number; p: number }) {
  return { N: h.N, r: h.r, p: h.p, maxmem: 256 * h.N * h.r + 1024 * 1024 };
}

/** The key scrypt derives from `pw` (NFC) under `h`, on the thread pool. */
function derive(
  pw: string,
  h: { N: number; r: number; p: number; salt: Buffer },
  len: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      pw.normalize("NFC"),
      h.salt,
      len,
      scryptOptions(h),
      (e, key) => e ? reject(e) : resolve(key),
    )
  );
}

/**
 * Hashes `password` with a fresh random salt: `scrypt$16384$8$1$<salt>$<hash>` (base64,
 * no `:`), on the thread pool.
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, { ...SCRYPT_PARAMS, salt }, KEY_BYTES);
  const { N, r, p } = SCRYPT_PARAMS;
  return `scrypt$${N}$${r}$${p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/**
 * Resolves to true when `password` is the user's password. Constant-time comparison for
 * both hashed and legacy records; always false for a disabled account. scrypt runs on
 * the thread pool, not on the caller's thread.
 *
 * @example
 * ```ts
 * const user = decodePasswd(text, ".passwd").users[0];
 * if (!(await verifyPassword(user, "secret"))) throw new Error("wrong password");
 * ```
 */
export async function verifyPassword(user: PasswdUser, password: string): Promise<boolean> {
  if (user.password === "") return false;
  if (user.legacy) {
    // Compare digests so that lengths do not leak through timing either.
    const salt = Buffer.alloc(SALT_BYTES);
    const h = { N: 1024, r: 8, p: 1, salt };
    const [stored, given] = await Promise.all([
      derive(user.password, h, KEY_BYTES),
      derive(password, h, KEY_BYTES),
    ]);
    return timingSafeEqual(stored, given);
  }
  const h = parseHash(user.password);
  if (!h) return false;
  return timingSafeEqual(await derive(password, h, h.key.length), h.key);
}

/** True when a user record should be re-encoded to store a hash (legacy cleartext). */
export function needsRehash(user: PasswdUser): boolean {
  return user.legacy && user.password !== "";
}

/**
 * Decodes a `.passwd` file. Throws {@linkcode CodecError} (naming the line)
 * on a wrong field count, a bad uid, a duplicate login, a malformed hash,
 * or a `_` line whose next uid is already in use. Without a `_` line the
 * next uid is one above the highest uid (or {@linkcode FIRST_UID}).
 */
export function decodePasswd(input: CodecInput, source: string): PasswdFile {
  const text = toText(input, FORMAT, source);
  const fail = (line: number, problem: string): never => {
    throw new CodecError(FORMAT, source, line, problem);
  };
  const users: PasswdUser[] = [];
  const logins = new Set<string>();
  let next: { uid: number; line: number } | null = null;
  for (const { text: l, line } of splitLines(text)) {
    if (l.trim() === "") continue;
    const f = l.split(":");
    if (f.length !== 4) {
      fail(line, `expected 'login:password:uid:home' (4 fields), got ${f.length}`);
    }
    const [login, password, uidText, home] = f;
    const uid = parseIntStrict(uidText) ??
      fail(line, `uid is not a number: ${JSON.stringify(uidText)}`);
    if (login === "") fail(line, "empty login");
    if (/[\s\0]/.test(login)) {
      fail(line, `login ${JSON.stringify(login)} holds blanks or control characters`);
    }
    if (logins.has(login)) fail(line, `duplicate login ${JSON.stringify(login)}`);
    logins.add(login);
    if (login === NEXT_UID_LOGIN) {
      next = { uid, line };
      continue;
    }
    if (home === "") fail(line, `user ${login} has no home directory`);
    const hashed = password.startsWith("scrypt$");
    if (hashed && !parseHash(password)) fail(line, `malformed scrypt hash for user ${login}`);
    users.push({ login, password, legacy: !hashed && password !== "", uid, home });
  }
  const maxUid = users.reduce((m, u) => Math.max(m, u.uid), -1);
  if (next && next.uid <= maxUid) {
    const owner = users.find((u) => u.uid >= next!.uid)!;
    fail(next.line, `next uid ${next.uid} is not above uid ${owner.uid} of user ${owner.login}`);
  }
  return { users, nextUid: next?.uid ?? Math.max(FIRST_UID, maxUid + 1) };
}

/**
 * Encodes a `.passwd` file: the `_` line first, then users in their order.
 * Legacy cleartext passwords are hashed here (so this may take ~50 ms per
 * legacy user, on the thread pool). Rejects with {@linkcode EncodeError} on values the
 * format cannot hold.
 */
export async function encodePasswd(file: PasswdFile): Promise<string> {
  const bad = (problem: string): never => {
    throw new EncodeError(FORMAT, problem);
  };
  const uid = (n: number) =>
    Number.isSafeInteger(n) && n >= 0 ? String(n) : bad(`uid ${n} is not a number >= 0`);
  const maxUid = file.users.reduce((m, u) => Math.max(m, u.uid), -1);
  if (file.nextUid <= maxUid) {
    bad(`next uid ${file.nextUid} is not above the highest uid ${maxUid}`);
  }
  const lines = [`${NEXT_UID_LOGIN}::${uid(file.nextUid)}:`];
  const logins = new Set<string>();
  for (const u of file.users) {
    if (u.login === "" || /[\s\0:]/.test(u.login) || u.login === NEXT_UID_LOGIN) {
      bad(`bad login ${JSON.stringify(u.login)}`);
    }
    if (logins.has(u.login)) bad(`duplicate login ${JSON.stringify(u.login)}`);
    logins.add(u.login);
    if (u.home === "" || /[:\r\n\0]/.test(u.home)) {
      bad(`bad home ${JSON.stringify(u.home)} for ${u.login}`);
    }
    let pw = u.password;
    if (u.legacy && pw !== "") pw = await hashPassword(pw);
    else if (!u.legacy && pw !== "" && !parseHash(pw)) {
      bad(`password of ${u.login} is not a scrypt hash (set legacy?)`);
    }
    lines.push(`${u.login}:${pw}:${uid(u.uid)}:${u.home}`);
  }
  return lines.map((l) => l + "\n").join("");
}
