/**
 * Tests of the relay configuration: every escale.conf form read with
 * Escale's meaning (aliases, value spellings, units, secrets as files),
 * "malformed" apart from "not supported by hop", one bad section leaving the
 * others running, and the README's example configuration.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CodecError } from "../codec/errors.ts";
import {
  escaleConfigLocations,
  findEscaleConfig,
  oneOffConfig,
  parseFilters,
  parseRelayConfig,
  parseSize,
  pathSelected,
  type RelayConfig,
} from "./config.ts";

const one = async (body: string, host = "box"): Promise<RelayConfig> =>
  await parseRelayConfig(
    `[s]\nlocal path = /tmp\nrelay path = /tmp\nindex = 1\n${body}`,
    "e.conf",
    {
      hostname: host,
    },
  );

const folder = async (body: string, host = "box") => {
  const r = await one(body, host);
  if (r.errors.length) throw r.errors[0].error;
  return r.folders[0];
};

Deno.test("config: the README's example configuration means what the README says", async () => {
  const readme = await readFile(new URL("../../README.md", import.meta.url), "utf8");
  const block = /```ini\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, "the README has an ini example");
  const { folders, errors, warnings } = await parseRelayConfig(block[1], "README.md", {
    hostname: "box",
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, []);
  const f = folders[0];
  assert.equal(f.name, "documents");
  assert.equal(f.localPath, "/home/alice/Documents");
  assert.equal(f.relayUrl, "ftp://files.example.org:2121/relay");
  assert.equal(f.user, "alice");
  assert.equal(f.clientName, "alice");
  assert.equal(f.mode, "shared");
  assert.equal(f.scheme, "index");
  assert.equal(f.pageDepth, 1);
  assert.equal(f.refreshSeconds, 30);
  assert.equal(f.pullerCount, 2);
  assert.equal(f.checksum, "sha512");
  assert.equal(f.maxPageSize, 200 * 1048576);
  assert.equal(f.lockTimeoutSeconds, 600);
  assert.equal(f.diskQuota, 2 * 1024 ** 3);
  assert.ok(!pathSelected("notes/a.tmp", f));
  assert.ok(!pathSelected("notes/a.bak", f));
  assert.ok(pathSelected("notes/a.txt", f));
  assert.ok(pathSelected("backup/a.txt", f));
});

Deno.test("config: modes, and push only / pull only / read only / write only", async () => {
  assert.equal((await folder("mode = share\n")).mode, "shared");
  assert.equal((await folder("mode = Sharing\n")).mode, "shared");
  assert.equal((await folder("mode = protective\n")).mode, "conservative");
  assert.equal((await folder("synchronization mode = download\n")).mode, "download");
  assert.equal((await folder("pull only = yes\n")).mode, "download");
  assert.equal((await folder("write only = on\n")).mode, "download");
  assert.equal((await folder("push only = true\n")).mode, "upload");
  assert.equal((await folder("read only = 1\n")).mode, "upload");
  assert.equal((await folder("mode = download\npush only = yes\n")).mode, "upload");
  assert.equal((await folder("pull only = no\n")).mode, "shared");
  await assert.rejects(
    () => folder("pull only = yes\npush only = yes\n"),
    /mode cannot be decided/,
  );
  await assert.rejects(
    () => folder("pull only = maybe\n"),
    /malformed.*pull only.*"maybe" is not yes or no/,
  );
  await assert.rejects(() => folder("mode = sideways\n"), /e\.conf:5: malformed.*sideways/);
});

Deno.test("config: index, refresh, lock timeout, puller count, checksum as Escale reads them", async () => {
  const r = await parseRelayConfig("[s]\nlocal path = /tmp\nrelay path = /tmp\n", "e.conf");
  assert.equal(r.folders[0].scheme, "placeholder"); // no index line: Escale's default scheme
  assert.equal((await folder("")).scheme, "index");
  assert.equal((await folder("")).pageDepth, 0);
  const idx = async (v: string) => {
    const f = await parseRelayConfig(
      `[s]\nlocal path = /tmp\nrelay path = /tmp\nindex = ${v}\n`,
      "e",
    );
    if (f.errors.length) throw f.errors[0].error;
    return [f.folders[0].scheme, f.folders[0].pageDepth];
  };
  assert.deepEqual(await idx("yes"), ["index", 0]);
  assert.deepEqual(await idx("no"), ["placeholder", 0]);
  assert.deepEqual(await idx("topdir"), ["index", 1]);
  assert.deepEqual(await idx("top dir:3"), ["index", 3]);
  assert.deepEqual(await idx("topdir:2:9"), ["index", 2]);
  await assert.rejects(() => idx("2"), /not an index setting/);
  await assert.rejects(() => idx("topdir:x"), /levels after/);
  // `compact` is the old name
  const c = await parseRelayConfig(
    "[s]\nlocal path = /tmp\nrelay path = /tmp\ncompact = topdir\n",
    "e",
  );
  assert.equal(c.folders[0].pageDepth, 1);
  // booleans first, as Escale's getters are tried: `refresh = 1` is "yes" (30 s)
  assert.equal((await folder("refresh = 1\n")).refreshSeconds, 30);
  assert.equal((await folder("refresh = 2.5\n")).refreshSeconds, 2.5);
  await assert.rejects(() => folder("refresh = no\n"), /refresh = no.*not supported by hop/);
  await assert.rejects(() => folder("refresh = 5m\n"), /malformed.*"5m" is not yes or a number/);
  assert.equal((await folder("lock timeout = yes\n")).lockTimeoutSeconds, 3 * 86400);
  assert.equal((await folder("lock timeout = 1\n")).lockTimeoutSeconds, 3 * 86400);
  assert.equal((await folder("lock timeout = no\n")).lockTimeoutSeconds, Infinity);
  assert.equal((await folder("lock timeout = 1_200\n")).lockTimeoutSeconds, 1200);
  assert.equal((await folder("pullers = 3\n")).pullerCount, 3);
  assert.equal((await folder("puller count = 0\n")).pullerCount, undefined);
  await assert.rejects(() => folder("puller count = two\n"), /not a whole number/);
  assert.equal((await folder("checksum = no\n")).checksum, "sha512"); // hop still compares content
  assert.equal((await folder("checksum = yes\n")).checksum, "sha512");
  assert.equal((await folder("hash algorithm = SHA256\n")).checksum, "sha256");
  assert.equal((await folder("checksum = sha3_256\n")).checksum, "sha3-256");
  await assert.rejects(() => folder("checksum = crc99\n"), /not a hash algorithm/);
  await assert.rejects(() => folder("mtime = no\n"), /not supported by hop/);
  await assert.rejects(() => folder("pull overwrite = yes\n"), /not supported by hop/);
  assert.equal((await folder("allow page deletion = yes\n")).allowPageDeletion, true);
});

Deno.test("config: sizes are megabytes unless a unit says otherwise", async () => {
  assert.equal((await folder("maxpagesize = 500\n")).maxPageSize, 500 * 1048576);
  assert.equal((await folder("maxpagesize = 1,5 G\n")).maxPageSize, 1.5 * 1024 * 1048576);
  assert.equal((await folder("maxarchivesize = 10Mo\n")).maxPageSize, 10 * 1048576);
  assert.equal((await folder("maxpagesize = 8Mb\n")).maxPageSize, 1048576); // megabits
  assert.equal((await folder("maxpagesize = 512KB\n")).maxPageSize, 512 * 1024);
  assert.equal((await folder("quota = 2 GiB\n")).diskQuota, 2 * 1024 ** 3);
  await assert.rejects(() => folder("maxpagesize = 5 bytes\n"), /unit "bytes"/);
  await assert.rejects(() => folder("maxpagesize = lots\n"), /malformed.*maxpagesize/);
});

Deno.test("config: relay addresses, host directory, protocol and ports", async () => {
  const url = async (body: string) =>
    (await parseRelayConfig(
      `[s]\nlocal path = /tmp\nindex = 1\n${body}`,
      "e",
    )).folders[0]?.relayUrl;
  assert.equal(await url("relay path = /mnt/relay\n"), "file:///mnt/relay");
  assert.equal(
    await url("host address = /mnt\nrelay dir = relay\nprotocol = file\n"),
    "file:///mnt/relay",
  );
  assert.equal(await url("host address = file:///mnt/r\n"), "file:///mnt/r");
  assert.equal(
    await url("host address = ftp://h.example\nhost directory = /srv/relay\n"),
    "ftp://h.example/srv/relay",
  );
  assert.equal(
    await url("address = h.example\nprotocol = ftps\nremote path = a b\n"),
    "ftps://h.example/a%20b",
  );
  assert.equal(
    await url("host address = ftp://h:2121/x\nhost directory = base\n"),
    "ftp://h:2121/base/x",
  );
  assert.equal(await url("host address = h/x\nprotocol = ftp\nport = 2121\n"), "ftp://h:2121/x");
  // WebDAV: webdav is HTTPS, as Escale reads it; http stays HTTP
  assert.equal(
    await url("host address = https://dav.example/r\nprotocol = webdav\n"),
    "https://dav.example/r",
  );
  assert.equal(
    await url("host address = dav.example:8080/r\nprotocol = http\n"),
    "http://dav.example:8080/r",
  );
  // the protocols Escale sends through rclone: the address names the remote
  assert.equal(
    await url("address = myremote\ndirectory = Escale Repository\nprotocol = dropbox\n"),
    "rclone:myremote:Escale Repository",
  );
  assert.equal(
    await url("host address = yandex://remote/Escale Repository\n"),
    "rclone:remote:Escale Repository",
  );
  assert.equal(await url("address = box\nprotocol = sftp\n"), "rclone:box:");
  // sftp and s3 with hop's options: hop's own drivers
  assert.equal(
    await url(
      "host address = files.example.org\nprotocol = sftp\nhost key = SHA256:x\nhost directory = relay\n",
    ),
    "sftp://files.example.org/~/relay",
  );
  assert.equal(
    await url(
      "host address = files.example.org:2222\nprotocol = sftp\nssh key = /dev/null\nhost directory = /srv/relay\n",
    ),
    "sftp://files.example.org:2222/srv/relay",
  );
  assert.equal(
    await url("host address = s3://relays/team\nendpoint = http://127.0.0.1:9000\n"),
    "s3://relays/team?endpoint=http%3A%2F%2F127.0.0.1%3A9000",
  );
  const web = await parseRelayConfig(
    "[w]\nlocal path = /tmp\nindex = 1\nhost address = h/r\nprotocol = googledrive\n",
    "e",
  );
  assert.match(web.errors[0].error.message, /protocol googledrive is not supported by hop/);
  assert.match(web.errors[0].error.hint!, /protocol = rclone/);
  assert.doesNotMatch(web.errors[0].error.message, /malformed/);
  const bad = await parseRelayConfig("[w]\nlocal path = /tmp\nhost address = h\n", "e");
  assert.match(bad.errors[0].error.message, /malformed.*no protocol/);
});

Deno.test("config: secrets and certificates given as file paths; client names", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-cfg-"));
  try {
    await writeFile(join(dir, "pw"), "s3cret\n");
    await writeFile(join(dir, "creds"), "alice:a-pw\nbob:b:pw\n");
    await writeFile(join(dir, "login"), "carol:c-pw\n");
    await writeFile(join(dir, "key"), "0123456789abcdef\n");
    const base = `host address = ftp://h/r\nsecret file = ${dir}/`;
    assert.equal((await folder(`${base}pw\nuser = x\n`)).password, "s3cret");
    const bob = await folder(`${base}creds\nuser = bob\n`);
    assert.deepEqual([bob.user, bob.password], ["bob", "b:pw"]);
    const carol = await folder(`${base}login\n`);
    assert.deepEqual([carol.user, carol.password], ["carol", "c-pw"]);
    await assert.rejects(() => folder(`${base}creds\nuser = dave\n`), /no line for user dave/);
    assert.equal(
      (await folder(`host address = ftp://h/r\npassword = plain;#text\n`)).password,
      "plain;#text",
    );
    const bf = await folder(`encryption = blowfish\nkey = ${dir}/key\n`);
    assert.deepEqual(bf.cipher, {
      name: "blowfish",
      key: new TextEncoder().encode("0123456789abcdef\n"),
    });
    const fernet = "m3r-9qY6P4cA2rP8l8V3s1bQmJ3Ykz0cM1h3c2h2Y2E=";
    assert.equal(
      (await folder(`encryption = yes\npassphrase = ${fernet}\n`)).cipher?.name,
      "fernet",
    );
    await assert.rejects(
      () => folder("encryption = fernet\npassphrase = short\n"),
      /Fernet passphrase must be a key/,
    );
    await assert.rejects(() => folder("encryption = yes\n"), /needs a passphrase/);
    assert.equal((await folder("encryption = hop\npassphrase = words\n")).passphrase, "words");
    assert.equal((await folder("encryption = no\npassphrase = words\n")).cipher, undefined);
    const tls = await folder(`verify ssl = no\nssl version = TLSv1.2\ncertfile = ${dir}/pw\n`);
    assert.deepEqual([tls.insecureTls, tls.tlsVersion, tls.tlsCert, tls.tlsKey], [
      true,
      "TLSv1.2",
      "s3cret\n",
      "s3cret\n",
    ]);
    assert.equal((await folder("client = alice\n")).clientName, "alice");
    assert.equal((await folder("", "box")).clientName, "box");
    assert.equal((await folder("", "localhost")).clientName, "s"); // Escale: the section's name
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("config: include and exclude as Escale applies them", async () => {
  const f = await folder(
    "include = *.md, /notes/\nexclude = *.tmp\nexclude directory = build\nfile extension = md, txt\n",
  );
  assert.ok(pathSelected("a/readme.md", f));
  assert.ok(pathSelected("notes.txt", f)); // a regex rule matches the start of the name
  assert.ok(!pathSelected("a/readme.rst", f)); // extension
  assert.ok(!pathSelected("build/x/readme.md", f)); // excluded folder, at any depth below
  assert.ok(!pathSelected("x.tmp.md", f)); // `*.tmp` matches the start of the name
  const dirs = await folder("include directory = docs\n");
  assert.ok(pathSelected("top.txt", dirs));
  assert.ok(pathSelected("docs/sub/a", dirs));
  assert.ok(!pathSelected("src/a", dirs));
  await assert.rejects(() => folder("exclude = /(/\n"), /not a valid pattern/);
  assert.equal(parseFilters("/^a,b$/").length, 2); // Escale splits on commas first
});

Deno.test("config: one bad section is reported, the others run; unknown options warned", async () => {
  const r = await parseRelayConfig(
    [
      "log file = /var/log/e.log",
      "[good]",
      "local path = /tmp",
      "relay path = /tmp",
      "index = 1",
      "colour = blue",
      "[broken]",
      "local path = /tmp",
      "just words",
      "[odd]",
      "local path = /tmp",
      "relay path = /tmp",
      "index = pages",
      "[later]",
      "path = /tmp",
      "relay path = /tmp/x ; old",
      "index = yes",
    ].join("\n"),
    "e.conf",
    { hostname: "box" },
  );
  assert.deepEqual(r.folders.map((f) => f.name), ["good", "later"]);
  assert.deepEqual(r.errors.map((e) => e.section), ["broken", "odd"]);
  assert.ok(r.errors.every((e) => e.error instanceof CodecError));
  assert.equal(r.folders[1].relayUrl, "file:///tmp/x%20;%20old");
  assert.deepEqual(r.warnings, [
    "e.conf: hop ignores 1 option that change nothing of the data: log file",
    "e.conf: 1 option neither Escale nor hop knows, ignored: colour",
    "e.conf: [later] relay path (line 16) holds a ';' or '#' after the value: Escale (and hop) " +
    "read it as part of the value (configparser has no inline comments); put comments on their own line",
  ]);
  await assert.rejects(() => parseRelayConfig("# only\n", "e.conf"), /no \[section\]/);
});

Deno.test("config: the places Escale looks for its file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-home-"));
  try {
    assert.deepEqual(escaleConfigLocations(dir), [
      join(dir, ".config/escale/escale.conf"),
      join(dir, ".escale/escale.conf"),
      "/etc/escale.conf",
    ]);
    const found = await findEscaleConfig(dir);
    assert.ok(found === undefined || found === "/etc/escale.conf");
    await mkdir(join(dir, ".escale"));
    await writeFile(join(dir, ".escale/escale.conf"), "[a]\n");
    assert.equal(await findEscaleConfig(dir), join(dir, ".escale/escale.conf"));
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("config: sizes and the one-off form", () => {
  assert.equal(parseSize("50000"), 50000);
  assert.equal(parseSize("2k"), 2048);
  assert.equal(parseSize("1.5GiB"), 1.5 * 1024 ** 3);
  assert.throws(() => parseSize("lots"));
  const c = oneOffConfig({ local: "/tmp/f", relay: "/tmp/r", clientName: "me" });
  assert.equal(c.relayUrl, "file:///tmp/r");
  assert.equal(c.mode, "shared");
  assert.equal(c.scheme, "index");
  const f = oneOffConfig({ local: "/tmp/f", relay: "ftp://u:p%40@127.0.0.1:2121/r" });
  assert.equal(f.user, "u");
  assert.equal(f.password, "p@");
  assert.throws(() => oneOffConfig({ local: "/tmp/f", relay: "gopher://x/" }), /not supported/);
  const dav = oneOffConfig({ local: "/tmp/f", relay: "webdavs://u:p@h/r" });
  assert.deepEqual([dav.relayUrl, dav.user, dav.password], ["webdavs://u@h/r", "u", "p"]);
  assert.equal(
    oneOffConfig({ local: "/tmp/f", relay: "rclone:dropbox:r" }).relayUrl,
    "rclone:dropbox:r",
  );
});

Deno.test("config: compression = bzip2 | zstd | none; hop-only relays for the last two", async () => {
  assert.equal((await folder("")).compression, undefined); // bzip2, Escale's
  assert.equal((await folder("compression = bzip2")).compression, undefined);
  assert.equal((await folder("compression = zstd")).compression, "zstd");
  assert.equal((await folder("compression = None")).compression, "none");
  assert.equal(
    (await folder("compression = zstd\nencryption = hop\npassphrase = a long passphrase"))
      .compression,
    "zstd",
  );
  const refused = async (body: string, says: RegExp, hint: RegExp, top = "index = 1\n") => {
    const r = await parseRelayConfig(
      `[s]\nlocal path = /tmp\nrelay path = /tmp\n${top}${body}`,
      "e.conf",
      { hostname: "box" },
    );
    assert.equal(r.folders.length, 0, body);
    const e = r.errors[0].error;
    assert.ok(e instanceof CodecError, String(e));
    assert.match(e.message, says);
    assert.match(e.hint ?? "", hint);
  };
  await refused(
    "compression = gzip",
    /^e\.conf:5: malformed escale\.conf: \[s\] compression: "gzip" is not a compression/,
    /bzip2 \(the default\), zstd or none/,
  );
  await refused(
    "compression = zstd",
    /compression = zstd needs Escale's index scheme/,
    /index = 1/,
    "",
  );
  await refused(
    "compression = none\nencryption = yes\npassphrase = m3r-9qY6P4cA2rP8l8V3s1bQmJ3Ykz0cM1h3c2h2Y2E=",
    /compression = none cannot go with Escale's encryption \(`encryption = yes`\)/,
    /encryption = hop/,
  );
  // bzip2 goes with everything Escale knows
  assert.equal(
    (await parseRelayConfig(
      "[s]\nlocal path = /tmp\nrelay path = /tmp\ncompression = bzip2\n",
      "e.conf",
    )).errors.length,
    0,
  );
  // the one-off form
  assert.equal(
    oneOffConfig({ local: "/tmp/f", relay: "/tmp/r", compression: "zstd" }).compression,
    "zstd",
  );
  assert.equal(
    oneOffConfig({ local: "/tmp/f", relay: "/tmp/r", compression: "bzip2" }).compression,
    undefined,
  );
});
