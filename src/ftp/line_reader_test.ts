/**
 * Unit tests of the control-line splitter: CRLF and bare LF, split chunks, Telnet IAC, over-long lines.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createLineReader } from "./line_reader.ts";

const enc = new TextEncoder();

Deno.test("line reader: CRLF and bare LF, split chunks, Telnet IAC dropped", () => {
  const read = createLineReader(100);
  assert.deepEqual(read(enc.encode("NOOP\r\nPW")), [{ line: "NOOP" }]);
  assert.deepEqual(read(enc.encode("D\nCWD ä\r")), [{ line: "PWD" }]);
  assert.deepEqual(read(enc.encode("\n")), [{ line: "CWD ä" }]);
  // IAC IP IAC DM ABOR (what ftplib and lftp send), IAC IAC is a literal 0xFF (invalid UTF-8)
  assert.deepEqual(read(new Uint8Array([255, 244, 255, 242, 65, 66, 79, 82, 13, 10])), [{
    line: "ABOR",
  }]);
  assert.deepEqual(read(new Uint8Array([255, 251, 1, 78, 79, 79, 80, 10])), [{ line: "NOOP" }]);
  assert.deepEqual(read(new Uint8Array([65, 255, 255, 10])), [{ line: "A\uFFFD" }]);
});

Deno.test("line reader: an over-long line is reported once and skipped to its end", () => {
  const read = createLineReader(10);
  assert.deepEqual(read(enc.encode("0123456789AB")), [{ tooLong: true }]);
  assert.deepEqual(read(enc.encode("CDEFGH")), []);
  assert.deepEqual(read(enc.encode("IJ\r\nNOOP\r\n")), [{ line: "NOOP" }]);
  assert.deepEqual(read(enc.encode("0123456789\r\n")), [{ tooLong: true }]);
});
