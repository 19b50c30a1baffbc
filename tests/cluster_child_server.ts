/**
 * A cluster server in a child process, for the crash tests: serves the cluster given
 * as JSON in argv[2] (serveCluster options) and prints `READY <port> <adminPassword>`.
 *
 * @module
 */
import { serveCluster } from "../src/cluster/serve.ts";

const opts = JSON.parse(Deno.args[0]);
const srv = await serveCluster({ ...opts, engine: { loginFailDelayMs: 0 } });
console.log(`READY ${srv.port} ${srv.adminPassword ?? "-"}`);
