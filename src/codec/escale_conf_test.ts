/**
 * Tests of the escale.conf codec: configparser's syntax with Escale's
 * settings, round trips, and malformed input (faults kept per section).
 * `tests/escale_conf_interop_test.ts` compares it with Escale's own reader.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CodecError, EncodeError } from "./errors.ts";
import {
  confGet,
  confKeys,
  type ConfText,
  decodeEscaleConf,
  encodeEscaleConf,
  type EscaleConf,
} from "./escale_conf.ts";
import { rng } from "../../tests/helpers/prng.ts";

/** Every section's interpolated options (defaults included), as configparser's items(). */
function items(c: EscaleConf): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const s of c.sections) {
    out[s.name] = {};
    for (const k of confKeys(c, s).sort()) out[s.name][k] = confGet(c, s, k)!;
  }
  return out;
}

Deno.test("escale.conf: global lines, both delimiters, no inline comments, case of keys", () => {
  const c = decodeEscaleConf(
    [
      "# a comment before anything",
      "",
      "log file = /var/log/escale.log",
      "Mode: upload",
      "[docs]",
      "local path = ~/docs   ; not a comment",
      "host address=ftp://h/relay # kept too",
      "  ; a comment line",
      "password = p#ss;word",
      "[Other.Section]",
      "local_path: x",
    ].join("\n"),
    "e.conf",
  );
  assert.deepEqual(c.defaults.errors, []);
  assert.deepEqual(items(c), {
    docs: {
      "host address": "ftp://h/relay # kept too",
      "local path": "~/docs   ; not a comment",
      "log file": "/var/log/escale.log",
      mode: "upload",
      password: "p#ss;word",
    },
    "Other.Section": { local_path: "x", "log file": "/var/log/escale.log", mode: "upload" },
  });
  assert.equal(c.sections[0].line, 5);
  assert.equal(c.sections[0].options.get("password")!.line, 9);
});

Deno.test("escale.conf: continuation lines, blank lines inside values, comments skipped", () => {
  const c = decodeEscaleConf(
    "[a]\nexclude = *.tmp,\n  *.bak\n\n  # skipped\n  /x$/\n\nnext = 1\n  \n\n",
    "e.conf",
  );
  assert.equal(confGet(c, c.sections[0], "exclude"), "*.tmp,\n*.bak\n\n/x$/");
  assert.equal(confGet(c, c.sections[0], "next"), "1");
  // an empty value continued
  const d = decodeEscaleConf("[a]\nk =\n  v\n", "e.conf");
  assert.equal(confGet(d, d.sections[0], "k"), "\nv");
  // CRLF and CR line ends, as Python's text mode reads them
  const e = decodeEscaleConf("[a]\r\nk = 1\rj = 2\r\n", "e.conf");
  assert.deepEqual(items(e), { a: { j: "2", k: "1" } });
});

Deno.test("escale.conf: interpolation as configparser's get does it", () => {
  const c = decodeEscaleConf(
    "root = /srv\n[a]\nlocal path = %(root)s/a\npct = 100%%\nhome = %(ROOT)s\nbad = 5%\n",
    "e.conf",
  );
  const a = c.sections[0];
  assert.equal(confGet(c, a, "local path"), "/srv/a");
  assert.equal(confGet(c, a, "pct"), "100%");
  assert.equal(confGet(c, a, "home"), "/srv");
  assert.throws(
    () => confGet(c, a, "bad"),
    (e: unknown) =>
      e instanceof CodecError && e.line === 6 && /'%' must be followed/.test(e.message),
  );
  const loop = decodeEscaleConf("[a]\nx = %(y)s\ny = %(x)s\nz = %(nope)s\n", "e.conf");
  assert.throws(() => confGet(loop, loop.sections[0], "x"), /nest too deep/);
  assert.throws(() => confGet(loop, loop.sections[0], "z"), /names no option/);
});

Deno.test("escale.conf: faults stay in their section; defaults' faults concern all", () => {
  const c = decodeEscaleConf(
    "[good]\nk = 1\n[bad]\njust words\nk = 1\nk = 2\n[good2]\nk = 3\n[bad]\nj = 4\n",
    "e.conf",
  );
  const [good, bad, good2] = c.sections;
  assert.deepEqual(good.errors, []);
  assert.deepEqual(good2.errors, []);
  assert.equal(bad.errors.length, 3);
  assert.deepEqual(bad.errors.map((e) => e.line), [4, 6, 9]);
  assert.match(bad.errors[0].message, /e\.conf:4: malformed escale\.conf: expected "key = value"/);
  assert.match(bad.errors[1].message, /option "k" appears twice/);
  assert.match(bad.errors[2].message, /section \[bad\] appears twice/);
  const d = decodeEscaleConf("oops\n[a]\nk = 1\n", "e.conf");
  assert.equal(d.defaults.errors.length, 1);
  const bom = decodeEscaleConf("\ufeff[a]\nk = 1\n", "e.conf");
  assert.match(bom.defaults.errors[0].message, /byte order mark/);
  assert.throws(() => decodeEscaleConf(new Uint8Array([0x5b, 0xff, 0x5d]), "e.conf"), CodecError);
});

Deno.test("escale.conf: [DEFAULT] written out, section names kept as written", () => {
  const c = decodeEscaleConf("[DEFAULT]\nmode = download\n[ a.b ] trailing\nk = v\n", "e.conf");
  assert.deepEqual(items(c), { " a.b ": { k: "v", mode: "download" } });
});

Deno.test("escale.conf: encode then decode gives the same configuration", () => {
  const text: ConfText = {
    defaults: [["log file", "/tmp/x.log"], ["mode", "upload"]],
    sections: [
      { name: "docs", options: [["local path", "/home/me/docs"], ["exclude", "*.tmp,\n/x$/"]] },
      { name: "weird]name", options: [["k", "a\n\nb"], ["empty", ""], ["cont", "\nv"]] },
    ],
  };
  const round = (t: ConfText) => {
    const c = decodeEscaleConf(encodeEscaleConf(t), "e.conf");
    assert.deepEqual(c.defaults.errors, []);
    for (const s of c.sections) assert.deepEqual(s.errors, []);
    assert.deepEqual([...c.defaults.options.values()].map((o) => [o.key, o.value]), t.defaults);
    assert.deepEqual(
      c.sections.map((s) => ({
        name: s.name,
        options: [...s.options.values()].map((o) => [o.key, o.value]),
      })),
      t.sections,
    );
  };
  round(text);
  // random values of printable characters, spaces inside, several lines
  const r = rng(9);
  const rnd = () => r.next();
  const word = (n: number) => r.string("abcXYZ019 %=:;#[]/.-_\u00e9\u4e2d", n, n);
  for (let t = 0; t < 200; t++) {
    const value = () => {
      const lines = Array.from(
        { length: 1 + Math.floor(rnd() * 3) },
        () => word(Math.floor(rnd() * 8)).trim(),
      );
      const v = lines.join("\n").replace(/\s+$/, "");
      return v.split("\n").slice(1).some((l) => /^[#;]/.test(l))
        ? v.replaceAll("\n", " ").trim()
        : v;
    };
    const key = () => ("k" + word(4).replace(/[=:#;[\]]/g, "")).toLowerCase().trim();
    const opts = (): [string, string][] => {
      const m = new Map<string, string>();
      for (let i = 0; i < 4; i++) m.set(key(), value());
      return [...m];
    };
    round({
      defaults: opts(),
      sections: [{ name: "s" + t, options: opts() }, { name: "t", options: opts() }],
    });
  }
  assert.throws(() => encodeEscaleConf({ defaults: [["a=b", "1"]], sections: [] }), EncodeError);
  assert.throws(() => encodeEscaleConf({ defaults: [["a", " 1"]], sections: [] }), EncodeError);
  assert.throws(() => encodeEscaleConf({ defaults: [["a", "1\n#2"]], sections: [] }), EncodeError);
  assert.throws(
    () => encodeEscaleConf({ defaults: [], sections: [{ name: "a\nb", options: [] }] }),
    EncodeError,
  );
});
