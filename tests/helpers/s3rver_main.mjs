// Runs s3rver (npm) for tests/helpers/storage_servers.ts: Node.js, loopback,
// one bucket, and only the key pair the test generated (the package's fixed
// S3RVER key is revoked). Argument: JSON {port, dir, bucket, accessKey, secretKey}.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const S3rver = require("s3rver");
const account = require("s3rver/lib/models/account");
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
