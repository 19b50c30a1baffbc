import assert from "node:assert/strict";
import { CodecError, EncodeError } from "./errors.ts";
import { decodeLease, encodeLease, type ServeLease } from "./lease.ts";
import { rng } from "../../tests/helpers/prng.ts";

const base: ServeLease = {
  host: "box-1",
  instance: "3f9a0c1d2e4b",
  pid: 4242,
  processStart: 1234567,
  started: Date.UTC(2026, 10, 22, 19, 4, 33, 123),
  renewed: Date.UTC(2026, 10, 22, 19, 9, 3, 456),
  ttl: 30000,
  token: "9f0c1234abcd",
  extra: [],
};

function codecError(fn: () => unknown, line: number): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof CodecError, String(e));
    assert.equal(e.line, line, e.message);
    return true;
  });
}

Deno.test("lease: the text form, exactly", () => {
  const text = encodeLease(base);
  assert.equal(
    text,
    "hop-serve-lease 1\nhost: box-1\ninstance: 3f9a0c1d2e4b\npid: 4242\nprocess-start: 1234567\n" +
      "started: 2026-11-22T19:04:33.123Z\nrenewed: 2026-11-22T19:09:03.456Z\nttl: 30000\n" +
      "token: 9f0c1234abcd\n",
  );
  assert.deepEqual(decodeLease(text, "serve.lease"), base);
  assert.deepEqual(decodeLease(new TextEncoder().encode(text), "serve.lease"), base);
});

Deno.test("lease: unknown process start, unknown lines kept in order, any line order", () => {
  const l: ServeLease = { ...base, processStart: null, extra: [["future", "a b"], ["x", ""]] };
  const text = encodeLease(l);
  assert.match(text, /process-start: -\n/);
  assert.deepEqual(decodeLease(text, "s"), l);
  const shuffled = text.split("\n").filter((x) => x);
  const [head, ...rest] = shuffled;
  const r = rng(7);
  for (let i = rest.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [rest[i], rest[j]] = [rest[j], rest[i]];
  }
  const back = decodeLease([head, ...rest].join("\n"), "s");
  assert.deepEqual({ ...back, extra: [] }, { ...l, extra: [] });
  assert.equal(back.extra.length, 2);
});

Deno.test("lease: random leases round-trip", () => {
  const r = rng(11);
  for (let i = 0; i < 300; i++) {
    const hex = () => r.string("0123456789abcdef", 4, 40);
    const l: ServeLease = {
      host: r.string("abcdefghij-.0123456789 ", 1, 30),
      instance: hex(),
      pid: r.int(1, 4_000_000),
      processStart: r.chance(0.2) ? null : r.int(0, 2 ** 40),
      started: r.int(0, 4_000_000_000_000),
      renewed: r.int(0, 4_000_000_000_000),
      ttl: r.int(0, 600_000),
      token: hex(),
      extra: r.chance(0.3) ? [["k" + r.int(0, 9), r.string("ab :c", 0, 8)]] : [],
    };
    assert.deepEqual(decodeLease(encodeLease(l), "s"), l);
  }
});

Deno.test("lease: malformed leases throw CodecError naming the line", () => {
  const good = encodeLease(base).split("\n");
  const swap = (i: number, line: string) => good.map((l, k) => k === i ? line : l).join("\n");
  codecError(() => decodeLease("", "s"), 1);
  codecError(() => decodeLease("lock%1.0\n", "s"), 1);
  codecError(() => decodeLease(swap(1, "host"), "s"), 2);
  codecError(() => decodeLease(swap(1, "host: "), "s"), 2);
  codecError(() => decodeLease(swap(2, "instance: XYZ"), "s"), 3);
  codecError(() => decodeLease(swap(3, "pid: -1"), "s"), 4);
  codecError(() => decodeLease(swap(4, "process-start: soon"), "s"), 5);
  codecError(() => decodeLease(swap(5, "started: yesterday"), "s"), 6);
  codecError(() => decodeLease(swap(6, "renewed: 2026-11-22 19:09:03"), "s"), 7);
  codecError(() => decodeLease(swap(7, "ttl: 1.5"), "s"), 8);
  codecError(() => decodeLease(swap(8, "token: "), "s"), 9);
  codecError(() => decodeLease(swap(8, "pid: 7"), "s"), 9); // duplicate pid, no token
  codecError(() => decodeLease(good.filter((_, i) => i !== 8).join("\n"), "s"), 8);
  codecError(() => decodeLease(new Uint8Array([0x68, 0xff, 0x0a]), "s"), 1);
});

Deno.test("lease: values the format cannot hold are refused", () => {
  assert.throws(() => encodeLease({ ...base, host: "" }), EncodeError);
  assert.throws(() => encodeLease({ ...base, host: "a\nb" }), EncodeError);
  assert.throws(() => encodeLease({ ...base, token: "XY" }), EncodeError);
  assert.throws(() => encodeLease({ ...base, pid: -3 }), EncodeError);
  assert.throws(() => encodeLease({ ...base, renewed: NaN }), EncodeError);
  assert.throws(() => encodeLease({ ...base, extra: [["pid", "1"]] }), EncodeError);
  assert.throws(() => encodeLease({ ...base, extra: [["a", "b\nc"]] }), EncodeError);
});
