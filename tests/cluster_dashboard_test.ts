/**
 * What a person sees of a running cluster: `hop cluster serve --http` shows a
 * dashboard that headless Chromium (Debian's `chromium`) renders with the nodes
 * and a transfer under way (a screenshot is kept under `test-artifacts/`),
 * `/metrics` parses as Prometheus text, `/status` and `hop cluster status`
 * (and `--json`) say the same, and the terminal has one line per login and
 * transfer.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
// @ts-types="./helpers/parse_prometheus.d.ts"
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { startClusterServe } from "./helpers/cluster.ts";
import { epsvPort, openRawFtp } from "./helpers/ftp_clients.ts";
import { freePort } from "./helpers/ftp_servers.ts";
import { ROOT, runHop, spawnHop } from "./helpers/hop.ts";

/** Runs Debian's chromium headless on `url` with `args`; resolves stdout. */
function chromium(url: string, profile: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("chromium", [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--window-size=1280,900",
      // the page asks /status at once: time stands still while that request is pending
      "--virtual-time-budget=5000",
      ...args,
      url,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => out += d);
    child.stderr.setEncoding("utf8").on("data", (d: string) => err += d);
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`chromium exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

/**
 * An upload that sends `bytes`, then a little every second (so no idle timeout
 * ends it however long the test takes): a transfer under way until `end()`.
 */
async function slowUpload(port: number, password: string, name: string, bytes: number) {
  const c = await openRawFtp("127.0.0.1", port);
  assert.equal((await c.cmd("USER admin")).code, 331);
  assert.equal((await c.cmd(`PASS ${password}`)).code, 230);
  assert.equal((await c.cmd("TYPE I")).code, 200);
  const dataPort = epsvPort(await c.cmd("EPSV"));
  const data = net.connect({ host: "127.0.0.1", port: dataPort });
  await new Promise<void>((r) => data.once("connect", () => r()));
  c.send(`STOR ${name}`);
  assert.equal((await c.reply()).code, 150);
  await new Promise<void>((r) => data.write(new Uint8Array(bytes).fill(7), () => r()));
  const trickle = setInterval(() => data.write(new Uint8Array(64).fill(7)), 1000);
  return {
    async end() {
      clearInterval(trickle);
      data.end();
      await c.reply(30_000).catch(() => {});
      c.close();
    },
  };
}

Deno.test("cluster dashboard: Chromium shows the nodes and a running transfer; /metrics parses", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-dashboard-"));
  const nodes = ["n1", "n2"].map((n) => join(dir, n));
  for (const n of nodes) await mkdir(n);
  const root = join(dir, "root");
  const srv = await startClusterServe([
    "--root",
    root,
    "--http",
    "127.0.0.1:0",
    ...nodes.flatMap((n) => ["--node", pathToFileURL(n).href]),
  ]);
  let upload: Awaited<ReturnType<typeof slowUpload>> | undefined;
  try {
    assert.ok(srv.dashboard, "no dashboard URL in the cluster-serve event");
    upload = await slowUpload(srv.port, srv.adminPassword!, "big-report.pdf", 256 * 1024);
    // the transfer is seen by the server once its bytes arrived
    let status;
    for (let i = 0; i < 100; i++) {
      status = await (await fetch(new URL("status", srv.dashboard))).json();
      if (status.transfers.length === 1 && status.transfers[0].bytes > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status.transfers.length, 1, JSON.stringify(status));
    assert.equal(status.transfers[0].path, "/big-report.pdf");
    assert.equal(status.transfers[0].direction, "upload");
    assert.equal(status.nodes.length, 2);
    assert.ok(status.nodes.every((n: { up: boolean }) => n.up));

    // the page, as a browser renders it
    const profile = join(dir, "chromium-profile");
    const dom = await chromium(srv.dashboard!, profile, ["--dump-dom"]);
    for (const n of nodes) assert.ok(dom.includes(`file://${n}`), `node ${n} not shown:\n${dom}`);
    assert.match(dom, /<tr class="node">.*?<td class="up">up<\/td>/s);
    assert.match(
      dom,
      /<tr class="transfer"><td>admin<\/td><td>\/big-report\.pdf<\/td><td>⬆ upload/,
    );
    const artifacts = join(ROOT, "test-artifacts");
    await mkdir(artifacts, { recursive: true });
    const shot = join(artifacts, "cluster-dashboard.png");
    await chromium(srv.dashboard!, profile, [`--screenshot=${shot}`]);
    assert.ok((await stat(shot)).size > 10_000, "the screenshot is empty");
    console.log(`dashboard screenshot: ${shot}`);

    // the last hop audit shows in the metrics (exit 1: it finds the upload under way)
    const audit = await runHop(["audit", "--root", root, ...nodeArgs(nodes)]);
    assert.ok(audit.code === 0 || audit.code === 1, audit.stderr);
    // Prometheus text format, read by a Prometheus parser
    const text = await (await fetch(new URL("metrics", srv.dashboard))).text();
    const families = parsePrometheusTextFormat(text);
    const metric = (name: string, labels: Record<string, string> = {}) => {
      const f = families.find((m) => m.name === name);
      assert.ok(f, `no ${name} in:\n${text}`);
      const m = f.metrics.find((x) =>
        Object.entries(labels).every(([k, v]) => x.labels?.[k] === v)
      );
      assert.ok(m, `no ${name}${JSON.stringify(labels)}`);
      return Number(m.value);
    };
    assert.equal(metric("hop_cluster_up"), 1);
    assert.equal(metric("hop_cluster_sessions"), 1);
    assert.equal(metric("hop_cluster_transfers", { direction: "upload" }), 1);
    for (const n of nodes) assert.equal(metric("hop_cluster_node_up", { node: `file://${n}` }), 1);
    assert.equal(metric("hop_cluster_queue_jobs"), 0);
    assert.equal(metric("hop_cluster_logins", { result: "ok" }), 1);
    assert.ok(families.some((f) => f.name === "hop_cluster_audit_findings"), text);
    assert.ok(metric("hop_cluster_audit_age_seconds") >= 0);
    assert.equal(metric("hop_cluster_files_wanting", { kind: "lost" }), 0);

    // hop cluster status, from another process: it reads the status file, which the server
    // writes every 2 s (the first one when it started, with no session yet)
    let st = await runHop(["cluster", "status", "--root", root, ...nodeArgs(nodes)]);
    for (let i = 0; i < 40 && st.code === 0 && !/transfers: 1/.test(st.stdout); i++) {
      await new Promise((r) => setTimeout(r, 250));
      st = await runHop(["cluster", "status", "--root", root, ...nodeArgs(nodes)]);
    }
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /served by pid \d+/);
    assert.match(st.stdout, /transfers: 1/);
    assert.match(st.stdout, /admin upload \/big-report\.pdf/);
    for (const n of nodes) assert.match(st.stdout, new RegExp(`node file://${n}: up, free `));
    const js = await runHop(["--json", "cluster", "status", "--root", root, ...nodeArgs(nodes)]);
    const ev = JSON.parse(js.stdout.trim());
    assert.equal(ev.event, "cluster-status");
    assert.equal(ev.status.transfers[0].path, "/big-report.pdf");

    await upload.end();
    upload = undefined;
    await srv.proc.waitFor(/"event":"transfer".*"ok":true/);
    assert.match(srv.proc.stdout, /"message":"login admin from 127\.0\.0\.1","event":"login"/);
    assert.match(srv.proc.stdout, /"message":"admin stored \/big-report\.pdf \(2\d\d\.\d kB, /);
  } finally {
    await upload?.end();
    await srv.stop("SIGTERM");
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("cluster status without a server: nodes asked, copies counted, says no server runs", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-status-"));
  try {
    const nodes = ["n1", "n2"].map((n) => join(dir, n));
    for (const n of nodes) await mkdir(n);
    const root = join(dir, "root");
    const gone = "/proc/hop-no-such-node"; // cannot be made: the node is down
    const r = await runHop([
      "--json",
      "cluster",
      "status",
      "--root",
      root,
      ...nodeArgs([...nodes, gone]),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout.trim()).status;
    assert.equal(s.server, null);
    assert.deepEqual(s.nodes.map((n: { up: boolean }) => n.up), [true, true, false]);
    assert.ok(s.nodes[2].lastError.message, "a down node says why");
    assert.equal(s.replication.files, 0);
    assert.equal(s.queue.depth, 0);
    assert.equal(s.audit, null);
    await writeFile(join(nodes[0], "stray.bin"), "not the cluster's"); // foreign to the cluster
    const audit = await runHop(["audit", "--root", root, ...nodeArgs(nodes)]);
    assert.ok(audit.code === 0 || audit.code === 1, audit.stdout + audit.stderr);
    const plain = await runHop(["cluster", "status", "--root", root, ...nodeArgs(nodes)]);
    assert.match(plain.stdout, /no server running/);
    assert.match(plain.stdout, /^last audit \d+ s ago: 1 foreign \(0 links, 1 node files\)$/m);
    assert.match(plain.stdout, /^queue: 0 job\(s\)$/m);
    const q = await runHop(["cluster", "queue", "--root", root]);
    assert.equal(q.code, 0);
    assert.equal(q.stdout, ""); // stdout holds job lines only
    assert.match(q.stderr, /the queue of .* is empty/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function nodeArgs(nodes: string[]): string[] {
  return nodes.flatMap((n) => ["--node", pathToFileURL(n).href]);
}

Deno.test("a node that fails is said down at once, and back when it answers again", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-nodeline-"));
  const pw = join(dir, "node.pw");
  await writeFile(pw, randomBytes(9).toString("hex"));
  const port = await freePort();
  const nodeDir = join(dir, "node");
  await mkdir(nodeDir);
  const startNode = async () => {
    const p = spawnHop([
      "--json",
      "cluster",
      "node",
      "serve",
      "--root",
      nodeDir,
      "--listen",
      `127.0.0.1:${port}`,
      "--password-file",
      pw,
    ]);
    await p.waitFor(/"event":"node\.listening"/);
    return p;
  };
  let node = await startNode();
  const srv = await startClusterServe([
    "--root",
    join(dir, "root"),
    "--replicas",
    "1",
    "--node",
    `ftp://node@127.0.0.1:${port}/?password-file=${encodeURIComponent(pw)}`,
  ]);
  try {
    await node.stop("SIGTERM");
    // an upload the store worker cannot put on the node: the node is found failing
    const file = join(dir, "a.txt");
    await writeFile(file, "hello");
    const up = spawnSync("curl", [
      "-sS",
      "-T",
      file,
      `ftp://admin:${srv.admin.password}@127.0.0.1:${srv.port}/`,
    ], { encoding: "utf8" });
    assert.equal(up.status, 0, up.stderr);
    const [down] = await srv.proc.waitFor(/^\{.*"event":"node-down".*\}$/m, 60_000);
    assert.match(
      JSON.parse(down).message,
      new RegExp(`node ftp://node:\\*\\*\\*@127\\.0\\.0\\.1:${port}/ is down`),
    );
    node = await startNode();
    const [back] = await srv.proc.waitFor(/^\{.*"event":"node-up".*\}$/m, 60_000);
    assert.match(JSON.parse(back).message, /is back$/);
  } finally {
    await srv.stop("SIGTERM");
    await node.stop("SIGTERM");
    await rm(dir, { recursive: true, force: true });
  }
});
