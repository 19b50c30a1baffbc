/**
 * Unit tests of reply framing: single and multi-line replies, sanitized text.
 *
 * @module
 */

import assert from "node:assert/strict";
import { formatReply } from "./reply.ts";

Deno.test("replies: single, multi-line with guarded intermediate lines, sanitized text", () => {
  assert.equal(formatReply(200, "ok"), "200 ok\r\n");
  assert.equal(
    formatReply(211, ["Features:", " SIZE", "End"]),
    "211-Features:\r\n SIZE\r\n211 End\r\n",
  );
  assert.equal(
    formatReply(213, ["Status:", "211 looks like a code", "End"]),
    "213-Status:\r\n 211 looks like a code\r\n213 End\r\n",
  );
  assert.equal(formatReply(500, "bad\r\n421 fake\0"), "500 bad  421 fake \r\n");
});
