/**
 * `hop relay init`: asks the questions `escale -i` asks, in its order (local
 * folder, whether the relay is a mounted folder, its address, the section's
 * name, the client name, credentials, encryption and its key, the mode, the
 * refresh interval), and adds the section to the configuration file
 * (`~/.config/hop/relay.conf` by default, which `hop relay sync` reads when
 * given no other). As Escale does, a password is written to a credential file
 * of its own (`user:password`, mode 600) named by `secret file`, a new
 * encryption key to a passphrase file, and the local folder is created.
 * Unlike Escale 0.7's default, the section always has `index = 1`: the index
 * scheme carries deletions and updates for groups of clients (hop reads
 * Escale's placeholder scheme too, for sections without the line).
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { homedir, hostname } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { decodeEscaleConf, encodeEscaleConf } from "../codec/escale_conf.ts";
import { HopError } from "../errors.ts";
import type { Reporter } from "../ui/report.ts";

/** hop's own configuration file: `$XDG_CONFIG_HOME/hop/relay.conf` or `~/.config/hop/relay.conf`. */
export function hopConfigFile(): string {
  const xdg = process.env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(process.env.HOME ?? homedir(), ".config");
  return join(base, "hop", "relay.conf");
}

/** Asks one question; resolves the answer (trimmed). */
type Ask = (question: string, opts?: { hidden?: boolean }) => Promise<string>;

/**
 * Questions on stdin/stderr: typed answers on a terminal (a password unseen),
 * or one line each from a pipe (`printf 'a\nb\n' | hop relay init`).
 */
function prompter(): { ask: Ask; close(): void } {
  let muted = false;
  const out = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const tty = Boolean(process.stdin.isTTY);
  const rl = createInterface({
    input: process.stdin,
    output: tty ? out : undefined,
    terminal: tty,
  });
  const lines: string[] = [];
  const waiting: ((l: string | null) => void)[] = [];
  let ended = false;
  rl.on("line", (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  rl.on("close", () => {
    ended = true;
    for (const w of waiting.splice(0)) w(null);
  });
  const next = () =>
    new Promise<string | null>((resolve) => {
      if (lines.length) resolve(lines.shift()!);
      else if (ended) resolve(null);
      else waiting.push(resolve);
    });
  return {
    async ask(question, opts = {}) {
      process.stderr.write(question);
      muted = Boolean(opts.hidden) && tty;
      const answer = await next();
      if (muted) process.stderr.write("\n");
      muted = false;
      if (answer === null) {
        throw new HopError("hop relay init: the answers ended before the last question", {
          hint: "Answer every question (a blank line takes the suggestion in brackets).",
        });
      }
      if (!tty) process.stderr.write("\n");
      return answer.trim();
    },
    close: () => rl.close(),
  };
}

async function exists(p: string): Promise<boolean> {
  return await stat(p).then(() => true, () => false);
}

/** `~` and relative paths as Escale reads them. */
function fullPath(p: string): string {
  const home = process.env.HOME ?? homedir();
  const t = p === "~" ? home : p.startsWith("~/") ? join(home, p.slice(2)) : p;
  return resolve(t);
}

/**
 * Runs the questions and adds the section to `file` (default
 * {@linkcode hopConfigFile}). Resolves the file and section written.
 */
export async function relayInit(
  o: { file?: string; reporter: Reporter; ask?: Ask },
): Promise<{ file: string; section: string }> {
  const file = resolve(o.file ?? hopConfigFile());
  const dir = dirname(file);
  const p = o.ask ? null : prompter();
  const ask = o.ask ?? p!.ask;
  const yes = (a: string, def: boolean) => a === "" ? def : /^y/i.test(a);
  try {
    const existing = (await exists(file)) ? await readFile(file) : null;
    const taken = existing ? decodeEscaleConf(existing, file).sections.map((s) => s.name) : [];
    let local = "";
    while (!local) local = await ask("path of your local repository (required): ");
    local = fullPath(local);
    const mounted = yes(
      await ask("is the relay repository locally mounted in the file system? [N/y] "),
      false,
    );
    let relay = "";
    while (!relay) {
      relay = await ask(
        mounted
          ? "path of the locally accessible relay repository (required): "
          : "address of the relay repository, ftp://host[:port]/path or ftps://... (required): ",
      );
      if (!mounted && !/^ftps?:\/\/[^/]/.test(relay)) {
        o.reporter.warn("an address looks like ftp://files.example.org:2121/relay");
        relay = "";
      }
    }
    const suggestion = basename(local).replace(/[\s[\]]/g, "_") || "folder";
    let section = "";
    while (!section) {
      section = (await ask(`section name [${suggestion}] `)) || suggestion;
      if (taken.includes(section)) {
        o.reporter.warn(`${file} already has a section [${section}]: choose another name`);
        section = "";
      }
    }
    const host = hostname();
    const client = (await ask(`client name [${host}-${section}] `)) || `${host}-${section}`;
    const opts: [string, string][] = [["local path", local]];
    if (mounted) opts.push(["relay path", fullPath(relay)]);
    else opts.push(["host address", relay]);
    opts.push(["client name", client]);
    if (!mounted) {
      const user = await ask("authentication username (blank: credentials in a file): ");
      if (user) {
        const password = await ask("password: ", { hidden: true });
        const cred = join(dir, `${section}.credential`);
        await mkdir(dir, { recursive: true });
        await writeFile(cred, `${user}:${password}`, { mode: 0o600 });
        await chmod(cred, 0o600);
        // the file alone, as Escale's `escale -i` writes it: a one-line file read with a
        // `user` line would be all password (Escale reads it so, and hop as Escale does)
        opts.push(["secret file", cred]);
      } else {
        const cred = await ask("secret file (user:password lines): ");
        if (cred) opts.push(["secret file", fullPath(cred)]);
      }
    }
    const enc = yes(await ask("encryption? [Y/n] "), true);
    if (enc) {
      const suggested = join(dir, `${section}.passphrase`);
      const key = fullPath((await ask(`passphrase filename [${suggested}] `)) || suggested);
      if (!(await exists(key))) {
        if (!yes(await ask("generate a new key? [Y/n] "), true)) {
          throw new HopError(`${key} does not exist`, {
            hint: "Put the relay's key (the other clients' passphrase file) there, then run again.",
          });
        }
        await mkdir(dirname(key), { recursive: true });
        // a Fernet key, as Escale makes it
        await writeFile(key, randomBytes(32).toString("base64url") + "=", { mode: 0o600 });
      }
      opts.push(["encryption", "fernet"], ["passphrase", key]);
    }
    let mode = "";
    while (!mode) {
      mode = (await ask(
        "which mode for this client? shared, upload, download, conservative [shared] ",
      )) ||
        "shared";
      if (!["shared", "upload", "download", "conservative"].includes(mode)) mode = "";
    }
    opts.push(["mode", mode]);
    let refresh = "";
    while (!refresh) {
      refresh = (await ask("refresh interval (in seconds) [10] ")) || "10";
      if (!/^\d+$/.test(refresh) || refresh === "0") refresh = "";
    }
    opts.push(["refresh", refresh], ["index", "1"], ["maxpagesize", "200MB"]);
    await mkdir(local, { recursive: true });
    await mkdir(dir, { recursive: true });
    const text = encodeEscaleConf({
      defaults: [],
      sections: [{ name: section, options: opts.map(([k, v]) => [k, v.replaceAll("%", "%%")]) }],
    });
    const before = existing ? new TextDecoder().decode(existing) : "";
    const gap = before === "" ? "" : before.endsWith("\n") ? "\n" : "\n\n";
    await writeFile(file, before + gap + text);
    o.reporter.info(`added [${section}] to ${file}; run: hop relay sync --once`, {
      event: "relay-init",
      file,
      section,
    });
    return { file, section };
  } finally {
    p?.close();
  }
}
