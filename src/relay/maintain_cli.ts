/**
 * The maintenance verbs on the command line (`hop relay fix | suspend |
 * resume | list-pending | rebase | access`, escalectl's `recover`, `suspend`,
 * `resume`, `list_pending`, `rebase`, `access`); the work is in `maintain.ts`, loaded on use.
 *
 * @module
 */
import type { Command } from "commander";
import { collect, examples, positiveNumber, reporterFor } from "../cli/common.ts";
import { folderOptions } from "./cli.ts";

/** `--section`, `--page`, the one-off form: what every maintenance verb takes. */
function maintainOptions(c: Command, wait: boolean, pages = true): Command {
  folderOptions(c, { mode: false })
    .option(
      "-s, --section <name>",
      "only this section of the configuration (Escale's --repository; repeat for more)",
      collect,
    );
  if (pages) c.option("-p, --page <page>", "only this page (repeat for more)", collect);
  if (wait) {
    c.option(
      "--wait <seconds>",
      "how long to wait for pages another client has locked (default 120)",
      positiveNumber,
    );
  }
  return c;
}

/** The FolderSource and page options of a maintenance verb. */
function sourceOf(
  local: string | undefined,
  relay: string | undefined,
  o: Record<string, unknown>,
) {
  return {
    configFile: o.config as string | undefined,
    local,
    relay,
    clientName: o.clientName as string | undefined,
    sshKeyFile: o.sshKey as string | undefined,
    hostKey: o.hostKey as string | undefined,
    insecure: o.insecure as boolean | undefined,
    rcloneConfig: o.rcloneConfig as string | undefined,
    sections: o.section as string[] | undefined,
    pages: o.page as string[] | undefined,
    waitSeconds: o.wait as number | undefined,
  };
}

/** Adds the maintenance verbs to `hop relay`. */
export function registerMaintenanceCommands(relay: Command): void {
  maintainOptions(
    examples(
      relay.command("fix")
        .description(
          "rebuild lost or damaged page indexes from this client's folder, under the page " +
            "locks (escalectl recover); broken updates are removed",
        )
        .argument("[local]", "local folder (one-off form)")
        .argument("[relay]", "relay (one-off form)"),
      [
        "hop relay fix                         # every page this folder has files in",
        "hop relay fix -c escale.conf --section docs --page 0",
        "hop relay fix ./work file:///mnt/relay --client-name alice",
      ],
    ),
    true,
  ).action(async (local: string | undefined, relay: string | undefined, o, cmd: Command) => {
    const { relayFix } = await import("./maintain.ts");
    const r = reporterFor(cmd);
    const fixed = await relayFix({ ...sourceOf(local, relay, o), reporter: r });
    r.info(`relay fix: ${fixed.length} page index(es) written`, {
      event: "fix.summary",
      pages: fixed.length,
    });
  });
  maintainOptions(
    examples(
      relay.command("suspend")
        .description(
          "lock pages (default: all) as <client>-suspend, so that no client (hop or Escale) " +
            "pushes or pulls them until hop relay resume; waits for pages others hold",
        )
        .argument("[local]", "local folder (one-off form)")
        .argument("[relay]", "relay (one-off form)"),
      [
        "hop relay suspend                     # every page of the default configuration's relays",
        "hop relay suspend -c escale.conf --page 0 --wait 600",
      ],
    ),
    true,
  ).action(async (local: string | undefined, relay: string | undefined, o, cmd: Command) => {
    const { relaySuspend } = await import("./maintain.ts");
    await relaySuspend({ ...sourceOf(local, relay, o), reporter: reporterFor(cmd) });
  });
  maintainOptions(
    examples(
      relay.command("resume")
        .description(
          "release the locks hop relay suspend took (this client's only; others are named)",
        )
        .argument("[local]", "local folder (one-off form)")
        .argument("[relay]", "relay (one-off form)"),
      ["hop relay resume", "hop relay resume -c escale.conf --page 0"],
    ),
    false,
  ).action(async (local: string | undefined, relay: string | undefined, o, cmd: Command) => {
    const { relayResume } = await import("./maintain.ts");
    await relayResume({ ...sourceOf(local, relay, o), reporter: reporterFor(cmd) });
  });
  maintainOptions(
    examples(
      relay.command("list-pending")
        .description(
          "local files their page index does not name yet (what a push would send as new)",
        )
        .argument("[local]", "local folder (one-off form)")
        .argument("[relay]", "relay (one-off form)"),
      [
        "hop relay list-pending",
        "hop relay list-pending -c escale.conf --page projects --dirs",
        "hop --json relay list-pending ./work file:///mnt/relay",
      ],
    ),
    false,
  )
    .option("--dirs", "list the folders of the pending files, not the files")
    .action(async (local: string | undefined, relay: string | undefined, o, cmd: Command) => {
      const { relayListPending } = await import("./maintain.ts");
      await relayListPending({
        ...sourceOf(local, relay, o),
        dirs: o.dirs as boolean | undefined,
        reporter: reporterFor(cmd),
      });
    });
  maintainOptions(
    examples(
      relay.command("rebase")
        .description(
          "make the relay's files the subfolder PATH of a new root (index, pending update, " +
            "deletion records rewritten; index = 1 only); then point every client's local path " +
            "at the folder above",
        )
        .argument("<path>", "the folder, relative to the new root, that the files go into")
        .argument("[local]", "local folder (one-off form)")
        .argument("[relay]", "relay (one-off form)"),
      ["hop relay rebase docs -c escale.conf", "hop relay rebase team/docs --section docs"],
    ),
    true,
    false,
  ).action(
    async (
      path: string,
      local: string | undefined,
      relay: string | undefined,
      o,
      cmd: Command,
    ) => {
      const { relayRebase } = await import("./maintain.ts");
      await relayRebase({ ...sourceOf(local, relay, o), path, reporter: reporterFor(cmd) });
    },
  );
  examples(
    relay.command("access")
      .description(
        "show or set a file's access modifiers (escalectl access): r- never pushes it, " +
          "w- never lets sync write or delete it; ? unsets (index relays)",
      )
      .argument("<modifiers-or-file>", "r+, r-, r?, w+, w-, w? or both (r-w+); or the file")
      .argument("[file]", "the file, when modifiers are given")
      .option(
        "-c, --config <file>",
        "relay configuration (an escale.conf works; default: ~/.config/hop/relay.conf, then Escale's)",
      )
      .option(
        "-s, --section <name>",
        "only this section of the configuration (repeat for more)",
        collect,
      ),
    [
      "hop relay access notes/draft.txt          # show: r?w? (both unset)",
      "hop relay access r- notes/draft.txt       # never push it",
      "hop relay access w-r+ -c escale.conf ~/docs/report.odt",
    ],
  ).action(async (first: string, file: string | undefined, o, cmd: Command) => {
    const { relayAccess } = await import("./maintain.ts");
    await relayAccess({
      configFile: o.config,
      sections: o.section,
      file: file ?? first,
      modifiers: file === undefined ? undefined : first,
      reporter: reporterFor(cmd),
    });
  });
}
