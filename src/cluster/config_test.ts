/**
 * The cluster config file: every setting, and bad lines reported with file and line.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { CodecError } from "../codec/errors.ts";
import { parseClusterConfig } from "./config.ts";

Deno.test("cluster config: every setting, repeated nodes, relative paths from the file", () => {
  const c = parseClusterConfig(
    [
      "# cluster",
      "[cluster]",
      "root = data",
      "listen = 127.0.0.1:2121",
      "node = ftp://u:p@10.0.0.2:21/x",
      "node = file:///srv/b",
      "replicas = 3",
      "names = blanks",
      "tls cert = cert.pem",
      "tls_key: key.pem",
      "anonymous = yes",
      "",
    ].join("\n"),
    "/etc/hop/cluster.conf",
  );
  assert.deepEqual(c, {
    root: "/etc/hop/data",
    listen: "127.0.0.1:2121",
    nodes: ["ftp://u:p@10.0.0.2:21/x", "file:///srv/b"],
    replicas: 3,
    names: "blanks",
    tls: { cert: "/etc/hop/cert.pem", key: "/etc/hop/key.pem" },
    anonymous: true,
  });
});

Deno.test("cluster config: bad lines name the file and line", () => {
  for (
    const [text, line] of [
      ["replicas = 0", 1],
      ["\nnames = loose", 2],
      ["node = http://x", 1],
      ["colour = blue", 1],
      ["[relay]", 1],
      ["just words", 1],
      ["tls cert = a.pem", 1],
    ] as const
  ) {
    assert.throws(() => parseClusterConfig(text, "c.conf"), (e: unknown) => {
      assert.ok(e instanceof CodecError, String(e));
      assert.equal(e.line, line, text);
      assert.equal(e.source, "c.conf");
      return true;
    });
  }
});

Deno.test("cluster config: the README's example file is read as it says", async () => {
  const readme = await readFile(new URL("../../README.md", import.meta.url), "utf8");
  const at = readme.indexOf("#### The cluster config file");
  const block = /```ini\n([\s\S]*?)```/.exec(readme.slice(at))![1];
  const o = parseClusterConfig(block, "/etc/hop/cluster.conf");
  assert.equal(o.root, "/srv/cluster");
  assert.equal(o.leaseTtlMs, 30_000);
  assert.equal(o.loginTimeoutMs, 60_000);
  assert.equal(o.idleTimeoutMs, 300_000);
  assert.equal(o.minFreeBytes, 1024 ** 3);
  assert.equal(o.stagingQuotaBytes, 50 * 1024 ** 3);
});
