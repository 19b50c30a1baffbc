/**
 * Real peers for the cluster tests: a pyftpdlib FTP server on 127.0.0.1 as a storage
 * node (started from Debian's /usr/bin/python3, bound to a free port, stopped by pid).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import process from "node:process";

/** A running pyftpdlib node. */
export interface PyNode {
  port: number;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const SCRIPT = `
import sys, logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
root, user, pw, port, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
logging.basicConfig(level=logging.ERROR)
a = DummyAuthorizer()
a.add_user(user, pw, root, perm="elradfmwMT")
class H(FTPHandler):
    permit_foreign_addresses = False
H.authorizer = a
if limit > 0:
    from pyftpdlib.handlers import ThrottledDTPHandler
    class D(ThrottledDTPHandler):
        read_limit = limit
        write_limit = limit
    H.dtp_handler = D
s = FTPServer(("127.0.0.1", port), H)
print(s.socket.getsockname()[1], flush=True)
s.serve_forever()
`;

/**
 * Start pyftpdlib serving `root` for `user`/`password`; `port` 0 picks a free one;
 * `bytesPerSecond` > 0 throttles data transfers.
 */
export function startPyNode(
  root: string,
  port = 0,
  user = "node",
  password = "secret",
  bytesPerSecond = 0,
): Promise<PyNode> {
  const args = [root, user, password, String(port), String(bytesPerSecond)];
  const child = spawn("/usr/bin/python3", ["-c", SCRIPT, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => stderr += d);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once("line", (line) => {
      const p = Number(line.trim());
      resolve({
        port: p,
        pid: child.pid!,
        url: `ftp://${user}:${password}@127.0.0.1:${p}/`,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) {
            process.kill(child.pid!, "SIGKILL");
          }
          await exited;
        },
      });
    });
    child.once("exit", (code) => reject(new Error(`pyftpdlib exited (${code}): ${stderr}`)));
  });
}
