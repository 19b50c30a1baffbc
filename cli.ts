#!/usr/bin/env -S deno run -A
/**
 * The `hop` command: parses the command line (commander), runs one
 * subcommand, and turns errors into exit codes: 0 ok, 1 failure, 2 usage.
 *
 * Subcommands live with their domain (`src/relay`, `src/cluster`, ...); this
 * file only wires words to functions.
 *
 * @module
 */
import process from "node:process";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { HopError, UsageError } from "./src/errors.ts";
import { createReporter, type Reporter } from "./src/ui/report.ts";
import denoConfig from "./deno.json" with { type: "json" };

/** hop's version, from deno.json. */
export const VERSION: string = denoConfig.version;

interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
}

function reporterFor(cmd: Command): Reporter {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  return createReporter({ json: g.json, quiet: g.quiet });
}

/** Builds the command tree; exported so tests can inspect it. */
export function buildProgram(): Command {
  const program = new Command("hop")
    .description(
      "Move files through places that are not peers: sync folders through a relay, " +
        "or serve an FTP cluster whose data lives on ordinary FTP servers.",
    )
    .version(VERSION, "-V, --version", "print hop's version")
    .option("--json", "print one JSON event per line (for scripts)")
    .option("-q, --quiet", "print nothing but errors")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  // --- relay -----------------------------------------------------------
  const relay = program.command("relay").description(
    "keep local folders in sync through a relay (a folder or an FTP account)",
  );
  const folderOptions = (c: Command) =>
    c.option("-c, --config <file>", "INI configuration (an escale.conf works)")
      .option("--client-name <name>", "this client's name (one-off form; default: host name)")
      .addOption(
        new Option("--mode <mode>", "one-off form: sync direction").choices([
          "shared",
          "upload",
          "download",
          "conservative",
        ]),
      );
  folderOptions(
    relay.command("sync")
      .description("synchronize local folders with their relays (Escale 0.7 compatible)")
      .argument("[local]", "local folder (one-off use without a config file)")
      .argument("[relay]", "relay: a folder, file:///path, ftp://host:port/dir or ftps://..."),
  )
    .option("--once", "run one pull/push pass, then exit")
    .option("--refresh <seconds>", "one-off form: longest wait between passes", positiveInt)
    .action(async (local: string | undefined, relayUrl: string | undefined, o, cmd: Command) => {
      const { runRelaySync } = await import("./src/relay/command.ts");
      await untilSignal((signal) =>
        runRelaySync({
          configFile: o.config,
          local,
          relay: relayUrl,
          clientName: o.clientName,
          mode: o.mode,
          refresh: o.refresh,
          once: o.once,
          reporter: reporterFor(cmd),
          signal,
        })
      );
    });
  folderOptions(
    relay.command("status")
      .description("show pages, pending updates and who consumed them, locks and clients")
      .argument("[local]", "local folder (one-off form)")
      .argument("[relay]", "relay (one-off form)"),
  ).action(async (local: string | undefined, relayUrl: string | undefined, o, cmd: Command) => {
    const { relayStatus } = await import("./src/relay/command.ts");
    await relayStatus({
      configFile: o.config,
      local,
      relay: relayUrl,
      clientName: o.clientName,
      mode: o.mode,
      reporter: reporterFor(cmd),
    });
  });
  folderOptions(
    relay.command("forget")
      .description("forget a registered client, so updates stop waiting for it")
      .argument("<client>", "the client's name")
      .argument("[local]", "local folder (one-off form)")
      .argument("[relay]", "relay (one-off form)"),
  ).action(
    async (
      name: string,
      local: string | undefined,
      relayUrl: string | undefined,
      o,
      cmd: Command,
    ) => {
      const { relayForget } = await import("./src/relay/command.ts");
      const gone = await relayForget({
        configFile: o.config,
        local,
        relay: relayUrl,
        clientName: o.clientName,
        name,
        reporter: reporterFor(cmd),
      });
      if (!gone) {
        throw new HopError(`client '${name}' is not registered on the relay`, {
          hint: "hop relay status lists the registered clients.",
        });
      }
    },
  );

  // --- cluster ---------------------------------------------------------
  const cluster = program.command("cluster").description(
    "the FTP cluster: link files on the server, data on ordinary FTP servers (nodes)",
  );
  cluster.command("serve")
    .description(
      "serve the cluster over FTP; with no options: ./hop-cluster on 127.0.0.1:2121 " +
        "with two local folder nodes and a new admin user",
    )
    .option("-c, --config <file>", "settings file (flags given here win over it)")
    .option("--root <dir>", "cluster root folder (default ./hop-cluster)")
    .option("--listen <host:port>", "address to listen on (default 127.0.0.1:2121)")
    .option(
      "--node <url>",
      "storage node: ftp://user:pass@host:port/dir or file:///dir (repeatable)",
      collect,
    )
    .option("--replicas <n>", "copies of each file (default 2)", positiveInt)
    .addOption(
      new Option("--names <policy>", "file name policy (default strict)").choices([
        "strict",
        "blanks",
        "any",
      ]),
    )
    .option("--tls-cert <file>", "TLS certificate, PEM (enables FTPS)")
    .option("--tls-key <file>", "TLS private key, PEM")
    .option("--anonymous", "allow anonymous read-only logins")
    .action(async (o, cmd: Command) => {
      const { runClusterServe } = await import("./src/cluster/serve.ts");
      await runClusterServe({ ...(await clusterSettings(o)), reporter: reporterFor(cmd) });
    });
  cluster.command("store")
    .description("move staged uploads to nodes and run queued deletions (the store worker)")
    .option("--once", "process what is queued now, then exit (required for now)")
    .option("-c, --config <file>", "settings file")
    .option("--root <dir>", "cluster root folder (default ./hop-cluster)")
    .option("--node <url>", "storage node URL (repeatable)", collect)
    .option("--replicas <n>", "copies of each file (default 2)", positiveInt)
    .action(async (o, cmd: Command) => {
      if (!o.once) {
        throw new UsageError(
          "hop cluster store runs once: give --once",
          "The store worker also runs continuously inside hop cluster serve.",
        );
      }
      const { storeClusterOnce } = await import("./src/cluster/serve.ts");
      await storeClusterOnce({ ...(await clusterSettings(o)), reporter: reporterFor(cmd) });
    });
  const clusterTargetOptions = (c: Command) =>
    c.option("-c, --config <file>", "settings file of cluster serve")
      .option("--root <dir>", "cluster root folder (default ./hop-cluster)")
      .option("--node <url>", "storage node URL (repeatable)", collect)
      .option("--replicas <n>", "copies of each file (default 2)", positiveInt);
  clusterTargetOptions(
    cluster.command("replicate")
      .description("bring every file to the replication factor (node to node where nodes allow)"),
  )
    .option("--dry-run", "show what would be copied where")
    .option("--from <node>", "copy only from this node (repeatable)", collect)
    .option("--to <node>", "copy only to this node (repeatable)", collect)
    .action(async (o, cmd: Command) => {
      const { clusterReplicateCommand } = await import("./src/cluster/command.ts");
      await clusterReplicateCommand(await clusterSettings(o), {
        dryRun: o.dryRun,
        from: o.from,
        to: o.to,
      }, reporterFor(cmd));
    });
  cluster.command("queue")
    .description(
      "list the job queue, one job a line; --dequeue prints and removes, --enqueue reads lines " +
        "from stdin (queue --dequeue | filter | queue --enqueue)",
    )
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .option("--dequeue", "print every job and remove it from the queue")
    .option("--enqueue", "queue the job lines read from stdin (all checked first)")
    .option("--remove <id...>", "remove jobs by id (see --json)")
    .action(async (o, cmd: Command) => {
      const { clusterQueueCommand } = await import("./src/cluster/command.ts");
      const g = cmd.optsWithGlobals() as GlobalOptions;
      await clusterQueueCommand(o.root, { ...o, json: g.json }, reporterFor(cmd));
    });
  const user = cluster.command("user").description(
    "cluster users (offline; SITE commands do it online)",
  );
  user.command("add")
    .description("add a user (prints the password when none is given)")
    .argument("<login>", "login name")
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .option("--password <pw>", "password (default: a random one, printed)")
    .option("--home <path>", "home directory in the cluster (default /LOGIN)")
    .option("--admin", "an administrator (may use SITE USERADD/PASSWD/CHOWN)")
    .action(async (login: string, o, cmd: Command) => {
      const { addUser } = await import("./src/cluster/users.ts");
      const u = await addUser(o.root, login, {
        password: o.password,
        home: o.home,
        admin: o.admin,
      });
      reporterFor(cmd).info(
        `added ${u.login} (uid ${u.uid}, home ${u.home})${
          o.password ? "" : `, password ${u.password}`
        }`,
        { event: "user.added", login: u.login, uid: u.uid, home: u.home },
      );
    });
  user.command("passwd")
    .description("set a user's password (a random one, printed, when none is given)")
    .argument("<login>", "login name")
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .option("--password <pw>", "the new password")
    .action(async (login: string, o, cmd: Command) => {
      const { setPassword } = await import("./src/cluster/users.ts");
      const pw = await setPassword(o.root, login, o.password);
      reporterFor(cmd).info(`password of ${login} changed${o.password ? "" : `: ${pw}`}`, {
        event: "user.password",
        login,
      });
    });
  user.command("del")
    .description("delete a user (their files keep their uid)")
    .argument("<login>", "login name")
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .action(async (login: string, o, cmd: Command) => {
      const { deleteUser } = await import("./src/cluster/users.ts");
      await deleteUser(o.root, login);
      reporterFor(cmd).info(`deleted ${login}`, { event: "user.deleted", login });
    });
  user.command("list")
    .description("list users")
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .action(async (o, cmd: Command) => {
      const { listUsers } = await import("./src/cluster/users.ts");
      const r = reporterFor(cmd);
      for (const u of await listUsers(o.root)) {
        r.info(`${u.login}\t${u.uid}\t${u.home}${u.admin ? "\tadmin" : ""}`, {
          event: "user",
          ...u,
        });
      }
    });
  const node = cluster.command("node").description("storage nodes");
  for (
    const [verb, what] of [[
      "retire",
      "a healthy node: copy its files elsewhere, then drop and delete its copies",
    ], [
      "lost",
      "a dead node: drop its copies, re-replicate from the others, list files lost",
    ]] as const
  ) {
    clusterTargetOptions(
      node.command(verb).description(what).argument("<node>", "node URL or key as in link files"),
    )
      .option("--dry-run", "show what would be done")
      .action(async (which: string, o, cmd: Command) => {
        const m = await import("./src/cluster/command.ts");
        const run = verb === "retire" ? m.nodeRetireCommand : m.nodeLostCommand;
        await run(await clusterSettings(o), which, Boolean(o.dryRun), reporterFor(cmd));
      });
  }
  node.command("serve")
    .description("serve a plain folder over FTP (a storage node)")
    .requiredOption("--root <dir>", "folder to serve")
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:2122")
    .option("--user <name>", "login name", "node")
    .option("--password <pw>", "password (default: $HOP_NODE_PASSWORD)")
    .option("--anonymous", "allow anonymous read-only logins")
    .option("--tls-cert <file>", "TLS certificate, PEM (enables FTPS)")
    .option("--tls-key <file>", "TLS private key, PEM")
    .action(async (o, cmd: Command) => {
      const { serveFolder } = await import("./src/ftp/node_serve.ts");
      const { parseListen } = await import("./src/cluster/serve.ts");
      const { host, port } = parseListen(o.listen);
      const r = reporterFor(cmd);
      const srv = await serveFolder({
        root: o.root,
        host,
        port,
        user: o.user,
        password: o.password ?? process.env.HOP_NODE_PASSWORD,
        anonymous: o.anonymous,
        tls: tlsOption(o),
      });
      r.info(`serving ${o.root} on ftp://${host.includes(":") ? `[${host}]` : host}:${srv.port}/`, {
        event: "node.listening",
        port: srv.port,
      });
      await untilSignal(aborted);
      r.info("stopping the node server");
      await srv.close();
    });

  // --- maintenance -----------------------------------------------------
  // Relay when a relay is named (-c FILE, or LOCAL RELAY); the cluster otherwise.
  const maintenanceTarget = (c: Command) =>
    folderOptions(
      c.argument("[local]", "relay mode: local folder (one-off form)")
        .argument("[relay]", "relay mode: the relay (one-off form)"),
    )
      .option("--root <dir>", "cluster mode: cluster root folder (default ./hop-cluster)")
      .option("--node <url>", "cluster mode: storage node URL (repeatable)", collect)
      .option("--replicas <n>", "cluster mode: copies of each file (default 2)", positiveInt)
      .option("--cluster-config <file>", "cluster mode: the settings file of cluster serve");
  const isRelay = (local: string | undefined, o: { config?: string }) => Boolean(o.config || local);
  maintenanceTarget(
    program.command("cleanup")
      .description(
        "relay: remove stale locks, consumed updates, expired clients and temporary files; " +
          "cluster: delete the node data of deleted files and purge staging leftovers",
      ),
  )
    .option("--dry-run", "show what would be done, change nothing")
    .action(async (local: string | undefined, relayUrl: string | undefined, o, cmd: Command) => {
      const r = reporterFor(cmd);
      if (isRelay(local, o)) {
        const { cleanupRelay } = await import("./src/relay/cleanup.ts");
        const actions = await cleanupRelay({
          configFile: o.config,
          local,
          relay: relayUrl,
          clientName: o.clientName,
          dryRun: o.dryRun,
          reporter: r,
        });
        const done = actions.filter((a) => a.done).length;
        r.info(
          actions.length === 0
            ? "relay cleanup: nothing to clean up"
            : `relay cleanup: ${
              o.dryRun
                ? `${actions.length} thing(s) to clean up (dry run)`
                : `${done} of ${actions.length} cleaned up`
            }`,
          { event: "cleanup.summary", actions: actions.length, done, dryRun: Boolean(o.dryRun) },
        );
        return;
      }
      const { clusterCleanupCommand } = await import("./src/cluster/command.ts");
      await clusterCleanupCommand(await clusterTarget(o), Boolean(o.dryRun), r);
    });
  maintenanceTarget(
    program.command("audit")
      .description(
        "relay: index against relay against local folder; cluster: link files against " +
          "what the nodes hold (ok, orphan, missing, size mismatch, under-replicated, foreign)",
      ),
  )
    .option(
      "--repair",
      "relay: rebuild broken pages now; cluster: write a repair report to review",
    )
    .option("--report <file>", "cluster: where --repair writes (default hop-audit-repair.txt)")
    .option("--apply <file>", "cluster: apply a reviewed repair report")
    .option("--delete-orphans", "cluster: let the repair delete orphaned node data")
    .option("--all", "cluster: list ok files too")
    .option("--quiet-days <n>", "relay: report clients not seen for this many days", positiveInt)
    .action(async (local: string | undefined, relayUrl: string | undefined, o, cmd: Command) => {
      const r = reporterFor(cmd);
      if (isRelay(local, o)) {
        const { auditRelay } = await import("./src/relay/audit.ts");
        const findings = await auditRelay({
          configFile: o.config,
          local,
          relay: relayUrl,
          clientName: o.clientName,
          repair: o.repair,
          quietSeconds: o.quietDays ? o.quietDays * 86400 : undefined,
          reporter: r,
        });
        const left = findings.filter((f) => f.severity === "error" && f.repaired !== true);
        r.info(
          `relay audit: ${findings.length} finding(s), ${
            findings.filter((f) => f.severity === "error").length
          } problem(s), ${left.length} left unrepaired`,
          { event: "audit.summary", findings: findings.length, unrepaired: left.length },
        );
        if (left.length > 0) {
          throw new HopError(`the audit found ${left.length} problem(s) left unrepaired`, {
            hint: o.repair
              ? "See the findings above; some need a person (or another client's folder)."
              : "hop audit --repair rebuilds the damaged pages from this client's folder.",
          });
        }
        return;
      }
      const { clusterAuditCommand } = await import("./src/cluster/command.ts");
      await clusterAuditCommand(await clusterTarget(o), {
        all: o.all,
        repair: o.repair,
        report: o.report,
        apply: o.apply,
        deleteOrphans: o.deleteOrphans,
      }, r);
    });

  // --- archive ---------------------------------------------------------
  const archive = program.command("archive").description(
    "tar.bz2 archives on the parallel WebAssembly bzip2 engine",
  );
  archive.command("create")
    .description("write a tar.bz2 of a folder (or of some files in it)")
    .argument("<folder>", "folder to archive")
    .argument("<archive>", "archive to write (.tar.bz2)")
    .argument("[files...]", "relative paths inside the folder (default: all files)")
    .action(async (folder: string, out: string, files: string[], _o, cmd: Command) => {
      const { createArchiveCommand } = await import("./src/archive/command.ts");
      await createArchiveCommand(folder, out, files, reporterFor(cmd));
    });
  archive.command("extract")
    .description("extract a tar.bz2 safely into a folder")
    .argument("<archive>", "archive to read (.tar.bz2, any bzip2 tool's)")
    .argument("<folder>", "folder to extract into (created if missing)")
    .action(async (input: string, folder: string, _o, cmd: Command) => {
      const { extractArchiveCommand } = await import("./src/archive/command.ts");
      await extractArchiveCommand(input, folder, reporterFor(cmd));
    });
  archive.command("list")
    .description("list the entries of a tar.bz2")
    .argument("<archive>", "archive to read")
    .action(async (input: string, _o, cmd: Command) => {
      const { listArchiveCommand } = await import("./src/archive/command.ts");
      await listArchiveCommand(input, reporterFor(cmd));
    });

  for (const c of allCommands(program)) {
    c.exitOverride().showHelpAfterError("(run with --help for usage)");
  }
  return program;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError("expected a whole number of at least 1");
  }
  return n;
}

function tlsOption(o: { tlsCert?: string; tlsKey?: string }) {
  if (!o.tlsCert && !o.tlsKey) return undefined;
  if (!o.tlsCert || !o.tlsKey) {
    throw new UsageError(
      "--tls-cert and --tls-key go together",
      "Give both PEM files, or neither.",
    );
  }
  return { cert: o.tlsCert, key: o.tlsKey };
}

/** Cluster settings: the config file, then the flags given on the command line over it. */
async function clusterSettings(o: Record<string, unknown>) {
  const { readClusterConfig } = await import("./src/cluster/config.ts");
  const base = o.config ? await readClusterConfig(o.config as string) : {};
  const flags = {
    root: o.root as string | undefined,
    listen: o.listen as string | undefined,
    nodes: o.node as string[] | undefined,
    replicas: o.replicas as number | undefined,
    names: o.names as "strict" | "blanks" | "any" | undefined,
    tls: tlsOption(o),
    anonymous: o.anonymous as boolean | undefined,
  };
  return {
    ...base,
    ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)),
  };
}

/** The cluster named by a maintenance command's cluster-mode options. */
function clusterTarget(o: Record<string, unknown>) {
  return clusterSettings({ ...o, config: o.clusterConfig });
}

/**
 * Runs `work` with a signal that SIGINT/SIGTERM abort: long-lived commands stop
 * cleanly after the step in progress. A second signal exits at once.
 */
async function untilSignal<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const stop = () => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  try {
    return await work(ac.signal);
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

function allCommands(c: Command): Command[] {
  return c.commands.flatMap((sub) => [sub, ...allCommands(sub)]);
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

/** Runs hop with `argv` (without the program name); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "commander.help") return 0;
      return 2; // commander already printed the message
    }
    if (e instanceof HopError) {
      process.stderr.write(`hop: ${e.message}\n`);
      if (e.hint) process.stderr.write(`  ${e.hint}\n`);
      if (process.env.HOP_DEBUG && e.cause) console.error(e.cause);
      return e.exitCode;
    }
    process.stderr.write(`hop: unexpected error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.stderr.write("  This is a bug in hop; run again with HOP_DEBUG=1 and report it.\n");
    if (process.env.HOP_DEBUG) console.error(e);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // Workers or sockets left open must not keep a finished command alive.
  const { closePool } = await import("./src/archive/bzip2.ts");
  closePool();
}
