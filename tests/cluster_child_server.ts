/**
 * A cluster server in a child process, for the crash and default tests: serves the
 * cluster given as JSON in argv[0] (serveCluster options), reports through the normal
 * reporter, then prints `READY <port> <adminPassword or ->`.
 *
 * @module
 */
import { serveCluster } from "../src/cluster/serve.ts";
import { createReporter } from "../src/ui/report.ts";

// Inert when loaded by `deno test` (no arguments there).
if (Deno.args.length > 0) {
  const opts = JSON.parse(Deno.args[0]);
  const srv = await serveCluster({
    ...opts,
    reporter: createReporter(),
    engine: { loginFailDelayMs: 0 },
  });
  console.log(`READY ${srv.port} ${srv.adminPassword ?? "-"}`);
}
