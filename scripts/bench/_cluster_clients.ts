/**
 * Child process of the cluster benchmark: N concurrent basic-ftp sessions,
 * each login, LIST of a directory, RETR of one file (to a counting sink),
 * QUIT. Sessions are spread over loopback source addresses 127.0.0.2,
 * 127.0.0.3, ... with at most `--per-ip` each (the FTP engine caps sessions
 * per client address). Prints one JSON line: `{sessions, errors, firstErrors,
 * p50, p99, max, p50Login, p50List, p50Retr, bytes}` (latencies in ms: whole sessions,
 * then the median of each step: connect and login, LIST, RETR).
 *
 * Usage: deno run -A scripts/bench/_cluster_clients.ts URL --sessions=200
 *   --per-ip=16 --dir=/ --files=a,b,c --size=1048576 --timeout=120
 *
 * @module
 */
import { Client } from "basic-ftp";
import type { Socket } from "node:net";
import process from "node:process";
import { Writable } from "node:stream";

const arg = (name: string, dflt: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const url = new URL(process.argv[2]);
const sessions = Number(arg("sessions", "200"));
const perIp = Number(arg("per-ip", "16"));
const dir = arg("dir", "/");
const files = arg("files", "").split(",");
const size = Number(arg("size", "0"));
const timeoutMs = Number(arg("timeout", "120")) * 1000;

/** A basic-ftp client whose sockets (control and data) bind `localAddress`. */
function clientFrom(localAddress: string): Client {
  const c = new Client(timeoutMs);
  // deno-lint-ignore no-explicit-any
  const ftp = c.ftp as any;
  const make = ftp._newSocket.bind(ftp);
  const bound = (): Socket => {
    const s = make() as Socket;
    const connect = s.connect.bind(s);
    // deno-lint-ignore no-explicit-any
    (s as any).connect = (o: any, cb?: () => void) => connect({ ...o, localAddress }, cb);
    return s;
  };
  ftp._newSocket = bound;
  ftp._socket = ftp.socket = bound();
  return c;
}

let bytes = 0;
const errors: string[] = [];
const times: number[] = [];
/** Each phase's time of the sessions that succeeded (ms). */
const phases = { login: [] as number[], list: [] as number[], retr: [] as number[] };
async function session(i: number): Promise<void> {
  const local = `127.0.0.${2 + Math.floor(i / perIp)}`;
  const c = clientFrom(local);
  const t0 = performance.now();
  try {
    await c.access({
      host: url.hostname,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    });
    const t1 = performance.now();
    const list = await c.list(dir);
    const t2 = performance.now();
    if (list.length === 0) throw new Error("empty LIST");
    let got = 0;
    const sink = new Writable({
      write(chunk, _enc, cb) {
        got += chunk.length;
        cb();
      },
    });
    await c.downloadTo(sink, files[i % files.length]);
    if (size && got !== size) throw new Error(`RETR gave ${got} bytes, not ${size}`);
    bytes += got;
    const t3 = performance.now();
    times.push(t3 - t0);
    phases.login.push(t1 - t0);
    phases.list.push(t2 - t1);
    phases.retr.push(t3 - t2);
  } catch (e) {
    errors.push(`session ${i} (${local}): ${(e as Error).message}`);
  } finally {
    c.close();
  }
}

const all = Promise.all(Array.from({ length: sessions }, (_, i) => session(i)));
const timer = setTimeout(() => {
  console.log(JSON.stringify({ sessions, errors: sessions - times.length, timedOut: true }));
  process.exit(1);
}, timeoutMs + 10_000);
await all;
clearTimeout(timer);
const pct = (p: number, of = times) => {
  const sorted = [...of].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN;
};
console.log(JSON.stringify({
  sessions,
  errors: errors.length,
  firstErrors: errors.slice(0, 5),
  p50: pct(0.5),
  p99: pct(0.99),
  max: pct(1),
  p50Login: pct(0.5, phases.login),
  p50List: pct(0.5, phases.list),
  p50Retr: pct(0.5, phases.retr),
  bytes,
}));
