import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { knownHostKeys } from "./known_hosts.ts";

const K1 = "AAAAC3NzaC1lZDI1NTE5AAAAIAABXSf9GOBPyP/VxE4FpwEg/lyQm/vjLY1OXNKd4zNj";
const K2 = "AAAAC3NzaC1lZDI1NTE5AAAAIBDZqAA7al1JbemJI3XKaHVNa714H6KfkYTal9AiOne/";

Deno.test("known_hosts: plain names, ports, wildcards, negation", () => {
  const text = [
    "# comment",
    `example.org,10.0.0.2 ssh-ed25519 ${K1} alice@laptop`,
    `[example.org]:2222 ssh-ed25519 ${K2}`,
    `*.lan,!bad.lan ssh-ed25519 ${K2}`,
    "",
    "garbage",
  ].join("\n");
  assert.deepEqual(knownHostKeys(text, "example.org", 22), [K1]);
  assert.deepEqual(knownHostKeys(text, "10.0.0.2", 22), [K1]);
  assert.deepEqual(knownHostKeys(text, "example.org", 2222), [K2]);
  assert.deepEqual(knownHostKeys(text, "nas.lan", 22), [K2]);
  assert.deepEqual(knownHostKeys(text, "bad.lan", 22), []);
  assert.deepEqual(knownHostKeys(text, "other.org", 22), []);
});

Deno.test("known_hosts: hashed names, revoked keys, CA lines", () => {
  const salt = Buffer.from("0123456789abcdefghij");
  const hash = createHmac("sha1", salt).update("[127.0.0.1]:2200").digest("base64");
  const text = [
    `|1|${salt.toString("base64")}|${hash} ssh-ed25519 ${K1}`,
    `@cert-authority *.org ssh-ed25519 ${K2}`,
    `@revoked * ssh-ed25519 ${K2}`,
    `example.org ssh-ed25519 ${K2}`,
  ].join("\n");
  assert.deepEqual(knownHostKeys(text, "127.0.0.1", 2200), [K1]);
  assert.deepEqual(knownHostKeys(text, "127.0.0.1", 22), []);
  assert.deepEqual(knownHostKeys(text, "example.org", 22), [], "revoked wins");
});
