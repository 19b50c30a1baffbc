/**
 * `hop cluster serve --http HOST:PORT`: a small HTTP server beside the FTP
 * one (off unless asked for) with a live dashboard an operator can leave open
 * (`/`: nodes, copies per file, queue, staging, sessions and transfers with
 * their rates, the last events; it asks `/status` again every two seconds),
 * the status as JSON (`/status`) and Prometheus metrics (`/metrics`, text
 * format, made by prom-client).
 *
 * @example
 * ```ts
 * const http = await startDashboard({ listen: "127.0.0.1:8021", status: mon.status });
 * console.log(http.url);
 * await http.close();
 * ```
 *
 * @module
 */
import http from "node:http";
import type net from "node:net";
import { Gauge, Registry } from "prom-client";
import { HopError } from "../errors.ts";
import type { ClusterStatus } from "./monitor.ts";

/** Options of {@linkcode startDashboard}. */
export interface DashboardOptions {
  host: string;
  port: number;
  /** The status now. */
  status(): Promise<ClusterStatus>;
}

/** A running dashboard server. */
export interface Dashboard {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Prometheus metrics of a status (a registry whose gauges read the status at each scrape). */
export function metricsRegistry(status: () => Promise<ClusterStatus>): Registry {
  const reg = new Registry();
  let current: ClusterStatus | null = null;
  const g = (
    name: string,
    help: string,
    labelNames: string[],
    set: (g: Gauge, s: ClusterStatus) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [reg],
      collect() {
        this.reset();
        if (current) set(this, current);
      },
    });
  g("hop_cluster_up", "1 while a server serves the cluster", [], (m, s) => m.set(s.server ? 1 : 0));
  g("hop_cluster_sessions", "FTP sessions logged in now", [], (m, s) => m.set(s.sessions.length));
  g(
    "hop_cluster_transfers",
    "file transfers under way",
    ["direction"],
    (m, s) => {
      for (const d of ["upload", "download"]) {
        m.set({ direction: d }, s.transfers.filter((t) => t.direction === d).length);
      }
    },
  );
  g(
    "hop_cluster_transfers_done",
    "file transfers finished since the server started",
    ["direction", "result"],
    (m, s) => {
      m.set({ direction: "upload", result: "ok" }, s.totals.uploads);
      m.set({ direction: "download", result: "ok" }, s.totals.downloads);
      m.set({ direction: "any", result: "failed" }, s.totals.transfersFailed);
    },
  );
  g(
    "hop_cluster_bytes",
    "bytes received (in) and sent (out) by finished transfers since the server started",
    ["direction"],
    (m, s) => {
      m.set({ direction: "in" }, s.totals.bytesIn);
      m.set({ direction: "out" }, s.totals.bytesOut);
    },
  );
  g("hop_cluster_logins", "logins since the server started", ["result"], (m, s) => {
    m.set({ result: "ok" }, s.totals.logins);
    m.set({ result: "failed" }, s.totals.loginFailures);
  });
  g("hop_cluster_errors", "errors since the server started", [], (m, s) => m.set(s.totals.errors));
  g("hop_cluster_node_up", "1 when the node answers", ["node"], (m, s) => {
    for (const n of s.nodes) m.set({ node: n.label }, n.up ? 1 : 0);
  });
  g("hop_cluster_node_load", "operations under way on the node", ["node"], (m, s) => {
    for (const n of s.nodes) m.set({ node: n.label }, n.load);
  });
  g("hop_cluster_node_free_bytes", "free bytes on the node (when it tells)", ["node"], (m, s) => {
    for (const n of s.nodes) if (n.freeBytes !== null) m.set({ node: n.label }, n.freeBytes);
  });
  g("hop_cluster_queue_jobs", "jobs in the queue", [], (m, s) => m.set(s.queue.depth));
  g(
    "hop_cluster_queue_oldest_seconds",
    "age of the oldest queued job",
    [],
    (m, s) => m.set(s.queue.oldestAgeSeconds ?? 0),
  );
  g("hop_cluster_staging_bytes", "bytes waiting in staging", [], (m, s) => m.set(s.staging.bytes));
  g("hop_cluster_staging_files", "files waiting in staging", [], (m, s) => m.set(s.staging.files));
  g("hop_cluster_files", "files by number of copies", ["copies"], (m, s) => {
    for (const [c, n] of Object.entries(s.replication?.byCopies ?? {})) m.set({ copies: c }, n);
  });
  g(
    "hop_cluster_files_wanting",
    "files the server's count of link files found wanting, by kind",
    ["kind"],
    (m, s) => {
      const r = s.replication;
      if (!r) return;
      m.set({ kind: "under-replicated" }, r.underReplicated);
      m.set({ kind: "lost" }, r.lost);
      m.set({ kind: "pending" }, r.pending);
      m.set({ kind: "unreadable" }, r.unreadable);
    },
  );
  g(
    "hop_cluster_audit_findings",
    "what the last hop audit found (the nodes against the link files), by kind",
    ["kind"],
    (m, s) => {
      for (const [k, n] of Object.entries(s.audit?.counts ?? {})) m.set({ kind: k }, n);
    },
  );
  g(
    "hop_cluster_audit_age_seconds",
    "seconds since the last hop audit ended (absent when none ran)",
    [],
    (m, s) => {
      if (s.audit) m.set(Math.max(0, (s.time - s.audit.time) / 1000));
    },
  );
  const metrics = reg.metrics.bind(reg);
  reg.metrics = async () => {
    current = await status();
    return await metrics();
  };
  return reg;
}

/** Starts the dashboard's HTTP server. */
export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const reg = metricsRegistry(o.status);
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, {
        "content-type": type,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(405, "text/plain; charset=utf-8", "only GET\n");
    }
    const route = async () => {
      if (url.pathname === "/") return send(200, "text/html; charset=utf-8", PAGE);
      if (url.pathname === "/status") {
        return send(200, "application/json", JSON.stringify(await o.status()));
      }
      if (url.pathname === "/metrics") return send(200, reg.contentType, await reg.metrics());
      send(404, "text/plain; charset=utf-8", "not found: try /, /status or /metrics\n");
    };
    route().catch((e) => send(500, "text/plain; charset=utf-8", `${(e as Error).message}\n`));
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) =>
      reject(
        new HopError(`cannot serve the dashboard on ${o.host}:${o.port}: ${e.message}`, {
          hint: "Give --http another port, or stop what uses this one.",
          cause: e,
        }),
      ));
    server.listen({ host: o.host, port: o.port }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const host = o.host.includes(":") ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** The dashboard page: no outside resource, the status asked for every two seconds. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hop cluster</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; gap: 20px;
    align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { opacity: .75; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px;
    padding: 16px 20px; }
  section { background: #fff; border-radius: 6px; padding: 12px 16px;
    box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  section h2 { font-size: 14px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em;
    color: #56607a; }
  table { width: 100%; border-collapse: collapse; }
  td, th { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eceef2;
    vertical-align: top; }
  th { font-weight: 600; color: #56607a; }
  .up { color: #11803a; font-weight: 600; }
  .down { color: #c4161c; font-weight: 600; }
  .warn { color: #b35c00; }
  .num { text-align: right; font-variant-numeric: tabular-nums; }
  .bar { height: 6px; background: #e3e6ec; border-radius: 3px; overflow: hidden; min-width: 80px; }
  .bar > div { height: 100%; background: #2f6fed; }
  .empty { color: #8a93a6; }
  pre { margin: 0; font: 12px/1.5 ui-monospace, monospace; white-space: pre-wrap; }
  #error { color: #c4161c; }
</style>
</head>
<body>
<header><h1>hop cluster</h1><span class="meta" id="meta">loading…</span>
<span id="error"></span></header>
<main>
  <section><h2>Nodes</h2><table id="nodes"></table></section>
  <section><h2>Transfers</h2><table id="transfers"></table></section>
  <section><h2>Files and copies</h2><table id="files"></table></section>
  <section><h2>Queue, staging, last audit</h2><table id="queue"></table></section>
  <section><h2>Sessions</h2><table id="sessions"></table></section>
  <section><h2>Since start</h2><table id="totals"></table></section>
  <section style="grid-column: 1 / -1"><h2>Events</h2><pre id="events"></pre></section>
</main>
<script>
"use strict";
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
const bytes = (n) => {
  if (n === null || n === undefined) return "unknown";
  const u = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
};
const ago = (ms, now) => Math.max(0, Math.round((now - ms) / 1000)) + " s ago";
const rows = (id, head, body, empty) => {
  document.getElementById(id).innerHTML = body.length
    ? "<tr>" + head.map((h) => "<th>" + h + "</th>").join("") + "</tr>" + body.join("")
    : '<tr><td class="empty">' + empty + "</td></tr>";
};
const kv = (id, pairs) => {
  document.getElementById(id).innerHTML = pairs.map(([k, v, cls]) =>
    "<tr><th>" + k + '</th><td class="num ' + (cls || "") + '">' + v + "</td></tr>").join("");
};
function render(s) {
  const now = s.time;
  document.getElementById("meta").textContent = s.root + (s.server
    ? " — pid " + s.server.pid + " on " + s.server.host + ", FTP " + s.server.listen
    : " — no server") + " — " + new Date(now).toLocaleTimeString();
  rows("nodes", ["node", "state", "free", "load", "last error"], s.nodes.map((n) =>
    "<tr class=node><td>" + esc(n.label) + '</td><td class="' + (n.up ? "up" : "down") + '">' +
    (n.up ? "up" : "down") + '</td><td class="num">' + bytes(n.freeBytes) +
    '</td><td class="num">' + n.load + "</td><td>" +
    (n.lastError ? esc(n.lastError.message) + " (" + ago(n.lastError.at, now) + ")" : "") +
    "</td></tr>"), "no node");
  rows("transfers", ["user", "file", "", "done", "rate"], s.transfers.map((t) =>
    "<tr class=transfer><td>" + esc(t.user) + "</td><td>" + esc(t.path) + "</td><td>" +
    (t.direction === "upload" ? "⬆ upload" : "⬇ download") + '</td><td class="num">' +
    bytes(t.bytes) + '</td><td class="num">' + bytes(t.rate) + "/s</td></tr>"),
    "no transfer now");
  const r = s.replication;
  kv("files", r ? [
    ["files", r.files + " (" + bytes(r.bytes) + ")"],
    ...Object.entries(r.byCopies).sort((a, b) => a[0] - b[0])
      .map(([c, n]) => ["with " + c + " cop" + (c === "1" ? "y" : "ies"), n]),
    ["under " + r.replicas + " copies", r.underReplicated, r.underReplicated ? "warn" : ""],
    ["lost", r.lost, r.lost ? "down" : ""],
    ["waiting to be stored", r.pending],
    ["counted", ago(r.scannedAt, now)],
  ] : [["files", "counting…"]]);
  kv("queue", [
    ["jobs", s.queue.depth + (s.queue.claimed ? " (" + s.queue.claimed + " in progress)" : "")],
    ["oldest job", s.queue.oldestAgeSeconds === null ? "—"
      : Math.round(s.queue.oldestAgeSeconds) + " s old", s.queue.oldestAgeSeconds > 600 ? "warn" : ""],
    ["staging", s.staging.files + " file(s), " + bytes(s.staging.bytes)],
    ["last audit", s.audit ? ago(s.audit.time, now) : "none"],
    ...(s.audit ? Object.entries(s.audit.counts).filter(([k, n]) => n > 0 && k !== "ok")
      .map(([k, n]) => ["  " + k, n, k === "pending" ? "" : "warn"]) : []),
  ]);
  rows("sessions", ["user", "from", "since"], s.sessions.map((x) =>
    "<tr><td>" + esc(x.user || "(not logged in)") + "</td><td>" + esc(x.ip) + "</td><td>" +
    ago(x.since, now) + "</td></tr>"), "no session");
  const t = s.totals;
  kv("totals", [
    ["logins", t.logins + (t.loginFailures ? " (" + t.loginFailures + " failed)" : "")],
    ["uploads", t.uploads + " (" + bytes(t.bytesIn) + ")"],
    ["downloads", t.downloads + " (" + bytes(t.bytesOut) + ")"],
    ["failed transfers", t.transfersFailed, t.transfersFailed ? "warn" : ""],
    ["errors", t.errors, t.errors ? "warn" : ""],
  ]);
  document.getElementById("events").textContent = s.recent.length ? s.recent.join("\\n")
    : "nothing yet";
}
async function refresh() {
  try {
    const res = await fetch("status", { cache: "no-store" });
    if (!res.ok) throw new Error("status: HTTP " + res.status);
    render(await res.json());
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = "cannot reach the server: " + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
