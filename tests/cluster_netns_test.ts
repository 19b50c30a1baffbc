/**
 * The cluster across hosts, in network namespaces made by this test: a client, the
 * cluster server and two pyftpdlib nodes, each in its own namespace with its own
 * address, joined by veth pairs to a bridge in a fifth (router) namespace.
 *
 * - active-mode RETR (curl `--ftp-port`): a node sends the file straight to the client;
 *   the server's interface counters and its process I/O grow by far less than the file;
 * - passive RETR: the server streams the file (its counters grow by the file, twice);
 * - both downloads arrive byte-exact.
 *
 * The addresses (10.213.<n>.0/24) exist only inside the namespaces the test made; the
 * host's own interfaces and routes are never touched. Everything (processes by pid,
 * namespaces) is removed in `finally`. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and
 * iproute2: when `ip netns add` is refused the test fails and says so.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { readFileLink, stagedId } from "../src/cluster/links.ts";
import { newLogin } from "./helpers/credentials.ts";
import { hopCommand, ROOT } from "./helpers/hop.ts";
import { counters, makeNet, type Net, type Proc, run, startIn } from "./helpers/netns.ts";

const FILE_BYTES = 20 * 1024 * 1024;
/** Most the server may move (both directions) during an active RETR: control replies only. */
const ACTIVE_LIMIT = 256 * 1024;

/** Bytes a process moved through read/write system calls (sockets included). */
async function procIo(pid: number): Promise<number> {
  const text = await fsp.readFile(`/proc/${pid}/io`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(text)![1]);
  return field("rchar") + field("wchar");
}

const NODE_SCRIPT = `
import sys, logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
host, root, user, password = sys.argv[1:5]
logging.basicConfig(level=logging.ERROR)
a = DummyAuthorizer()
a.add_user(user, password, root, perm="elradfmwMT")
class H(FTPHandler):
    permit_foreign_addresses = True  # third-party (FXP-style) sends to the client
H.authorizer = a
s = FTPServer((host, 2100), H)
print("LISTENING", s.socket.getsockname()[1], flush=True)
s.serve_forever()
`;

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test("cluster across namespaces: active RETR flows node -> client, not through the server", async () => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-netns-"));
  const procs: Proc[] = [];
  let net: Net | null = null;
  try {
    net = await makeNet(["c", "s", "n1", "n2"]);
    const [c, s, n1, n2] = ["c", "s", "n1", "n2"];
    // Two pyftpdlib nodes, each in its namespace on its own address (fixed port: the
    // namespace is new and empty, nothing else can hold it).
    const nodeUrls: string[] = [];
    const login = newLogin("node");
    for (const n of [n1, n2]) {
      const dir = path.join(tmp, n);
      await fsp.mkdir(dir);
      const p = startIn(net.ns(n), [
        "/usr/bin/python3",
        "-c",
        NODE_SCRIPT,
        net.addr(n),
        dir,
        login.user,
        login.password,
      ]);
      procs.push(p);
      await p.waitFor(/LISTENING (\d+)/, 15_000);
      nodeUrls.push(`ftp://${login.user}:${login.password}@${net.addr(n)}:2100/`);
    }

    // The cluster server (the binary in HOP_BIN, or deno run cli.ts).
    const root = path.join(tmp, "root");
    const server = startIn(net.ns(s), [
      ...hopCommand(),
      "cluster",
      "serve",
      "--root",
      root,
      "--listen",
      `${net.addr(s)}:2121`,
      ...nodeUrls.flatMap((u) => ["--node", u]),
    ], ROOT);
    procs.push(server);
    const m = await server.waitFor(/ftp:\/\/admin:([^@\s]+)@/, 30_000);
    const password = decodeURIComponent(m[1]);
    const base = `ftp://${net.addr(s)}:2121`;
    const curl = (args: string[]) =>
      run("ip", [
        "netns",
        "exec",
        net!.ns(c),
        "curl",
        "--silent",
        "--show-error",
        "--max-time",
        "60",
        "--user",
        `admin:${password}`,
        ...args,
      ]);

    // Upload through the cluster (passive), wait until the store worker put it on both nodes.
    const data = randomBytes(FILE_BYTES);
    const local = path.join(tmp, "big.bin");
    await fsp.writeFile(local, data);
    await curl(["-T", local, `${base}/big.bin`]);
    const linkFile = path.join(root, "big.bin#");
    const deadline = Date.now() + 30_000;
    for (;;) {
      const link = await readFileLink(linkFile);
      if (link && stagedId(link) === null && link.copies.length === 2) break;
      if (Date.now() > deadline) {
        throw new Error(
          `not stored on both nodes in time: ${JSON.stringify(link)}\n` +
            server.output(),
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    // Each node holds a copy.
    for (const n of [n1, n2]) {
      const files = (await fsp.readdir(path.join(tmp, n), { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile());
      assert.equal(files.length, 1, `${n} holds one copy`);
    }

    const snapshot = async () => ({
      server: await counters(net!.ns(s), "eth0"),
      n1: await counters(net!.ns(n1), "eth0"),
      n2: await counters(net!.ns(n2), "eth0"),
      client: await counters(net!.ns(c), "eth0"),
      io: await procIo(server.pid),
    });
    const delta = (a: { rx: number; tx: number }, b: { rx: number; tx: number }) =>
      (b.rx - a.rx) + (b.tx - a.tx);

    // Active RETR: curl listens on the client's address and sends EPRT/PORT.
    const activeOut = path.join(tmp, "active.bin");
    const before = await snapshot();
    await curl(["--ftp-port", net.addr(c), "-o", activeOut, `${base}/big.bin`]);
    const after = await snapshot();
    assert.equal(sha(await fsp.readFile(activeOut)), sha(data), "active download intact");
    const serverBytes = delta(before.server, after.server);
    const serverIo = after.io - before.io;
    assert.ok(
      serverBytes < ACTIVE_LIMIT,
      `server interface moved ${serverBytes} bytes during an active RETR of ${FILE_BYTES}`,
    );
    assert.ok(
      serverIo < ACTIVE_LIMIT,
      `server process read/wrote ${serverIo} bytes during an active RETR of ${FILE_BYTES}`,
    );
    const nodeSent = (after.n1.tx - before.n1.tx) + (after.n2.tx - before.n2.tx);
    assert.ok(nodeSent >= FILE_BYTES, `the nodes sent ${nodeSent} bytes`);
    assert.ok(after.client.rx - before.client.rx >= FILE_BYTES, "the client received the file");
    const log = await fsp.readFile(path.join(root, ".log", "cluster.log"), "utf8");
    assert.match(
      log,
      /RETR \/big\.bin sent by ftp:\/\/[^:/@]+:\*\*\*@10\.213\.[\d.]+:2100\/ straight to/,
    );

    // Passive RETR in the same topology: proxied by the server, also intact.
    const passiveOut = path.join(tmp, "passive.bin");
    const before2 = await snapshot();
    await curl(["-o", passiveOut, `${base}/big.bin`]);
    const after2 = await snapshot();
    assert.equal(sha(await fsp.readFile(passiveOut)), sha(data), "passive download intact");
    const proxied = delta(before2.server, after2.server);
    assert.ok(
      proxied >= 2 * FILE_BYTES,
      `a passive RETR goes through the server (in from a node, out to the client): ${proxied}`,
    );
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await net?.destroy();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});
