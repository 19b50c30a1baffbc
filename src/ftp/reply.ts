/**
 * Formatting FTP replies (RFC 959 section 4.2): single-line `ccc text` and
 * multi-line `ccc-first` ... `ccc last`, always CRLF-terminated. Text is sanitized
 * so no reply can be broken by a CR, LF or NUL that came from user input.
 *
 * @module
 */

/** Replace characters that could break the reply framing. */
export function cleanText(text: string): string {
  return text.replace(/[\r\n\0]/g, " ");
}

/**
 * One reply as wire text. With several lines, it is a multi-line reply: the first
 * line `ccc-`, intermediate lines indented when they could be read as a reply end,
 * the last line `ccc `.
 *
 * @example formatReply(211, ["Features:", " SIZE", "End"]) // "211-Features:\r\n SIZE\r\n211 End\r\n"
 */
export function formatReply(code: number, text: string | string[]): string {
  const lines = (Array.isArray(text) ? text : [text]).map(cleanText);
  if (lines.length === 0) lines.push("");
  if (lines.length === 1) return `${code} ${lines[0]}\r\n`;
  const out = [`${code}-${lines[0]}`];
  for (const line of lines.slice(1, -1)) {
    out.push(/^\d{3}/.test(line) ? " " + line : line);
  }
  out.push(`${code} ${lines[lines.length - 1]}`);
  return out.join("\r\n") + "\r\n";
}
