import assert from "node:assert/strict";
import { resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { openBackend } from "./mod.ts";
import { parseRelayAddress } from "./url.ts";

Deno.test("parseRelayAddress: folders", () => {
  assert.deepEqual(parseRelayAddress("/mnt/relay"), { kind: "folder", path: "/mnt/relay" });
  assert.deepEqual(parseRelayAddress("rel/dir"), { kind: "folder", path: resolve("rel/dir") });
  assert.deepEqual(parseRelayAddress("file:///mnt/my%20relay"), {
    kind: "folder",
    path: "/mnt/my relay",
  });
  assert.deepEqual(parseRelayAddress("file://localhost/mnt/r"), { kind: "folder", path: "/mnt/r" });
  assert.throws(() => parseRelayAddress("file://server/share"), UsageError);
});

Deno.test("parseRelayAddress: ftp and ftps", () => {
  assert.deepEqual(parseRelayAddress("ftp://example.org/relay/"), {
    kind: "ftp",
    secure: false,
    host: "example.org",
    port: 21,
    dir: "relay",
  });
  assert.deepEqual(parseRelayAddress("ftps://bob:p%40ss%3Aw@127.0.0.1:2121/a%20b/c"), {
    kind: "ftp",
    secure: true,
    host: "127.0.0.1",
    port: 2121,
    user: "bob",
    password: "p@ss:w",
    dir: "a b/c",
  });
  assert.equal((parseRelayAddress("ftp://h/%2Fsrv/relay") as { dir: string }).dir, "/srv/relay");
  assert.equal((parseRelayAddress("ftp://h") as { dir: string }).dir, "");
  assert.equal((parseRelayAddress("ftp://[::1]:21/") as { host: string }).host, "::1");
});

Deno.test("parseRelayAddress: refusals", () => {
  assert.throws(() => parseRelayAddress(""), UsageError);
  assert.throws(() => parseRelayAddress("sftp://h/x"), /not supported/);
  assert.throws(() => parseRelayAddress("ftp://h/%zz"), /malformed/);
});

Deno.test("openBackend: credentials given twice must agree (checked before connecting)", async () => {
  await assert.rejects(
    openBackend("ftp://alice@127.0.0.1:1/x", { user: "bob" }),
    (e) => e instanceof UsageError && /user differs/.test(e.message),
  );
  await assert.rejects(
    openBackend("ftp://alice:one@127.0.0.1:1/x", { password: "two" }),
    (e) => e instanceof UsageError && /password differs/.test(e.message),
  );
});
