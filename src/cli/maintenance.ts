/**
 * `hop cleanup` and `hop audit`: one verb each for relays and clusters. A relay
 * is named by `-c FILE` or `LOCAL RELAY`; otherwise the command works on a
 * cluster (`--root`, `--node`, `--cluster-config`). This module only chooses;
 * the work is in `src/relay/cli.ts` and `src/cluster/command.ts`.
 *
 * @module
 */
import type { Command } from "commander";
import { collect, examples, positiveInt, reporterFor } from "./common.ts";
import { clusterSettings } from "../cluster/cli.ts";
import { folderOptions, relayAuditCommand, relayCleanupCommand } from "../relay/cli.ts";

/** Adds `hop cleanup` and `hop audit` to `program`. */
export function registerMaintenanceCommands(program: Command): void {
  maintenanceTarget(examples(
    program.command("cleanup")
      .description(
        "relay: remove stale locks, consumed updates, expired clients and temporary files; " +
          "cluster: delete the node data of deleted files and purge staging leftovers",
      ),
    [
      "hop cleanup -c escale.conf --dry-run        # a relay: what would be removed",
      "hop cleanup ./work file:///mnt/relay",
      "hop cleanup --cluster-config /etc/hop/cluster.conf",
      "hop cleanup --root /srv/cluster --node 'ftp://store@10.0.0.2/data?password-env=PW'",
    ],
  ))
    .option("--dry-run", "show what would be done, change nothing")
    .action(async (local: string | undefined, relay: string | undefined, o, cmd: Command) => {
      const r = reporterFor(cmd);
      if (isRelay(local, o)) {
        return await relayCleanupCommand({ ...o, local, relay }, Boolean(o.dryRun), r);
      }
      const { clusterCleanupCommand } = await import("../cluster/command.ts");
      await clusterCleanupCommand(await clusterTarget(o), Boolean(o.dryRun), r);
    });
  maintenanceTarget(examples(
    program.command("audit")
      .description(
        "relay: index against relay against local folder; cluster: link files against " +
          "what the nodes hold (ok, orphan, missing, size mismatch, under-replicated, foreign)",
      ),
    [
      "hop audit -c escale.conf",
      "hop audit -c escale.conf --repair",
      "hop audit --cluster-config /etc/hop/cluster.conf --repair --report fix.txt",
      "hop audit --cluster-config /etc/hop/cluster.conf --apply fix.txt",
    ],
  ))
    .option(
      "--repair",
      "relay: rebuild broken pages now; cluster: write a repair report to review",
    )
    .option("--report <file>", "cluster: where --repair writes (default hop-audit-repair.txt)")
    .option("--apply <file>", "cluster: apply a reviewed repair report")
    .option("--delete-orphans", "cluster: let the repair delete orphaned node data")
    .option("--all", "cluster: list ok files too")
    .option("--quiet-days <n>", "relay: report clients not seen for this many days", positiveInt)
    .action(async (local: string | undefined, relay: string | undefined, o, cmd: Command) => {
      const r = reporterFor(cmd);
      if (isRelay(local, o)) {
        return await relayAuditCommand({ ...o, local, relay }, o, r);
      }
      const { clusterAuditCommand } = await import("../cluster/command.ts");
      await clusterAuditCommand(await clusterTarget(o), {
        all: o.all,
        repair: o.repair,
        report: o.report,
        apply: o.apply,
        deleteOrphans: o.deleteOrphans,
      }, r);
    });
}

/** The options of both modes. */
function maintenanceTarget(c: Command): Command {
  return folderOptions(
    c.argument("[local]", "relay mode: local folder (one-off form)")
      .argument("[relay]", "relay mode: the relay (one-off form)"),
    { mode: false },
  )
    .option("--root <dir>", "cluster mode: cluster root folder (default ./hop-cluster)")
    .option("--node <url>", "cluster mode: storage node URL (repeatable)", collect)
    .option("--replicas <n>", "cluster mode: copies of each file (default 2)", positiveInt)
    .option("--cluster-config <file>", "cluster mode: the settings file of cluster serve");
}

function isRelay(local: string | undefined, o: { config?: string }): boolean {
  return Boolean(o.config || local);
}

/** The cluster named by the cluster-mode options. */
function clusterTarget(o: Record<string, unknown>) {
  return clusterSettings(o);
}
