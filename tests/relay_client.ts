/**
 * A relay sync client in its own process, for tests:
 * `deno run -A tests/relay_client.ts <local> <relay> <name> [once|loop] [refresh]`.
 * In loop mode it stops cleanly on SIGTERM/SIGINT after the step in progress.
 *
 * @module
 */
import { appendFileSync } from "node:fs";
import process from "node:process";
import { runRelaySync } from "../src/relay/command.ts";
import { createReporter } from "../src/ui/report.ts";

const [local, relay, name, how = "once", refresh = "30"] = process.argv.slice(2);
const ac = new AbortController();
process.on("SIGTERM", () => ac.abort());
process.on("SIGINT", () => ac.abort());
const s = await runRelaySync({
  local,
  relay,
  clientName: name,
  refresh: Number(refresh),
  once: how === "once",
  reporter: createReporter({
    json: true,
    // HOP_CLIENT_LOG: append the JSON events to that file (crash tests read it on failure)
    out: process.env.HOP_CLIENT_LOG
      ? { write: (t: string) => appendFileSync(process.env.HOP_CLIENT_LOG!, t) }
      : undefined,
  }),
  signal: ac.signal,
});
console.log(JSON.stringify({ level: "summary", ...s }));
