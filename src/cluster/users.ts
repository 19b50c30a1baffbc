/**
 * Cluster users: the `.passwd` file of a cluster root (text by `src/codec/passwd.ts`),
 * the offline commands `hop cluster user add|passwd|del|list`, the FTP authorizer of
 * `serve` and its SITE USERADD / PASSWD / CHOWN commands.
 *
 * Administrators are the users with a uid below 1000 (the first one, `admin`, has uid
 * 0); they may change anything but foreign files and run the SITE commands. Other
 * users get uids from 1000 up and a home directory they own (`/<login>` by default).
 * Anonymous logins ("anonymous"/"ftp") are refused unless enabled, then read-only and
 * confined to the public folder `/pub` ({@linkcode PUBLIC_HOME}).
 *
 * A login takes as long for a name that does not exist as for one that does: one
 * scrypt check either way. Passwords may hold blanks (SITE commands take them in
 * double quotes); adding a user is all or nothing (a home that cannot be made leaves
 * no user behind), and a home follows the cluster's file name policy.
 *
 * @example
 * ```ts
 * const { password } = await addUser("./hop-cluster", "alice");
 * console.log(await listUsers("./hop-cluster"));
 * ```
 *
 * @module
 */

import { createHmac, randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import type { FtpAuthorizer, FtpReply, FtpSiteHandler, FtpUser } from "../ftp/types.ts";
import { HopError } from "../errors.ts";
import {
  decodePasswd,
  encodePasswd,
  FIRST_UID,
  hashPassword,
  type PasswdFile,
  type PasswdUser,
  verifyPassword,
} from "../codec/passwd.ts";
import { checkName, type NamePolicy } from "../codec/names.ts";
import { splitWords } from "../codec/text.ts";
import { type ClusterLayout, clusterLayout, diskPath, infoPathOf, initLayout } from "./layout.ts";
import { readInfo, writeAtomic, writeInfo } from "./links.ts";

/** A user as `listUsers` shows it. */
export interface ClusterUserInfo {
  login: string;
  uid: number;
  home: string;
  admin: boolean;
}

/** True for administrator uids. */
export function isAdminUid(uid: number): boolean {
  return uid < FIRST_UID;
}

const LOGIN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The folder anonymous users see as their whole tree. */
export const PUBLIC_HOME = "/pub";
const ANONYMOUS = new Set(["anonymous", "ftp"]);

function checkLogin(login: string): void {
  if (!LOGIN.test(login) || ANONYMOUS.has(login.toLowerCase())) {
    throw new HopError(`bad login name "${login}"`, {
      hint:
        "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (not anonymous/ftp).",
      exitCode: 2,
    });
  }
}

/** Reads `.passwd` (an absent file is an empty one). */
export async function readPasswd(l: ClusterLayout): Promise<PasswdFile> {
  let text: Uint8Array;
  try {
    text = await fsp.readFile(l.passwd);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return { users: [], nextUid: FIRST_UID };
    throw new HopError(`cannot read ${l.passwd}: ${(e as Error).message}`, { cause: e });
  }
  return decodePasswd(text, l.passwd);
}

/** Writes `.passwd` atomically (mode 0600). */
export async function writePasswd(l: ClusterLayout, file: PasswdFile): Promise<void> {
  await initLayout(l);
  await writeAtomic(l.tmp, l.passwd, await encodePasswd(file));
  await fsp.chmod(l.passwd, 0o600);
}

/** Serializes read-modify-write of `.passwd` within this process. */
let passwdChain: Promise<unknown> = Promise.resolve();
function editPasswd<T>(l: ClusterLayout, f: (file: PasswdFile) => Promise<T> | T): Promise<T> {
  const run = passwdChain.then(async () => {
    const file = await readPasswd(l);
    const r = await f(file);
    await writePasswd(l, file);
    return r;
  });
  passwdChain = run.catch(() => {});
  return run;
}

/** A random password of 20 URL-safe characters. */
export function randomPassword(): string {
  return randomBytes(15).toString("base64url");
}

/** Make directory `home` (and missing parents) owned by `uid`, with info files. */
export async function makeHome(l: ClusterLayout, home: string, uid: number): Promise<void> {
  const segs = home.split("/").filter((s) => s);
  let v = "";
  for (const s of segs) {
    v += "/" + s;
    const disk = diskPath(l, v);
    const there = await readInfo(infoPathOf(disk));
    if (there?.kind === "file") throw new HopError(`${v} is a file`);
    await fsp.mkdir(disk, { recursive: true });
    if (!there) {
      await writeInfo(l.tmp, infoPathOf(disk), {
        kind: "dir",
        uid,
        mtime: Math.floor(Date.now() / 1000),
        extra: [],
      });
    }
  }
}

/**
 * Add user `login` to the cluster at `root` (offline, or SITE USERADD). Password
 * random when not given (returned). Home `/<login>` by default (made, owned by the
 * user); admins get uids below 1000 and home `/`.
 */
export async function addUser(
  root: string,
  login: string,
  options: { password?: string; home?: string; admin?: boolean; names?: NamePolicy } = {},
): Promise<{ login: string; uid: number; home: string; password: string }> {
  checkLogin(login);
  const l = clusterLayout(root);
  const password = options.password ?? randomPassword();
  checkPassword(password);
  const home = normalizeHome(l, options.home ?? (options.admin ? "/" : `/${login}`), options.names);
  const hash = await hashPassword(password);
  const user = await editPasswd(l, (file) => {
    if (file.users.some((u) => u.login === login)) {
      throw new HopError(`user ${login} already exists`, {
        hint: "Use `hop cluster user passwd` to change a password.",
      });
    }
    let uid: number;
    if (options.admin) {
      uid = 0;
      while (file.users.some((u) => u.uid === uid)) uid++;
      if (uid >= FIRST_UID) throw new HopError("no administrator uid left (0-999 all taken)");
    } else {
      uid = file.nextUid;
      file.nextUid = uid + 1;
    }
    const u: PasswdUser = { login, password: hash, legacy: false, uid, home };
    file.users.push(u);
    return u;
  });
  if (home !== "/") {
    try {
      await makeHome(l, home, user.uid);
    } catch (e) {
      // All or nothing: no user whose home could not be made.
      await editPasswd(l, (file) => {
        file.users = file.users.filter((u) => u.login !== login);
      });
      throw new HopError(`cannot make the home ${home} of ${login}: ${(e as Error).message}`, {
        hint: "Give another home, or remove what is in the way; the user was not added.",
        cause: e,
      });
    }
  }
  return { login, uid: user.uid, home, password };
}

/** Refuse a password the passwd file cannot hold (empty, several lines). Blanks are fine. */
function checkPassword(password: string): void {
  if (password === "" || /[\r\n\0]/.test(password)) {
    throw new HopError("empty or multi-line password", {
      hint: "Give a non-empty one-line password (blanks are allowed).",
      exitCode: 2,
    });
  }
}

/** `home` as a normalized cluster path, each name allowed by `names` and not reserved. */
function normalizeHome(l: ClusterLayout, home: string, names: NamePolicy = "any"): string {
  const bad = (why: string) =>
    new HopError(`bad home directory "${home}": ${why}`, {
      hint: "Give a cluster path like /alice.",
      exitCode: 2,
    });
  const segs = home.split("/").filter((s) => s && s !== ".");
  if (segs.includes("..") || /[:\r\n\0]/.test(home)) throw bad("not a plain path");
  for (const seg of segs) {
    const why = checkName(seg, names);
    if (why !== null) throw bad(why);
  }
  const v = "/" + segs.join("/");
  try {
    diskPath(l, v);
  } catch (e) {
    throw bad((e as Error).message);
  }
  return v;
}

/** Set the password of `login` (random when not given; returned). */
export async function setPassword(root: string, login: string, password?: string): Promise<string> {
  const pw = password ?? randomPassword();
  checkPassword(pw);
  const hash = await hashPassword(pw);
  await editPasswd(clusterLayout(root), (file) => {
    const u = file.users.find((x) => x.login === login);
    if (!u) throw new HopError(`no user ${login}`, { hint: "See `hop cluster user list`." });
    u.password = hash;
    u.legacy = false;
  });
  return pw;
}

/** Remove user `login` (their files keep their uid; the uid is never reused). */
export async function deleteUser(root: string, login: string): Promise<void> {
  await editPasswd(clusterLayout(root), (file) => {
    const i = file.users.findIndex((x) => x.login === login);
    if (i < 0) throw new HopError(`no user ${login}`, { hint: "See `hop cluster user list`." });
    file.users.splice(i, 1);
  });
}

/** The users of the cluster at `root`. */
export async function listUsers(root: string): Promise<ClusterUserInfo[]> {
  const file = await readPasswd(clusterLayout(root));
  return file.users.map((u) => ({
    login: u.login,
    uid: u.uid,
    home: u.home,
    admin: isAdminUid(u.uid),
  }));
}

/** The users of a running server: re-reads `.passwd` when it changed on disk. */
export interface UserDirectory {
  authorizer: FtpAuthorizer;
  /** Login of a uid (for listings). */
  nameOf(uid: number): string | undefined;
  /** Re-read `.passwd` now. */
  reload(): Promise<void>;
}

/** The user directory and authorizer of a cluster; `anonymous` allows read-only anonymous logins. */
export async function openUserDirectory(
  l: ClusterLayout,
  options: {
    anonymous?: boolean;
    log?: (line: string) => void;
    /** The password check (tests count its calls); default: scrypt, `verifyPassword`. */
    verify?: typeof verifyPassword;
  } = {},
): Promise<UserDirectory> {
  const verify = options.verify ?? verifyPassword;
  let file: PasswdFile = { users: [], nextUid: FIRST_UID };
  let stamp = "";
  const byUid = new Map<number, string>();
  const reload = async () => {
    const st = await fsp.stat(l.passwd).catch(() => null);
    const now = st ? `${st.mtimeMs}:${st.size}:${st.ino}` : "none";
    if (now === stamp) return;
    try {
      file = await readPasswd(l);
      stamp = now;
    } catch (e) {
      options.log?.(`cluster: keeping the previous users: ${(e as Error).message}`);
      return;
    }
    byUid.clear();
    for (const u of file.users) byUid.set(u.uid, u.login);
  };
  await reload();
  // A scrypt check costs ~100 ms of this thread; a success is remembered (keyed by an
  // HMAC of the password under a per-process key, and the stored hash, so a password
  // change invalidates it) for 15 minutes, so repeated logins do not stall the server;
  // logins with the same name and password at once share one check (a burst of sessions
  // of one user used to run one scrypt each: 200 sessions, 200 checks, seconds of CPU).
  const hmacKey = randomBytes(32);
  const good = new Map<string, number>();
  const checking = new Map<string, Promise<boolean>>();
  // Who is not there (or cannot log in) is checked against this, so that a failed login
  // costs one scrypt check whether the name exists or not.
  const decoy: PasswdUser = {
    login: "",
    password: await hashPassword(randomPassword()),
    legacy: false,
    uid: -1,
    home: "/",
  };
  const verified = async (u: PasswdUser, password: string): Promise<boolean> => {
    const key = `${u.login}\0${u.password}\0${
      createHmac("sha256", hmacKey).update(password).digest("base64")
    }`;
    if ((good.get(key) ?? 0) > Date.now()) return true;
    const under = checking.get(key);
    if (under) return await under;
    const check = (async () => {
      if (u.legacy || u.password === "") await verify(decoy, password);
      if (!(await verify(u, password))) return false;
      if (good.size >= 10_000) good.clear();
      good.set(key, Date.now() + 15 * 60_000);
      return true;
    })().finally(() => checking.delete(key));
    checking.set(key, check);
    return await check;
  };
  return {
    reload,
    nameOf: (uid) => byUid.get(uid),
    authorizer: {
      isAnonymous: (name) => Boolean(options.anonymous) && ANONYMOUS.has(name.toLowerCase()),
      async authenticate(name, password): Promise<FtpUser | null> {
        if (ANONYMOUS.has(name.toLowerCase()) && options.anonymous) {
          return { name: "anonymous", home: PUBLIC_HOME, readOnly: true, admin: false };
        }
        await reload();
        const u = file.users.find((x) => x.login === name);
        if (!u) {
          await verify(decoy, password);
          return null;
        }
        if (!(await verified(u, password))) return null;
        return {
          name: u.login,
          home: u.home,
          readOnly: false,
          admin: isAdminUid(u.uid),
          id: u.uid,
        };
      },
    },
  };
}

/**
 * SITE USERADD name pw [home] (`200 user created: <uid>`), SITE PASSWD user pw,
 * SITE CHOWN user path — administrators only. A password with blanks goes in double
 * quotes (`SITE USERADD bob "two words"`, `\"` and `\\` inside); a home follows the
 * file name policy `names`.
 */
export function clusterSiteHandler(
  l: ClusterLayout,
  users: UserDirectory,
  names: NamePolicy = "any",
): FtpSiteHandler {
  const deny: FtpReply = { code: 550, text: "Permission denied: administrators only." };
  return {
    help: [
      'USERADD <name> <password|"pass word"> [home]',
      'PASSWD <user> <password|"pass word">',
      "CHOWN <user> <path>",
    ],
    async run(args, ctx): Promise<FtpReply | null> {
      const [cmd] = args.trim().split(/\s+/, 1);
      const verb = (cmd ?? "").toUpperCase();
      if (!["USERADD", "PASSWD", "CHOWN"].includes(verb)) return null;
      if (!ctx.user.admin) return deny;
      const words = splitWords(args.trim());
      if (words === null) return { code: 501, text: "Unclosed quote in the arguments." };
      const rest = words.slice(1);
      try {
        if (verb === "USERADD") {
          if (rest.length < 2 || rest.length > 3) {
            return { code: 501, text: 'Usage: SITE USERADD <name> <password|"pass word"> [home]' };
          }
          const r = await addUser(l.root, rest[0], { password: rest[1], home: rest[2], names });
          await users.reload();
          return { code: 200, text: `user created: ${r.uid}` };
        }
        if (verb === "PASSWD") {
          if (rest.length !== 2) {
            return { code: 501, text: 'Usage: SITE PASSWD <user> <password|"pass word">' };
          }
          await setPassword(l.root, rest[0], rest[1]);
          await users.reload();
          return { code: 200, text: `password changed for ${rest[0]}` };
        }
        const m = /^\S+\s+(\S+)\s+(.+)$/.exec(args.trim());
        if (!m) return { code: 501, text: "Usage: SITE CHOWN <user> <path>" };
        const login = m[1];
        const target = ctx.resolve(m[2]);
        await users.reload();
        const file = await readPasswd(l);
        const u = file.users.find((x) => x.login === login);
        if (!u) return { code: 550, text: `no user ${login}` };
        const info = target === "/" ? null : await readInfo(infoPathOf(diskPath(l, target)));
        if (!info) return { code: 550, text: `${target}: not a cluster file or directory` };
        await writeInfo(l.tmp, infoPathOf(diskPath(l, target)), { ...info, uid: u.uid });
        return { code: 200, text: `${target} now belongs to ${login}` };
      } catch (e) {
        return { code: 550, text: (e as Error).message };
      }
    },
  };
}
