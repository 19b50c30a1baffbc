/**
 * The storage driver conformance suite (`storage_suite.ts`) on the S3 driver
 * against s3rver (npm, run by Node.js) with a key pair made per run.
 *
 * @module
 */
import { openDriver } from "../src/storage/mod.ts";
import { freePort } from "./helpers/ftp_servers.ts";
import { startS3rver } from "./helpers/storage_servers.ts";
import { storageConformance } from "./storage_suite.ts";

Deno.test("storage conformance: S3 (s3rver)", async (t) => {
  const s3 = await startS3rver("hop-bucket");
  try {
    const url = `s3://${s3.bucket}/some/prefix?endpoint=${encodeURIComponent(s3.endpoint)}`;
    const opts = { user: s3.accessKey, password: s3.secretKey };
    await storageConformance(t, {
      open: () => openDriver(url, opts),
      // s3rver ignores If-None-Match: the listing scheme decides
      exclusive: "listing",
      setsMtime: false,
      replacesInPlace: "s3rver writes an object in place: a reader can get part of it",
      // s3rver checks the access key but not SigV4 signatures (a wrong secret passes)
      openWrongAuth: () => openDriver(url, { ...opts, user: "X" + s3.accessKey }),
      openDown: async () =>
        openDriver(`s3://${s3.bucket}/p?endpoint=http://127.0.0.1:${await freePort()}`, opts),
    });
  } finally {
    await s3.stop();
  }
});
