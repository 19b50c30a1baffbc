import assert from "node:assert/strict";
import {
  conflictName,
  decideIncoming,
  decideIndexed,
  type RelayVersion,
  supersedes,
} from "./reconcile.ts";

const hop = (checksum: string, base: string | null): RelayVersion => ({
  checksum,
  timestamp: 1,
  pusher: "h",
  base,
});
const escale = (checksum: string): RelayVersion => ({
  checksum,
  timestamp: 1,
  pusher: "e",
  base: undefined,
});

Deno.test("supersedes: a hop version knew ours by its base line, an Escale one unless ours is unconfirmed", () => {
  assert.ok(supersedes(hop("x", "b"), { base: "b" }));
  assert.ok(!supersedes(hop("x", "other"), { base: "b" }));
  assert.ok(supersedes(hop("x", "w"), { base: "b", wanted: "w" }));
  assert.ok(!supersedes(hop("x", null), { base: "b" }));
  assert.ok(!supersedes(hop("x", "b"), {})); // nothing agreed: no relation
  assert.ok(supersedes(escale("x"), { base: "b" }));
  assert.ok(supersedes(escale("x"), { base: "b", unconfirmed: "older" }));
  assert.ok(!supersedes(escale("x"), { base: "b", unconfirmed: "b" }));
});

Deno.test("decideIndexed: never push over a version the relay changed since we agreed", () => {
  // same content: nothing to do, whatever the base
  assert.equal(decideIndexed(hop("l", null), { local: "l" }), "agree");
  // relay unchanged since agreed
  assert.equal(decideIndexed(hop("b", null), { local: "l", base: "b" }), "push");
  assert.equal(decideIndexed(hop("b", null), { base: "b" }), "delete");
  // relay changed, we did not: take theirs
  assert.equal(decideIndexed(hop("r", "b"), { local: "b", base: "b" }), "fetch");
  assert.equal(decideIndexed(escale("r"), { local: "b", base: "b" }), "fetch");
  // deleted here, changed there: the change wins
  assert.equal(decideIndexed(hop("r", "b"), { base: "b" }), "fetch");
  // never had it
  assert.equal(decideIndexed(escale("r"), {}), "fetch");
  // both changed: ours becomes a copy, theirs keeps the name
  assert.equal(decideIndexed(hop("r", "b"), { local: "l", base: "b" }), "keep-fetch");
  assert.equal(decideIndexed(escale("r"), { local: "l", base: "b" }), "keep-fetch");
  assert.equal(decideIndexed(escale("r"), { local: "l" }), "keep-fetch");
  // Escale replaced a version we pushed and it was never seen to have
  assert.equal(
    decideIndexed(escale("r"), { local: "b", base: "b", unconfirmed: "b" }),
    "keep-fetch",
  );
  // a hop version made from something we never had, while ours is unchanged
  assert.equal(decideIndexed(hop("r", "x"), { local: "b", base: "b" }), "keep-fetch");
});

Deno.test("decideIncoming: the incoming version takes the name; conservative keeps ours", () => {
  assert.equal(decideIncoming(hop("r", "b"), { local: "r" }, false), "agree");
  assert.equal(decideIncoming(hop("r", "b"), {}, false), "write");
  assert.equal(decideIncoming(hop("r", "b"), { local: "b", base: "b" }, false), "overwrite");
  assert.equal(decideIncoming(escale("r"), { local: "b", base: "b" }, false), "overwrite");
  assert.equal(decideIncoming(hop("r", "b"), { local: "l", base: "b" }, false), "keep-write");
  assert.equal(
    decideIncoming(escale("r"), { local: "b", base: "b", unconfirmed: "b" }, false),
    "keep-write",
  );
  assert.equal(decideIncoming(hop("r", "b"), { local: "b", base: "b" }, true), "copy-incoming");
  assert.equal(decideIncoming(hop("r", "b"), {}, true), "write");
});

Deno.test("conflictName: the version's client and mtime, so holders of one version name it alike", () => {
  assert.equal(conflictName("a.txt", "bob", 1_700_000_000), "a.conflict-bob-20231114-221320.txt");
  assert.equal(
    conflictName("d/e/notes", "al ice", 0, 2),
    "d/e/notes.conflict-al_ice-19700101-000000-2",
  );
  assert.equal(conflictName(".hidden", "x", 0), ".hidden.conflict-x-19700101-000000");
  // a version that names no pusher (Escale's pre-0.5 placeholders)
  assert.equal(conflictName("a.txt", "", 0), "a.conflict-unknown-19700101-000000.txt");
  assert.equal(
    conflictName("dir.v2/file.tar.gz", "x", 0),
    "dir.v2/file.tar.conflict-x-19700101-000000.gz",
  );
});
