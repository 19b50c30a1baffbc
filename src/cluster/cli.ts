/**
 * The cluster's words on the command line: `hop cluster serve | store |
 * replicate | queue | user ... | node ...`, the settings they share (a config
 * file, then flags over it), and the cluster mode of `hop cleanup` and
 * `hop audit` (see `src/cli/maintenance.ts`). Each action loads its module on use.
 *
 * @module
 */
import process from "node:process";
import { type Command, Option } from "commander";
import { UsageError } from "../errors.ts";
import {
  aborted,
  collect,
  type GlobalOptions,
  positiveInt,
  reporterFor,
  tlsOption,
  untilSignal,
} from "../cli/common.ts";

/** Adds `hop cluster ...` to `program`. */
export function registerClusterCommands(program: Command): void {
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
    .option(
      "--http <host:port>",
      "also serve a live dashboard, /status (JSON) and /metrics (Prometheus) here (off by default)",
    )
    .option(
      "--no-store-worker",
      "do not move uploads to the nodes from this process (hop cluster store --once does)",
    )
    .option(
      "--lease-timeout <seconds>",
      "how long the root stays locked after a server on another host stopped renewing " +
        "its lease (default 30)",
      positiveInt,
    )
    .action(async (o, cmd: Command) => {
      const { runClusterServe } = await import("./serve.ts");
      await runClusterServe({ ...(await clusterSettings(o)), reporter: reporterFor(cmd) });
    });
  clusterTargetOptions(
    cluster.command("status")
      .description(
        "what the cluster is doing: nodes (up or down, free space, load, last error), copies " +
          "per file, queue, staging, and, while a server runs, its sessions and transfers",
      ),
  ).action(async (o, cmd: Command) => {
    const { clusterStatusCommand } = await import("./command.ts");
    await clusterStatusCommand(await clusterSettings(o), reporterFor(cmd));
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
      const { storeClusterOnce } = await import("./serve.ts");
      await storeClusterOnce({ ...(await clusterSettings(o)), reporter: reporterFor(cmd) });
    });
  clusterTargetOptions(
    cluster.command("replicate")
      .description("bring every file to the replication factor (node to node where nodes allow)"),
  )
    .option("--dry-run", "show what would be copied where")
    .option("--from <node>", "copy only from this node (repeatable)", collect)
    .option("--to <node>", "copy only to this node (repeatable)", collect)
    .action(async (o, cmd: Command) => {
      const { clusterReplicateCommand } = await import("./command.ts");
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
      const { clusterQueueCommand } = await import("./command.ts");
      const g = cmd.optsWithGlobals() as GlobalOptions;
      await clusterQueueCommand(o.root, { ...o, json: g.json }, reporterFor(cmd));
    });
  registerUserCommands(cluster);
  registerNodeCommands(cluster);
}

function registerUserCommands(cluster: Command): void {
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
      const { addUser } = await import("./users.ts");
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
      const { setPassword } = await import("./users.ts");
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
      const { deleteUser } = await import("./users.ts");
      await deleteUser(o.root, login);
      reporterFor(cmd).info(`deleted ${login}`, { event: "user.deleted", login });
    });
  user.command("list")
    .description("list users")
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .action(async (o, cmd: Command) => {
      const { listUsers } = await import("./users.ts");
      const r = reporterFor(cmd);
      for (const u of await listUsers(o.root)) {
        r.info(`${u.login}\t${u.uid}\t${u.home}${u.admin ? "\tadmin" : ""}`, {
          event: "user",
          ...u,
        });
      }
    });
}

function registerNodeCommands(cluster: Command): void {
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
        const m = await import("./command.ts");
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
      const { serveFolder } = await import("../ftp/node_serve.ts");
      const { parseListen } = await import("./serve.ts");
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
}

/** The options that name a cluster for commands working on it from their own process. */
function clusterTargetOptions(c: Command): Command {
  return c.option("-c, --config <file>", "settings file of cluster serve")
    .option("--root <dir>", "cluster root folder (default ./hop-cluster)")
    .option("--node <url>", "storage node URL (repeatable)", collect)
    .option("--replicas <n>", "copies of each file (default 2)", positiveInt);
}

/** Cluster settings: the config file, then the flags given on the command line over it. */
export async function clusterSettings(o: Record<string, unknown>) {
  const { readClusterConfig } = await import("./config.ts");
  const base = o.config ? await readClusterConfig(o.config as string) : {};
  const flags = {
    root: o.root as string | undefined,
    listen: o.listen as string | undefined,
    nodes: o.node as string[] | undefined,
    replicas: o.replicas as number | undefined,
    names: o.names as "strict" | "blanks" | "any" | undefined,
    tls: tlsOption(o),
    anonymous: o.anonymous as boolean | undefined,
    storeWorker: o.storeWorker === false ? false : undefined,
    leaseTtlMs: o.leaseTimeout === undefined ? undefined : (o.leaseTimeout as number) * 1000,
    http: o.http as string | undefined,
  };
  return {
    ...base,
    ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)),
  };
}
