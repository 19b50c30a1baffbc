/**
 * An audit never mistakes "could not see" for "not there": a node listing that is
 * refused (the node's per-address connection cap), cut (its data connection reset
 * mid-listing) or lost (the node process dies mid-listing) makes that node's copies
 * `unchecked`, never `missing` or `lost`; the repair report proposes no `drop` for
 * them; and `hop audit` exits 3 (incomplete), not 0 and not 1. The faults are made
 * in a real pyftpdlib node; the healthy second node is audited as usual.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Client } from "basic-ftp";
import { auditCluster, type AuditRecord, writeRepairReport } from "../src/cluster/audit.ts";
import { makeTestCluster, type TestCluster } from "./helpers/cluster_fixture.ts";
import { newLogin } from "./helpers/credentials.ts";
import { startPyftpdlib, type TestFtpServer } from "./helpers/ftp_servers.ts";
import { runHop } from "./helpers/hop.ts";

const FILES = 300;

/** pyftpdlib with a fault (Python run on its handler class), and a healthy one. */
async function clusterWith(fault: string) {
  const { user, password } = newLogin("node");
  const servers: TestFtpServer[] = [];
  const urls: string[] = [];
  const t = await makeTestCluster(2, async (dirs) => {
    servers.push(await startPyftpdlib({ root: dirs[0], user, password, python: fault }));
    servers.push(await startPyftpdlib({ root: dirs[1], user, password }));
    urls.push(...servers.map((s) => s.loginUrl()));
    return urls;
  });
  const body = randomBytes(700);
  for (let i = 0; i < FILES; i++) await t.addFile(`d${i % 7}/f${i}.bin`, body, [0, 1]);
  return { t, servers, urls };
}

/** The audit in process (the runtime of this test lane) and its repair report. */
async function check(t: TestCluster, before?: () => Promise<void>) {
  await t.reopen();
  await before?.();
  const found: AuditRecord[] = [];
  const summary = await auditCluster(t.adm.ctx, { onRecord: (r) => void found.push(r) });
  const kinds = (k: string) => found.filter((r) => r.kind === k);
  assert.deepEqual(summary.nodesDown, [t.keys[0]], "the faulty node is reported as not listed");
  assert.deepEqual(kinds("missing"), [], "nothing is called missing");
  assert.deepEqual(kinds("lost"), [], "nothing is called lost");
  assert.equal(kinds("unchecked").length, FILES, "every copy on the faulty node is unchecked");
  assert.ok(kinds("unchecked").every((r) => r.node === t.keys[0]));
  assert.equal(summary.counts.ok, FILES, "the healthy node's copies are ok");
  await t.reopen();
  await before?.();
  const report = path.join(t.tmp, "repair.txt");
  await writeRepairReport(t.adm.ctx, report);
  const text = await fsp.readFile(report, "utf8");
  assert.ok(!/^drop\b/m.test(text), `no drop from an incomplete listing:\n${text}`);
}

/** `hop audit` (the binary under npm test) exits 3 and says which node it could not list. */
async function checkCommand(t: TestCluster, urls: string[], before?: () => Promise<void>) {
  await t.adm.close();
  await before?.();
  const r = await runHop([
    "audit",
    "--root",
    t.root,
    ...urls.flatMap((u) => ["--node", u]),
  ], { timeoutMs: 120_000 });
  assert.equal(r.code, 3, `exit 3 for an incomplete audit:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /the audit is incomplete: 1 node\(s\) could not be listed/);
  assert.doesNotMatch(r.stdout, /^(missing|lost)\b/m, r.stdout);
}

Deno.test("audit: a node refusing the connection (its per-address cap) is unchecked, exit 3", async () => {
  const { t, servers, urls } = await clusterWith(
    "FTPServer.max_cons_per_ip = 1",
  );
  // Another client holds the node's one connection from this address.
  const holder = new Client(10_000);
  const hold = async () => {
    holder.close();
    await holder.access(servers[0].target);
  };
  try {
    await check(t, hold);
    await checkCommand(t, urls, hold);
  } finally {
    holder.close();
    await t.close();
    for (const s of servers) await s.stop();
  }
});

Deno.test("audit: a listing whose data connection is reset midway is unchecked, exit 3", async () => {
  const { t, servers, urls } = await clusterWith(`
import socket, struct
from pyftpdlib.handlers import DTPHandler
class CutDTP(DTPHandler):
    def initiate_send(self):
        if self.cmd in ("MLSD", "LIST", "NLST") and self.get_transmitted_bytes() > 0:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.handle_close()
            return
        super().initiate_send()
Handler.dtp_handler = CutDTP
`);
  try {
    await check(t);
    await checkCommand(t, urls);
  } finally {
    await t.close();
    for (const s of servers) await s.stop();
  }
});

/**
 * No MLSD: the node is listed with LIST and a SIZE + MDTM per file; at the 100th SIZE
 * the node process exits, as a node restarting in the middle of an audit would.
 */
const DYING = `
import os
Handler.proto_cmds = {k: v for k, v in Handler.proto_cmds.items() if k not in ("MLSD", "MLST")}
sizes = [0]
class Dying(Handler):
    def ftp_SIZE(self, path):
        sizes[0] += 1
        if sizes[0] == 100:
            os._exit(1)
        return super().ftp_SIZE(path)
Handler = Dying
`;

Deno.test("audit: a node that dies mid-listing (LIST, then SIZE per file) is unchecked, exit 3", async () => {
  const { t, servers, urls } = await clusterWith(DYING);
  const restart = async () => {
    servers[0] = await servers[0].restart();
  };
  try {
    await check(t, restart);
    await checkCommand(t, urls, restart);
  } finally {
    await t.close();
    for (const s of servers) await s.stop();
  }
});
