/**
 * OpenSSH's `known_hosts` file (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): the
 * host keys a client trusts. Each line is `[marker] hostpatterns keytype
 * base64key [comment]`; host patterns are comma-separated names with `*` and
 * `?` wildcards and `!` negation, `[host]:port` for a port other than 22, or
 * one hashed name `|1|base64salt|base64hmac` (HMAC-SHA1 of the name keyed by
 * the salt). `@revoked` keys are never trusted; `@cert-authority` lines are
 * not host keys and are skipped.
 *
 * @example
 * ```ts
 * knownHostKeys("example.org ssh-ed25519 AAAAC3Nz...\n", "example.org", 22); // ["AAAAC3Nz..."]
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";

/** The base64 key blobs `text` trusts for `host` on `port` (revoked keys left out). */
export function knownHostKeys(text: string, host: string, port: number): string[] {
  const name = port === 22 ? host : `[${host}]:${port}`;
  const trusted: string[] = [];
  const revoked = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(/\s+/);
    let marker = "";
    if (f[0].startsWith("@")) marker = f.shift()!;
    if (f.length < 3 || marker === "@cert-authority") continue;
    const [patterns, , key] = f;
    if (!matches(patterns, name)) continue;
    if (marker === "@revoked") revoked.add(key);
    else trusted.push(key);
  }
  return trusted.filter((k) => !revoked.has(k));
}

/** True when the pattern list names `name` (and no negated pattern does). */
function matches(patterns: string, name: string): boolean {
  if (patterns.startsWith("|1|")) {
    const [, , salt, hash] = patterns.split("|");
    if (!salt || !hash) return false;
    const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
    return mac === hash;
  }
  let hit = false;
  for (const p of patterns.split(",")) {
    const neg = p.startsWith("!");
    const re = new RegExp(
      "^" + (neg ? p.slice(1) : p).replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")
        .replace(/\?/g, ".") +
        "$",
      "i",
    );
    if (re.test(name)) {
      if (neg) return false;
      hit = true;
    }
  }
  return hit;
}
