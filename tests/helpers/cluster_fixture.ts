/**
 * A cluster laid out by the test, for the maintenance tests (audit, repair, cleanup,
 * replicate, node retire/lost): a cluster root with nodes (folders, or FTP servers over
 * folders) filled by writing node files and link files directly, as the store worker
 * would.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { type ClusterAdmin, openClusterAdmin } from "../../src/cluster/admin.ts";
import { type FileLink, writeInfo } from "../../src/cluster/links.ts";
import { nodePathFor } from "../../src/cluster/store.ts";

/** A cluster under test. */
export interface TestCluster {
  tmp: string;
  root: string;
  /** Node folders, in the order of `keys`. */
  dirs: string[];
  /** Node keys (as in link files), in the order of `dirs`. */
  keys: string[];
  adm: ClusterAdmin;
  /** Store `body` as cluster file `rel` (e.g. `a/x.txt`) with copies on nodes `on`. */
  addFile(rel: string, body: Uint8Array, on: number[]): Promise<{ link: FileLink; file: string }>;
  /** Disk path of node `i`'s copy at node path `p`. */
  nodeFile(i: number, p: string): string;
  /** Reopen the admin context (e.g. after nodes changed). */
  reopen(urls?: string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * A cluster with `n` node folders under a new temp folder. `urls(dirs)` may give FTP
 * URLs serving those folders (default: file:// URLs); `keyOf` then maps a URL to its key.
 */
export async function makeTestCluster(
  n: number,
  urls?: (dirs: string[]) => Promise<string[]>,
): Promise<TestCluster> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-maint-"));
  await fsp.chmod(tmp, 0o755);
  const root = path.join(tmp, "root");
  const dirs: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = path.join(tmp, `node${i}`);
    await fsp.mkdir(d);
    dirs.push(d);
  }
  const nodeUrls = urls ? await urls(dirs) : dirs.map((d) => pathToFileURL(d).href);
  let adm = await openClusterAdmin({ root, nodes: nodeUrls });
  const keys = [...adm.ctx.nodes.keys()];
  const old = (Date.now() - 2 * 3600_000) / 1000;
  const t: TestCluster = {
    tmp,
    root,
    dirs,
    keys,
    get adm() {
      return adm;
    },
    nodeFile: (i, p) => path.join(dirs[i], ...p.split("/")),
    async addFile(rel, body, on) {
      const name = rel.split("/").pop()!;
      const mtime = Math.floor(old);
      const p = nodePathFor(randomBytes(8).toString("hex"), name, mtime * 1000);
      for (const i of on) {
        const f = t.nodeFile(i, p);
        await fsp.mkdir(path.dirname(f), { recursive: true });
        await fsp.writeFile(f, body);
        await fsp.utimes(f, old, old);
      }
      const link: FileLink = {
        kind: "file",
        name,
        size: body.length,
        uid: 1000,
        mtime,
        copies: on.map((i) => ({ node: keys[i], path: p })),
        extra: [],
      };
      const file = path.join(root, ...rel.split("/")) + "#";
      await fsp.mkdir(path.dirname(file), { recursive: true });
      await writeInfo(adm.ctx.layout.tmp, file, link);
      return { link, file };
    },
    async reopen(u) {
      await adm.close();
      adm = await openClusterAdmin({ root, nodes: u ?? nodeUrls });
    },
    async close() {
      await adm.close();
      await fsp.rm(tmp, { recursive: true, force: true });
    },
  };
  return t;
}
