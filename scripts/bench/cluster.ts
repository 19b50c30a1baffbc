/**
 * FTP cluster benchmark: `hop cluster serve` as its own process in front of one
 * pyftpdlib node (`permit_foreign_addresses`, so active-mode downloads are third-party),
 * each figure against pyftpdlib and vsftpd serving the same folder directly, alternated
 * `--runs` times (default 3), medians:
 *
 * - RETR of `--mb` MB (default 1024) with curl, passive (proxied by the server) and
 *   active (`curl -P`: the node connects to curl);
 * - STOR of the same size with curl, until the 226 (the cluster answers it once the data
 *   is durable), and how long after it the node has the copy; `dd conv=fsync` of the same
 *   bytes on the same disk is given as the floor of a durable 226;
 * - RETR of a 10 KB file, 30 in one session (basic-ftp): the cost of a small transfer;
 * - `lftp mirror -R` of 1,000 files of 10 KB, then `lftp mirror` of them back (once the
 *   store worker put them on the node);
 * - LIST of a folder of `--list-files` (default 10,000) files, and MLSD of it (what
 *   basic-ftp's `list()` sends where it is offered; not vsftpd);
 * - `--sessions` (default 200) concurrent sessions, each LIST then RETR of 1 MB, spread
 *   over loopback source addresses (16 a client address): p50, p99, errors, the
 *   server's peak RSS (a fresh server);
 * - a soak: `--soak-rounds` (default 10) rounds of the same sessions through a cluster
 *   whose node is hop's own (`hop cluster node serve`): the RSS of both servers after
 *   each round must stay flat.
 *
 * Options: --mb=N --runs=N --sessions=N --list-files=N --soak-rounds=N, and
 * `--only=ROW,...` to run only some rows: `retr` (passive and active), `stor`, `small`
 * (RETR of 10 KB), `mirror` (both ways), `list`, `sessions`, `soak`.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { Writable } from "node:stream";
import { Client } from "basic-ftp";
import { clusterLayout } from "../../src/cluster/layout.ts";
import { readFileLink, stagedId, writeInfo } from "../../src/cluster/links.ts";
import { encodeLink } from "../../src/codec/link.ts";
import { lftpQuote, runLftp } from "../../tests/helpers/ftp_clients.ts";
import {
  startPyftpdlib,
  startVsftpd,
  type TestFtpServer,
} from "../../tests/helpers/ftp_servers.ts";
import {
  alternate,
  atMost,
  cpuOf,
  fig,
  type Figure,
  hop,
  measure,
  type Measured,
  median,
  opt,
  optText,
  record,
  ROOT,
  rowStart,
  rssOf,
} from "./_lib.ts";

const NODE_USER = "node";
const NODE_PW = randomBytes(9).toString("base64url");

/** A running hop server (cluster or node). */
interface HopServer {
  port: number;
  pid: number;
  /** The admin password (cluster serve). */
  password: string;
  stop(): Promise<void>;
}

/** Starts `hop --json <args>` and waits for its event naming the port. */
async function startHop(args: string[], event: RegExp): Promise<HopServer> {
  const argv = [...hop(), "--json", ...args];
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let text = "";
  const stop = async () => {
    try {
      process.kill(child.pid!, "SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        process.kill(child.pid!, "SIGKILL");
      } catch { /* gone */ }
    }, 10_000);
    await exited;
    clearTimeout(t);
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const add = (d: Buffer) => {
        if (text.length < 100_000) text += d.toString("utf8");
        const m = text.split("\n").find((l) => event.test(l));
        if (m) resolve(m);
      };
      child.stdout!.on("data", add);
      child.stderr!.on("data", add);
      child.once("exit", (c) => reject(new Error(`${args.join(" ")} exited ${c}: ${text}`)));
      setTimeout(() => reject(new Error(`${args.join(" ")} did not start: ${text}`)), 60_000);
    });
    const ev = JSON.parse(line) as { port: number; message: string };
    const pw = /connect as ftp:\/\/admin:([^@]+)@/.exec(ev.message)?.[1];
    return {
      port: ev.port,
      pid: child.pid!,
      password: pw ? decodeURIComponent(pw) : "",
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

function startCluster(root: string, nodeUrl: string): Promise<HopServer> {
  rmSync(root, { recursive: true, force: true });
  return startHop(
    [
      "cluster",
      "serve",
      "--root",
      root,
      "--listen",
      "127.0.0.1:0",
      "--node",
      nodeUrl,
      "--replicas",
      "1",
    ],
    /"event":"cluster-serve"/,
  );
}

/** Runs curl with `args`; its wall time. */
function curl(args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("curl", ["-sS", "--max-time", "900", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.once(
      "close",
      (code) =>
        code === 0
          ? resolve({ seconds: (performance.now() - t0) / 1000, peakRssMB: 0 })
          : reject(new Error(`curl ${args.join(" ")} exited ${code}: ${err}`)),
    );
  });
}

async function writeRandom(file: string, mb: number): Promise<void> {
  if (existsSync(file) && statSync(file).size === mb << 20) return;
  const block = randomBytes(1 << 20);
  const fh = await fsp.open(file, "w");
  for (let i = 0; i < mb; i++) {
    block.writeUInt32LE(i, 0);
    await fh.write(block);
  }
  await fh.close();
}

/** Link file text for `name` stored at `nodePath` on the node. */
function linkText(name: string, size: number, nodeKey: string, nodePath: string): string {
  return encodeLink({
    kind: "file",
    name,
    size,
    uid: 0,
    mtime: Math.floor(Date.now() / 1000),
    copies: [{ node: nodeKey, path: nodePath }],
    extra: [],
  });
}

/** Waits until every link file named is stored on a node (no staged copy); seconds waited. */
async function waitStored(linkFiles: string[], timeoutS = 900): Promise<number> {
  const t0 = performance.now();
  let left = linkFiles;
  while ((performance.now() - t0) / 1000 < timeoutS) {
    const still: string[] = [];
    for (const f of left) {
      const l = await readFileLink(f).catch(() => null);
      if (!(l && l.copies.length > 0 && stagedId(l) === null)) still.push(f);
    }
    left = still;
    if (left.length === 0) return (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${left.length} file(s) not stored on a node after ${timeoutS} s`);
}

/** One login and `n` RETRs of `file`; the median milliseconds of a RETR. */
async function smallRetrMs(port: number, user: string, password: string, file: string, n = 30) {
  const c = new Client(60_000);
  await c.access({ host: "127.0.0.1", port, user, password });
  const t: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await c.downloadTo(new Writable({ write: (_c, _e, cb) => cb() }), file);
      t.push(performance.now() - t0);
    }
  } finally {
    c.close();
  }
  return median(t);
}

/**
 * A listing of `dir`, `n` times in one session with basic-ftp; the median milliseconds
 * and the count listed. `LIST` on every server; `MLSD` where the server offers it (what
 * basic-ftp's `list()` picks then: its parse of MLSD lines costs the client about three
 * times its parse of LIST lines, so the two are measured apart).
 */
async function listMs(
  port: number,
  user: string,
  password: string,
  dir: string,
  command: "LIST" | "MLSD",
  n = 5,
) {
  const c = new Client(60_000);
  await c.access({ host: "127.0.0.1", port, user, password });
  if (command === "LIST") c.availableListCommands = ["LIST -a", "LIST"];
  else if (c.availableListCommands[0] !== "MLSD") throw new Error(`port ${port}: no MLSD`);
  const t: number[] = [];
  let listed = 0;
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      listed = (await c.list(dir)).length;
      t.push(performance.now() - t0);
    }
  } finally {
    c.close();
  }
  return { ms: median(t), listed };
}

/** lftp against 127.0.0.1:`port`; its wall time (throws on failure). */
async function lftp(port: number, user: string, password: string, commands: string[]) {
  const t0 = performance.now();
  const r = await runLftp({ host: "127.0.0.1", port, user, password }, commands, {
    timeoutMs: 900_000,
    settings: ["set net:timeout 60"],
  });
  if (r.code !== 0) throw new Error(`lftp ${commands.join("; ")} exited ${r.code}: ${r.stderr}`);
  return { seconds: (performance.now() - t0) / 1000, peakRssMB: 0 };
}

interface SessionsResult {
  errors: number;
  firstErrors: string[];
  p50: number;
  p99: number;
  max: number;
  /** Medians of each step (ms): connect and login, LIST, RETR. */
  p50Login: number;
  p50List: number;
  p50Retr: number;
}

/** `login 12 / LIST 34 / RETR 56 ms`: the medians of a session's steps. */
const steps = (r: SessionsResult) =>
  `login ${r.p50Login?.toFixed(0)} / LIST ${r.p50List?.toFixed(0)} / RETR ${
    r.p50Retr?.toFixed(0)
  } ms`;

/** `n` concurrent sessions (a child process), each LIST of `dir` then RETR of 1 MB. */
async function sessions(
  port: number,
  user: string,
  password: string,
  n: number,
  files: string[],
  dir: string,
): Promise<SessionsResult> {
  const m = await measure([
    process.execPath,
    "run",
    "-A",
    join(ROOT, "scripts/bench/_cluster_clients.ts"),
    `ftp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/`,
    `--sessions=${n}`,
    `--files=${files.join(",")}`,
    `--dir=${dir}`,
    `--size=${1 << 20}`,
    "--timeout=300",
  ], { stdout: true });
  return JSON.parse(m.stdout!.trim().split("\n").pop()!);
}

/** Current resident memory (VmRSS) of a process, MB. */
function rssNow(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function run(args: string[]): Promise<void> {
  const mb = opt(args, "mb", 1024);
  const runs = opt(args, "runs", 3);
  const nSessions = opt(args, "sessions", 200);
  const listFiles = opt(args, "list-files", 10_000);
  const soakRounds = opt(args, "soak-rounds", 10);
  const onlyArg = optText(args, "only");
  const only = onlyArg ? new Set(onlyArg.split(",")) : null;
  const wants = (row: string) => only === null || only.has(row);
  const ms = (m: Measured): Figure => ({ value: m.seconds, unit: "ms" });
  /** The sessions' 50 files of 1 MB. */
  const one = randomBytes(1 << 20);
  const sessFiles = Array.from({ length: 50 }, (_, i) => `s${i}.bin`);
  const work = join(ROOT, ".bench", "cluster");
  const nodeDir = join(work, "node");
  rmSync(nodeDir, { recursive: true, force: true });
  await fsp.mkdir(join(nodeDir, "aa/bb"), { recursive: true });
  const bigRel = "aa/bb/260101-000000-big.bin";
  const src = join(work, `src-${mb}.bin`);
  await writeRandom(src, mb);
  await fsp.copyFile(src, join(nodeDir, bigRel));
  await fsp.writeFile(join(nodeDir, "small.bin"), randomBytes(10_000));
  const small = join(work, "small");
  if (!existsSync(join(small, "f999.bin"))) {
    await fsp.mkdir(small, { recursive: true });
    for (let i = 0; i < 1000; i++) {
      await fsp.writeFile(join(small, `f${i}.bin`), randomBytes(10_240));
    }
  }
  // vsftpd serves the same folder (chowned to its ftp user; pyftpdlib runs as root)
  const opts = { root: nodeDir, user: NODE_USER, password: NODE_PW };
  const py = await startPyftpdlib({ ...opts, python: "Handler.permit_foreign_addresses = True" });
  const vs = await startVsftpd(opts);
  const servers: TestFtpServer[] = [py, vs];
  const nodeUrl = `ftp://${NODE_USER}:${encodeURIComponent(NODE_PW)}@127.0.0.1:${py.port}/`;
  const nodeKey = `127.0.0.1:${py.port}`;
  const direct = (s: TestFtpServer, p: string) =>
    `ftp://${NODE_USER}:${encodeURIComponent(NODE_PW)}@127.0.0.1:${s.port}/${p}`;
  console.log(`node: pyftpdlib on ${nodeKey}; vsftpd on ${vs.port}; ${mb} MB file; ${runs} runs`);
  let cluster: HopServer | undefined;
  const stops: (() => Promise<void>)[] = [];
  try {
    // --- big transfers: RETR passive / active, STOR -------------------------------
    const root = join(work, "root");
    cluster = await startCluster(root, nodeUrl);
    const cl = cluster;
    const cUrl = (p: string) =>
      `ftp://admin:${encodeURIComponent(cl.password)}@127.0.0.1:${cl.port}/${p}`;
    await writeInfo(clusterLayout(root).tmp, join(root, "big.bin#"), {
      kind: "file",
      name: "big.bin",
      size: mb << 20,
      uid: 0,
      mtime: Math.floor(Date.now() / 1000),
      copies: [{ node: nodeKey, path: bigRel }],
      extra: [],
    });
    const size = `${mb >= 1024 ? `${mb / 1024} GiB` : `${mb} MB`}`;
    const get = (u: string, active: boolean) =>
      curl([...(active ? ["-P", "127.0.0.1"] : []), "-o", "/dev/null", u]);
    if (wants("retr")) {
      rowStart();
      const retr = await alternate(runs, {
        pyftpdlib: () => get(direct(py, bigRel), false),
        vsftpd: () => get(direct(vs, bigRel), false),
        hop: () => get(cUrl("big.bin"), false),
      });
      const retrRefs = { pyftpdlib: fig(retr.pyftpdlib), vsftpd: fig(retr.vsftpd) };
      record(`cluster RETR ${size} passive`, fig(retr.hop), retrRefs, [
        { what: ">= 0.8x vsftpd's speed", met: retr.hop.seconds * 0.8 <= retr.vsftpd.seconds },
      ]);
      rowStart();
      const act = await alternate(runs, {
        pyftpdlib: () => get(direct(py, bigRel), true),
        vsftpd: () => get(direct(vs, bigRel), true),
        hop: () => get(cUrl("big.bin"), true),
      });
      record(`cluster RETR ${size} active (node -> client)`, fig(act.hop), {
        pyftpdlib: fig(act.pyftpdlib),
        vsftpd: fig(act.vsftpd),
      });
    }
    if (wants("stor")) {
      rowStart();
      let n = 0;
      const storedAfter: number[] = [];
      // Each case starts with no dirty data on the disk (`sync`, not timed): else the one
      // before leaves its writes to the next (pyftpdlib's and vsftpd's gigabyte is still
      // being written back when the next upload starts).
      const settled = <T>(f: () => Promise<T>) => async () => {
        spawnSync("sync");
        return await f();
      };
      const stor = await alternate(runs, {
        pyftpdlib: settled(async () => {
          await fsp.rm(join(nodeDir, "up.bin"), { force: true });
          return await curl(["-T", src, direct(py, "up.bin")]);
        }),
        vsftpd: settled(async () => {
          await fsp.rm(join(nodeDir, "up.bin"), { force: true });
          return await curl(["-T", src, direct(vs, "up.bin")]);
        }),
        hop: settled(async () => {
          const name = `up-${n++}.bin`;
          const m = await curl(["-T", src, cUrl(name)]);
          storedAfter.push(await waitStored([join(root, `${name}#`)]));
          return m;
        }),
        // the floor of a durable 226 on this disk: the same bytes written and fsynced, no network
        "dd, fsync": settled(async () => {
          const to = join(work, "floor.bin");
          await fsp.rm(to, { force: true });
          return await measure([
            "dd",
            `if=${src}`,
            `of=${to}`,
            "bs=1M",
            "conv=fsync",
            "status=none",
          ]);
        }),
      });
      await fsp.rm(join(work, "floor.bin"), { force: true });
      record(
        `cluster STOR ${size}, until 226`,
        fig(stor.hop),
        {
          pyftpdlib: fig(stor.pyftpdlib),
          vsftpd: fig(stor.vsftpd),
          "dd, fsync": fig(stor["dd, fsync"]),
        },
        [atMost({ pyftpdlib: fig(stor.pyftpdlib) }, stor.hop.seconds, "pyftpdlib", 1.3)],
        [
          `on the node ${median(storedAfter).toFixed(2)} s after the 226 (median)`,
          "each case starts with no dirty data on the disk; pyftpdlib and vsftpd answer 226 " +
          "before their data is on it, hop once it is",
          "dd, fsync: the same bytes copied on the same disk and fsynced, the floor of a durable " +
          `226 (1.3x pyftpdlib is ${(1.3 * stor.pyftpdlib.seconds).toFixed(2)} s)`,
        ],
      );
    }
    // --- small files -------------------------------------------------------------------
    if (wants("small")) {
      rowStart();
      await fsp.writeFile(
        join(root, "small.bin#"),
        linkText("small.bin", 10_000, nodeKey, "small.bin"),
      );
      const sr = await alternate(runs, {
        pyftpdlib: async () => ({
          seconds: await smallRetrMs(py.port, NODE_USER, NODE_PW, "small.bin"),
          peakRssMB: 0,
        }),
        vsftpd: async () => ({
          seconds: await smallRetrMs(vs.port, NODE_USER, NODE_PW, "small.bin"),
          peakRssMB: 0,
        }),
        hop: async () => ({
          seconds: await smallRetrMs(cl.port, "admin", cl.password, "small.bin"),
          peakRssMB: 0,
        }),
      }, false);
      const ms = (m: Measured): Figure => ({ value: m.seconds, unit: "ms" });
      record("cluster RETR of 10 KB, median of 30 in one session", ms(sr.hop), {
        pyftpdlib: ms(sr.pyftpdlib),
        vsftpd: ms(sr.vsftpd),
      });
    }
    if (wants("mirror")) {
      rowStart();
      let k = 0;
      const mirrorDirs: Record<string, string[]> = { hop: [], pyftpdlib: [], vsftpd: [] };
      const up = (who: string, port: number, user: string, pw: string) => async () => {
        const dir = `m-${who}-${k++}`;
        mirrorDirs[who].push(dir);
        return await lftp(port, user, pw, [`mirror -R ${lftpQuote(small)} ${lftpQuote(dir)}`]);
      };
      const mup = await alternate(runs, {
        pyftpdlib: up("pyftpdlib", py.port, NODE_USER, NODE_PW),
        vsftpd: up("vsftpd", vs.port, NODE_USER, NODE_PW),
        hop: up("hop", cl.port, "admin", cl.password),
      });
      const mupRefs = { pyftpdlib: fig(mup.pyftpdlib), vsftpd: fig(mup.vsftpd) };
      record("`lftp mirror -R`, 1,000 x 10 KB", fig(mup.hop), mupRefs, [
        atMost(mupRefs, mup.hop.seconds, "pyftpdlib", 1.5),
      ]);
      const links = mirrorDirs.hop.flatMap((d) =>
        Array.from({ length: 1000 }, (_, i) => join(root, d, `f${i}.bin#`))
      );
      const stored = await waitStored(links);
      rowStart();
      const back = join(work, "back");
      let b = 0;
      const down = (who: string, port: number, user: string, pw: string) => async () => {
        rmSync(back, { recursive: true, force: true });
        const dir = mirrorDirs[who][b++ % mirrorDirs[who].length];
        return await lftp(port, user, pw, [`mirror ${lftpQuote(dir)} ${lftpQuote(back)}`]);
      };
      const mdown = await alternate(runs, {
        pyftpdlib: down("pyftpdlib", py.port, NODE_USER, NODE_PW),
        vsftpd: down("vsftpd", vs.port, NODE_USER, NODE_PW),
        hop: down("hop", cl.port, "admin", cl.password),
      });
      const mdRefs = { pyftpdlib: fig(mdown.pyftpdlib), vsftpd: fig(mdown.vsftpd) };
      record("`lftp mirror` back, 1,000 x 10 KB", fig(mdown.hop), mdRefs, [
        atMost(mdRefs, mdown.hop.seconds, "pyftpdlib", 1.5),
      ], [`after the store worker put them on the node (${stored.toFixed(1)} s after the upload)`]);
    }
    await cluster.stop();
    cluster = undefined;

    if (wants("list") || wants("sessions")) {
      // --- LIST of a big folder, sessions, server RSS (a fresh server) ---------------------
      const root2 = join(work, "root2");
      cluster = await startCluster(root2, nodeUrl);
      const c2 = cluster;
      await fsp.mkdir(join(root2, "many"));
      await fsp.mkdir(join(root2, "s"));
      await fsp.mkdir(join(nodeDir, "many"), { recursive: true });
      await fsp.mkdir(join(nodeDir, "cc"), { recursive: true });
      for (let i = 0; i < 50; i++) {
        await fsp.writeFile(join(nodeDir, "cc", `s${i}.bin`), one);
        await fsp.writeFile(
          join(root2, "s", `s${i}.bin#`),
          linkText(`s${i}.bin`, 1 << 20, nodeKey, `cc/s${i}.bin`),
        );
      }
      for (let i = 0; i < listFiles; i++) {
        const name = `file-${String(i).padStart(5, "0")}.txt`;
        await fsp.writeFile(
          join(root2, "many", `${name}#`),
          linkText(name, 1000 + i, nodeKey, `many/${name}`),
        );
        await fsp.writeFile(join(nodeDir, "many", name), "");
      }
      if (wants("list")) {
        // `command` on each server (vsftpd has no MLSD); what hop listed is kept to check
        const listed = { LIST: 0, MLSD: 0 };
        const listing = (command: "LIST" | "MLSD") => {
          const on = (port: number, user: string, pw: string, isHop = false) => async () => {
            const r = await listMs(port, user, pw, "/many", command);
            if (isHop) listed[command] = r.listed;
            return { seconds: r.ms, peakRssMB: 0 };
          };
          return {
            pyftpdlib: on(py.port, NODE_USER, NODE_PW),
            ...(command === "LIST" ? { vsftpd: on(vs.port, NODE_USER, NODE_PW) } : {}),
            hop: on(c2.port, "admin", c2.password, true),
          };
        };
        rowStart();
        const lst = await alternate(runs, listing("LIST"), false);
        const lsRefs = { vsftpd: ms(lst.vsftpd), pyftpdlib: ms(lst.pyftpdlib) };
        record(`LIST of ${listFiles.toLocaleString("en")} files`, ms(lst.hop), lsRefs, [
          atMost(lsRefs, lst.hop.seconds, "vsftpd", 1.5),
          { what: "every file listed", met: listed.LIST === listFiles },
        ], ["median of 5 LISTs in one session, each run; basic-ftp made to send LIST"]);
        rowStart();
        const mlsd = await alternate(runs, listing("MLSD"), false);
        record(
          `MLSD of ${listFiles.toLocaleString("en")} files`,
          ms(mlsd.hop),
          { pyftpdlib: ms(mlsd.pyftpdlib) },
          [{ what: "every file listed", met: listed.MLSD === listFiles }],
          ["median of 5 in one session, each run: basic-ftp's list() (vsftpd has no MLSD)"],
        );
      }
      if (wants("sessions")) {
        rowStart();
        const pyCpu0 = cpuOf(py.pid);
        const pySess = await sessions(
          py.port,
          NODE_USER,
          NODE_PW,
          nSessions,
          sessFiles.map((f) => `cc/${f}`),
          "/cc",
        );
        const pyCpu = cpuOf(py.pid) - pyCpu0;
        const [hopCpu0, nodeCpu0] = [cpuOf(c2.pid), cpuOf(py.pid)];
        const hopSess = await sessions(
          c2.port,
          "admin",
          c2.password,
          nSessions,
          sessFiles.map((f) => `s/${f}`),
          "/s",
        );
        const [hopCpu, nodeCpu] = [cpuOf(c2.pid) - hopCpu0, cpuOf(py.pid) - nodeCpu0];
        const peak = rssOf(c2.pid);
        const p50 = (r: SessionsResult): Figure => ({ value: r.p50, unit: "ms p50" });
        record(`${nSessions} sessions, LIST + RETR 1 MB`, { ...p50(hopSess), peakRssMB: peak }, {
          pyftpdlib: p50(pySess),
        }, [
          atMost({ pyftpdlib: p50(pySess) }, hopSess.p50, "pyftpdlib", 1),
          { what: "server peak RSS <= 100 MB", met: peak <= 100 },
          { what: "no session failed", met: hopSess.errors === 0 },
        ], [
          `hop p99 ${hopSess.p99?.toFixed(0)} ms, ${hopSess.errors} errors${
            hopSess.errors ? ` (${hopSess.firstErrors.join("; ")})` : ""
          }; pyftpdlib p99 ${pySess.p99?.toFixed(0)} ms, ${pySess.errors} errors`,
          `step medians: hop ${steps(hopSess)}; pyftpdlib ${steps(pySess)}`,
          `CPU seconds: hop ${hopCpu.toFixed(2)} + its node (pyftpdlib) ${
            nodeCpu.toFixed(2)
          }; pyftpdlib alone ${pyCpu.toFixed(2)}`,
        ]);
      }
      await cluster.stop();
      cluster = undefined;
    }
    // --- soak: the same sessions, rounds on end, through hop's own node ------------------
    if (wants("soak")) {
      rowStart();
      const hopNodeDir = join(work, "hop-node");
      rmSync(hopNodeDir, { recursive: true, force: true });
      await fsp.mkdir(join(hopNodeDir, "cc"), { recursive: true });
      for (let i = 0; i < 50; i++) await fsp.writeFile(join(hopNodeDir, "cc", `s${i}.bin`), one);
      const pwFile = join(work, "node.pw");
      await fsp.writeFile(pwFile, NODE_PW + "\n", { mode: 0o600 });
      const hopNode = await startHop([
        "cluster",
        "node",
        "serve",
        "--root",
        hopNodeDir,
        "--listen",
        "127.0.0.1:0",
        "--user",
        NODE_USER,
        "--password-file",
        pwFile,
      ], /"event":"node.listening"/);
      stops.push(() => hopNode.stop());
      const root3 = join(work, "root3");
      cluster = await startCluster(
        root3,
        `ftp://${NODE_USER}:${encodeURIComponent(NODE_PW)}@127.0.0.1:${hopNode.port}/`,
      );
      const c3 = cluster;
      await fsp.mkdir(join(root3, "s"));
      for (let i = 0; i < 50; i++) {
        await fsp.writeFile(
          join(root3, "s", `s${i}.bin#`),
          linkText(`s${i}.bin`, 1 << 20, `127.0.0.1:${hopNode.port}`, `cc/s${i}.bin`),
        );
      }
      const rounds: { server: number; node: number; p50: number; errors: number }[] = [];
      for (let r = 0; r < soakRounds; r++) {
        const s = await sessions(
          c3.port,
          "admin",
          c3.password,
          nSessions,
          sessFiles.map((f) => `s/${f}`),
          "/s",
        );
        rounds.push({
          server: rssNow(c3.pid),
          node: rssNow(hopNode.pid),
          p50: s.p50,
          errors: s.errors,
        });
      }
      const flat = (xs: number[]) => xs[xs.length - 1] <= 1.1 * Math.max(...xs.slice(0, 3));
      const servers3 = rounds.map((r) => r.server);
      const nodes3 = rounds.map((r) => r.node);
      record(
        `soak: ${soakRounds} rounds of ${nSessions} sessions, hop node`,
        {
          value: servers3[servers3.length - 1],
          unit: "MB server RSS",
        },
        { "hop node": { value: nodes3[nodes3.length - 1], unit: "MB RSS" } },
        [
          { what: "server RSS flat (last <= 1.1x the first 3 rounds')", met: flat(servers3) },
          { what: "node RSS flat", met: flat(nodes3) },
          { what: "no session failed", met: rounds.every((r) => r.errors === 0) },
        ],
        [
          `server RSS by round: ${servers3.map((x) => x.toFixed(0)).join(", ")} MB`,
          `node RSS by round: ${nodes3.map((x) => x.toFixed(0)).join(", ")} MB`,
          `p50 by round: ${rounds.map((x) => x.p50.toFixed(0)).join(", ")} ms`,
        ],
      );
    }
  } finally {
    await cluster?.stop();
    for (const s of stops) await s();
    for (const s of servers) await s.stop();
  }
}
