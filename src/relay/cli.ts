/**
 * The relay's words on the command line: `hop relay sync | status | forget`
 * (the maintenance verbs are in `maintain_cli.ts`),
 * and the relay mode of `hop cleanup` and `hop audit` (see `src/cli/maintenance.ts`).
 * Each action loads its module on use, so `hop --help` stays fast.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { HopError } from "../errors.ts";
import { examples, positiveNumber, reporterFor, untilSignal } from "../cli/common.ts";
import type { Reporter } from "../ui/report.ts";
import { registerMaintenanceCommands } from "./maintain_cli.ts";

/**
 * The options that name a relay folder: `-c FILE`, or the one-off form's
 * client name and (where it changes what the command does) mode.
 */
export function folderOptions(
  c: Command,
  which: { mode?: boolean; client?: boolean } = {},
): Command {
  c.option(
    "-c, --config <file>",
    "relay configuration (an escale.conf works; default: ~/.config/hop/relay.conf, then Escale's)",
  );
  if (which.client !== false) {
    c.option(
      "--client-name <name>",
      "one-off form: this client's name (default: host name and folder name)",
    );
  }
  if (which.mode !== false) {
    c.addOption(
      new Option("--mode <mode>", "one-off form: sync direction").choices([
        "shared",
        "upload",
        "download",
        "conservative",
      ]),
    );
  }
  return storageFlags(c, "one-off form");
}

/** The options that say how to reach a storage named on the command line. */
function storageFlags(c: Command, form: string): Command {
  return c.option(
    "--ssh-key <file>",
    `${form}, sftp://: the private key (default: agent, ~/.ssh/id_*)`,
  )
    .option(
      "--host-key <fingerprint>",
      `${form}, sftp://: the server's SHA256:... fingerprint`,
    )
    .option("--insecure", `${form}: accept any TLS certificate or SSH host key`)
    .option("--rclone-config <file>", `${form}, rclone:: rclone's configuration file`);
}

/** The storage options of `storageFlags` for the migrate, backup and restore commands. */
async function moveOptions(o: Record<string, unknown>, cmd: Command) {
  const { readFile } = await import("node:fs/promises");
  let sshKey: string | undefined;
  if (o.sshKey) {
    sshKey = await readFile(o.sshKey as string, "utf8").catch((e) => {
      throw new HopError(`cannot read the SSH key ${o.sshKey}: ${(e as Error).message}`, {
        hint: "Give the private key file (such as ~/.ssh/id_ed25519).",
      });
    });
  }
  return {
    configFile: o.config as string | undefined,
    sshKey,
    hostKey: o.hostKey as string | undefined,
    insecure: o.insecure as boolean | undefined,
    rcloneConfig: o.rcloneConfig as string | undefined,
    reporter: reporterFor(cmd),
  };
}

/** The one-off storage options of `folderOptions`, for a FolderSource. */
function storageOptions(o: Record<string, unknown>) {
  return {
    sshKeyFile: o.sshKey as string | undefined,
    hostKey: o.hostKey as string | undefined,
    insecure: o.insecure as boolean | undefined,
    rcloneConfig: o.rcloneConfig as string | undefined,
  };
}

/** Adds `hop relay ...` to `program`. */
export function registerRelayCommands(program: Command): void {
  const relay = examples(
    program.command("relay").description(
      "keep local folders in sync through a relay (a folder, FTP(S), SFTP, WebDAV, S3 or an rclone remote)",
    ),
    [
      "hop relay sync ./work file:///mnt/relay --once    # one pass, no config file",
      "hop relay sync -c escale.conf                     # every folder of a file, in a loop",
      "hop relay status -c escale.conf",
    ],
  );
  folderOptions(examples(
    relay.command("sync")
      .description("synchronize local folders with their relays (Escale 0.7 compatible)")
      .argument("[local]", "local folder (one-off use without a config file)")
      .argument(
        "[relay]",
        "relay: a folder, ftp(s)://, sftp://, webdav(s):// or http(s)://, s3://bucket/prefix, rclone:remote:path",
      ),
    [
      "hop relay sync ./work file:///mnt/relay --once --client-name alice",
      "hop relay sync ./work 'ftp://alice@files.example.org/relay?password-file=/home/alice/.pw'",
      "hop relay sync ./work sftp://alice@files.example.org/srv/relay --ssh-key ~/.ssh/id_ed25519",
      "hop relay sync ./work 'webdavs://alice@cloud.example.org/remote.php/dav/files/alice/relay?password-env=DAV_PW'",
      "hop relay sync ./work 's3://relays/team?endpoint=https://s3.example.org'",
      "hop relay sync ./work rclone:dropbox:relay      # an rclone remote (rclone config)",
      "hop relay sync -c escale.conf                 # every folder, until Ctrl-C",
      "hop relay sync --dry-run                      # what a pass would do (default config)",
      "hop --json relay sync -c escale.conf --once   # one JSON event per line",
    ],
  ))
    .option("--once", "run one pull/push pass, then exit")
    .option("--dry-run", "say what a pass would push and pull, change nothing")
    .option("--refresh <seconds>", "one-off form: longest wait between passes", positiveNumber)
    .addOption(
      new Option(
        "--compression <codec>",
        "one-off form: update archives' compression (zstd, none: hop-only relays)",
      ).choices(["bzip2", "zstd", "none"]),
    )
    .action(async (local: string | undefined, relayUrl: string | undefined, o, cmd: Command) => {
      const r = reporterFor(cmd);
      if (o.dryRun) {
        const { relayStatus } = await import("./command.ts");
        await relayStatus({
          configFile: o.config,
          local,
          relay: relayUrl,
          clientName: o.clientName,
          mode: o.mode,
          reporter: r,
          dryRun: true,
        });
        return;
      }
      const { runRelaySync } = await import("./command.ts");
      let stopped = false;
      const sum = await untilSignal((signal) => {
        signal.addEventListener("abort", () => stopped = true);
        return runRelaySync({
          configFile: o.config,
          local,
          relay: relayUrl,
          clientName: o.clientName,
          ...storageOptions(o),
          mode: o.mode,
          compression: o.compression,
          refresh: o.refresh,
          once: o.once,
          reporter: r,
          signal,
        });
      }, {
        reporter: r,
        says: "stopping: the step in progress is cancelled and undone; Ctrl-C again to abort",
      });
      if (o.once && stopped) {
        throw new HopError("relay sync stopped on request before the end of its pass", {
          code: "interrupted",
          exitCode: 130,
          hint: "Run it again: it resumes, and undoes what was cut.",
        });
      }
      r.info(
        `relay sync: ${sum.passes} pass(es); pulled ${sum.pulled}, pushed ${sum.pushed}, ` +
          `deleted ${sum.deletedLocally} here and sent ${sum.deletionsPushed} deletion(s), ` +
          `${sum.conflicts.length} conflict(s)`,
        { event: "sync.summary", ...sum },
      );
    });
  folderOptions(examples(
    relay.command("status")
      .description(
        "the background sync (hop relay start) if any, then each relay's pages, pending " +
          "updates and who consumed them, locks and clients",
      )
      .argument("[local]", "local folder (one-off form)")
      .argument("[relay]", "relay (one-off form)"),
    [
      "hop relay status                      # the default configuration",
      "hop relay status -c escale.conf",
      "hop relay status ./work file:///mnt/relay --client-name alice",
    ],
  )).action(async (local: string | undefined, relayUrl: string | undefined, o, cmd: Command) => {
    const { relayStatus } = await import("./command.ts");
    const r = reporterFor(cmd);
    const bg = await import("./background.ts");
    const info = await bg.backgroundInfo();
    if (info) {
      r.info(
        `background sync: running (pid ${info.pid}) since ${info.started}: hop relay sync ${
          info.args.join(" ")
        }; log ${info.log}`,
        { event: "background", running: true, ...info },
      );
      for (const l of await bg.lastPasses(info)) r.info(`  ${l}`);
    } else {
      r.info("background sync: not running (hop relay start starts one)", {
        event: "background",
        running: false,
      });
    }
    await relayStatus({
      configFile: o.config,
      local,
      relay: relayUrl,
      clientName: o.clientName,
      ...storageOptions(o),
      mode: o.mode,
      reporter: r,
    });
  });
  registerServiceCommands(relay);
  registerMoveCommands(relay);
  registerMaintenanceCommands(relay);
  folderOptions(
    examples(
      relay.command("forget")
        .description("forget a registered client, so updates stop waiting for it")
        .argument("<client>", "the client's name")
        .argument("[local]", "local folder (one-off form)")
        .argument("[relay]", "relay (one-off form)"),
      [
        "hop relay forget carol -c escale.conf",
        "hop relay forget carol ./work file:///mnt/relay",
      ],
    ),
    { mode: false, client: false },
  ).action(
    async (
      name: string,
      local: string | undefined,
      relayUrl: string | undefined,
      o,
      cmd: Command,
    ) => {
      const { relayForget } = await import("./command.ts");
      const gone = await relayForget({
        configFile: o.config,
        local,
        relay: relayUrl,
        clientName: o.clientName,
        ...storageOptions(o),
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
}

/** What `hop cleanup` and `hop audit` were told about the relay to work on. */
export interface RelayTarget {
  config?: string;
  local?: string;
  relay?: string;
  clientName?: string;
}

/** `hop cleanup` on a relay. */
export async function relayCleanupCommand(
  t: RelayTarget,
  dryRun: boolean,
  r: Reporter,
): Promise<void> {
  const { cleanupRelay } = await import("./cleanup.ts");
  const actions = await cleanupRelay({
    configFile: t.config,
    local: t.local,
    relay: t.relay,
    clientName: t.clientName,
    dryRun,
    reporter: r,
  });
  const done = actions.filter((a) => a.done).length;
  r.info(
    actions.length === 0
      ? "relay cleanup: nothing to clean up"
      : `relay cleanup: ${
        dryRun
          ? `${actions.length} thing(s) to clean up (dry run)`
          : `${done} of ${actions.length} cleaned up`
      }`,
    { event: "cleanup.summary", actions: actions.length, done, dryRun },
  );
}

/** `hop audit` on a relay: exit 1 when problems are left unrepaired. */
export async function relayAuditCommand(
  t: RelayTarget,
  o: { repair?: boolean; quietDays?: number },
  r: Reporter,
): Promise<void> {
  const { auditRelay } = await import("./audit.ts");
  const findings = await auditRelay({
    configFile: t.config,
    local: t.local,
    relay: t.relay,
    clientName: t.clientName,
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
}

/** `hop relay init | start | stop`: set-up and the background sync. */
function registerServiceCommands(relay: Command): void {
  examples(
    relay.command("init")
      .description(
        "ask the questions escale -i asks and add a folder to the configuration " +
          "(default ~/.config/hop/relay.conf, which hop relay sync reads by default)",
      )
      .argument("[file]", "the configuration file to write or add to"),
    [
      "hop relay init",
      "hop relay init ~/.config/escale/escale.conf   # add a folder to Escale's file",
    ],
  ).action(async (file: string | undefined, _o, cmd: Command) => {
    const { relayInit } = await import("./init.ts");
    await relayInit({ file, reporter: reporterFor(cmd) });
  });
  folderOptions(examples(
    relay.command("start")
      .description(
        "start hop relay sync in the background (its messages go to a log file); " +
          "hop relay status says what it does, hop relay stop stops it",
      )
      .argument("[local]", "local folder (one-off form)")
      .argument("[relay]", "relay (one-off form)"),
    [
      "hop relay start                         # the default configuration",
      "hop relay start -c ~/escale.conf",
      "hop relay start ./work file:///mnt/relay --log-file ~/relay.log",
    ],
  ))
    .option("--refresh <seconds>", "one-off form: longest wait between passes", positiveNumber)
    .action(async (local: string | undefined, relayUrl: string | undefined, o, cmd: Command) => {
      const { resolve } = await import("node:path");
      const args: string[] = [];
      if (o.config) args.push("-c", resolve(o.config));
      if (local) args.push(resolve(local));
      if (relayUrl) args.push(/^[a-z][a-z0-9+.-]*:/i.test(relayUrl) ? relayUrl : resolve(relayUrl));
      if (o.clientName) args.push("--client-name", o.clientName);
      if (o.mode) args.push("--mode", o.mode);
      if (o.refresh) args.push("--refresh", String(o.refresh));
      // the one-off form's storage options go with it (files as absolute paths)
      if (o.sshKey) args.push("--ssh-key", resolve(o.sshKey));
      if (o.hostKey) args.push("--host-key", o.hostKey);
      if (o.insecure) args.push("--insecure");
      if (o.rcloneConfig) args.push("--rclone-config", resolve(o.rcloneConfig));
      const r = reporterFor(cmd);
      const g = cmd.optsWithGlobals() as { logFile?: string };
      const { startBackground } = await import("./background.ts");
      const info = await startBackground(args, g.logFile && resolve(g.logFile));
      r.info(`background relay sync started (pid ${info.pid}); log ${info.log}`, {
        event: "background-started",
        ...info,
      });
    });
  examples(
    relay.command("stop").description(
      "stop the background sync (the step in progress is undone; the next run resumes)",
    ),
    ["hop relay stop"],
  ).action(async (_o, cmd: Command) => {
    const { stopBackground } = await import("./background.ts");
    const r = reporterFor(cmd);
    const info = await stopBackground();
    r.info(
      info
        ? `stopped the background relay sync (pid ${info.pid})`
        : "no background relay sync runs",
      { event: "background-stopped", pid: info?.pid ?? null },
    );
  });
}

/** `hop relay migrate | backup | restore`: moving a relay (see `move.ts`). */
function registerMoveCommands(relay: Command): void {
  const both = "(each relay: a section of the configuration, a folder, ftp(s)://, sftp://, " +
    "webdav(s)://, s3://, rclone:...)";
  /** `-c FILE`, where a relay named by a section is looked up. */
  const withConfig = (c: Command) =>
    c.option(
      "-c, --config <file>",
      "where relay section names are looked up (default: as hop relay sync); never edited",
    );
  withConfig(storageFlags(
    examples(
      relay.command("migrate")
        .description(
          "copy a relay to another storage, verify the copy, leave the source unchanged " + both,
        )
        .argument("<from>", "the relay now (an address or a section name)")
        .argument("<to>", "where it goes (an empty folder, bucket or remote, or a section)"),
      [
        "hop relay migrate /mnt/relay 'sftp://alice@files.example.org/srv/relay' --ssh-key ~/.ssh/id_ed25519",
        "hop relay migrate docs /mnt/new-relay -c escale.conf   # the relay of section [docs]",
        "hop relay migrate 'ftp://alice@old.example.org/relay?password-file=pw' 's3://relays/team?endpoint=https://s3.example.org'",
      ],
    ),
    "each address",
  )).action(async (from: string, to: string, o, cmd: Command) => {
    const { migrateRelay } = await import("./move.ts");
    await migrateRelay(from, to, await moveOptions(o, cmd));
  });
  withConfig(storageFlags(
    examples(
      relay.command("backup")
        .description("write a relay's files into one archive file (a tar), checked once written")
        .argument("<relay>", "the relay (an address or a section name)")
        .argument("<file>", "the archive to write"),
      [
        "hop relay backup sftp://alice@files.example.org/srv/relay relay.tar",
        "hop relay backup docs docs-relay.tar    # section [docs] of the default configuration",
      ],
    ),
    "the relay",
  )).action(async (from: string, file: string, o, cmd: Command) => {
    const { backupRelay } = await import("./move.ts");
    await backupRelay(from, file, await moveOptions(o, cmd));
  });
  withConfig(storageFlags(
    examples(
      relay.command("restore")
        .description("put the files of a relay backup into a relay (any storage), verified")
        .argument("<file>", "the archive hop relay backup wrote")
        .argument("<relay>", "the relay (an empty folder, bucket or remote, or a section)"),
      ["hop relay restore relay.tar /mnt/relay", "hop relay restore relay.tar docs -c escale.conf"],
    ),
    "the relay",
  )).action(async (file: string, to: string, o, cmd: Command) => {
    const { restoreRelay } = await import("./move.ts");
    await restoreRelay(file, to, await moveOptions(o, cmd));
  });
}
