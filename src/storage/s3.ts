/**
 * The S3-compatible object storage driver, on the AWS SDK (`@aws-sdk/client-s3`,
 * and `@aws-sdk/lib-storage` for streamed uploads). A storage is a bucket and a
 * key prefix (`s3://bucket/prefix`); paths below it are keys (`prefix/a/b`).
 *
 * - Any endpoint (`endpoint`, or AWS_ENDPOINT_URL; default AWS), path-style
 *   addressing for other endpoints, region `us-east-1` unless told.
 * - Credentials: the access key and secret given (user and password), else the
 *   SDK's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles).
 * - Writes are one PUT for bytes and a multipart upload for streams (parts of
 *   8 MB, two in flight: bounded memory); S3 makes an object visible whole, so
 *   writes are atomic without a temporary name.
 * - Object storage has no folders: a folder is a key prefix; `mkdir` and
 *   `rmdir` do nothing, and a folder with nothing in it does not exist.
 * - Exclusive create: `If-None-Match: *` on PUT where the server honours it
 *   (AWS since 2024, MinIO; `check()` probes it), else the listing scheme of
 *   `exclusive.ts` (S3 listings are read-after-write consistent).
 * - Rename is a copy then a delete (not atomic: both names exist for a moment).
 *   Modification times are the server's; they cannot be set.
 *
 * @module
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import process from "node:process";
import { Readable } from "node:stream";
import { createExclusiveByListing } from "./exclusive.ts";
import { counter, toReadable, toWeb } from "./streams.ts";
import { checkPath, type Driver, type Entry, StorageError, tempName } from "./types.ts";

/** Where and how to connect. */
export interface S3Options {
  bucket: string;
  /** Key prefix ("" the bucket's top). */
  prefix?: string;
  /** Endpoint URL (default: AWS_ENDPOINT_URL, then AWS). */
  endpoint?: string;
  region?: string;
  accessKey?: string;
  secretKey?: string;
  /** Accept any server certificate. */
  insecureTls?: boolean;
  /** PEM CA certificate(s) to trust. */
  tlsCa?: string;
  /** Request timeout, ms (default 60 s). */
  timeoutMs?: number;
}

/** Parts of streamed uploads, and how many are sent at once. */
const PART_SIZE = 8 << 20;
const PARTS_IN_FLIGHT = 2;

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}
function errName(e: unknown): string {
  return String((e as { name?: unknown; Code?: unknown })?.name ?? "");
}

/** Opens an S3 storage (requests are made on each call; `check()` probes now). */
export function s3Driver(o: S3Options): Driver {
  const prefix = (o.prefix ?? "").replace(/^\/+|\/+$/g, "");
  const endpoint = o.endpoint ?? process.env.AWS_ENDPOINT_URL;
  const label = `s3://${o.bucket}/${prefix}${endpoint ? ` (${endpoint})` : ""}`;
  const where = endpoint ?? "AWS";
  const timeout = o.timeoutMs ?? 60_000;
  const secure = !endpoint || endpoint.startsWith("https:");
  const client = new S3Client({
    region: o.region ?? process.env.AWS_REGION ?? "us-east-1",
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(o.accessKey !== undefined
      ? { credentials: { accessKeyId: o.accessKey, secretAccessKey: o.secretKey ?? "" } }
      : {}),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 2,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: timeout,
      requestTimeout: timeout,
      ...(secure
        ? {
          httpsAgent: new HttpsAgent({
            keepAlive: true,
            rejectUnauthorized: !o.insecureTls,
            ...(o.tlsCa ? { ca: o.tlsCa } : {}),
          }),
        }
        : { httpAgent: new HttpAgent({ keepAlive: true }) }),
    }),
  });
  const caps = {
    atomicMkdir: false,
    exclusive: "listing" as "native" | "listing",
    rangedRead: true,
    folders: false,
    atomicPut: true,
  };
  let probed: Promise<void> | null = null;
  const Bucket = o.bucket;
  const key = (p: string) => (prefix ? `${prefix}/${p}` : p);

  const err = (e: unknown, what: string, name?: string): StorageError => {
    if (e instanceof StorageError) return e;
    const subject = name ? `${what} ${name}` : what;
    const n = errName(e);
    const st = status(e);
    const msg = `${label}: cannot ${subject}: ${n ? n + ": " : ""}${(e as Error)?.message ?? e}`;
    const h = (hint: string) => ({ cause: e, hint });
    if (
      /InvalidAccessKeyId|SignatureDoesNotMatch|InvalidToken|ExpiredToken|CredentialsProviderError/
        .test(n)
    ) {
      return new StorageError("auth", msg, h(`Check the access key and secret for ${where}.`));
    }
    if (n === "NoSuchBucket") {
      return new StorageError(
        "missing",
        msg,
        h(`Create the bucket ${Bucket} first, or fix its name.`),
      );
    }
    if (n === "NoSuchKey" || n === "NotFound" || st === 404) {
      return new StorageError("missing", msg, h("The object is not there."));
    }
    if (n === "AccessDenied" || st === 403) {
      return new StorageError(
        "denied",
        msg,
        h("The server refused: check the key's rights on the bucket."),
      );
    }
    if (/QuotaExceeded|EntityTooLarge|InsufficientStorage/.test(n) || st === 507) {
      return new StorageError(
        "full",
        msg,
        h("The storage is full (quota): free space on it (on a relay, or lower `maxpagesize`)."),
      );
    }
    if (st !== undefined) {
      return new StorageError("other", msg, h("The S3 server refused; its reply is above."));
    }
    const text = `${String((e as { code?: unknown })?.code ?? "")} ${msg}`;
    if (/cert|self.signed|UNABLE_TO_VERIFY|ERR_TLS|SSL|TLS/i.test(text)) {
      return new StorageError(
        "tls",
        msg,
        h("The TLS connection failed: trust the server's certificate (its CA), or for a self-signed test server allow insecure TLS."),
      );
    }
    if (/ECONNREFUSED/.test(text)) {
      return new StorageError(
        "connect",
        msg,
        h(`Is the S3 server at ${where} running? Check the endpoint.`),
      );
    }
    return new StorageError(
      "connect",
      msg,
      h(`The connection to ${where} failed or dropped; hop retries on the next pass.`),
    );
  };
  const wrap = async <T>(
    what: string,
    name: string | undefined,
    f: () => Promise<T>,
  ): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw err(e, what, name);
    }
  };

  /** One page after another of `ListObjectsV2` under `pfx`, split at `/`. */
  async function listRaw(pfx: string): Promise<Entry[]> {
    const out: Entry[] = [];
    let token: string | undefined;
    do {
      const r = await client.send(
        new ListObjectsV2Command({ Bucket, Prefix: pfx, Delimiter: "/", ContinuationToken: token }),
      );
      for (const c of r.CommonPrefixes ?? []) {
        const name = c.Prefix!.slice(pfx.length).replace(/\/$/, "");
        if (name) out.push({ name, isDir: true, size: 0, mtimeMs: null });
      }
      for (const c of r.Contents ?? []) {
        const name = c.Key!.slice(pfx.length);
        if (!name) continue; // a folder marker object
        out.push({
          name,
          isDir: false,
          size: Number(c.Size ?? 0),
          mtimeMs: c.LastModified?.getTime() ?? null,
        });
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }
  const dirPrefix = (d: string) => (d === "" ? (prefix ? prefix + "/" : "") : key(d) + "/");

  async function head(p: string): Promise<Entry | null> {
    try {
      const r = await client.send(new HeadObjectCommand({ Bucket, Key: key(p) }));
      return {
        name: p.slice(p.lastIndexOf("/") + 1),
        isDir: false,
        size: Number(r.ContentLength ?? 0),
        mtimeMs: r.LastModified?.getTime() ?? null,
      };
    } catch (e) {
      if (status(e) === 404 || errName(e) === "NotFound" || errName(e) === "NoSuchKey") return null;
      throw e;
    }
  }

  async function put(p: string, data: Uint8Array, ifNoneMatch = false): Promise<boolean> {
    try {
      await client.send(
        new PutObjectCommand({
          Bucket,
          Key: key(p),
          Body: data,
          ContentLength: data.length,
          ...(ifNoneMatch ? { IfNoneMatch: "*" } : {}),
        }),
      );
      return true;
    } catch (e) {
      if (ifNoneMatch && (status(e) === 412 || errName(e) === "PreconditionFailed")) return false;
      throw e;
    }
  }

  async function probe(): Promise<void> {
    await client.send(new HeadBucketCommand({ Bucket }));
    const name = tempName("probe");
    await put(name, new Uint8Array(1));
    const second = await put(name, new Uint8Array(2), true).catch(() => true);
    caps.exclusive = second ? "listing" : "native";
    await client.send(new DeleteObjectCommand({ Bucket, Key: key(name) })).catch(() => {});
  }

  const driver: Driver = {
    label,
    caps,
    list: (d) =>
      wrap("list", d || undefined, async () => {
        checkPath(d, true);
        const out = await listRaw(dirPrefix(d));
        if (out.length === 0 && d !== "") {
          throw new StorageError("missing", `${label}: no folder ${d}`, {
            hint: "Nothing is stored under that name (object storage has no empty folders).",
          });
        }
        return out;
      }),
    stat: (p) =>
      wrap("stat", p, async () => {
        checkPath(p);
        const f = await head(p);
        if (f) return f;
        const r = await client.send(
          new ListObjectsV2Command({ Bucket, Prefix: key(p) + "/", MaxKeys: 1 }),
        );
        return (r.KeyCount ?? 0) > 0
          ? { name: p.slice(p.lastIndexOf("/") + 1), isDir: true, size: 0, mtimeMs: null }
          : null;
      }),
    read: (p, offset = 0) =>
      wrap("read", p, async () => {
        checkPath(p);
        let body: unknown;
        try {
          const r = await client.send(
            new GetObjectCommand({
              Bucket,
              Key: key(p),
              ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}),
            }),
          );
          body = r.Body;
        } catch (e) {
          // a range that starts at the end of the object: nothing left to read
          if (offset > 0 && status(e) === 416 && (await head(p))?.size === offset) {
            return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
          }
          throw e;
        }
        const web = body instanceof Readable ? toWeb(body) : body as ReadableStream<Uint8Array>;
        const reader = web.getReader();
        return new ReadableStream<Uint8Array>({
          async pull(c) {
            try {
              const x = await reader.read();
              if (x.done) c.close();
              else c.enqueue(x.value);
            } catch (e) {
              c.error(err(e, "read", p));
            }
          },
          cancel: (why) => reader.cancel(why),
        }, { highWaterMark: 0 });
      }),
    write: (p, data) =>
      wrap("write", p, async () => {
        checkPath(p);
        if (data instanceof Uint8Array) {
          await put(p, data);
          return data.length;
        }
        const counted = counter();
        const up = new Upload({
          client,
          params: { Bucket, Key: key(p), Body: toReadable(data).pipe(counted.stream) },
          partSize: PART_SIZE,
          queueSize: PARTS_IN_FLIGHT,
          leavePartsOnError: false,
        });
        await up.done();
        return counted.bytes();
      }),
    createExclusive: (p, data) =>
      wrap("create", p, async () => {
        checkPath(p);
        await driver.check();
        if (caps.exclusive === "native") return await put(p, data, true);
        return await createExclusiveByListing(driver, p, data);
      }),
    delete: (p) =>
      wrap("delete", p, async () => {
        checkPath(p);
        if (!(await head(p))) return false;
        await client.send(new DeleteObjectCommand({ Bucket, Key: key(p) }));
        return true;
      }),
    mkdir: (p) => {
      checkPath(p);
      return Promise.resolve(true);
    },
    rmdir: (p) => {
      checkPath(p);
      return Promise.resolve();
    },
    rename: (from, to) =>
      wrap("rename", from, async () => {
        checkPath(from);
        checkPath(to);
        const source = `${Bucket}/${key(from).split("/").map(encodeURIComponent).join("/")}`;
        await client.send(new CopyObjectCommand({ Bucket, Key: key(to), CopySource: source }));
        await client.send(new DeleteObjectCommand({ Bucket, Key: key(from) }));
      }),
    check: () =>
      wrap("connect to", undefined, () =>
        probed ??= probe().catch((e) => {
          probed = null;
          throw e;
        })),
    close() {
      client.destroy();
      return Promise.resolve();
    },
  };
  return driver;
}
