/**
 * The escale.conf codec against Escale's own reader: each text (a corpus of
 * tricky forms, then random ones) is read by Escale 0.7.13's `parse_cfg`
 * (the peer in ../shared/peers, run with Debian's Python) and by
 * `decodeEscaleConf`; both must give the same sections and interpolated
 * values, or both refuse the text.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { confGet, confKeys, decodeEscaleConf } from "../src/codec/escale_conf.ts";
import { rng } from "./helpers/prng.ts";
import { ESCALE_DIR } from "./helpers/escale.ts";

const READER = String.raw`
import json, sys
sys.path.insert(0, sys.argv[1])
from escale.base.config import parse_cfg
out = []
for f in sys.argv[2:]:
    try:
        config, _, _ = parse_cfg(f)
        res = {}
        for s in config.sections():
            try:
                res[s] = dict(config.items(s))
            except Exception as e:
                res[s] = "error: " + type(e).__name__
        out.append(res)
    except Exception as e:
        out.append("error: " + type(e).__name__)
print(json.dumps(out))
`;

type Read = Record<string, Record<string, string> | string> | string;

function ours(text: string): Read {
  const c = decodeEscaleConf(text, "e.conf");
  if (c.defaults.errors.length > 0) return "error";
  const res: Record<string, Record<string, string> | string> = {};
  for (const s of c.sections) {
    if (s.errors.length > 0) return "error"; // Escale refuses the whole file
    try {
      const o: Record<string, string> = {};
      for (const k of confKeys(c, s)) o[k] = confGet(c, s, k)!;
      res[s.name] = o;
    } catch {
      res[s.name] = "error";
    }
  }
  return res;
}

function normalise(r: Read): Read {
  if (typeof r === "string") return "error";
  const out: Record<string, Record<string, string> | string> = {};
  for (const [k, v] of Object.entries(r)) out[k] = typeof v === "string" ? "error" : v;
  return out;
}

const CORPUS = [
  "[a]\nk = v\n",
  "# c\n; d\n\nmode = upload\n[a]\nk: v ; not a comment\n",
  "log file = x\n[a]\nlocal path = /tmp\n  continued\n\n  after blank\n# c\n\n[b]\nk=1\n",
  "[a]\nk =\n  v\n",
  "[a]\nk = 100%%\nj = %(k)s!\n",
  "[a]\nk = 5%\n[b]\nj = 1\n",
  "[DEFAULT]\nx = 1\n[a]\ny = %(x)s\n",
  "[ spaced ] tail\nK = V\n",
  "[a]\n  indented = 1\n    more\nk = 2\n",
  "[a]\nk = 1\nk = 2\n",
  "[a]\nk = 1\n[a]\nj = 2\n",
  "[a]\njust words\n",
  "x = 1\r\n[a]\r\nk = 2\r\n",
  "[a]\nempty =\nnext: 1\n",
  "[a]\nk = v\n\t\n\tw\n",
  "[a]\nk = 1 # tail\n  # comment inside\n  two\n",
  "   [a]\nk = 1\n",
  "[a]\n= v\n",
  "[a]\nk = %(missing)s\n",
  "[a]\nk = %(k)s\n",
  "[a]\nk == v\nj := w\n",
  "[a]\nk: v = w\n",
  "[DEFAULT]\n[a]\nk = 1\n",
];

Deno.test("escale.conf: read as Escale 0.7.13 reads it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hop-conf-interop-"));
  try {
    const texts = [...CORPUS];
    const r = rng(2024);
    const pieces = [
      "[s]",
      "[t]",
      "[DEFAULT]",
      "k = v",
      "K: w",
      "  cont",
      "\tcont2",
      "",
      "# c",
      "; c",
      "  # indented comment",
      "x = %(k)s",
      "y = 50%%",
      "z = a ; b",
      "mode = upload",
      "bad line",
      "k = again",
      "   ",
    ];
    for (let i = 0; i < 150; i++) {
      const n = r.int(1, 10);
      const lines = ["[s]"];
      for (let j = 0; j < n; j++) lines.push(r.pick(pieces));
      if (r.chance(0.5)) lines.unshift(r.pick(["g = 1", "# top", "", "[DEFAULT]"]));
      texts.push(lines.join(r.chance(0.8) ? "\n" : "\r\n") + "\n");
    }
    const files: string[] = [];
    for (const [i, t] of texts.entries()) {
      const f = join(dir, `c${i}.conf`);
      await writeFile(f, t);
      files.push(f);
    }
    const theirs = JSON.parse(
      execFileSync("/usr/bin/python3", ["-c", READER, ESCALE_DIR, ...files], { encoding: "utf8" }),
    ) as Read[];
    for (const [i, t] of texts.entries()) {
      assert.deepEqual(ours(t), normalise(theirs[i]), `text ${i}: ${JSON.stringify(t)}`);
    }
    // the comparison means something: most texts are read, some refused
    const read = theirs.filter((t) => typeof t !== "string").length;
    assert.ok(read > texts.length / 3 && read < texts.length, `${read} of ${texts.length} read`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
