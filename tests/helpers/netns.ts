/**
 * Network namespaces for tests and benchmarks that need hosts on separate addresses:
 * {@linkcode makeNet} makes one namespace per host, each with its own address
 * (10.213.<n>.0/24), joined by veth pairs to a bridge in a router namespace, and
 * optionally shapes every link (`tc`); {@linkcode startIn} runs a process inside one,
 * stopped by its pid. The host's own interfaces and routes are never touched, and
 * `destroy()` removes every namespace made. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)
 * and iproute2: when `ip netns add` is refused the caller fails and says so.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import process from "node:process";

/** Run a command to completion; rejects with its stderr when it exits non-zero. */
export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => out += d);
    child.stderr.setEncoding("utf8").on("data", (d: string) => err += d);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${err.trim()}`));
    });
  });
}

export const ip = (...args: string[]) => run("ip", args);

/**
 * `argv` run inside namespace `ns` (`ip netns exec`, which execs the command: the pid
 * is the command's), or `argv` as is without one.
 */
export function inNetns(ns: string | undefined, argv: string[]): string[] {
  return ns ? ["ip", "netns", "exec", ns, ...argv] : argv;
}

/** A long-running process inside a namespace, stopped by its pid. */
export interface Proc {
  pid: number;
  output(): string;
  /** Resolves with the first stdout line matching `re`. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

export function startIn(ns: string, cmd: string[], cwd?: string): Proc {
  const [bin, ...args] = inNetns(ns, cmd);
  const child: ChildProcess = spawn(bin, args, {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const listeners: (() => void)[] = [];
  const add = (d: Buffer) => {
    text += d.toString("utf8");
    for (const l of listeners.slice()) l();
  };
  child.stdout!.on("data", add);
  child.stderr!.on("data", add);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    pid: child.pid!,
    output: () => text,
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(text);
          if (m) {
            done();
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`${cmd.join(" ")} exited early:\n${text}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${re} from ${cmd[0]}:\n${text}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.splice(listeners.indexOf(check), 1);
          child.off("exit", check);
        };
        listeners.push(check);
        child.on("exit", check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, "SIGKILL");
      }
      await exited;
    },
  };
}

/** Bytes received and sent by `dev` in namespace `ns`. */
export async function counters(ns: string, dev: string): Promise<{ rx: number; tx: number }> {
  const [link] = JSON.parse(await ip("-n", ns, "-s", "-j", "link", "show", "dev", dev));
  return { rx: link.stats64.rx.bytes, tx: link.stats64.tx.bytes };
}

/** The namespaces, addresses and bridge of one run. */
export interface Net {
  router: string;
  hosts: { name: string; ns: string; addr: string }[];
  addr(name: string): string;
  ns(name: string): string;
  destroy(): Promise<void>;
}

/**
 * One namespace per name (`hop<name>-<tag>`, address `10.213.<n>.<10+i>`), all on one
 * bridge. With `rate` (a tc rate: `1gbit`), every link is shaped to it in both directions
 * (a token bucket on each end of each veth), like hosts on a switched network of that speed.
 */
export async function makeNet(names: string[], opts: { rate?: string } = {}): Promise<Net> {
  const tag = randomBytes(3).toString("hex");
  const subnet = `10.213.${1 + Math.floor(Math.random() * 250)}`;
  const router = `hopr-${tag}`;
  const made: string[] = [];
  const destroy = async () => {
    for (const ns of made.reverse()) await ip("netns", "del", ns).catch(() => {});
  };
  try {
    try {
      await ip("netns", "add", router);
    } catch (e) {
      throw new Error(
        `cannot create network namespaces here (ip netns add refused: ${(e as Error).message}); ` +
          "this needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN",
      );
    }
    made.push(router);
    await ip("-n", router, "link", "set", "lo", "up");
    // STP off (the default): bridge ports forward at once.
    await ip("-n", router, "link", "add", "br0", "type", "bridge");
    await ip("-n", router, "link", "set", "br0", "up");
    const hosts: Net["hosts"] = [];
    for (const [i, name] of names.entries()) {
      const ns = `hop${name}-${tag}`;
      const addr = `${subnet}.${10 + i}`;
      await ip("netns", "add", ns);
      made.push(ns);
      // Both ends are created inside their namespaces: nothing appears in the host's.
      await ip(
        "link",
        "add",
        "eth0",
        "netns",
        ns,
        "type",
        "veth",
        "peer",
        "name",
        `p-${name}`,
        "netns",
        router,
      );
      await ip("-n", router, "link", "set", `p-${name}`, "master", "br0", "up");
      await ip("-n", ns, "link", "set", "lo", "up");
      await ip("-n", ns, "addr", "add", `${addr}/24`, "dev", "eth0");
      await ip("-n", ns, "link", "set", "eth0", "up");
      if (opts.rate) {
        for (const [where, dev] of [[ns, "eth0"], [router, `p-${name}`]]) {
          // burst: a few of the veth's 64 KB GSO packets (a bucket smaller than one drops it)
          await run("tc", [
            "-n",
            where,
            "qdisc",
            "add",
            "dev",
            dev,
            "root",
            "tbf",
            "rate",
            opts.rate,
            "burst",
            "512kb",
            "latency",
            "20ms",
          ]);
        }
      }
      hosts.push({ name, ns, addr });
    }
    const find = (n: string) => hosts.find((h) => h.name === n)!;
    return { router, hosts, addr: (n) => find(n).addr, ns: (n) => find(n).ns, destroy };
  } catch (e) {
    await destroy();
    throw e;
  }
}
