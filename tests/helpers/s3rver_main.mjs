// Runs s3rver (npm) for tests/helpers/storage_servers.ts: Node.js, loopback,
// one bucket, and only the key pair the test generated (the package's fixed
// S3RVER key is revoked). Argument: JSON {port, dir, bucket, accessKey, secretKey}.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const S3rver = require("s3rver");
const account = require("s3rver/lib/models/account");
const FilesystemStore = require("s3rver/lib/stores/filesystem");
// s3rver 3.7 keeps "folders" of keys as directories and removes one when a DELETE
// empties it: a PUT racing it (mkdir, then open) finds its directory gone and the
// unhandled ENOENT kills the server. Its stores' writes and deletes run one at a time
// here (S3 makes each atomic anyway); requests still race as they do on real S3.
let last = Promise.resolve();
for (const name of ["putObject", "deleteObject", "copyObject"]) {
  const f = FilesystemStore.prototype[name];
  FilesystemStore.prototype[name] = function (...args) {
    const run = last.then(() => f.apply(this, args));
    last = run.catch(() => {});
    return run;
  };
}
const o = JSON.parse(process.argv[2]);
account.DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
account.DUMMY_ACCOUNT.createKeyPair(o.accessKey, o.secretKey);
const server = new S3rver({
  address: "127.0.0.1",
  port: o.port,
  directory: o.dir,
  silent: true,
  configureBuckets: [{ name: o.bucket }],
  vhostBuckets: false,
});
await server.run();
process.on("SIGTERM", () => server.close().then(() => process.exit(0)));
