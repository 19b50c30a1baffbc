/**
 * `hop relay status`, `hop audit` and `hop cleanup` on a relay of Escale's
 * default scheme (no `index` line), on a folder relay laid out as Escale and
 * hop leave it: contents waiting and consumed, a placeholder whose content a
 * crashed puller took (its `r` lock left, as Escale 0.7.13 leaves it over
 * FTP), a content without placeholder, a malformed placeholder, this
 * client's own `w` lock from a process that is gone, a fresh lock of another
 * client, a stale temp file. Status and audit name each; a dry-run cleanup
 * changes nothing; cleanup removes what Escale's own repair would, and
 * leaves live locks and unpulled contents.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { encodeLock } from "../src/codec/lock.ts";
import { auditRelay } from "../src/relay/audit.ts";
import { cleanupRelay } from "../src/relay/cleanup.ts";
import { relayStatus } from "../src/relay/command.ts";
import { runHop } from "./helpers/hop.ts";
import { makeDirs } from "./helpers/temp.ts";
import { folderState, put } from "./helpers/trees.ts";
import { recorder, tempDir } from "./relay_helpers.ts";

const sum = (s: string) => createHash("sha512").update(s).digest("hex");
const placeholder = (s: string, t: number, pullers: string[] = []) =>
  [`placeholder%1.0`, `pusher: esc`, `timestamp: ${t}`, `checksum: ${sum(s)}`, `---pullers---`]
    .concat(pullers).join("\n");
const T = 1_600_000_000;

/** Every file of the relay tree (hidden ones too), path -> sha256. */
async function relayState(relay: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string) => {
    for (const [name, v] of Object.entries(await folderState(dir))) {
      if (v === "dir") await walk(join(dir, name), `${prefix}${name}/`);
      else out[prefix + name] = v;
    }
  };
  await walk(relay, "");
  return out;
}

Deno.test("placeholder relay: status, audit and cleanup name and remove what Escale's repair would", async () => {
  const [dir, clean] = await tempDir("hop-placeholder-maint-");
  try {
    const [relay, hop] = await makeDirs(dir, ["relay", "hop"]);
    const configFile = join(dir, "hop.conf");
    await writeFile(
      configFile,
      `[docs]\nlocal path = ${hop}\nrelay path = ${relay}\nprotocol = file\nclient name = hop\n` +
        `lock timeout = 600\n`,
    );
    const old = Date.now() / 1000 - 7200;
    // waiting for hop
    await put(relay, "a.txt", "a\n");
    await put(relay, ".a.txt.placeholder", placeholder("a\n", T));
    // pulled by hop, content left (a puller that stopped before removing it)
    await put(relay, "b.txt", "b\n");
    await put(relay, ".b.txt.placeholder", placeholder("b\n", T, ["hop"]));
    // a puller crashed: content gone, its r lock left long ago
    await put(relay, "sub/.c.txt.placeholder", placeholder("c\n", T));
    await put(relay, "sub/.c.txt.lock", "lock%1.0\nowner: esc\nmode: r", old);
    // content without placeholder
    await put(relay, "d.txt", "d\n");
    // malformed placeholder
    await put(relay, "e.txt", "e\n");
    await put(relay, ".e.txt.placeholder", "placeholder%1.0\npusher esc\n---pullers---");
    // this client's w lock from a process that is gone: a cut push
    await put(relay, "f.txt", "f, half\n");
    await put(relay, ".f.txt.placeholder", placeholder("f\n", T));
    await put(
      relay,
      ".f.txt.lock",
      encodeLock({
        owner: "hop",
        mode: "w",
        acquired: Date.now(),
        host: hostname(),
        pid: 2 ** 22 + 7,
      }),
    );
    // another client's fresh lock: a transfer under way
    await put(relay, "g.txt", "g\n");
    await put(relay, ".g.txt.placeholder", placeholder("g\n", T));
    await put(relay, ".g.txt.lock", "lock%1.0\nowner: esc\nmode: w");
    // a temp file of a write cut long ago
    await put(relay, "sub/.hop-tmp-x.txt~0123456789ab", "cut", old);

    const st = await relayStatus({ configFile, reporter: recorder() });
    const pending = st[0].pending!;
    assert.deepEqual(pending.map((x) => x.path), [
      "a.txt",
      "b.txt",
      "d.txt",
      "e.txt",
      "f.txt",
      "g.txt",
      "sub/c.txt",
    ]);
    const byPath = Object.fromEntries(pending.map((x) => [x.path, x]));
    assert.equal(byPath["a.txt"].content?.wouldPull, true);
    assert.equal(byPath["a.txt"].content?.pusher, "esc");
    assert.equal(byPath["b.txt"].content?.wouldPull, false);
    assert.deepEqual(byPath["b.txt"].content?.pullers, ["hop"]);
    assert.equal(byPath["d.txt"].content?.problem, "no placeholder");
    assert.match(byPath["e.txt"].content!.problem!, /malformed Escale placeholder/);
    assert.equal(byPath["sub/c.txt"].content, undefined);
    assert.equal(byPath["sub/c.txt"].lock?.owner, "esc");
    assert.equal(byPath["sub/c.txt"].lock?.mode, "r");
    assert.ok(byPath["sub/c.txt"].lock!.ageSeconds! >= 7100);
    assert.equal(byPath["g.txt"].lock?.owner, "esc");
    // the CLI says the same, one line per path
    const cli = await runHop(["relay", "status", "-c", configFile]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(
      cli.stdout,
      /a\.txt: 2 byte\(s\) pushed by esc \(mtime 1600000000\), pulled by \[\], this client would pull it/,
    );
    assert.match(cli.stdout, /sub\/c\.txt: locked \(r\) by esc \d+ s ago/);

    const found = await auditRelay({ configFile, reporter: recorder() });
    const brief = found.map((f) => `${f.severity} ${f.kind} ${f.name}`).sort();
    assert.deepEqual(brief, [
      "error data-without-placeholder d.txt",
      "error unreadable .e.txt.placeholder",
      "info lock .f.txt.lock",
      "info lock .g.txt.lock",
      "warning lock sub/.c.txt.lock",
    ]);
    assert.match(
      found.find((f) => f.name === "sub/.c.txt.lock")!.detail,
      /r lock of sub\/c\.txt held by esc, \d+ s old: beyond lock timeout \(600 s\); its holder stopped in a pull/,
    );

    const before = await relayState(relay);
    const dry = await cleanupRelay({ configFile, dryRun: true, reporter: recorder() });
    assert.deepEqual(await relayState(relay), before, "a dry run changes nothing");
    const planned = dry.map((a) => `${a.kind} ${a.name}`).sort();
    assert.deepEqual(planned, [
      "consumed-file b.txt",
      "stale-lock .f.txt.lock",
      "stale-lock sub/.c.txt.lock",
      "temp-file sub/.hop-tmp-x.txt~0123456789ab",
    ]);
    assert.ok(dry.every((a) => !a.done));
    const done = await cleanupRelay({ configFile, reporter: recorder() });
    assert.deepEqual(done.map((a) => `${a.kind} ${a.name}`).sort(), planned);
    assert.ok(done.every((a) => a.done), JSON.stringify(done));
    assert.match(done.find((a) => a.name === ".f.txt.lock")!.detail, /cut push rolled back/);
    assert.deepEqual(Object.keys(await relayState(relay)).sort(), [
      ".a.txt.placeholder",
      ".b.txt.placeholder",
      ".e.txt.placeholder",
      ".g.txt.lock",
      ".g.txt.placeholder",
      "a.txt",
      "d.txt",
      "e.txt",
      "g.txt",
      "sub/.c.txt.placeholder",
    ]);
    // with the lock gone, the version nobody got is named
    const after = await auditRelay({ configFile, reporter: recorder() });
    assert.ok(
      after.some((f) =>
        f.kind === "placeholder-without-data" && f.name === "sub/.c.txt.placeholder"
      ),
      JSON.stringify(after),
    );
    assert.deepEqual(await cleanupRelay({ configFile, reporter: recorder() }), []);
  } finally {
    await clean();
  }
});
