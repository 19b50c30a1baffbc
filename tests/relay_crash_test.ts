/**
 * Crash injection (`helpers/relay_crash.ts`) on a folder relay and a pyftpdlib relay.
 *
 * @module
 */
import { startPyftpdlib } from "./helpers/ftp_servers.ts";
import { CONVERGE_MS, crashRounds } from "./helpers/relay_crash.ts";
import { tempDir } from "./relay_helpers.ts";

Deno.test("folder relay: three clients killed at random points converge, no file lost", async () => {
  const [dir, clean] = await tempDir("hop-crash-relay-");
  try {
    await crashRounds(dir, dir, "folder", CONVERGE_MS);
  } finally {
    await clean();
  }
});

Deno.test("pyftpdlib relay: three clients killed at random points converge, no file lost", async () => {
  const [root, clean] = await tempDir("hop-crash-ftp-");
  const srv = await startPyftpdlib({ root });
  try {
    await crashRounds(root, srv.loginUrl(), "pyftpdlib", CONVERGE_MS);
  } finally {
    await srv.stop();
    await clean();
  }
});
