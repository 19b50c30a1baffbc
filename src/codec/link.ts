/**
 * Info files of the FTP cluster as text: the link file of a file (`name#`)
 * and the info file of a directory.
 *
 * File link (the original cluster's format; the name is %-encoded, see
 * `names.ts`, so names with blanks fit in the first line):
 * ```
 * rfc-0959.txt 147316 1000 1044844761
 * server 192.168.0.2:21 61/47/030210-033921-rfc-0959.txt
 * server [::1]:2121 61/47/030210-033921-rfc-0959.txt
 * ```
 * line 1: name at upload time, size in bytes, owner uid, mtime (Unix
 * seconds); then one `server <node> <node path>` line per copy. `<node>` is
 * `host:port` (host a name, an IPv4 address or a bracketed IPv6 address) or
 * a URL-form node key such as `file:///srv/node1` (no blanks). The node path
 * is the rest of the line. A link may have no copy yet (data still on the
 * cluster server).
 *
 * Directory info (ours; the original only said it holds the owner's uid):
 * ```
 * dir 1000 1795372303
 * ```
 * `dir <uid> <mtime>`. The two kinds differ by their first line's field
 * count (4 vs 3), so a file named `dir` is no problem.
 *
 * Extending: any further line this version does not know (a line of a file
 * link not starting with `server `, any line after a directory's first) is
 * kept verbatim in `extra` and written back after the known lines, so older
 * hop versions keep what newer ones add. Every line ends with `\n` when
 * written; a missing final newline is accepted on reading.
 *
 * @module
 */
import { CodecError, EncodeError } from "./errors.ts";
import { decodeName, encodeName } from "./names.ts";
import { type CodecInput, parseIntStrict, splitLines, toText } from "./text.ts";

/** One copy of a file on a storage node. */
export interface NodeCopy {
  /** Node key: `host:port` (IPv6 bracketed) or a URL-form key like `file:///dir`. */
  node: string;
  /** Relative path on the node, e.g. `61/47/030210-033921-rfc-0959.txt`. */
  path: string;
}

/** The link file of a file. */
export interface FileLink {
  kind: "file";
  /** Name at upload time (decoded form). */
  name: string;
  size: number;
  uid: number;
  /** Unix seconds. */
  mtime: number;
  copies: NodeCopy[];
  /** Lines this version does not know, verbatim. */
  extra: string[];
}

/** The info file of a directory. */
export interface DirInfo {
  kind: "dir";
  uid: number;
  /** Unix seconds. */
  mtime: number;
  /** Lines this version does not know, verbatim. */
  extra: string[];
}

/** A `host:port` node address; `host` has no brackets. */
export interface NodeAddress {
  host: string;
  port: number;
}

/** Suffix of link and info files. */
export const LINK_SUFFIX = "#";

const FORMAT = "cluster link file";
const HOSTNAME =
  /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;
const URL_KEY = /^[a-z][a-z0-9+.-]*:\/\/\S+$/;

/** Parses `host:port` / `[v6]:port`; null when it is not one. */
export function parseNodeAddress(text: string): NodeAddress | null {
  const m = /^\[([^\]]+)\]:([0-9]{1,5})$/.exec(text) ?? /^([^:[\]]+):([0-9]{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  const v6 = text.startsWith("[");
  if (v6 ? !(IPV6.test(m[1]) && m[1].includes(":")) : !HOSTNAME.test(m[1])) return null;
  return { host: m[1], port };
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatNodeAddress(addr: NodeAddress): string {
  const text = addr.host.includes(":")
    ? `[${addr.host}]:${addr.port}`
    : `${addr.host}:${addr.port}`;
  if (!parseNodeAddress(text)) {
    throw new EncodeError(FORMAT, `bad node address ${JSON.stringify(text)}`);
  }
  return text;
}

/** True when `key` may stand as the node of a `server` line. */
export function isNodeKey(key: string): boolean {
  return parseNodeAddress(key) !== null || URL_KEY.test(key);
}

/** The stored link file name of a file name: `encodeName(name) + "#"`. */
export function linkFileName(name: string): string {
  return encodeName(name) + LINK_SUFFIX;
}

/** The file name a stored link file name stands for, or null when it is not a link file name. */
export function nameOfLinkFile(stored: string): string | null {
  return stored.length > 1 && stored.endsWith(LINK_SUFFIX) ? decodeName(stored.slice(0, -1)) : null;
}

/** Decodes a link or directory info file. Throws {@linkcode CodecError} on malformed input. */
export function decodeLink(input: CodecInput, source: string): FileLink | DirInfo {
  const text = toText(input, FORMAT, source);
  const fail = (line: number, problem: string): never => {
    throw new CodecError(FORMAT, source, line, problem);
  };
  const lines = splitLines(text);
  if (lines.length === 0) fail(1, "empty file");
  const int = (s: string, what: string, signed = false): number =>
    parseIntStrict(s, signed) ?? fail(1, `${what} is not a whole number: ${JSON.stringify(s)}`);
  const head = lines[0].text.split(" ");
  for (const { text, line } of lines) {
    if (/[\r\0]/.test(text)) fail(line, "control character in line");
  }
  if (head.length === 3 && head[0] === "dir") {
    const extra = lines.slice(1).map(({ text, line }) =>
      text !== "" ? text : fail(line, "empty line")
    );
    return { kind: "dir", uid: int(head[1], "uid"), mtime: int(head[2], "mtime", true), extra };
  }
  if (head.length !== 4) {
    fail(
      1,
      `expected '<name> <size> <uid> <mtime>' or 'dir <uid> <mtime>', got ${
        JSON.stringify(lines[0].text)
      }`,
    );
  }
  if (head[0] === "") fail(1, "empty name");
  const link: FileLink = {
    kind: "file",
    name: decodeName(head[0]),
    size: int(head[1], "size"),
    uid: int(head[2], "uid"),
    mtime: int(head[3], "mtime", true),
    copies: [],
    extra: [],
  };
  for (const { text, line } of lines.slice(1)) {
    if (text === "") fail(line, "empty line");
    if (!text.startsWith("server ")) {
      link.extra.push(text);
      continue;
    }
    const m = /^server (\S+) (.+)$/.exec(text);
    if (!m) fail(line, `expected 'server <host:port> <path>', got ${JSON.stringify(text)}`);
    if (!isNodeKey(m![1])) fail(line, `bad node address ${JSON.stringify(m![1])}`);
    link.copies.push({ node: m![1], path: m![2] });
  }
  return link;
}

/** Encodes a link or directory info file (every line `\n`-terminated). */
export function encodeLink(info: FileLink | DirInfo): string {
  const bad = (problem: string): never => {
    throw new EncodeError(FORMAT, problem);
  };
  const whole = (n: number, what: string, signed = false) => {
    if (!Number.isSafeInteger(n) || (!signed && n < 0)) bad(`${what} ${n} is not a whole number`);
    return String(n);
  };
  const extras = info.extra.map((l) => {
    if (l === "" || /[\r\n\0]/.test(l) || (info.kind === "file" && l.startsWith("server "))) {
      bad(`bad extra line ${JSON.stringify(l)}`);
    }
    return l + "\n";
  });
  if (info.kind === "dir") {
    return `dir ${whole(info.uid, "uid")} ${whole(info.mtime, "mtime", true)}\n${extras.join("")}`;
  }
  if (info.name === "") bad("empty name");
  let out = `${encodeName(info.name)} ${whole(info.size, "size")} ${whole(info.uid, "uid")} ${
    whole(info.mtime, "mtime", true)
  }\n`;
  for (const c of info.copies) {
    if (!isNodeKey(c.node)) bad(`bad node address ${JSON.stringify(c.node)}`);
    if (c.path === "" || /[\r\n\0]/.test(c.path)) bad(`bad node path ${JSON.stringify(c.path)}`);
    out += `server ${c.node} ${c.path}\n`;
  }
  return out + extras.join("");
}
