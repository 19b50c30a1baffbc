import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { watchStalledWrites } from "./stall.ts";

/** A server that accepts and never reads (a frozen peer); its address and its stop. */
async function deafServer(): Promise<{ port: number; stop: () => Promise<void> }> {
  const peers: net.Socket[] = [];
  const srv = net.createServer((s) => {
    s.pause();
    peers.push(s);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    stop: async () => {
      for (const s of peers) s.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

/** `count` chunks of `size` bytes, as a stream. */
function chunks(size: number, count: number): Readable {
  const chunk = Buffer.alloc(size);
  return Readable.from((function* () {
    for (let i = 0; i < count; i++) yield chunk;
  })());
}

/** Connects to `port` and resolves once connected. */
function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

Deno.test("a write stuck on a peer that reads nothing ends in timeout, on every runtime", async () => {
  const server = await deafServer();
  const sock = await connect(server.port);
  try {
    const timedOut = new Promise<string>((resolve) => {
      sock.setTimeout(300, () => {
        resolve("timeout");
        sock.destroy();
      });
    });
    sock.on("error", () => {});
    watchStalledWrites(sock, 50);
    // Far more than the kernel's buffers take, in chunks as transfers send: writes stay pending.
    const written = pipeline(chunks(64 * 1024, 1024), sock).then(() => "written", () => "failed");
    let guard: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<string>((resolve) => {
      guard = setTimeout(() => resolve("no timeout after 120 s"), 120_000);
    });
    assert.equal(await Promise.race([timedOut, written, hung]), "timeout");
    clearTimeout(guard);
  } finally {
    sock.destroy();
    await server.stop();
  }
});

Deno.test("a socket whose writes move, or that has nothing to write, is left alone", async () => {
  const peers: net.Socket[] = [];
  let got = 0;
  const srv = net.createServer((s) => {
    peers.push(s);
    // A slow reader: a pause of 20 ms after every chunk, so the writer's bytes keep moving.
    s.on("data", (c: Buffer) => {
      got += c.length;
      s.pause();
      setTimeout(() => s.resume(), 20);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const sock = await connect((srv.address() as net.AddressInfo).port);
  let timeouts = 0;
  try {
    sock.setTimeout(1500, () => timeouts++);
    watchStalledWrites(sock, 50);
    const total = 24 * 1024 * 1024;
    await pipeline(chunks(64 * 1024, total / (64 * 1024)), sock, { end: false });
    assert.equal(timeouts, 0, "a moving transfer never times out");
    sock.setTimeout(0); // written: the rest is the kernel's buffers draining to the reader
    while (got < total) await new Promise((r) => setTimeout(r, 50));
  } finally {
    sock.destroy();
    for (const s of peers) s.destroy();
    await new Promise((r) => srv.close(r));
  }
});
