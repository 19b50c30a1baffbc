/**
 * Tests of the relay configuration: escale.conf compatibility, typed errors, filters.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CodecError } from "../codec/errors.ts";
import {
  globToRegExp,
  loadRelayConfig,
  oneOffConfig,
  parseFilters,
  parseRelayConfig,
  parseSize,
  pathSelected,
} from "./config.ts";

const ESCALE_CONF = `log file = /var/log/escale.log
log level = debug

[docs]
local path = /home/me/docs
relay path = /mnt/relay/docs
client name: alice
mode = upload
index = topdir:2
refresh = 60
puller count = 2
checksum = sha512
maxpagesize = 10M
lock timeout = 5m
include = *.md, notes/**
exclude = /\\.tmp$/
passphrase = secret
disk quota = 1G

[ftp]
encryption = on
passphrase = pass phrase
local path = rel/dir
protocol = ftp
host address = ftp.example.org
port = 2121
relay path = /relay
user = bob
password = p#ss;word
`;

Deno.test("an escale.conf is read unchanged, unsupported options named once", async () => {
  const { folders, warnings } = await parseRelayConfig(ESCALE_CONF, "/etc/escale.conf", {
    hostname: "box",
  });
  assert.equal(folders.length, 2);
  const [docs, ftp] = folders;
  assert.equal(docs.localPath, "/home/me/docs");
  assert.equal(docs.relayUrl, "file:///mnt/relay/docs");
  assert.equal(docs.clientName, "alice");
  assert.equal(docs.mode, "upload");
  assert.equal(docs.pageDepth, 2);
  assert.equal(docs.refreshSeconds, 60);
  assert.equal(docs.pullerCount, 2);
  assert.equal(docs.maxPageSize, 10 * 1024 * 1024);
  assert.equal(docs.lockTimeoutSeconds, 300);
  assert.equal(docs.include.length, 2);
  assert.ok(pathSelected("a/b/readme.md", docs));
  assert.ok(pathSelected("notes/x/y.txt", docs));
  assert.ok(!pathSelected("notes/x/y.tmp", docs));
  assert.ok(!pathSelected("src/main.ts", docs));
  assert.equal(ftp.relayUrl, "ftp://ftp.example.org:2121/relay");
  assert.equal(ftp.localPath, "/etc/rel/dir");
  assert.equal(ftp.user, "bob");
  assert.equal(ftp.password, "p#ss;word");
  assert.equal(ftp.clientName, "box");
  assert.equal(ftp.pageDepth, 0);
  assert.equal(ftp.passphrase, "pass phrase");
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    /: options not supported by hop, ignored: log file, log level$/,
  );
  assert.equal(docs.passphrase, undefined);
  assert.equal(docs.diskQuota, 1024 ** 3);
});

Deno.test("bad values are errors naming file and line", async () => {
  const text = "[a]\nlocal path = /x\nrelay path = /y\nmode = sideways\n";
  await assert.rejects(
    () => parseRelayConfig(text, "my.conf"),
    (e: unknown) =>
      e instanceof CodecError && e.line === 4 && /my\.conf:4.*sideways/.test(e.message),
  );
  await assert.rejects(
    () => parseRelayConfig("[a]\nlocal path = /x\nrelay path = /y\nindex = pages\n", "c"),
    (e: unknown) => e instanceof CodecError && e.line === 4,
  );
  await assert.rejects(
    () => parseRelayConfig("[a]\nlocal path = /x\nrelay path=/y\nencryption = on\n", "c"),
    /c:4.*no `passphrase`/,
  );
  await assert.rejects(() => parseRelayConfig("[a]\nrelay path = /y\n", "c"), /local path/);
  await assert.rejects(() => parseRelayConfig("just words\n", "c"), /c:1/);
});

Deno.test("host address URL and password file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-cfg-"));
  try {
    await writeFile(join(dir, "pw"), "s3cret\n");
    const conf = join(dir, "escale.conf");
    await writeFile(
      conf,
      "[x]\nlocal path = here\nhost address = ftps://h.example:990/base\nrelay path = sub\npassword file = pw\n",
    );
    const { folders, warnings } = await loadRelayConfig(conf);
    assert.equal(folders[0].relayUrl, "ftps://h.example:990/base/sub");
    assert.equal(folders[0].password, "s3cret");
    assert.equal(folders[0].localPath, join(dir, "here"));
    assert.deepEqual(warnings, []);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("globs, regexes, sizes, one-off form", () => {
  assert.ok(globToRegExp("*.txt").test("a/b/c.txt"));
  assert.ok(!globToRegExp("*.txt").test("a/b/c.txt.bak"));
  assert.ok(globToRegExp("docs/*.md").test("docs/a.md"));
  assert.ok(!globToRegExp("docs/*.md").test("x/docs/a.md"));
  assert.ok(globToRegExp("build").test("a/build/x.o"));
  assert.ok(globToRegExp("**/x?.[ch]").test("p/q/x1.c"));
  assert.equal(parseFilters("/^a,b$/")[0].re.test("a,b"), true);
  assert.equal(parseSize("50000"), 50000);
  assert.equal(parseSize("2k"), 2048);
  assert.equal(parseSize("1.5GiB"), 1.5 * 1024 ** 3);
  assert.throws(() => parseSize("lots"));
  const c = oneOffConfig({ local: "/tmp/f", relay: "/tmp/r", clientName: "me" });
  assert.equal(c.relayUrl, "file:///tmp/r");
  assert.equal(c.mode, "shared");
  const f = oneOffConfig({ local: "/tmp/f", relay: "ftp://u:p%40@127.0.0.1:2121/r" });
  assert.equal(f.user, "u");
  assert.equal(f.password, "p@");
  assert.throws(() => oneOffConfig({ local: "/tmp/f", relay: "http://x/" }), /not supported/);
});
