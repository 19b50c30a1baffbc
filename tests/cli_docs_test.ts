/**
 * hop's command line as a new user meets it: `--help` with examples on every
 * command, one flag name for one thing, shell completion that bash, zsh and
 * fish load and answer, a man page mandoc finds no fault in, the systemd
 * units, and passwords taken from files or the environment (never needed in
 * `ps`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { buildProgram } from "../cli.ts";
import { examplesOf } from "../src/cli/common.ts";
import { startHopFolderServer } from "./helpers/ftp_servers.ts";
import { ROOT, runHop, spawnHop } from "./helpers/hop.ts";

function all(c: Command): Command[] {
  return c.commands.flatMap((s) => [s, ...all(s)]);
}

const name = (c: Command): string => (c.parent ? `${name(c.parent)} ` : "") + c.name();

Deno.test("every command's --help has examples; one flag name for one thing", async () => {
  const program = buildProgram();
  const missing = [program, ...all(program)].filter((c) => examplesOf(c).length === 0);
  assert.deepEqual(missing.map(name), [], "commands without examples");
  for (const c of all(program)) {
    for (const o of c.options) {
      // -c is the relay configuration everywhere; the cluster's file is --cluster-config
      if (o.short === "-c") assert.equal(o.long, "--config", name(c));
      if (o.long === "--config") assert.equal(o.short, "-c", name(c));
      if (o.long === "--config") assert.ok(!name(c).startsWith("hop cluster"), name(c));
    }
  }
  const help = await runHop(["relay", "sync", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /\nExamples:\n {2}hop relay sync /);
  const serve = await runHop(["cluster", "serve", "--help"]);
  assert.match(serve.stdout, /--cluster-config <file>/);
  assert.doesNotMatch(serve.stdout, /-c, --config/);
});

Deno.test("shell completion: bash, zsh and fish complete commands, options and choices", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-completion-"));
  try {
    const scripts: Record<string, string> = {};
    for (const sh of ["bash", "zsh", "fish"]) {
      const r = await runHop(["completion", sh]);
      assert.equal(r.code, 0, r.stderr);
      scripts[sh] = join(dir, `hop.${sh}`);
      await writeFile(scripts[sh], r.stdout);
    }
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split(/\s+/).filter(Boolean);
    };
    const bash = (words: string[]) =>
      run("bash", [
        "-c",
        `source '${scripts.bash}'; COMP_WORDS=(${
          words.map((w) => `'${w}'`).join(" ")
        }); COMP_CWORD=${words.length - 1}; _hop; echo "\${COMPREPLY[*]}"`,
      ]);
    assert.deepEqual(bash(["hop", "relay", "sy"]), ["sync"]);
    assert.deepEqual(bash(["hop", "--json", "cluster", "st"]), ["status", "store"]);
    assert.deepEqual(bash(["hop", "cluster", "serve", "--names", ""]), ["strict", "blanks", "any"]);
    assert.ok(bash(["hop", "relay", "sync", "--"]).includes("--dry-run"));
    // zsh: the real shell runs _hop; compadd records what it was offered
    const zsh = (words: string[]) =>
      run("zsh", [
        "-c",
        `source '${scripts.zsh}'; compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }; ` +
        `_files() { print FILES; }; words=(${
          words.map((w) => `'${w}'`).join(" ")
        }); CURRENT=${words.length}; _hop`,
      ]);
    assert.ok(zsh(["hop", "cluster", ""]).includes("status"));
    assert.deepEqual(zsh(["hop", "relay", "sync", "--mode", ""]).sort(), [
      "conservative",
      "download",
      "shared",
      "upload",
    ]);
    assert.deepEqual(zsh(["hop", "relay", "sync", "-c", ""]), ["FILES"]);
    // fish: `complete -C` prints what fish would offer
    const fish = (line: string) =>
      run("fish", ["-c", `source '${scripts.fish}'; complete -C '${line}'`]);
    assert.deepEqual(fish("hop relay st"), ["start", "status", "stop"]);
    assert.deepEqual(fish("hop archive "), ["create", "extract", "list"]);
    assert.ok(fish("hop cluster serve --ht").includes("--http"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("hop man: a man page mandoc finds no fault in, with every command", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-man-"));
  try {
    const r = await runHop(["man"]);
    assert.equal(r.code, 0, r.stderr);
    const page = join(dir, "hop.1");
    await writeFile(page, r.stdout);
    const lint = spawnSync("mandoc", ["-T", "lint", "-W", "warning", page], { encoding: "utf8" });
    assert.equal(lint.stdout + lint.stderr, "", "mandoc warnings");
    // plain text: overstrike (bold x BACKSPACE x, underlined _ BACKSPACE x) removed
    const parts = spawnSync("mandoc", ["-T", "utf8", page], { encoding: "utf8" }).stdout
      .split("\b");
    const text = parts.map((p, i) => i < parts.length - 1 ? p.slice(0, -1) : p).join("");
    for (const c of all(buildProgram())) assert.ok(text.includes(name(c)), name(c));
    assert.match(text, /Examples:/);
    assert.match(text, /HOP_DEBUG/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("systemd units: systemd-analyze finds no fault; their commands are hop's", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-units-"));
  try {
    for (const unit of ["hop-relay-sync.service", "hop-cluster-serve.service"]) {
      const text = await readFile(join(ROOT, "contrib/systemd", unit), "utf8");
      const exec = /^ExecStart=(\S+) (.*)$/m.exec(text)!;
      assert.ok(exec, unit);
      // the command line parses (--help: hop checks the words and options, runs nothing)
      const args = exec[2].split(" ");
      const help = await runHop([...args, "--help"]);
      assert.equal(help.code, 0, `${unit}: ${exec[2]}: ${help.stderr}`);
      const local = join(dir, unit);
      await writeFile(local, text.replace(exec[1], "/bin/true"));
      const v = spawnSync("systemd-analyze", ["verify", "--man=no", local], { encoding: "utf8" });
      assert.equal(v.status, 0, v.stderr);
      assert.equal(v.stderr.trim(), "", `${unit}: ${v.stderr}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** The command line of a running process, as `ps` shows it to every user. */
async function cmdline(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, "utf8")).replaceAll("\0", " ");
}

Deno.test("passwords from files and the environment: a node and a relay over FTP, none in ps", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-secrets-"));
  const nodePw = randomBytes(12).toString("hex");
  const relayPw = randomBytes(12).toString("hex");
  const relaySrv = await startHopFolderServer({ password: relayPw });
  const pwFile = join(dir, "node.pw");
  await writeFile(pwFile, nodePw + "\n");
  const node = spawnHop([
    "--json",
    "cluster",
    "node",
    "serve",
    "--root",
    dir,
    "--listen",
    "127.0.0.1:0",
    "--user",
    "store",
    "--password-file",
    pwFile,
  ]);
  try {
    const [line] = await node.waitFor(/^\{.*"event":"node\.listening".*\}$/m);
    const port = JSON.parse(line).port;
    assert.ok(!(await cmdline(node.pid)).includes(nodePw));
    // the node answers only with the right password: status says it is up
    const nodeUrl = `ftp://store@127.0.0.1:${port}/?password-env=NODE_PW`;
    const st = await runHop(
      ["--json", "cluster", "status", "--root", join(dir, "root"), "--node", nodeUrl],
      { env: { NODE_PW: nodePw } },
    );
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout.trim()).status;
    assert.equal(s.nodes[0].up, true, JSON.stringify(s.nodes));
    assert.equal(s.nodes[0].label, `ftp://store:***@127.0.0.1:${port}/`);
    const wrong = await runHop(
      ["--json", "cluster", "status", "--root", join(dir, "root"), "--node", nodeUrl],
      { env: { NODE_PW: "not-it" } },
    );
    assert.equal(JSON.parse(wrong.stdout.trim()).status.nodes[0].up, false);
    const unset = await runHop([
      "cluster",
      "status",
      "--root",
      join(dir, "root"),
      "--node",
      nodeUrl,
    ]);
    assert.equal(unset.code, 1);
    assert.match(unset.stderr, /NODE_PW .*is not set/);

    // a relay over FTP, its password in a file
    const relayPwFile = join(dir, "relay.pw");
    await writeFile(relayPwFile, relayPw);
    const local = join(dir, "work");
    await (await import("node:fs/promises")).mkdir(local);
    await writeFile(join(local, "hello.txt"), "hello");
    const relayUrl = `ftp://${relaySrv.user}@127.0.0.1:${relaySrv.port}/?password-file=${
      encodeURIComponent(relayPwFile)
    }`;
    const sync = await runHop([
      "relay",
      "sync",
      local,
      relayUrl,
      "--once",
      "--client-name",
      "alice",
    ]);
    assert.equal(sync.code, 0, sync.stdout + sync.stderr);
    assert.match(sync.stdout, /pushed 1 file/);
    assert.ok(!(sync.stdout + sync.stderr).includes(relayPw), "the password was printed");
  } finally {
    await node.stop("SIGTERM");
    await relaySrv.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
