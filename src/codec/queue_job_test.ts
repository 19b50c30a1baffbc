import assert from "node:assert/strict";
import { CodecError, EncodeError } from "./errors.ts";
import {
  decodeJob,
  decodeJobs,
  encodeJob,
  encodeJobs,
  escapeField,
  type QueueJob,
  unescapeField,
} from "./queue_job.ts";
import { rng, SAFE_CHARS, TRICKY_CHARS } from "../../tests/helpers/prng.ts";

Deno.test("queue jobs: the three types and their lines", () => {
  const jobs: QueueJob[] = [
    {
      type: "upload",
      path: "RFCs/New%20Folder/rfc 959.txt",
      uid: 1005,
      size: 147316,
      mtime: 1044844761,
      nodes: [],
    },
    {
      type: "replicate",
      link: "RFCs/rfc-0959.txt#",
      size: 147316,
      mtime: 1044844761,
      nodes: ["10.0.0.2:21", "[::1]:2121"],
    },
    { type: "delete", link: ".deleted/260101-000000-rfc-0959.txt#", nodes: ["file:///srv/n1"] },
  ];
  const text = encodeJobs(jobs);
  assert.equal(
    text,
    "upload RFCs/New%2520Folder/rfc%20959.txt 1005 147316 1044844761\n" +
      "replicate RFCs/rfc-0959.txt# 147316 1044844761 10.0.0.2:21,[::1]:2121\n" +
      "delete .deleted/260101-000000-rfc-0959.txt# file:///srv/n1\n",
  );
  assert.deepEqual(decodeJobs(text, "q"), jobs);
  // The original's words.
  assert.deepEqual(decodeJob("store a 1 2 3", "q"), {
    type: "upload",
    path: "a",
    uid: 1,
    size: 2,
    mtime: 3,
    nodes: [],
  });
  assert.deepEqual(decodeJob("remove x#", "q"), { type: "delete", link: "x#", nodes: [] });
  assert.deepEqual(decodeJobs("\n\ndelete a\n\n", "q"), [{ type: "delete", link: "a", nodes: [] }]);
});

Deno.test("queue jobs: malformed lines throw CodecError naming the line", () => {
  const bad = [
    " ",
    "fly a b",
    "upload a 1 2",
    "upload a 1 2 3 n:21 extra",
    "upload a x 2 3",
    "upload a 1 -2 3",
    "upload  1 2 3",
    "replicate a 1 2 not-a-node",
    "replicate a 1 2 h:21,",
    "delete a%2",
    "delete a%zz",
    "delete %C3",
    "delete a\tb",
    "delete",
    "toString a",
  ];
  for (const [i, l] of bad.entries()) {
    assert.throws(() => decodeJobs(`delete ok\n${l}\n`, "jobs.q"), (e) => {
      assert.ok(e instanceof CodecError, `${JSON.stringify(l)}: ${e}`);
      assert.equal(e.source, "jobs.q");
      assert.equal(e.line, 2, `${i}: ${e.message}`);
      return true;
    }, JSON.stringify(l));
  }
  // "" as a whole line is skipped by decodeJobs, but not by decodeJob.
  assert.throws(() => decodeJob("", "q", 7), /q:7:/);
  assert.throws(() => decodeJobs(new Uint8Array([0x64, 0xff]), "q"), CodecError);
});

Deno.test("queue jobs: encoder refuses what a line cannot hold", () => {
  for (
    const job of [
      { type: "delete", link: "", nodes: [] },
      { type: "delete", link: "a", nodes: ["no port"] },
      { type: "upload", path: "a", uid: -1, size: 1, mtime: 1, nodes: [] },
      { type: "replicate", link: "a", size: 1.5, mtime: 1, nodes: [] },
      { type: "delete", link: "\ud800", nodes: [] },
      { type: "fly", link: "a", nodes: [] },
    ]
  ) assert.throws(() => encodeJob(job as QueueJob), EncodeError, JSON.stringify(job));
});

Deno.test("property: jobs round-trip, one line each (1000 random cases)", () => {
  const r = rng(0x10b);
  const nodes = ["10.0.0.1:21", "[fe80::1]:2121", "node-b:21", "file:///tmp/n%20x,y"];
  const alphabet = SAFE_CHARS + TRICKY_CHARS;
  for (let i = 0; i < 1000; i++) {
    const path = r.string(alphabet, 1, 24);
    const ns = Array.from({ length: r.int(0, 3) }, () => r.pick(nodes));
    const job: QueueJob = r.pick([
      (): QueueJob => ({
        type: "upload",
        path,
        uid: r.int(0, 1e6),
        size: r.int(0, 2 ** 52),
        mtime: r.int(-1e9, 4e9),
        nodes: ns,
      }),
      (): QueueJob => ({
        type: "replicate",
        link: path,
        size: r.int(0, 2 ** 52),
        mtime: r.int(-1e9, 4e9),
        nodes: ns,
      }),
      (): QueueJob => ({ type: "delete", link: path, nodes: ns }),
    ])();
    const line = encodeJob(job);
    assert.ok(!/[\n\r\t\0]/.test(line), JSON.stringify(line));
    assert.deepEqual(decodeJob(line, `c${i}`), job, line);
    assert.equal(unescapeField(escapeField(path)), path);
  }
});
