import assert from "node:assert/strict";
import { resolve } from "node:path";
import { UsageError } from "../errors.ts";
import { openDriver, parseAddress } from "./mod.ts";

Deno.test("parseAddress: folders", () => {
  assert.deepEqual(parseAddress("/mnt/relay"), { kind: "folder", path: "/mnt/relay" });
  assert.deepEqual(parseAddress("rel/dir"), { kind: "folder", path: resolve("rel/dir") });
  assert.deepEqual(parseAddress("file:///mnt/my%20relay"), {
    kind: "folder",
    path: "/mnt/my relay",
  });
  assert.deepEqual(parseAddress("file://localhost/mnt/r"), { kind: "folder", path: "/mnt/r" });
  assert.throws(() => parseAddress("file://server/share"), UsageError);
});

Deno.test("parseAddress: ftp and ftps", () => {
  assert.deepEqual(parseAddress("ftp://example.org/relay/"), {
    kind: "ftp",
    secure: false,
    host: "example.org",
    port: 21,
    dir: "relay",
  });
  assert.deepEqual(parseAddress("ftps://bob:p%40ss%3Aw@127.0.0.1:2121/a%20b/c"), {
    kind: "ftp",
    secure: true,
    host: "127.0.0.1",
    port: 2121,
    user: "bob",
    password: "p@ss:w",
    dir: "a b/c",
  });
  assert.equal((parseAddress("ftp://h/%2Fsrv/relay") as { dir: string }).dir, "/srv/relay");
  assert.equal((parseAddress("ftp://h") as { dir: string }).dir, "");
  assert.equal((parseAddress("ftp://[::1]:21/") as { host: string }).host, "::1");
});

Deno.test("parseAddress: sftp, webdav, http(s), s3, rclone", () => {
  assert.deepEqual(parseAddress("sftp://bob@example.org/srv/relay/"), {
    kind: "sftp",
    secure: false,
    host: "example.org",
    port: 22,
    user: "bob",
    dir: "/srv/relay",
  });
  assert.equal((parseAddress("sftp://h:2222/~/relay") as { dir: string }).dir, "relay");
  assert.equal((parseAddress("sftp://h") as { dir: string }).dir, ".");
  assert.deepEqual(parseAddress("webdavs://u:p@cloud.example.org/remote.php/dav/files/u/relay"), {
    kind: "webdav",
    secure: true,
    host: "cloud.example.org",
    port: 443,
    user: "u",
    password: "p",
    dir: "/remote.php/dav/files/u/relay",
  });
  assert.equal((parseAddress("webdav://h/x") as { port: number }).port, 80);
  assert.equal((parseAddress("http://h:8080/") as { dir: string }).dir, "/");
  assert.equal((parseAddress("https://h/a%20b") as { secure: boolean }).secure, true);
  assert.deepEqual(parseAddress("s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9000"), {
    kind: "s3",
    bucket: "bucket",
    prefix: "some/prefix",
    endpoint: "http://127.0.0.1:9000",
  });
  assert.deepEqual(parseAddress("s3://b"), { kind: "s3", bucket: "b", prefix: "" });
  assert.deepEqual(parseAddress("rclone://my remote/Escale Repository"), {
    kind: "rclone",
    remote: "my remote",
    path: "Escale Repository",
  });
  assert.equal((parseAddress("rclone://local//srv/relay/") as { path: string }).path, "/srv/relay");
  assert.deepEqual(parseAddress("rclone:dropbox:relay/x"), {
    kind: "rclone",
    remote: "dropbox",
    path: "relay/x",
  });
});

Deno.test("parseAddress: refusals", () => {
  assert.throws(() => parseAddress(""), UsageError);
  assert.throws(() => parseAddress("gopher://h/x"), /not supported by hop/);
  assert.throws(() => parseAddress("ftp://h/%zz"), /malformed/);
  assert.throws(() => parseAddress("s3:///x"), /bucket/);
});

Deno.test("openDriver: credentials given twice must agree (checked before connecting)", async () => {
  await assert.rejects(
    openDriver("ftp://alice@127.0.0.1:1/x", { user: "bob" }),
    (e) => e instanceof UsageError && /user differs/.test(e.message),
  );
  await assert.rejects(
    openDriver("sftp://alice:one@127.0.0.1:1/x", { password: "two" }),
    (e) => e instanceof UsageError && /password differs/.test(e.message),
  );
});
