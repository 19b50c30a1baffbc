/**
 * Splitting the control connection's byte stream into command lines: CRLF or bare
 * LF ends a line, Telnet IAC sequences (RFC 854, sent by clients around ABOR) are
 * dropped, and a line longer than the limit is reported once and then skipped up
 * to its end, so the connection stays in step.
 *
 * @module
 */

/** What the reader emits: a decoded line, or notice of an over-long one. */
export type LineEvent = { line: string } | { tooLong: true };

/** Incremental line splitter; feed it chunks, it returns complete lines. */
export function createLineReader(maxBytes: number): (chunk: Uint8Array) => LineEvent[] {
  let buf = new Uint8Array(1024);
  let len = 0;
  let discarding = false;
  let iacState = 0; // 0 none, 1 after IAC, 2 after IAC WILL/WONT/DO/DONT
  const decoder = new TextDecoder("utf-8", { fatal: false });

  const push = (b: number) => {
    if (len === buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    buf[len++] = b;
  };

  return (chunk) => {
    const events: LineEvent[] = [];
    for (const b of chunk) {
      if (iacState === 1) {
        iacState = b >= 251 && b <= 254 ? 2 : 0;
        if (b === 255 && !discarding) push(255);
        continue;
      }
      if (iacState === 2) {
        iacState = 0;
        continue;
      }
      if (b === 255) {
        iacState = 1;
        continue;
      }
      if (b === 10) {
        if (discarding) discarding = false;
        else {
          let end = len;
          if (end > 0 && buf[end - 1] === 13) end--;
          events.push({ line: decoder.decode(buf.subarray(0, end)) });
        }
        len = 0;
        continue;
      }
      if (discarding) continue;
      if (len >= maxBytes) {
        discarding = true;
        len = 0;
        events.push({ tooLong: true });
        continue;
      }
      push(b);
    }
    return events;
  };
}
