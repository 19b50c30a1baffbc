/**
 * The relay's words on the command line: `hop relay sync | status | forget`,
 * and the relay mode of `hop cleanup` and `hop audit` (see `src/cli/maintenance.ts`).
 * Each action loads its module on use, so `hop --help` stays fast.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { HopError } from "../errors.ts";
import { positiveNumber, reporterFor, untilSignal } from "../cli/common.ts";
import type { Reporter } from "../ui/report.ts";

/** The options that name a relay folder: `-c FILE`, or the one-off form's. */
export function folderOptions(c: Command): Command {
  return c.option("-c, --config <file>", "INI configuration (an escale.conf works)")
    .option("--client-name <name>", "this client's name (one-off form; default: host name)")
    .addOption(
      new Option("--mode <mode>", "one-off form: sync direction").choices([
        "shared",
        "upload",
        "download",
        "conservative",
      ]),
    );
}

/** Adds `hop relay ...` to `program`. */
export function registerRelayCommands(program: Command): void {
  const relay = program.command("relay").description(
    "keep local folders in sync through a relay (a folder or an FTP account)",
  );
  folderOptions(
    relay.command("sync")
      .description("synchronize local folders with their relays (Escale 0.7 compatible)")
      .argument("[local]", "local folder (one-off use without a config file)")
      .argument("[relay]", "relay: a folder, file:///path, ftp://host:port/dir or ftps://..."),
  )
    .option("--once", "run one pull/push pass, then exit")
    .option("--refresh <seconds>", "one-off form: longest wait between passes", positiveNumber)
    .action(async (local: string | undefined, relayUrl: string | undefined, o, cmd: Command) => {
      const { runRelaySync } = await import("./command.ts");
      const r = reporterFor(cmd);
      let stopped = false;
      const sum = await untilSignal((signal) => {
        signal.addEventListener("abort", () => stopped = true);
        return runRelaySync({
          configFile: o.config,
          local,
          relay: relayUrl,
          clientName: o.clientName,
          mode: o.mode,
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
  folderOptions(
    relay.command("status")
      .description("show pages, pending updates and who consumed them, locks and clients")
      .argument("[local]", "local folder (one-off form)")
      .argument("[relay]", "relay (one-off form)"),
  ).action(async (local: string | undefined, relayUrl: string | undefined, o, cmd: Command) => {
    const { relayStatus } = await import("./command.ts");
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
      const { relayForget } = await import("./command.ts");
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
