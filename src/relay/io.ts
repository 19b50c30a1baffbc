/**
 * What relay sync needs from a relay storage: the narrow view of a backend
 * (`./backend/`) the sync engine uses — flat files listed with size and
 * mtime, read as a stream or whole, written atomically, created exclusively
 * (for locks), deleted and renamed — and the opening of a relay from a
 * folder's configuration.
 *
 * @module
 */
import { openBackend, type OpenOptions } from "./backend/mod.ts";
import type { RelayBackend, RelayFile } from "./backend/types.ts";
import type { FolderConfig } from "./config.ts";
import { wholeMs } from "./scan.ts";

export type { RelayFile } from "./backend/types.ts";

/** The relay operations sync uses (every backend has them). */
export type RelayIO = Omit<RelayBackend, "setMtime">;

/** How to reach the relay of a folder configuration: its login, TLS, SSH, S3 and rclone settings. */
export function relayOptions(cfg: FolderConfig): OpenOptions {
  return {
    user: cfg.user,
    password: cfg.password,
    insecureTls: cfg.insecureTls,
    tlsCa: cfg.tlsCa,
    tlsCert: cfg.tlsCert,
    tlsKey: cfg.tlsKey,
    tlsVersion: cfg.tlsVersion,
    sshKey: cfg.sshKey,
    hostKey: cfg.hostKey,
    s3Endpoint: cfg.s3Endpoint,
    s3Region: cfg.s3Region,
    rcloneBinary: cfg.rcloneBinary,
    rcloneConfig: cfg.rcloneConfig,
  };
}

/** Opens the relay of a folder configuration (network relays connect and log in now). */
export async function openRelayIO(url: string, opts: OpenOptions = {}): Promise<RelayIO> {
  return wholeMilliseconds(await openBackend(url, opts));
}

/**
 * The relay's file times in whole milliseconds. A sync state keeps the mtimes it saw (the
 * index it agreed with, the deletions and update heads it read) to compare on the next run,
 * and the runtimes disagree below the millisecond (Deno truncates, Bun keeps a fraction): a
 * run of the binary after one on Deno, or the other way round, saw every file as changed
 * and read every index again.
 */
function wholeMilliseconds(b: RelayIO): RelayIO {
  const whole = (f: RelayFile): RelayFile => ({ ...f, mtimeMs: wholeMs(f.mtimeMs) });
  const list = b.list.bind(b);
  const stat = b.stat.bind(b);
  b.list = async () => (await list()).map(whole);
  b.stat = async (name) => {
    const f = await stat(name);
    return f && whole(f);
  };
  return b;
}
