/**
 * Probe (not run by `deno task bench`: its name starts with `_`): passive RETR of a big
 * file straight from a pyftpdlib node vs through `hop cluster serve` (proxied), with
 * curl as the client writing to /dev/null. Interleaved rounds, best of each.
 *
 *   deno run -A scripts/bench/_retr_probe.ts [--mb=1024] [--rounds=3] [--prof=DIR]
 *
 * `--prof=DIR` runs the server under `deno run --cpu-prof --cpu-prof-dir=DIR`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { clusterLayout } from "../../src/cluster/layout.ts";
import { writeInfo } from "../../src/cluster/links.ts";
import { startPyftpdlib } from "../../tests/helpers/ftp_servers.ts";
import { hop, ROOT } from "./_lib.ts";

const arg = (name: string, dflt: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const MB = Number(arg("mb", "1024"));
const ROUNDS = Number(arg("rounds", "3"));
const PROF = arg("prof", "");

function curlSeconds(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("curl", ["-sS", "--max-time", "600", "-o", "/dev/null", url], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => err += d);
    child.once(
      "close",
      (code) =>
        code === 0
          ? resolve((performance.now() - t0) / 1000)
          : reject(new Error(`curl ${url} exited ${code}: ${err}`)),
    );
  });
}

/** CPU seconds (user + system) a process used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-retr-probe-"));
const nodeDir = path.join(tmp, "node");
const rel = "aa/bb/260101-000000-big.bin";
await fsp.mkdir(path.join(nodeDir, "aa/bb"), { recursive: true });
{
  const block = randomBytes(1 << 20);
  const fh = await fsp.open(path.join(nodeDir, rel), "w");
  for (let i = 0; i < MB; i++) await fh.write(block);
  await fh.close();
}
const py = await startPyftpdlib({ root: nodeDir });
const root = path.join(tmp, "root");
const pre = hop();
const serverArgs = PROF
  ? [pre[0], "run", "-A", "--quiet", "--cpu-prof", `--cpu-prof-dir=${PROF}`, ROOT + "cli.ts"]
  : pre;
const server = spawn(serverArgs[0], [
  ...serverArgs.slice(1),
  "cluster",
  "serve",
  "--root",
  root,
  "--listen",
  "127.0.0.1:0",
  "--node",
  py.loginUrl(),
], { stdio: ["ignore", "pipe", "pipe"] });
const exited = new Promise((r) => server.once("exit", r));
try {
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: server.stdout! });
    let errText = "";
    server.stderr!.on("data", (d) => errText += d);
    const pick = (l: string) => /ftp:\/\/admin:/.test(l) && resolve(l);
    rl.on("line", pick);
    createInterface({ input: server.stderr! }).on("line", pick);
    server.once("exit", () => reject(new Error("server exited: " + errText)));
  });
  const url = /ftp:\/\/admin:[^\s]+\//.exec(line)![0];
  const l = clusterLayout(root);
  await writeInfo(l.tmp, path.join(root, "big.bin#"), {
    kind: "file",
    name: "big.bin",
    size: MB << 20,
    uid: 0,
    mtime: Math.floor(Date.now() / 1000),
    copies: [{ node: `127.0.0.1:${py.port}`, path: rel }],
    extra: [],
  });
  const direct: number[] = [];
  const cluster: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    direct.push(await curlSeconds(py.loginUrl(rel)));
    const c0 = cpuSeconds(server.pid!);
    const n0 = cpuSeconds(py.pid);
    cluster.push(await curlSeconds(`${url}big.bin`));
    cpu.push(cpuSeconds(server.pid!) - c0);
    const nodeCpu = cpuSeconds(py.pid) - n0;
    console.log(
      `round ${r + 1}: direct ${direct.at(-1)!.toFixed(2)} s, cluster ${
        cluster.at(-1)!.toFixed(2)
      } s (server CPU ${cpu.at(-1)!.toFixed(2)} s, node CPU ${nodeCpu.toFixed(2)} s)`,
    );
  }
  const d = Math.min(...direct);
  const c = Math.min(...cluster);
  console.log(
    `RETR ${MB} MB passive: direct ${(MB / d).toFixed(0)} MB/s, cluster ${
      (MB / c).toFixed(0)
    } MB/s, ratio ${(d / c).toFixed(2)}x (target >= 0.9x); server CPU ${
      (Math.min(...cpu) * 1024 / MB).toFixed(2)
    } s per GB (best)`,
  );
} finally {
  server.kill("SIGINT");
  const t = setTimeout(() => server.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
  await py.stop();
  await fsp.rm(tmp, { recursive: true, force: true });
}
