// Bringing an off-site copy back: the disaster-recovery half of `uploadBackup`. The object is streamed
// (never held in memory) through the ciphertext's sha256, decryption, the backup's own sha256, into a
// temp file beside the destination; only when both checksums match the uploaded manifest is it linked
// into place with its manifest. A wrong key, an altered byte or a cut connection leaves nothing behind.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { link, mkdir, open, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import writeFileAtomic from "write-file-atomic";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { manifestPath, type Manifest } from "./manifest";
import { parseBackupFileName } from "./names";
import { decryptStream, objectKey, s3Client, s3ErrorText, type S3Target } from "./offsite";
import { fileSink, hasher } from "./streams";

/** The manifest `uploadBackup` stores beside the object: the backup's, plus what was sent. */
type RemoteManifest = Manifest & {
  offsite?: { key: string; sha256: string; sizeBytes: number; encryption: "aes-256-gcm" | "none" };
};

/** What `fetchBackup` brought back. */
export interface FetchResult {
  file: string;
  manifest: Manifest;
  /** The object key it came from. */
  key: string;
}

const where = (t: S3Target, key = "") => `s3://${t.bucket}/${key}`;
const plainName = (key: string) => basename(key).replace(/\.enc$/, "");

/** Keys of backups under the target's prefix, newest first (by the time in their names). */
export async function listOffsite(t: S3Target): Promise<string[]> {
  const { ListObjectsV2Command } = require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");
  const s3 = s3Client(t);
  const prefix = objectKey(t, "", false);
  const keys: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: t.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? [])
        if (o.Key && parseBackupFileName(plainName(o.Key))) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (e) {
    throw new CannotRunError(`listing ${where(t, prefix)} failed: ${s3ErrorText(e)}`);
  } finally {
    s3.destroy();
  }
  const at = (k: string) => parseBackupFileName(plainName(k))!.createdAt.getTime();
  return keys.sort((a, b) => at(b) - at(a) || (plainName(a) < plainName(b) ? 1 : -1));
}

function s3Failure(e: unknown, t: S3Target, key: string, what: string): Error {
  if (e instanceof CheckFailedError || e instanceof ConfigError || e instanceof CannotRunError) return e;
  const name = (e as { name?: string }).name;
  if (name === "NoSuchKey" || name === "NotFound")
    return new ConfigError(`${where(t, key)} does not exist; \`backup fetch --list\` shows what is there`);
  return new CannotRunError(`${what} ${where(t, key)} failed: ${s3ErrorText(e)}`);
}

/**
 * Downloads backup `name` (a file name, with or without `.enc`; default: the newest under the prefix)
 * and its manifest into `dir`, decrypting with `encryptionKey` when the object is encrypted, and checks
 * both the uploaded bytes and the backup against the manifest before the file appears under its name.
 */
export async function fetchBackup(o: {
  target: S3Target;
  dir: string;
  name?: string;
  encryptionKey?: Buffer;
}): Promise<FetchResult> {
  const { GetObjectCommand } = require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");
  const t = o.target;
  let key: string;
  if (o.name) {
    if (!parseBackupFileName(plainName(o.name)))
      throw new ConfigError(
        `"${o.name}" is not a backup name (backup_YYYYMMDD_HHMMSS[_label].pgdump[.zst|.gz])`,
      );
    key = objectKey(t, o.name, false);
  } else {
    const all = await listOffsite(t);
    if (!all.length)
      throw new ConfigError(
        `no backups under ${where(t, objectKey(t, "", false))}; check the bucket and prefix`,
      );
    key = all[0];
  }
  const name = plainName(key);
  const file = join(o.dir, name);
  if (existsSync(file)) throw new ConfigError(`${file} already exists; fetch into another \`--dir\``);

  const s3 = s3Client(t);
  let tmp: string | undefined;
  try {
    const mKey = objectKey(t, manifestPath(name), false);
    let remote: RemoteManifest;
    try {
      const got = await s3.send(new GetObjectCommand({ Bucket: t.bucket, Key: mKey }));
      remote = JSON.parse(await got.Body!.transformToString());
    } catch (e) {
      if (e instanceof SyntaxError) throw new CheckFailedError(`${where(t, mKey)} is not valid JSON`);
      if ((e as { name?: string }).name === "NoSuchKey")
        throw new CheckFailedError(
          `${name} has no manifest at ${where(t, mKey)}: the backup is not there or its upload never finished, and without a manifest it cannot be checked (\`backup fetch --list\` shows what is there)`,
        );
      throw s3Failure(e, t, mKey, "reading");
    }
    if (remote?.version !== 1 || typeof remote.sha256 !== "string" || remote.file !== name)
      throw new CheckFailedError(`${where(t, mKey)} is not the manifest of ${name}`);
    // The manifest says which object holds the copy (an encrypted one ends in `.enc`).
    if (remote.offsite?.key) key = remote.offsite.key;
    const encrypted = remote.offsite?.encryption === "aes-256-gcm" || key.endsWith(".enc");
    if (encrypted && !o.encryptionKey)
      throw new ConfigError(
        `${where(t, key)} is encrypted: set SAFE_DEPLOY_BACKUP_KEY to the stack's \`backupEncryptionKey\``,
      );

    await mkdir(o.dir, { recursive: true, mode: 0o700 });
    tmp = join(o.dir, `.${name}.tmp-${randomBytes(4).toString("hex")}`);
    const fh = await open(tmp, "wx", 0o600);
    const sent = hasher();
    const plain = hasher();
    try {
      const got = await s3.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }));
      await pipeline(
        got.Body as Readable,
        sent.stream,
        encrypted ? decryptStream(o.encryptionKey!) : new PassThrough(),
        plain.stream,
        fileSink(fh),
      );
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOSPC")
        throw new CannotRunError(
          `no space left in ${o.dir} while fetching ${name}; free space or use another \`--dir\``,
        );
      throw s3Failure(e, t, key, "downloading");
    } finally {
      await fh.close().catch(() => {});
    }
    const off = remote.offsite;
    if (off && (sent.hash.digest("hex") !== off.sha256 || sent.bytes() !== off.sizeBytes))
      throw new CheckFailedError(
        `${where(t, key)} does not match the checksum recorded when it was uploaded`,
      );
    if (plain.hash.digest("hex") !== remote.sha256 || plain.bytes() !== remote.sizeBytes)
      throw new CheckFailedError(
        `${name} fetched from ${where(t, key)} does not match its manifest's sha256`,
      );

    const { offsite: _off, ...manifest } = remote;
    await link(tmp, file).catch((e: NodeJS.ErrnoException) => {
      throw e.code === "EEXIST" ? new ConfigError(`${file} already exists; fetch into another \`--dir\``) : e;
    });
    await unlink(tmp);
    tmp = undefined;
    await writeFileAtomic(manifestPath(file), JSON.stringify(manifest, null, 2) + "\n", { mode: 0o600 });
    return { file, manifest, key };
  } finally {
    if (tmp) await unlink(tmp).catch(() => {});
    s3.destroy();
  }
}
