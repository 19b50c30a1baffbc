// The main jobs through the hop command itself (the built binary when
// HOP_BIN is set): two folders in sync through a folder relay, and the
// embedded-default cluster used by curl.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hopCommand, runHop } from "../helpers/hop.ts";
import { runProgram } from "../helpers/ftp_clients.ts";

Deno.test("relay sync: two folders converge through a folder relay", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hop-e2e-relay-"));
  try {
    const [a, b, relay] = ["a", "b", "relay"].map((n) => join(dir, n));
    for (const d of [a, b, relay]) mkdirSync(d);
    mkdirSync(join(a, "docs"));
    writeFileSync(join(a, "docs", "report.txt"), "first draft\n");
    writeFileSync(join(a, "data.bin"), new Uint8Array(200_000).map((_, i) => i % 253));
    const sync = (folder: string, name: string) =>
      runHop([
        "--quiet",
        "relay",
        "sync",
        folder,
        `file://${relay}`,
        "--once",
        "--client-name",
        name,
      ]);

    for (const [f, n] of [[a, "alice"], [b, "bob"]]) {
      const r = await sync(f, n);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(readFileSync(join(b, "docs", "report.txt"), "utf8"), "first draft\n");
    assert.deepEqual(readFileSync(join(b, "data.bin")), readFileSync(join(a, "data.bin")));

    // A change and a deletion on bob's side reach alice.
    writeFileSync(join(b, "docs", "report.txt"), "second draft\n");
    rmSync(join(b, "data.bin"));
    for (const [f, n] of [[b, "bob"], [a, "alice"]]) {
      const r = await sync(f, n);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(readFileSync(join(a, "docs", "report.txt"), "utf8"), "second draft\n");
    assert.equal(existsSync(join(a, "data.bin")), false);

    const status = await runHop([
      "relay",
      "status",
      a,
      `file://${relay}`,
      "--client-name",
      "alice",
    ]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /client bob/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    }).on("error", reject);
  });
}

Deno.test("cluster serve: the embedded default works with curl", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hop-e2e-cluster-"));
  const port = await freePort();
  const [cmd, ...pre] = hopCommand();
  const server = spawn(cmd, [...pre, "cluster", "serve", "--listen", `127.0.0.1:${port}`], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  server.stdout.setEncoding("utf8").on("data", (d) => (out += d));
  server.stderr.setEncoding("utf8").on("data", (d) => (out += d));
  const exited = new Promise((resolve) => server.on("exit", resolve));
  try {
    const deadline = Date.now() + 30_000;
    while (!/ftp:\/\/admin:\S+@/.test(out) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = out.match(/ftp:\/\/admin:\S+@\S+\//)?.[0];
    assert.ok(url, `no admin URL printed: ${out}`);
    assert.ok(url.includes(`:${port}/`), url);

    writeFileSync(join(dir, "up.txt"), "through the cluster\n");
    const put = await runProgram(["curl", "-sS", "-T", join(dir, "up.txt"), url]);
    assert.equal(put.code, 0, put.stderr);
    const list = await runProgram(["curl", "-sS", url]);
    assert.match(list.stdout, /up\.txt/);
    assert.doesNotMatch(list.stdout, /#/);

    // The store worker puts two copies on the two default folder nodes.
    const nodes = join(dir, "hop-cluster-nodes");
    const copies = () =>
      ["a", "b"].filter((n) => {
        const find = (p: string): boolean => {
          if (!existsSync(p)) return false;
          return statSync(p).isDirectory()
            ? readdirSync(p).some((e) => find(join(p, e)))
            : p.endsWith("-up.txt");
        };
        return find(join(nodes, n));
      }).length;
    const until = Date.now() + 20_000;
    while (copies() < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    assert.equal(copies(), 2, "a copy on each default node");

    const get = await runProgram(["curl", "-sS", url + "up.txt"]);
    assert.equal(get.stdout, "through the cluster\n");

    // Damage behind the cluster's back is found by hop audit and mended by its repair.
    server.kill("SIGTERM");
    await exited;
    const clean = await runHop(["audit"], { cwd: dir });
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stdout, /ok 2/);
    const onA = (p: string): string | undefined => {
      for (const e of readdirSync(p)) {
        const f = join(p, e);
        const hit = statSync(f).isDirectory() ? onA(f) : f.endsWith("-up.txt") ? f : undefined;
        if (hit) return hit;
      }
    };
    rmSync(onA(join(nodes, "a"))!);
    const found = await runHop(["audit"], { cwd: dir });
    assert.equal(found.code, 1);
    assert.match(found.stdout, /missing/);
    const report = await runHop(["audit", "--repair", "--report", "fix.txt"], { cwd: dir });
    assert.equal(report.code, 0, report.stderr);
    const applied = await runHop(["audit", "--apply", "fix.txt"], { cwd: dir });
    assert.equal(applied.code, 0, applied.stderr);
    const stored = await runHop(["cluster", "store", "--once"], { cwd: dir });
    assert.equal(stored.code, 0, stored.stderr);
    const again = await runHop(["audit"], { cwd: dir });
    assert.equal(again.code, 0, again.stdout + again.stderr);
  } finally {
    server.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
