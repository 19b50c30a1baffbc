/**
 * `escale.conf` as text: Python configparser's syntax with the settings the
 * Escale 0.7 client uses (read its `escale/base/config.py`), so a file means
 * here what it means to Escale. Pure: text in, sections out, and back.
 *
 * What Escale does before configparser sees the file: the first line that is
 * neither blank nor a `#`/`;` comment gets a `[DEFAULT]` header in front of
 * it (unless it is one), and the blank and comment lines above it are
 * dropped. So lines before the first section are defaults, inherited by
 * every section.
 *
 * configparser's defaults, which Escale keeps:
 * - `key = value` and `key: value` (the first `=` or `:` splits); keys are
 *   lower-cased (`str.lower`), nothing else (spaces and `_` are kept);
 *   whitespace around keys and values is dropped.
 * - comments are whole lines whose first non-blank character is `#` or `;`.
 *   There are no inline comments: `a = b ; c` is the value `b ; c`.
 * - a line indented deeper than its option's line continues the value (joined
 *   with `\n`); blank lines between continuation lines are kept in the value;
 *   trailing blank lines are dropped; comment lines inside are skipped.
 * - `[name]` starts a section (the name runs to the last `]` of the line,
 *   kept as written); a repeated section or a repeated key in one section is
 *   an error (`strict`).
 * - values are interpolated when read (`BasicInterpolation`): `%%` is `%`,
 *   `%(key)s` is the (interpolated) value of `key` in the same section or the
 *   defaults; any other `%` is an error.
 *
 * Unlike configparser, which rejects the whole file at its first fault, the
 * decoder records each fault with the section it is in, so one bad section
 * does not stop the others; a fault in the defaults concerns every section.
 *
 * @example
 * ```ts
 * const conf = decodeEscaleConf("mode = upload\n[docs]\nlocal path = ~/docs\n", "escale.conf");
 * confGet(conf, conf.sections[0], "mode"); // "upload" (a default)
 * ```
 *
 * @module
 */
import { CodecError, EncodeError } from "./errors.ts";
import { type CodecInput, toText } from "./text.ts";

const FORMAT = "escale.conf";

/** The name of the defaults section (lines before the first section). */
export const DEFAULT_SECTION = "DEFAULT";

/** One option as written (value not interpolated), with the line of its key. */
export interface ConfOption {
  key: string;
  value: string;
  line: number;
}

/** A section: its options by (lower-case) key, and the faults found in it. */
export interface ConfSection {
  name: string;
  /** Line of the `[name]` header (0 for the defaults when they have none). */
  line: number;
  options: Map<string, ConfOption>;
  errors: CodecError[];
}

/** A decoded file: the defaults, then the sections in file order. */
export interface EscaleConf {
  source: string;
  defaults: ConfSection;
  sections: ConfSection[];
}

/** Python's `str.strip()` whitespace (configparser strips keys, values and lines with it). */
const WS = "[\\s\\x1c-\\x1f\\x85]";
const TRIM = new RegExp(`^${WS}+|${WS}+$`, "g");

function pyStrip(s: string): string {
  return s.replace(TRIM, "");
}

/** configparser's option line: the first `=` or `:` splits key and value. */
const OPTION = /^(.*?)\s*[=:]\s*(.*)$/s;
/** configparser's section header: as greedy as Python's `\[(?P<header>.+)\]`. */
const HEADER = /^\[(.+)\]/s;

function newSection(name: string, line: number): ConfSection {
  return { name, line, options: new Map(), errors: [] };
}

/**
 * Decodes an `escale.conf` the way Escale reads it (see the module doc).
 * Never throws on a malformed line: faults are recorded in the section they
 * are in (`errors`). Bytes must be UTF-8.
 */
export function decodeEscaleConf(input: CodecInput, source: string): EscaleConf {
  // Python opens the file in text mode: \r\n and \r are line ends too
  const lines = toText(input, FORMAT, source).split(/\r\n|\r|\n/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const defaults = newSection(DEFAULT_SECTION, 0);
  const conf: EscaleConf = { source, defaults, sections: [] };
  const fault = (sec: ConfSection, line: number, problem: string, hint?: string) =>
    sec.errors.push(new CodecError(FORMAT, source, line, problem, hint));
  // Escale skips blank and comment lines up to the first other line, and
  // puts `[DEFAULT]` in front of that line unless it starts with it
  let start = 0;
  while (start < lines.length) {
    const s = pyStrip(lines[start]);
    if (s !== "" && s[0] !== "#" && s[0] !== ";") break;
    start++;
  }
  if (start < lines.length && lines[start].startsWith("\ufeff")) {
    fault(
      defaults,
      start + 1,
      "the file starts with a byte order mark, which Escale cannot read",
      "Save the file as UTF-8 without a BOM.",
    );
    return conf;
  }
  let cur: ConfSection = defaults;
  const byName = new Map<string, ConfSection>();
  let opt: { option: ConfOption; parts: string[] } | null = null;
  let indent = Infinity;
  const pending: { option: ConfOption; parts: string[] }[] = [];
  for (let i = start; i < lines.length; i++) {
    const raw = lines[i];
    const lineNo = i + 1;
    const stripped = pyStrip(raw);
    const comment = stripped.startsWith("#") || stripped.startsWith(";");
    const value = comment ? "" : stripped;
    if (value === "") {
      // blank lines go into the value being read (dropped at its end if trailing)
      if (!comment && opt) opt.parts.push("");
      continue;
    }
    const level = raw.search(/\S/);
    if (opt && level > indent) {
      opt.parts.push(value);
      continue;
    }
    indent = level;
    const h = HEADER.exec(value);
    if (h) {
      opt = null;
      const name = h[1];
      if (name === DEFAULT_SECTION) {
        cur = defaults;
        continue;
      }
      const seen = byName.get(name);
      if (seen) {
        const problem = `section [${name}] appears twice (also at line ${seen.line})`;
        fault(seen, lineNo, problem, "Give each section its own name.");
        cur = seen;
        continue;
      }
      cur = newSection(name, lineNo);
      byName.set(name, cur);
      conf.sections.push(cur);
      continue;
    }
    const m = OPTION.exec(value);
    if (!m || m[1] === "") {
      opt = null;
      fault(
        cur,
        lineNo,
        `expected "key = value", "key: value" or "[section]", got ${JSON.stringify(value)}`,
        "Indent a line that continues the value above it; start comments with # or ;.",
      );
      continue;
    }
    const key = m[1].trimEnd().toLowerCase();
    if (cur.options.has(key)) {
      fault(
        cur,
        lineNo,
        `option "${key}" appears twice in [${cur.name}] (also at line ${
          cur.options.get(key)!.line
        })`,
        "Keep one of them.",
      );
      opt = null;
      continue;
    }
    const option: ConfOption = { key, value: "", line: lineNo };
    cur.options.set(key, option);
    opt = { option, parts: [pyStrip(m[2])] };
    pending.push(opt);
  }
  for (const p of pending) p.option.value = p.parts.join("\n").replace(/\s+$/, "");
  return conf;
}

/** The option `key` of `sec` as written, or its default; undefined when neither has it. */
export function confRaw(conf: EscaleConf, sec: ConfSection, key: string): ConfOption | undefined {
  return sec.options.get(key) ?? conf.defaults.options.get(key);
}

/**
 * The value of `key` in `sec` (or the defaults), interpolated as
 * configparser's `get` does; undefined when absent. Throws a
 * {@linkcode CodecError} naming the option's line on a bad `%`.
 */
export function confGet(conf: EscaleConf, sec: ConfSection, key: string): string | undefined {
  const o = confRaw(conf, sec, key);
  if (!o) return undefined;
  return interpolate(conf, sec, o, o.value, 1);
}

/** Every option of `sec` with its defaults (the section's win), as configparser's `items`. */
export function confKeys(conf: EscaleConf, sec: ConfSection): string[] {
  return [...new Set([...conf.defaults.options.keys(), ...sec.options.keys()])];
}

const MAX_DEPTH = 10;

function interpolate(
  conf: EscaleConf,
  sec: ConfSection,
  o: ConfOption,
  rest: string,
  depth: number,
): string {
  const bad = (problem: string): never => {
    throw new CodecError(
      FORMAT,
      conf.source,
      o.line,
      `[${sec.name}] ${o.key}: ${problem}`,
      "Write %% for a percent sign (Escale reads values with configparser's interpolation).",
    );
  };
  if (depth > MAX_DEPTH) bad("%(...)s references nest too deep (a loop?)");
  let out = "";
  while (rest !== "") {
    const p = rest.indexOf("%");
    if (p < 0) return out + rest;
    out += rest.slice(0, p);
    rest = rest.slice(p);
    const c = rest[1];
    if (c === "%") {
      out += "%";
      rest = rest.slice(2);
    } else if (c === "(") {
      const m = /^%\(([^)]+)\)s/.exec(rest);
      if (!m) bad(`bad %(...)s reference in ${JSON.stringify(rest)}`);
      const ref = confRaw(conf, sec, m![1].toLowerCase());
      if (!ref) bad(`%(${m![1]})s names no option of [${sec.name}] or the defaults`);
      rest = rest.slice(m![0].length);
      out += ref!.value.includes("%")
        ? interpolate(conf, sec, o, ref!.value, depth + 1)
        : ref!.value;
    } else {
      bad(`'%' must be followed by '%' or '(', found ${JSON.stringify(rest)}`);
    }
  }
  return out;
}

/** What {@linkcode encodeEscaleConf} writes: raw values (`%` as the file holds it). */
export interface ConfText {
  defaults: [key: string, value: string][];
  sections: { name: string; options: [key: string, value: string][] }[];
}

/**
 * Writes a configuration as Escale's `write_config` does: the defaults first
 * without a header, then each section; `key = value`, continuation lines
 * indented by a tab. Throws {@linkcode EncodeError} for what the format
 * cannot hold (a key with `=`, `:` or upper case, a value with surrounding
 * whitespace, a section name with a line break).
 */
export function encodeEscaleConf(c: ConfText): string {
  const opts = (list: [string, string][]) =>
    list.map(([k, v]) => {
      if (k === "" || /[=:\r\n]/.test(k) || k !== k.toLowerCase() || pyStrip(k) !== k) {
        throw new EncodeError(FORMAT, `key ${JSON.stringify(k)} cannot be written`);
      }
      if (/^[#;[]/.test(k)) {
        throw new EncodeError(FORMAT, `key ${JSON.stringify(k)} would not read back`);
      }
      const vl = v.split("\n");
      if (
        /\r/.test(v) || vl.some((l) => l !== pyStrip(l)) || /\s$/.test(v)
      ) {
        throw new EncodeError(FORMAT, `value of ${k} has surrounding whitespace or a line end`);
      }
      if (vl.slice(1).some((l) => /^[#;]/.test(l))) {
        throw new EncodeError(FORMAT, `a continuation line of ${k} starts with a comment sign`);
      }
      return `${k} = ${v.replaceAll("\n", "\n\t")}\n`;
    }).join("");
  let out = opts(c.defaults);
  for (const s of c.sections) {
    if (s.name === "" || /[\r\n]/.test(s.name) || s.name === DEFAULT_SECTION) {
      throw new EncodeError(FORMAT, `section name ${JSON.stringify(s.name)} cannot be written`);
    }
    out += `${out === "" ? "" : "\n"}[${s.name}]\n${opts(s.options)}`;
  }
  return out;
}
