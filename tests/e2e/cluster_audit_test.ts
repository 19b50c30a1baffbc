/**
 * The binary's audit tells the truth on a healthy cluster under load: 2,000 files
 * uploaded with lftp through `hop cluster serve`, stored twice over three FTP nodes
 * of three kinds (pyftpdlib, vsftpd, hop's own node server), then, while the server
 * keeps running and two busy processes load both cores, `hop audit` five times: exit 0
 * every time, the same counts, every one of the 4,000 copies `ok`. `hop cleanup
 * --dry-run` and `hop cluster replicate --dry-run` propose nothing. Everything here
 * runs the hop command (the binary under npm test).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { newLogin } from "../helpers/credentials.ts";
import { startPyftpdlib, startVsftpd, type TestFtpServer } from "../helpers/ftp_servers.ts";
import { runLftp } from "../helpers/ftp_clients.ts";
import { startClusterServe } from "../helpers/cluster.ts";
import { jsonEvents, runHop, spawnHop } from "../helpers/hop.ts";

const DIRS = 20;
const PER_DIR = 100;
const FILES = DIRS * PER_DIR;

const events = jsonEvents;

/** Two processes that keep both cores busy until stopped. */
function loadMachine(): () => void {
  const busy: ChildProcess[] = [0, 1].map(() =>
    spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" })
  );
  return () => busy.forEach((c) => process.kill(c.pid!, "SIGKILL"));
}

Deno.test("audit of a healthy 2,000-file cluster on pyftpdlib, vsftpd and hop nodes: ok 5 times out of 5 under load", async () => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "hop-audit-e2e-"));
  await fsp.chmod(tmp, 0o755);
  const { user, password } = newLogin("node");
  const dirs = ["py", "vs", "hop"].map((n) => path.join(tmp, n));
  for (const d of dirs) await fsp.mkdir(d);
  const servers: TestFtpServer[] = [];
  let hopNode: ReturnType<typeof spawnHop> | null = null;
  let serve: Awaited<ReturnType<typeof startClusterServe>> | null = null;
  let unload: (() => void) | null = null;
  try {
    servers.push(await startPyftpdlib({ root: dirs[0], user, password }));
    servers.push(await startVsftpd({ root: dirs[1], user, password }));
    hopNode = spawnHop(
      [
        "--json",
        "cluster",
        "node",
        "serve",
        "--root",
        dirs[2],
        "--listen",
        "127.0.0.1:0",
        "--user",
        user,
      ],
      { env: { HOP_NODE_PASSWORD: password } },
    );
    const [line] = await hopNode.waitFor(/^\{.*"event":"node.listening".*\}$/m);
    const hopPort = JSON.parse(line).port as number;
    const nodes = [
      ...servers.map((s) => s.loginUrl()),
      `ftp://${user}:${password}@127.0.0.1:${hopPort}/`,
    ];
    const root = path.join(tmp, "root");
    const target = ["--root", root, ...nodes.flatMap((n) => ["--node", n]), "--replicas", "2"];
    serve = await startClusterServe(target);

    // 2,000 small files in 20 folders, uploaded with lftp through the cluster.
    const local = path.join(tmp, "tree");
    for (let d = 0; d < DIRS; d++) {
      await fsp.mkdir(path.join(local, `dir${d}`), { recursive: true });
      for (let f = 0; f < PER_DIR; f++) {
        await fsp.writeFile(
          path.join(local, `dir${d}`, `file${f}.bin`),
          randomBytes((d * PER_DIR + f) % 3000),
        );
      }
    }
    const admin = serve.admin;
    const up = await runLftp(admin, [`mirror -R --parallel=4 ${local} /tree`], {
      timeoutMs: 600_000,
    });
    assert.equal(up.code, 0, up.stderr);

    // The store worker inside serve moves every upload to two nodes.
    const deadline = Date.now() + 600_000;
    for (;;) {
      const staged = (await fsp.readdir(path.join(root, ".staging"))).filter((n) => n !== "tmp");
      const queued = await fsp.readdir(path.join(root, ".queue"));
      if (staged.length === 0 && queued.length === 0) break;
      assert.ok(Date.now() < deadline, `still ${staged.length} staged, ${queued.length} queued`);
      await new Promise((r) => setTimeout(r, 500));
    }

    unload = loadMachine();
    const seen: string[] = [];
    for (let run = 1; run <= 5; run++) {
      const r = await runHop(["--json", "audit", ...target], { timeoutMs: 600_000 });
      assert.equal(r.code, 0, `audit run ${run} exit ${r.code}:\n${r.stderr}\n${r.stdout}`);
      const sum = events(r.stdout).find((e) => e.event === "audit.summary")!;
      const counts = sum.counts as Record<string, number>;
      assert.equal(counts.ok, 2 * FILES, `run ${run}: every copy ok: ${JSON.stringify(counts)}`);
      assert.deepEqual(sum.nodesDown, [], `run ${run}`);
      const findings = events(r.stdout).filter((e) => e.event === "audit");
      assert.deepEqual(findings, [], `run ${run} found something`);
      seen.push(JSON.stringify(counts));
    }
    assert.equal(new Set(seen).size, 1, `the same counts every run: ${seen.join(" / ")}`);

    const clean = await runHop(["--json", "cleanup", "--dry-run", ...target], {
      timeoutMs: 600_000,
    });
    assert.equal(clean.code, 0, clean.stderr);
    const cleanEvents = events(clean.stdout).map((e) => e.event);
    assert.deepEqual(cleanEvents, ["cleanup.summary"], clean.stdout);
    assert.equal(events(clean.stdout)[0].jobsQueued, 0);

    const rep = await runHop(["--json", "cluster", "replicate", "--dry-run", ...target], {
      timeoutMs: 600_000,
    });
    assert.equal(rep.code, 0, rep.stderr);
    const repSum = events(rep.stdout).find((e) => e.event === "replicate.summary")!;
    assert.equal(repSum.files, FILES, rep.stdout);
    assert.equal(repSum.copied, 0, rep.stdout);
    assert.equal(repSum.short, 0, rep.stdout);
    assert.deepEqual(events(rep.stdout).filter((e) => e.event === "replicate.file"), []);
  } finally {
    unload?.();
    await serve?.stop("SIGTERM");
    await hopNode?.stop("SIGTERM");
    for (const s of servers) await s.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
});
