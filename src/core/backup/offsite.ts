import { createCipheriv, createDecipheriv, randomBytes, type DecipherGCM } from "node:crypto";
import { createReadStream } from "node:fs";
import { basename } from "node:path";
import { PassThrough, Transform, Writable, type Readable } from "node:stream";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { manifestPath, type Manifest } from "./manifest";
import { signManifest } from "./manifest-auth";
import { hasher } from "./streams";

/** Where off-site copies go (any S3-compatible store). */
export interface S3Target {
  bucket: string;
  region: string;
  endpoint?: string;
  prefix: string;
  forcePathStyle: boolean;
  /** Credentials; default: the SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /**
   * Seconds a request may sit without any byte moving before it is abandoned (default 60); a store that
   * accepts the connection and never answers would otherwise hold a deploy, and its lock, forever.
   */
  idleTimeoutSeconds?: number;
}

// A function, not a Buffer constant: a serialized provider copies module values and breaks Buffers.
const magic = () => Buffer.from("SDENC1\0\0");

/** Parses a 32-byte key given as 64 hex chars or base64; ConfigError names where it came from. */
export function parseKey(text: string, from = "SAFE_DEPLOY_BACKUP_KEY"): Buffer {
  const t = text.trim();
  const k = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, "hex") : Buffer.from(t, "base64");
  if (k.length !== 32)
    throw new ConfigError(`\`${from}\` must be 32 bytes as 64 hex chars or base64 (AES-256)`);
  return k;
}

/** AES-256-GCM stream: MAGIC, 12-byte IV, ciphertext, 16-byte tag. */
export function encryptStream(key: Buffer): Transform {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  let started = false;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (!started) {
        started = true;
        this.push(Buffer.concat([magic(), iv]));
      }
      cb(null, c.update(chunk));
    },
    flush(cb) {
      if (!started) this.push(Buffer.concat([magic(), iv]));
      this.push(c.final());
      cb(null, c.getAuthTag());
    },
  });
}

/** Inverse of `encryptStream`; fails (tag mismatch) on any altered byte. Holds back only the 16-byte tag. */
export function decryptStream(key: Buffer): Transform {
  let head = Buffer.alloc(0);
  let d: DecipherGCM | undefined;
  let tail = Buffer.alloc(0);
  const hl = magic().length + 12;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (!d) {
        head = Buffer.concat([head, chunk]);
        if (head.length < hl) return cb();
        if (!head.subarray(0, magic().length).equals(magic()))
          return cb(new CheckFailedError("not an encrypted safe-deploy backup"));
        d = createDecipheriv("aes-256-gcm", key, head.subarray(magic().length, hl));
        chunk = head.subarray(hl);
      }
      const all = Buffer.concat([tail, chunk]);
      tail = all.subarray(Math.max(0, all.length - 16));
      cb(null, d.update(all.subarray(0, all.length - tail.length)));
    },
    flush(cb) {
      if (!d || tail.length !== 16) return cb(new CheckFailedError("encrypted backup is truncated"));
      d.setAuthTag(tail);
      try {
        cb(null, d.final());
      } catch {
        cb(new CheckFailedError("encrypted backup failed authentication: wrong key or altered data"));
      }
    },
  });
}

/** An S3 client for `t`, with the connect and idle timeouts every transfer here uses. */
export function s3Client(t: S3Target) {
  const { S3Client } = require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");
  return new S3Client({
    region: t.region,
    endpoint: t.endpoint,
    forcePathStyle: t.forcePathStyle,
    credentials: t.credentials,
    requestHandler: {
      connectionTimeout: 10_000,
      // Idle time on the socket, not a cap on the whole request: a large part may take long to send.
      socketTimeout: (t.idleTimeoutSeconds ?? 60) * 1000,
    },
  });
}

/**
 * An S3 SDK error as a sentence, with the fix when it is about credentials: the SDK's own "Could not
 * load credentials from any providers" does not say which variables it reads.
 */
export function s3ErrorText(e: unknown): string {
  // Stryker disable next-line StringLiteral: a missing name as any other text is no name in the lists below.
  const name = (e as { name?: string }).name ?? "";
  const message = (e as Error).message ?? String(e);
  if (name === "CredentialsProviderError")
    return `${message}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment`;
  if (["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"].includes(name))
    return `${message} (${name}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that they may use the bucket`;
  return message;
}

/** Object key of a backup: `prefix/` + file name (+ `.enc` when encrypted). */
export function objectKey(t: S3Target, file: string, encrypted: boolean): string {
  const p = t.prefix.replace(/^\/+|\/+$/g, "");
  return `${p ? p + "/" : ""}${basename(file)}${encrypted ? ".enc" : ""}`;
}

/**
 * Uploads a backup and its manifest with streaming multipart (never the whole file in memory),
 * optionally AES-256-GCM encrypted on this machine (the manifest then signed, `manifest-auth.ts`), then downloads the object again and checks its
 * sha256 against what was sent. Returns the object key.
 */
export async function uploadBackup(
  file: string,
  manifest: Manifest,
  t: S3Target,
  o: { encryptionKey?: Buffer } = {},
): Promise<{ key: string; sha256: string; sizeBytes: number }> {
  const { Upload } = require("@aws-sdk/lib-storage") as typeof import("@aws-sdk/lib-storage");
  const { GetObjectCommand, PutObjectCommand } =
    require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");
  // Required here: captured by a serialized provider, a module-scope stream/promises import loses `pipeline`.
  const { pipeline } = require("node:stream/promises") as typeof import("node:stream/promises");
  const s3 = s3Client(t);
  const key = objectKey(t, file, !!o.encryptionKey);
  const h = hasher();
  const body = new PassThrough();
  const feed = pipeline(
    createReadStream(file),
    o.encryptionKey ? encryptStream(o.encryptionKey) : new PassThrough(),
    h.stream,
    body,
  );
  try {
    const up = new Upload({
      client: s3,
      params: { Bucket: t.bucket, Key: key, Body: body, ContentType: "application/octet-stream" },
      queueSize: 2,
      partSize: 8 * 1024 * 1024,
    });
    await Promise.all([feed, up.done()]);
    const sent = h.hash.digest("hex");
    const unsigned = {
      ...manifest,
      offsite: {
        key,
        sha256: sent,
        sizeBytes: h.bytes(),
        encryption: o.encryptionKey ? "aes-256-gcm" : "none",
      },
    };
    // Signed with the key: `backup fetch` believes no manifest, date or checksum someone else wrote.
    const remoteManifest = o.encryptionKey ? signManifest(unsigned, o.encryptionKey) : unsigned;
    await s3.send(
      new PutObjectCommand({
        Bucket: t.bucket,
        Key: objectKey(t, manifestPath(file), false),
        Body: JSON.stringify(remoteManifest, null, 2),
        ContentType: "application/json",
      }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }));
    const back = hasher();
    await pipeline(got.Body as Readable, back.stream, new Writable({ write: (_c, _e, cb) => cb() }));
    const remote = back.hash.digest("hex");
    if (remote !== sent) {
      throw new CheckFailedError(
        `off-site copy s3://${t.bucket}/${key} does not match what was uploaded (sha256 ${remote})`,
      );
    }
    return { key, sha256: sent, sizeBytes: h.bytes() };
  } catch (e) {
    if (e instanceof CheckFailedError || e instanceof ConfigError) throw e;
    throw new CannotRunError(
      `uploading ${basename(file)} to s3://${t.bucket}/${key} failed: ${s3ErrorText(e)}`,
    );
  } finally {
    s3.destroy();
  }
}

/** Downloads an off-site backup to `dest` (decrypting when a key is given). */
export async function downloadBackup(
  t: S3Target,
  key: string,
  dest: string,
  o: { encryptionKey?: Buffer } = {},
): Promise<void> {
  const { GetObjectCommand } = require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");
  const { createWriteStream } = require("node:fs") as typeof import("node:fs");
  const { pipeline } = require("node:stream/promises") as typeof import("node:stream/promises");
  const s3 = s3Client(t);
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }));
    await pipeline(
      got.Body as Readable,
      o.encryptionKey ? decryptStream(o.encryptionKey) : new PassThrough(),
      createWriteStream(dest, { mode: 0o600, flags: "wx" }),
    );
  } finally {
    s3.destroy();
  }
}
