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
import { parseSizeText } from "../codec/text.ts";
import { UsageError } from "../errors.ts";
import {
  aborted,
  collect,
  examples,
  type GlobalOptions,
  positiveInt,
  reporterFor,
  tlsOption,
  untilSignal,
} from "../cli/common.ts";
import { readSecret } from "../secrets.ts";

/** Adds `hop cluster ...` to `program`. */
export function registerClusterCommands(program: Command): void {
  const cluster = examples(
    program.command("cluster").description(
      "the FTP cluster: link files on the server, data on ordinary FTP servers (nodes)",
    ),
    [
      "hop cluster serve                       # ./hop-cluster on 127.0.0.1:2121, two local nodes",
      "hop cluster serve --cluster-config /etc/hop/cluster.conf --http 127.0.0.1:8021",
      "hop cluster status",
    ],
  );
  examples(cluster.command("serve"), [
    "hop cluster serve",
    "hop cluster serve --root /srv/cluster --listen 0.0.0.0:21 \\",
    "  --node 'ftp://store@10.0.0.2/data?password-file=/etc/hop/store.pw' \\",
    "  --node 'ftp://store@10.0.0.3/data?password-env=STORE_PW' --replicas 2",
    "hop cluster serve --cluster-config /etc/hop/cluster.conf --http 127.0.0.1:8021",
  ])
    .description(
      "serve the cluster over FTP; with no options: ./hop-cluster on 127.0.0.1:2121 " +
        "with two local folder nodes and a new admin user",
    )
    .option(
      "--cluster-config <file>",
      "cluster settings file (see the README; flags given here win over it)",
    )
    .option("--root <dir>", "cluster root folder (default ./hop-cluster)")
    .option("--listen <host:port>", "address to listen on (default 127.0.0.1:2121)")
    .option(
      "--node <url>",
      "storage node: ftp://user@host:port/dir?password-file=F (or password-env=VAR) or " +
        "file:///dir (repeatable)",
      collect,
    )
    .option("--replicas <n>", "copies of each file (default 2)", positiveInt)
    .addOption(
      new Option(
        "--names <policy>",
        "file names clients may create: any (default), or strict / blanks as the original cluster",
      ).choices([
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
      "--min-free <size>",
      "free space the root's disk keeps: uploads stop short of it (default 1%, 64M to 1G)",
      sizeOption,
    )
    .option(
      "--staging-quota <size>",
      "most data staged for the nodes at once (default half the root's disk)",
      sizeOption,
    )
    .option(
      "--login-timeout <seconds>",
      "close a connection that has not logged in after this long (default 60)",
      positiveInt,
    )
    .option(
      "--idle-timeout <seconds>",
      "close a session that sent no complete command for this long (default 300)",
      positiveInt,
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
  clusterTargetOptions(examples(
    cluster.command("status")
      .description(
        "what the cluster is doing: nodes (up or down, free space, load, last error), copies " +
          "per file, queue, staging, and, while a server runs, its sessions and transfers",
      ),
    [
      "hop cluster status",
      "hop cluster status --cluster-config /etc/hop/cluster.conf",
      "hop --json cluster status | jq .status.queue",
    ],
  )).action(async (o, cmd: Command) => {
    const { clusterStatusCommand } = await import("./command.ts");
    await clusterStatusCommand(await clusterSettings(o), reporterFor(cmd));
  });
  clusterTargetOptions(examples(
    cluster.command("store")
      .description("move staged uploads to nodes and run queued deletions (the store worker)"),
    [
      "hop cluster store --once",
      "hop cluster store --once --cluster-config /etc/hop/cluster.conf",
    ],
  ))
    .option("--once", "process what is queued now, then exit (required for now)")
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
  clusterTargetOptions(examples(
    cluster.command("replicate")
      .description("bring every file to the replication factor (node to node where nodes allow)"),
    [
      "hop cluster replicate --dry-run",
      "hop cluster replicate --cluster-config /etc/hop/cluster.conf --to 10.0.0.4:21",
    ],
  ))
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
  examples(
    cluster.command("queue")
      .description(
        "list the job queue, one job a line; --dequeue prints and removes, --enqueue reads " +
          "lines from stdin (queue --dequeue | filter | queue --enqueue)",
      ),
    [
      "hop cluster queue",
      "hop cluster queue --dequeue | grep -v 10.0.0.2 | hop cluster queue --enqueue",
      "hop --json cluster queue",
    ],
  )
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .option("--dequeue", "print every job and remove it from the queue")
    .option("--enqueue", "queue the job lines read from stdin (all checked first)")
    .option("--remove <id...>", "remove jobs by id (see --json)")
    .action(async (o, cmd: Command) => {
      const { clusterQueueCommand } = await import("./command.ts");
      const g = cmd.optsWithGlobals() as GlobalOptions;
      await clusterQueueCommand(o.root, { ...o, json: g.json, quiet: g.quiet }, reporterFor(cmd));
    });
  registerUserCommands(cluster);
  registerNodeCommands(cluster);
}

function registerUserCommands(cluster: Command): void {
  const user = examples(
    cluster.command("user").description("cluster users (offline; SITE commands do it online)"),
    ["hop cluster user add bob", "hop cluster user list"],
  );
  examples(user.command("add"), [
    "hop cluster user add bob                       # prints a random password",
    "hop cluster user add bob --password-file bob.pw --home /shared",
  ])
    .description("add a user (prints the password when none is given)")
    .argument("<login>", "login name")
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .option("--password <pw>", "password (default: a random one, printed); seen in ps")
    .option("--password-file <file>", "read the password from this file (its first line)")
    .option("--home <path>", "home directory in the cluster (default /LOGIN)")
    .option("--admin", "an administrator (may use SITE USERADD/PASSWD/CHOWN)")
    .action(async (login: string, o, cmd: Command) => {
      const { addUser } = await import("./users.ts");
      const password = readSecret({ value: o.password, file: o.passwordFile });
      const u = await addUser(o.root, login, {
        password,
        home: o.home,
        admin: o.admin,
      });
      reporterFor(cmd).info(
        `added ${u.login} (uid ${u.uid}, home ${u.home})${
          password !== undefined ? "" : `, password ${u.password}`
        }`,
        { event: "user.added", login: u.login, uid: u.uid, home: u.home },
      );
    });
  examples(user.command("passwd"), [
    "hop cluster user passwd bob                   # a random one, printed",
    "hop cluster user passwd bob --password-file bob.pw",
  ])
    .description("set a user's password (a random one, printed, when none is given)")
    .argument("<login>", "login name")
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .option("--password <pw>", "the new password (seen in ps)")
    .option("--password-file <file>", "read the new password from this file (its first line)")
    .action(async (login: string, o, cmd: Command) => {
      const { setPassword } = await import("./users.ts");
      const given = readSecret({ value: o.password, file: o.passwordFile });
      const pw = await setPassword(o.root, login, given);
      reporterFor(cmd).info(`password of ${login} changed${given !== undefined ? "" : `: ${pw}`}`, {
        event: "user.password",
        login,
      });
    });
  examples(user.command("del"), ["hop cluster user del bob"])
    .description("delete a user (their files keep their uid)")
    .argument("<login>", "login name")
    .option("--root <dir>", "cluster root folder", "hop-cluster")
    .action(async (login: string, o, cmd: Command) => {
      const { deleteUser } = await import("./users.ts");
      await deleteUser(o.root, login);
      reporterFor(cmd).info(`deleted ${login}`, { event: "user.deleted", login });
    });
  examples(user.command("list"), ["hop cluster user list", "hop --json cluster user list"])
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
  const node = examples(cluster.command("node").description("storage nodes"), [
    "hop cluster node serve --root /srv/node --listen 0.0.0.0:2122 --password-file node.pw",
    "hop cluster node retire ftp://store@10.0.0.2/data --dry-run",
  ]);
  for (
    const [verb, what] of [[
      "retire",
      "a healthy node: copy its files elsewhere, then drop and delete its copies",
    ], [
      "lost",
      "a dead node: drop its copies, re-replicate from the others, list files lost",
    ]] as const
  ) {
    clusterTargetOptions(examples(
      node.command(verb).description(what).argument("<node>", "node URL or key as in link files"),
      [
        `hop cluster node ${verb} 10.0.0.2:21 --dry-run`,
        `hop cluster node ${verb} 10.0.0.2:21 --cluster-config /etc/hop/cluster.conf`,
      ],
    ))
      .option("--dry-run", "show what would be done")
      .action(async (which: string, o, cmd: Command) => {
        const m = await import("./command.ts");
        const run = verb === "retire" ? m.nodeRetireCommand : m.nodeLostCommand;
        await run(await clusterSettings(o), which, Boolean(o.dryRun), reporterFor(cmd));
      });
  }
  examples(node.command("serve"), [
    "hop cluster node serve --root /srv/node --listen 0.0.0.0:2122 --password-file node.pw",
    "HOP_NODE_PASSWORD=... hop cluster node serve --root /srv/node",
  ])
    .description("serve a plain folder over FTP (a storage node)")
    .requiredOption("--root <dir>", "folder to serve")
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:2122")
    .option("--user <name>", "login name", "node")
    .option("--password <pw>", "password (seen in ps; default: $HOP_NODE_PASSWORD)")
    .option("--password-file <file>", "read the password from this file (its first line)")
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
        password: readSecret({ value: o.password, file: o.passwordFile }) ??
          process.env.HOP_NODE_PASSWORD,
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
  return c.option("--cluster-config <file>", "the settings file of cluster serve")
    .option("--root <dir>", "cluster root folder (default ./hop-cluster)")
    .option("--node <url>", "storage node URL (repeatable)", collect)
    .option("--replicas <n>", "copies of each file (default 2)", positiveInt);
}

const seconds = (v: unknown) => v === undefined ? undefined : (v as number) * 1000;

function sizeOption(v: string): number {
  const n = parseSizeText(v);
  if (n === null) {
    throw new UsageError(`"${v}" is not a size`, "Give a size like 500M, 2G or 1048576.");
  }
  return n;
}

/** Cluster settings: the config file, then the flags given on the command line over it. */
export async function clusterSettings(o: Record<string, unknown>) {
  const { readClusterConfig } = await import("./config.ts");
  const file = o.clusterConfig as string | undefined;
  const base = file ? await readClusterConfig(file) : {};
  const flags = {
    root: o.root as string | undefined,
    listen: o.listen as string | undefined,
    nodes: o.node as string[] | undefined,
    replicas: o.replicas as number | undefined,
    names: o.names as "strict" | "blanks" | "any" | undefined,
    tls: tlsOption(o),
    anonymous: o.anonymous as boolean | undefined,
    storeWorker: o.storeWorker === false ? false : undefined,
    leaseTtlMs: seconds(o.leaseTimeout),
    loginTimeoutMs: seconds(o.loginTimeout),
    idleTimeoutMs: seconds(o.idleTimeout),
    minFreeBytes: o.minFree as number | undefined,
    stagingQuotaBytes: o.stagingQuota as number | undefined,
    http: o.http as string | undefined,
  };
  return {
    ...base,
    ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)),
  };
}
