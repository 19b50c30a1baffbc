/**
 * FTP cluster benchmark (issue 4): `hop cluster serve` as its own process in
 * front of one pyftpdlib node (`permit_foreign_addresses = True`, so active-mode
 * downloads are third-party), each figure against the same node used directly,
 * interleaved round by round, best of `--rounds` (default 2):
 *
 * - RETR of `--mb` MB (default 1024) with curl: passive (proxied by the
 *   server) and active (`curl -P`, the node connects to curl), with the bytes
 *   that crossed the server's TCP sockets (sampled from `ss -tinp` every 50 ms:
 *   a lower bound, connections that end between samples lose their last 50 ms).
 * - STOR of the same size with curl (226 from the cluster = durable in staging),
 *   plus the time until the store worker has the copy on the node.
 * - `--sessions` (default 200) concurrent basic-ftp sessions, each LIST then
 *   RETR of 1 MB, from a separate process, spread over loopback source addresses
 *   (the FTP engine admits 16 sessions per client address): errors, p50, p99;
 *   the same against the node directly for reference.
 * - LIST of a directory of `--list-files` (default 10,000) files; peak RSS of
 *   the server (a fresh one) over that LIST and the sessions.
 *
 * Options: --mb=N --rounds=N --sessions=N --list-files=N.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, rmSync, statSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { Client } from "basic-ftp";
import { clusterLayout } from "../../src/cluster/layout.ts";
import { readFileLink, stagedId, writeInfo } from "../../src/cluster/links.ts";
import { encodeLink } from "../../src/codec/link.ts";
import { hop, measure, ROOT, rssOf, startFtpd } from "./_lib.ts";

function opt(args: string[], name: string, def: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : def;
}

const verdict = (ok: boolean) => (ok ? "MET" : "MISSED");
const NODE_USER = "node";
const NODE_PW = "secret";

/** A running `hop cluster serve`. */
interface ClusterProc {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startCluster(root: string, nodeUrl: string): Promise<ClusterProc> {
  rmSync(root, { recursive: true, force: true });
  const argv = [
    ...hop(),
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
  ];
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let errText = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    if (errText.length < 20_000) errText += d;
  });
  const stop = async () => {
    try {
      process.kill(child.pid!, "SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        process.kill(child.pid!, "SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await exited;
    clearTimeout(t);
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const pick = (l: string) => {
        const m = /ftp:\/\/admin:[^\s]+\//.exec(l);
        if (m) resolve(m[0]);
      };
      createInterface({ input: child.stdout! }).on("line", pick);
      createInterface({ input: child.stderr! }).on("line", pick);
      child.once("exit", (c) => reject(new Error(`cluster serve exited ${c}: ${errText}`)));
      setTimeout(() => reject(new Error(`cluster serve did not start: ${errText}`)), 30_000);
    });
    return { url, pid: child.pid!, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Runs curl with `args`; resolves to its wall time in seconds. */
function curl(args: string[]): Promise<number> {
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
          ? resolve((performance.now() - t0) / 1000)
          : reject(new Error(`curl ${args.join(" ")} exited ${code}: ${err}`)),
    );
  });
}

/** Bytes sent + received so far on each TCP socket of `pid`, keyed by its address pair. */
function socketBytes(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  const r = spawnSync("ss", ["-tinpH"], { encoding: "utf8" });
  const lines = (r.stdout ?? "").split("\n");
  for (let i = 0; i < lines.length - 1; i++) {
    const head = lines[i];
    if (/^\s/.test(head) || !head.includes(`pid=${pid},`)) continue;
    const info = lines[i + 1];
    const f = head.trim().split(/\s+/);
    const sent = Number(/bytes_sent:(\d+)/.exec(info)?.[1] ?? 0);
    const recv = Number(/bytes_received:(\d+)/.exec(info)?.[1] ?? 0);
    out.set(`${f[3]} ${f[4]}`, sent + recv);
  }
  return out;
}

/** Samples the server's socket byte counters while `work` runs; total bytes seen. */
async function throughServer<T>(pid: number, work: () => Promise<T>): Promise<[T, number]> {
  const seen = new Map<string, number>();
  const sample = () => {
    for (const [k, v] of socketBytes(pid)) seen.set(k, Math.max(v, seen.get(k) ?? 0));
  };
  const before = socketBytes(pid);
  const timer = setInterval(sample, 50);
  try {
    const r = await work();
    sample();
    let total = 0;
    for (const [k, v] of seen) total += v - (before.get(k) ?? 0);
    return [r, total];
  } finally {
    clearInterval(timer);
  }
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

/** Link file `root/<name>#` pointing at `nodePath` on the node. */
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

async function waitStored(linkFile: string, timeoutS = 600): Promise<number> {
  const t0 = performance.now();
  while ((performance.now() - t0) / 1000 < timeoutS) {
    const l = await readFileLink(linkFile).catch(() => null);
    if (l && l.copies.length > 0 && stagedId(l) === null) {
      return (performance.now() - t0) / 1000;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${linkFile} not stored on a node after ${timeoutS} s`);
}

function sessionsRun(url: string, n: number, files: string[], dir: string) {
  return measure([
    process.execPath,
    "run",
    "-A",
    join(ROOT, "scripts/bench/_cluster_clients.ts"),
    url,
    `--sessions=${n}`,
    `--files=${files.join(",")}`,
    `--dir=${dir}`,
    `--size=${1 << 20}`,
    "--timeout=120",
  ], { stdout: true }).then((m) => ({ ...m, r: JSON.parse(m.stdout!.trim().split("\n").pop()!) }));
}

export async function run(args: string[]): Promise<void> {
  const mb = opt(args, "mb", 1024);
  const rounds = opt(args, "rounds", 2);
  const sessions = opt(args, "sessions", 200);
  const listFiles = opt(args, "list-files", 10_000);
  const work = join(ROOT, ".bench", "cluster");
  const nodeDir = join(work, "node");
  rmSync(nodeDir, { recursive: true, force: true });
  await fsp.mkdir(join(nodeDir, "aa/bb"), { recursive: true });
  const bigRel = "aa/bb/260101-000000-big.bin";
  const src = join(work, `src-${mb}.bin`);
  await writeRandom(src, mb);
  await fsp.copyFile(src, join(nodeDir, bigRel));
  const node = await startFtpd(nodeDir, NODE_USER, NODE_PW, true);
  const nodeUrl = `ftp://${NODE_USER}:${NODE_PW}@127.0.0.1:${node.port}`;
  const nodeKey = `127.0.0.1:${node.port}`;
  console.log(
    `node: pyftpdlib on ${nodeKey} (permit_foreign_addresses); ${mb} MB file; best of ${rounds}`,
  );
  let cluster: ClusterProc | undefined;
  try {
    // --- throughput: RETR passive / active, STOR -----------------------------
    const root = join(work, "root");
    cluster = await startCluster(root, `${nodeUrl}/`);
    const l = clusterLayout(root);
    await writeInfo(l.tmp, join(root, "big.bin#"), {
      kind: "file",
      name: "big.bin",
      size: mb << 20,
      uid: 0,
      mtime: Math.floor(Date.now() / 1000),
      copies: [{ node: nodeKey, path: bigRel }],
      extra: [],
    });
    const best = {
      dp: Infinity,
      cp: Infinity,
      da: Infinity,
      ca: Infinity,
      ds: Infinity,
      cs: Infinity,
    };
    let passiveBytes = 0;
    let activeBytes = Infinity;
    let storedAfter = Infinity;
    const get = (u: string, active: boolean) =>
      curl([...(active ? ["-P", "127.0.0.1"] : []), "-o", "/dev/null", u]);
    for (let r = 0; r < rounds; r++) {
      const dp = await get(`${nodeUrl}/${bigRel}`, false);
      const [cp, pb] = await throughServer(cluster.pid, () => get(`${cluster!.url}big.bin`, false));
      const da = await get(`${nodeUrl}/${bigRel}`, true);
      const [ca, ab] = await throughServer(cluster.pid, () => get(`${cluster!.url}big.bin`, true));
      const ds = await curl(["-T", src, `${nodeUrl}/up-${r}.bin`]);
      await fsp.rm(join(nodeDir, `up-${r}.bin`));
      const [cs] = await throughServer(
        cluster.pid,
        () => curl(["-T", src, `${cluster!.url}up-${r}.bin`]),
      );
      const stored = await waitStored(join(root, `up-${r}.bin#`));
      console.log(
        `  round ${r + 1}: RETR passive direct ${dp.toFixed(2)} s / cluster ${cp.toFixed(2)} s ` +
          `(${(pb / 1e6).toFixed(0)} MB via server); active direct ${da.toFixed(2)} s / cluster ` +
          `${ca.toFixed(2)} s (${(ab / 1e6).toFixed(2)} MB via server); STOR direct ` +
          `${ds.toFixed(2)} s / cluster ${cs.toFixed(2)} s (+${stored.toFixed(2)} s to the node)`,
      );
      best.dp = Math.min(best.dp, dp);
      best.cp = Math.min(best.cp, cp);
      best.da = Math.min(best.da, da);
      best.ca = Math.min(best.ca, ca);
      best.ds = Math.min(best.ds, ds);
      best.cs = Math.min(best.cs, cs);
      passiveBytes = Math.max(passiveBytes, pb);
      activeBytes = Math.min(activeBytes, ab);
      storedAfter = Math.min(storedAfter, stored);
    }
    const rate = (s: number) => `${(mb * 1.048576 / s).toFixed(0)} MB/s`;
    const line = (label: string, direct: number, ours: number, target: number, extra = "") =>
      console.log(
        `${label}: cluster ${rate(ours)} vs direct ${rate(direct)} = ${
          (direct / ours).toFixed(2)
        }x ` +
          `(target >= ${target}x) ${verdict(direct / ours >= target)}${extra}`,
      );
    line("RETR passive (proxied)", best.dp, best.cp, 0.9);
    line(
      "RETR active (third-party)",
      best.da,
      best.ca,
      0.95,
      `; vs direct passive ${(best.dp / best.ca).toFixed(2)}x`,
    );
    const fileBytes = mb << 20;
    console.log(
      `active RETR bytes through the server: ${activeBytes} B on its sockets (control ` +
        `replies included; ${(passiveBytes / 1e6).toFixed(0)} MB for a passive one) ` +
        `${verdict(activeBytes < fileBytes / 1000)} (no file bytes: < 0.1% of the file)`,
    );
    line("STOR", best.ds, best.cs, 0.8, `; on the node ${storedAfter.toFixed(2)} s after the 226`);
    await cluster.stop();
    cluster = undefined;

    // --- LIST of a big directory, sessions, server RSS ------------------------
    const root2 = join(work, "root2");
    cluster = await startCluster(root2, `${nodeUrl}/`);
    const url = new URL(cluster.url);
    const c = new Client(60_000);
    await c.access({
      host: url.hostname,
      port: Number(url.port),
      user: "admin",
      password: decodeURIComponent(url.password),
    });
    await c.ensureDir("/many");
    await c.ensureDir("/s");
    const sessFiles: string[] = [];
    const one = randomBytes(1 << 20);
    await fsp.mkdir(join(nodeDir, "cc"), { recursive: true });
    for (let i = 0; i < 50; i++) {
      await fsp.writeFile(join(nodeDir, "cc", `s${i}.bin`), one);
      await fsp.writeFile(
        join(root2, "s", `s${i}.bin#`),
        linkText(`s${i}.bin`, 1 << 20, nodeKey, `cc/s${i}.bin`),
      );
      sessFiles.push(`/s/s${i}.bin`);
    }
    await fsp.mkdir(join(nodeDir, "many"), { recursive: true });
    for (let i = 0; i < listFiles; i++) {
      const name = `file-${String(i).padStart(5, "0")}.txt`;
      await fsp.writeFile(
        join(root2, "many", `${name}#`),
        linkText(name, 1000 + i, nodeKey, `many/${name}`),
      );
      await fsp.writeFile(join(nodeDir, "many", name), "");
    }
    const lists: number[] = [];
    const directLists: number[] = [];
    const d = new Client(60_000);
    await d.access({ host: "127.0.0.1", port: node.port, user: NODE_USER, password: NODE_PW });
    let listed = 0;
    for (let i = 0; i < 5; i++) {
      let t0 = performance.now();
      listed = (await c.list("/many")).length;
      lists.push(performance.now() - t0);
      t0 = performance.now();
      await d.list("/many");
      directLists.push(performance.now() - t0);
    }
    c.close();
    d.close();
    const listMs = Math.min(...lists);
    console.log(
      `LIST of ${listed} files: ${listMs.toFixed(0)} ms best of 5 (first ${
        lists[0].toFixed(0)
      } ms; ` +
        `pyftpdlib direct ${Math.min(...directLists).toFixed(0)} ms) (target <= 300 ms) ` +
        `${verdict(listMs <= 300 && listed === listFiles)}`,
    );
    const rssAfterList = rssOf(cluster.pid);
    const direct = await sessionsRun(
      `${nodeUrl}/`,
      sessions,
      sessFiles.map((f) => `/cc/${f.slice(3)}`),
      "/cc",
    );
    const ours = await sessionsRun(cluster.url, sessions, sessFiles, "/s");
    const fmtS = (x: { r: { errors: number; p50: number; p99: number; max: number } }) =>
      `${x.r.errors} errors, p50 ${x.r.p50?.toFixed(0)} ms, p99 ${x.r.p99?.toFixed(0)} ms, max ${
        x.r.max?.toFixed(0)
      } ms`;
    console.log(`${sessions} sessions LIST + RETR 1 MB, node directly: ${fmtS(direct)}`);
    console.log(
      `${sessions} sessions LIST + RETR 1 MB, cluster: ${fmtS(ours)} ${
        verdict(ours.r.errors === 0)
      }` +
        (ours.r.errors ? ` (${ours.r.firstErrors.join("; ")})` : ""),
    );
    const rss = rssOf(cluster.pid);
    console.log(
      `server peak RSS (fresh server; LIST, then ${sessions} sessions): ${rss.toFixed(0)} MB ` +
        `(${rssAfterList.toFixed(0)} MB before the sessions) (target <= 200 MB) ${
          verdict(rss <= 200)
        }`,
    );
  } finally {
    await cluster?.stop();
    await node.stop();
  }
}
