/**
 * The cluster on a real network's terms: a client, the cluster server and a pyftpdlib
 * node, each in a network namespace of its own (made by this benchmark, removed after),
 * on separate addresses, every link shaped to `--rate` (default 1gbit, `tc`). Passive
 * RETR of `--mb` MB (default 512) with curl straight from the node against the same
 * through `hop cluster serve`, alternated `--runs` times (default 3), medians: on a link
 * slower than the machine, the proxy must keep the link full (>= 0.95x direct).
 *
 * Needs root (network namespaces) and iproute2's `ip` and `tc`.
 *
 * Options: --mb=N --runs=N --rate=TC_RATE.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import { join } from "node:path";
import { clusterLayout } from "../../src/cluster/layout.ts";
import { writeInfo } from "../../src/cluster/links.ts";
import { makeNet, type Net, type Proc, run as runCmd, startIn } from "../../tests/helpers/netns.ts";
import {
  alternate,
  fig,
  hop,
  type Measured,
  opt,
  optText,
  record,
  ROOT,
  rowStart,
} from "./_lib.ts";

const NODE_SCRIPT = `
import sys, logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
host, root, pw = sys.argv[1], sys.argv[2], sys.argv[3]
logging.basicConfig(level=logging.ERROR)
a = DummyAuthorizer()
a.add_user("node", pw, root, perm="elradfmwMT")
FTPHandler.authorizer = a
s = FTPServer((host, 2100), FTPHandler)
print("LISTENING", s.socket.getsockname()[1], flush=True)
s.serve_forever()
`;

export async function run(args: string[]): Promise<void> {
  const mb = opt(args, "mb", 512);
  const runs = opt(args, "runs", 3);
  const rate = optText(args, "rate") ?? "1gbit";
  const tmp = await fsp.mkdtemp(join(os.tmpdir(), "hop-bench-link-"));
  const procs: Proc[] = [];
  let net: Net | null = null;
  const pw = randomBytes(9).toString("base64url");
  try {
    net = await makeNet(["c", "s", "n"], { rate });
    const nodeDir = join(tmp, "node");
    const rel = "aa/bb/260101-000000-big.bin";
    await fsp.mkdir(join(nodeDir, "aa/bb"), { recursive: true });
    const fh = await fsp.open(join(nodeDir, rel), "w");
    const block = randomBytes(1 << 20);
    for (let i = 0; i < mb; i++) await fh.write(block);
    await fh.close();
    const node = startIn(net.ns("n"), [
      "/usr/bin/python3",
      "-c",
      NODE_SCRIPT,
      net.addr("n"),
      nodeDir,
      pw,
    ]);
    procs.push(node);
    await node.waitFor(/LISTENING (\d+)/, 15_000);
    const root = join(tmp, "root");
    const server = startIn(net.ns("s"), [
      ...hop(),
      "cluster",
      "serve",
      "--root",
      root,
      "--listen",
      `${net.addr("s")}:2121`,
      "--node",
      `ftp://node:${pw}@${net.addr("n")}:2100/`,
      "--replicas",
      "1",
    ], ROOT);
    procs.push(server);
    const m = await server.waitFor(/ftp:\/\/admin:([^@\s]+)@/, 60_000);
    const adminPw = decodeURIComponent(m[1]);
    await writeInfo(clusterLayout(root).tmp, join(root, "big.bin#"), {
      kind: "file",
      name: "big.bin",
      size: mb << 20,
      uid: 0,
      mtime: Math.floor(Date.now() / 1000),
      copies: [{ node: `${net.addr("n")}:2100`, path: rel }],
      extra: [],
    });
    const ns = net.ns("c");
    const get = async (user: string, pass: string, url: string): Promise<Measured> => {
      const t0 = performance.now();
      await runCmd("ip", [
        "netns",
        "exec",
        ns,
        "curl",
        "-sS",
        "--max-time",
        "900",
        "--user",
        `${user}:${pass}`,
        "-o",
        "/dev/null",
        url,
      ], 900_000);
      return { seconds: (performance.now() - t0) / 1000, peakRssMB: 0 };
    };
    rowStart();
    const r = await alternate(runs, {
      direct: () => get("node", pw, `ftp://${net!.addr("n")}:2100/${rel}`),
      hop: () => get("admin", adminPw, `ftp://${net!.addr("s")}:2121/big.bin`),
    });
    const mbps = (s: number) => `${((mb * 8 * 1.048576) / s).toFixed(0)} Mbit/s`;
    record(
      `cluster RETR ${mb} MB passive, ${rate} links in network namespaces`,
      fig(r.hop),
      {
        "pyftpdlib direct": fig(r.direct),
      },
      [{ what: ">= 0.95x direct's speed", met: r.hop.seconds * 0.95 <= r.direct.seconds }],
      [
        `hop ${mbps(r.hop.seconds)}, direct ${mbps(r.direct.seconds)}`,
      ],
    );
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await net?.destroy();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
