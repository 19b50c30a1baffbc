/**
 * The cluster server's config file: the settings of `hop cluster serve`'s flags, one
 * `key = value` a line (`#`/`;` comment lines, blank lines, an optional `[cluster]`
 * section header). `node` may repeat. Relative paths are taken from the file's folder.
 *
 * ```
 * [cluster]
 * root = /srv/cluster
 * listen = 0.0.0.0:21
 * node = ftp://store:secret@10.0.0.2:21/data
 * node = ftp://store:secret@10.0.0.3:21/data
 * replicas = 2
 * names = blanks
 * tls cert = /etc/hop/cert.pem
 * tls key = /etc/hop/key.pem
 * anonymous = no
 * lease timeout = 30
 * login timeout = 60
 * idle timeout = 300
 * min free = 1G
 * staging quota = 50G
 * ```
 *
 * @example
 * ```ts
 * const fromFile = await readClusterConfig("cluster.conf");
 * await serveCluster({ ...fromFile, ...fromFlags });
 * ```
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { CodecError } from "../codec/errors.ts";
import { parseSizeText } from "../codec/text.ts";
import { NAME_POLICIES, type NamePolicy } from "../codec/names.ts";
import { HopError } from "../errors.ts";
import type { ServeClusterOptions } from "./serve.ts";

const FORMAT = "cluster config";

/** Parse config text; `file` names it in errors and anchors relative paths. */
export function parseClusterConfig(text: string, file: string): ServeClusterOptions {
  const dir = path.dirname(path.resolve(file));
  const out: ServeClusterOptions = {};
  let cert: string | undefined;
  let key: string | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const n = i + 1;
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (/^\[\s*cluster\s*\]$/i.test(line)) continue;
    if (line.startsWith("[")) throw new CodecError(FORMAT, file, n, `unknown section ${line}`);
    const m = /^([A-Za-z][A-Za-z _-]*?)\s*[=:]\s*(.*)$/.exec(line);
    if (!m) throw new CodecError(FORMAT, file, n, "expected `key = value`");
    const k = m[1].toLowerCase().replace(/[ _-]+/g, " ");
    const v = m[2];
    const bad = (what: string) => new CodecError(FORMAT, file, n, `${k}: ${what}`);
    switch (k) {
      case "root":
        out.root = path.resolve(dir, v);
        break;
      case "listen":
        out.listen = v;
        break;
      case "http":
        out.http = v;
        break;
      case "node":
        if (!/^(ftp|file):\/\//.test(v)) {
          throw bad("expected ftp://user:pass@host:port/dir or file:///path");
        }
        (out.nodes ??= []).push(v);
        break;
      case "replicas": {
        const r = Number(v);
        if (!Number.isInteger(r) || r < 1 || r > 16) throw bad("a whole number from 1 to 16");
        out.replicas = r;
        break;
      }
      case "names":
        if (!NAME_POLICIES.includes(v as NamePolicy)) throw bad("strict, blanks or any");
        out.names = v as NamePolicy;
        break;
      case "tls cert":
        cert = path.resolve(dir, v);
        break;
      case "tls key":
        key = path.resolve(dir, v);
        break;
      case "anonymous":
        if (!/^(yes|no|true|false|on|off)$/i.test(v)) throw bad("yes or no");
        out.anonymous = /^(yes|true|on)$/i.test(v);
        break;
      case "min free":
      case "staging quota": {
        const n = parseSizeText(v);
        if (n === null) throw bad("a size like 500M, 2G or 1048576");
        if (k === "min free") out.minFreeBytes = n;
        else out.stagingQuotaBytes = n;
        break;
      }
      case "lease timeout":
      case "login timeout":
      case "idle timeout": {
        const sec = Number(v);
        if (!Number.isInteger(sec) || sec < 1 || sec > 86400) {
          throw bad("a whole number of seconds from 1 to 86400");
        }
        if (k === "lease timeout") out.leaseTtlMs = sec * 1000;
        else if (k === "login timeout") out.loginTimeoutMs = sec * 1000;
        else out.idleTimeoutMs = sec * 1000;
        break;
      }
      default:
        throw new CodecError(
          FORMAT,
          file,
          n,
          `unknown setting "${m[1]}"`,
          "Known: root, listen, http, node, replicas, names, tls cert, tls key, anonymous, lease timeout, login timeout, idle timeout, min free, staging quota.",
        );
    }
  }
  if ((cert === undefined) !== (key === undefined)) {
    throw new CodecError(
      FORMAT,
      file,
      lines.length,
      "give both `tls cert` and `tls key`, or neither",
    );
  }
  if (cert && key) out.tls = { cert, key };
  return out;
}

/** Read and parse the config file at `file`. */
export async function readClusterConfig(file: string): Promise<ServeClusterOptions> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new HopError(`cannot read the cluster config ${file}: ${(e as Error).message}`, {
      hint: "Check the path given to --cluster-config.",
      cause: e,
    });
  }
  return parseClusterConfig(text, file);
}
