import assert from "node:assert/strict";
import { CodecError, EncodeError } from "./errors.ts";
import { decodeLock, encodeLock, type Lock } from "./lock.ts";
import { rng, SAFE_CHARS } from "../../tests/helpers/prng.ts";

function codecError(fn: () => unknown, line: number): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof CodecError, String(e));
    assert.equal(e.source, ".0.lock");
    assert.equal(e.line, line, e.message);
    return true;
  });
}

Deno.test("lock: the Escale form, exactly as Escale writes it", () => {
  const text = "lock%1.0\nowner: bob\nmode: r";
  assert.deepEqual(decodeLock(text, ".0.lock"), { owner: "bob", mode: "r" });
  assert.equal(encodeLock({ owner: "bob", mode: "r" }), text);
  assert.deepEqual(decodeLock(new TextEncoder().encode(text + "\n"), ".0.lock"), {
    owner: "bob",
    mode: "r",
  });
});

Deno.test("lock: hop's lines come after owner and mode", () => {
  const lock: Lock = {
    owner: "alice",
    mode: "w",
    acquired: Date.UTC(2026, 10, 22, 19, 4, 33, 123),
    host: "box-1",
    pid: 4242,
    token: "9f0c",
  };
  const text = encodeLock(lock);
  assert.equal(
    text,
    "lock%1.0\nowner: alice\nmode: w\nacquired: 2026-11-22T19:04:33.123Z\nhost: box-1\npid: 4242\ntoken: 9f0c",
  );
  // What an Escale reader looks at: lines 2 and 3 are unchanged.
  assert.deepEqual(text.split("\n").slice(0, 3), ["lock%1.0", "owner: alice", "mode: w"]);
  assert.deepEqual(decodeLock(text, ".0.lock"), lock);
  // Unix milliseconds are accepted too; unknown lines are kept.
  const t2 = "lock%1.0\nowner: a\nmode: r\nacquired: 1795372303123\nfuture: yes";
  assert.deepEqual(decodeLock(t2, ".0.lock"), {
    owner: "a",
    mode: "r",
    acquired: 1795372303123,
    extra: [["future", "yes"]],
  });
});

Deno.test("lock: the legacy one-line form", () => {
  assert.deepEqual(decodeLock("bob", ".0.lock"), { owner: "bob", mode: null });
  assert.deepEqual(decodeLock("bob smith\n", ".0.lock"), { owner: "bob smith", mode: null });
  assert.equal(encodeLock({ owner: "bob", mode: null }), "bob");
  assert.throws(() => encodeLock({ owner: "bob", mode: null, pid: 1 }), EncodeError);
  assert.throws(() => encodeLock({ owner: "lock%x", mode: null }), EncodeError);
});

Deno.test("lock: malformed locks throw CodecError naming the line", () => {
  codecError(() => decodeLock("", ".0.lock"), 1);
  codecError(() => decodeLock("bob\nalice", ".0.lock"), 2);
  codecError(() => decodeLock("lock%2.0\nowner: a\nmode: r", ".0.lock"), 1);
  codecError(() => decodeLock("lock%1.0\nmode: r\nowner: a", ".0.lock"), 2);
  codecError(() => decodeLock("lock%1.0\nowner: a", ".0.lock"), 3);
  codecError(() => decodeLock("lock%1.0\nowner: a\nmode: x", ".0.lock"), 3);
  codecError(() => decodeLock("lock%1.0\nowner: \nmode: r", ".0.lock"), 2);
  codecError(() => decodeLock("lock%1.0\nowner: a\nmode: r\npid: x", ".0.lock"), 4);
  codecError(() => decodeLock("lock%1.0\nowner: a\nmode: r\nacquired: soon", ".0.lock"), 4);
  codecError(() => decodeLock("lock%1.0\nowner: a\nmode: r\ntoken: XYZ", ".0.lock"), 4);
  codecError(() => decodeLock("lock%1.0\nowner: a\nmode: r\nhost: a\nhost: b", ".0.lock"), 5);
  codecError(() => decodeLock("lock%1.0\nowner: a\nmode: r\nmode: w", ".0.lock"), 4);
  codecError(() => decodeLock("lock%1.0\nowner: a\nmode: r\ngarbage", ".0.lock"), 4);
  codecError(() => decodeLock(new Uint8Array([0xc3]), ".0.lock"), 1);
});

Deno.test("property: locks round-trip (500 random cases)", () => {
  const r = rng(0x10c);
  for (let i = 0; i < 500; i++) {
    const owner = r.string(SAFE_CHARS + " é😀", 1, 12).replace(/^ +| +$/g, "") || "x";
    if (r.chance(0.15)) {
      const legacy: Lock = { owner, mode: null };
      assert.deepEqual(decodeLock(encodeLock(legacy), `c${i}`), legacy);
      continue;
    }
    const lock: Lock = { owner, mode: r.pick(["r", "w"] as const) };
    if (r.chance(0.7)) lock.acquired = r.int(0, 4e12);
    if (r.chance(0.7)) lock.host = r.string(SAFE_CHARS, 1, 20);
    if (r.chance(0.7)) lock.pid = r.int(1, 4e6);
    if (r.chance(0.7)) lock.token = r.string("0123456789abcdef", 8, 32);
    if (r.chance(0.2)) {
      lock.extra = [["k" + r.string(SAFE_CHARS, 0, 5), r.string(SAFE_CHARS + " :", 0, 9)]];
    }
    const text = encodeLock(lock);
    assert.ok(!text.endsWith("\n"));
    assert.deepEqual(decodeLock(text, `c${i}`), lock, text);
    assert.equal(encodeLock(decodeLock(text, `c${i}`)), text);
  }
});
