import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { sendLines } from "./data.ts";

/** A connected socket pair on 127.0.0.1 (server side, client side). */
async function socketPair(): Promise<[net.Socket, net.Socket, () => void]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const client = net.connect(port, "127.0.0.1");
  const sock = await accepted;
  return [sock, client, () => server.close()];
}

Deno.test("sendLines: a listing of many slices arrives whole, CRLF-ended, with its byte count", async () => {
  const [sock, client, close] = await socketPair();
  try {
    const lines = Array.from({ length: 5000 }, (_, i) => `-rw-r--r-- 1 a a ${i} file-${i}-é.txt`);
    const got: Uint8Array[] = [];
    const ended = new Promise<void>((r) => client.on("end", r));
    client.pause(); // a slow reader: sendLines has to wait for drain between slices
    const sent = sendLines(lines, sock);
    setTimeout(() => {
      client.on("data", (c: Uint8Array) => got.push(c));
      client.resume();
    }, 50);
    const bytes = await sent;
    await ended;
    const text = new TextDecoder().decode(Buffer.concat(got));
    assert.equal(text, lines.map((l) => l + "\r\n").join(""));
    assert.equal(bytes, new TextEncoder().encode(text).byteLength);
  } finally {
    client.destroy();
    sock.destroy();
    close();
  }
});

Deno.test("sendLines: an empty listing only ends the connection", async () => {
  const [sock, client, close] = await socketPair();
  try {
    let got = 0;
    client.on("data", (c: Uint8Array) => got += c.byteLength);
    const ended = new Promise<void>((r) => client.on("end", r));
    assert.equal(await sendLines([], sock), 0);
    await ended;
    assert.equal(got, 0);
  } finally {
    client.destroy();
    sock.destroy();
    close();
  }
});
