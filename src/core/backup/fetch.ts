// Bringing an off-site copy back: the disaster-recovery half of `uploadBackup`. The object is streamed
// (never held in memory) through the ciphertext's sha256, decryption, the backup's own sha256, into a
// temp file beside the destination; only when both checksums match the uploaded manifest is it linked
// into place with its manifest. A wrong key, an altered byte or a cut connection leaves nothing behind.
// With a key, the store is not trusted (issue 15 A): only an object encrypted with that key, under a
// manifest signed with it, comes back, and "the newest" is decided by signed times, never by names.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { link, mkdir, open, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import writeFileAtomic from "write-file-atomic";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { knownManifestVersion, manifestPath, type Manifest } from "./manifest";
import { manifestAuthStatus, type ManifestAuth } from "./manifest-auth";
import { parseBackupFileName } from "./names";
import { decryptStream, objectKey, s3Client, s3ErrorText, type S3Target } from "./offsite";
import { linkFailure } from "./create";
import { fileSink, hasher } from "./streams";

/** The manifest `uploadBackup` stores beside the object: the backup's, plus what was sent. */
type RemoteManifest = Manifest & {
  offsite?: { key: string; sha256: string; sizeBytes: number; encryption: "aes-256-gcm" | "none" };
  auth?: ManifestAuth;
};

/** What `fetchBackup` brought back. */
export interface FetchResult {
  file: string;
  manifest: Manifest;
  /** The object key it came from. */
  key: string;
}

const where = (t: S3Target, key: string) => `s3://${t.bucket}/${key}`;
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
      // Stryker disable next-line ArrayDeclaration: a listing without Contents as ["Stryker was here"] adds nothing: a string has no Key.
      for (const o of page.Contents ?? [])
        if (o.Key && parseBackupFileName(plainName(o.Key))) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (e) {
    throw new CannotRunError(`listing ${where(t, prefix)} failed: ${s3ErrorText(e)}`);
  } finally {
    s3.destroy();
  }
  // A name starts with its time, fixed-width (`backup_YYYYMMDD_HHMMSS`), so names in descending order are
  // newest first. A tie of names (one backup's plaintext and `.enc` copies) is broken by the whole key,
  // `.enc` first: the order is the same whatever order the store listed them in.
  const desc = (x: string, y: string) => (x < y ? 1 : x === y ? 0 : -1);
  return keys.sort((a, b) => desc(plainName(a), plainName(b)) || desc(a, b));
}

function s3Failure(e: unknown, t: S3Target, key: string, what: string): Error {
  if (e instanceof CheckFailedError || e instanceof ConfigError || e instanceof CannotRunError) return e;
  const name = (e as { name?: string }).name;
  if (name === "NoSuchKey" || name === "NotFound")
    return new ConfigError(`${where(t, key)} does not exist; \`backup fetch --list\` shows what is there`);
  return new CannotRunError(`${what} ${where(t, key)} failed: ${s3ErrorText(e)}`);
}

/** Reads and shape-checks the uploaded manifest of backup `name`. */
async function readRemoteManifest(
  s3: ReturnType<typeof s3Client>,
  t: S3Target,
  name: string,
): Promise<RemoteManifest> {
  const { GetObjectCommand } = require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");
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
  if (!knownManifestVersion(remote?.version) || typeof remote.sha256 !== "string" || remote.file !== name)
    throw new CheckFailedError(`${where(t, mKey)} is not the manifest of ${name}`);
  return remote;
}

/**
 * Why a manifest may not be used with `key` set, or undefined when it may: the object must be
 * encrypted and the manifest signed with that key; an unsigned one (uploaded before manifests were
 * signed, or planted) only when the user named it in `--trust-unsigned`. Pure.
 */
export function refusal(
  remote: RemoteManifest,
  where: string,
  key: Buffer,
  trustUnsigned?: string,
): string | undefined {
  const object = remote.offsite?.key;
  // Typed, since the store is not trusted: a planted non-string key is refused, not a TypeError.
  const objectName = typeof object === "string" ? plainName(object) : undefined;
  if (remote.offsite?.encryption !== "aes-256-gcm" || typeof object !== "string" || !object.endsWith(".enc"))
    return `${where} is not encrypted, and SAFE_DEPLOY_BACKUP_KEY is set: a plaintext copy is refused (anyone who can write to the bucket could have put it there); if it really is yours, fetch it without SAFE_DEPLOY_BACKUP_KEY`;
  if (objectName !== remote.file) return `the manifest of ${where} points at another object`;
  const status = manifestAuthStatus(remote, key);
  if (status === "bad")
    return `the manifest of ${where} does not match its signature: it was changed after upload, or signed with another key than SAFE_DEPLOY_BACKUP_KEY`;
  if (status === "unsigned" && trustUnsigned !== remote.file)
    return `the manifest of ${where} is not signed (uploaded by a safe-deploy older than signed manifests, or planted by someone without the key); if you know it is yours, accept this one with \`--trust-unsigned ${remote.file}\``;
  return undefined;
}

/** One off-site backup as `--list` shows it with a key: signed time, or why it is refused. */
export interface OffsiteEntry {
  name: string;
  key: string;
  /** The signed `createdAt`; absent when refused. */
  createdAt?: Date;
  refused?: string;
}

/**
 * Every backup under the prefix with its manifest checked against `key`: the accepted ones newest
 * first by their signed `createdAt`, then the refused ones with the reason.
 */
export async function inspectOffsite(
  t: S3Target,
  key: Buffer,
  trustUnsigned?: string,
): Promise<OffsiteEntry[]> {
  // Each backup once, under the first key listed for it: what a refused entry shows when its manifest
  // does not name its object (or cannot be read), so the user can find it in the bucket.
  const listed = new Map<string, string>();
  for (const k of await listOffsite(t)) if (!listed.has(plainName(k))) listed.set(plainName(k), k);
  const s3 = s3Client(t);
  const out: OffsiteEntry[] = [];
  try {
    for (const [name, listedKey] of listed) {
      let at = where(t, objectKey(t, name, false));
      try {
        const remote = await readRemoteManifest(s3, t, name);
        if (typeof remote.offsite?.key === "string") at = where(t, remote.offsite.key);
        const refused = refusal(remote, at, key, trustUnsigned);
        const createdAt = new Date(remote.createdAt);
        if (refused)
          out.push({
            name,
            key: typeof remote.offsite?.key === "string" ? remote.offsite.key : listedKey,
            refused,
          });
        else if (Number.isNaN(createdAt.getTime()))
          out.push({
            name,
            key: remote.offsite!.key,
            refused: `the manifest of ${at} has no valid createdAt`,
          });
        else out.push({ name, key: remote.offsite!.key, createdAt });
      } catch (e) {
        if (!(e instanceof CheckFailedError)) throw e;
        out.push({ name, key: listedKey, refused: e.message });
      }
    }
  } finally {
    s3.destroy();
  }
  // Equal times, and the refused ones after the others, keep the listing's order (by name, newest
  // first): the sort is stable.
  const accepted = out.filter((e) => e.createdAt);
  accepted.sort((a, b) => b.createdAt!.getTime() - a.createdAt!.getTime());
  return [...accepted, ...out.filter((e) => !e.createdAt)];
}

/**
 * Downloads backup `name` (a file name, with or without `.enc`; default: the newest under the prefix)
 * and its manifest into `dir`, decrypting with `encryptionKey` when the object is encrypted, and checks
 * both the uploaded bytes and the backup against the manifest before the file appears under its name.
 * With `encryptionKey`, only an encrypted object under a signed manifest is accepted (`refusal`), and
 * the newest is chosen by signed time; without one, `warn` is told that the store is trusted as is.
 */
export async function fetchBackup(o: {
  target: S3Target;
  dir: string;
  name?: string;
  encryptionKey?: Buffer;
  /** A backup file name whose unsigned manifest the user accepts (`--trust-unsigned`). */
  trustUnsigned?: string;
  warn?: (line: string) => void;
  /** Bytes downloaded so far (progress on a terminal). */
  onProgress?: (bytes: number) => void;
}): Promise<FetchResult> {
  const { GetObjectCommand } = require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");
  const t = o.target;
  const warn = o.warn ?? (() => {});
  if (!o.encryptionKey)
    warn(
      `SAFE_DEPLOY_BACKUP_KEY is not set: the content of ${where(t, objectKey(t, "", false))} is trusted as is (anyone who can write there decides what is restored); set the stack's \`backupEncryptionKey\` to have copies encrypted and their manifests signed`,
    );
  if (o.trustUnsigned && !o.encryptionKey)
    throw new ConfigError("`--trust-unsigned` only means something with SAFE_DEPLOY_BACKUP_KEY set");
  let key: string;
  if (o.name) {
    if (!parseBackupFileName(plainName(o.name)))
      throw new ConfigError(
        `"${o.name}" is not a backup name (backup_YYYYMMDD_HHMMSS[_label].pgdump[.zst|.gz])`,
      );
    key = objectKey(t, o.name, false);
  } else if (o.encryptionKey) {
    const all = await inspectOffsite(t, o.encryptionKey, o.trustUnsigned);
    const refused = all.filter((e) => e.refused);
    if (!all.length)
      throw new ConfigError(
        `no backups under ${where(t, objectKey(t, "", false))}; check the bucket and prefix`,
      );
    if (!all[0].createdAt)
      throw new CheckFailedError(
        `no backup under ${where(t, objectKey(t, "", false))} is encrypted and signed with SAFE_DEPLOY_BACKUP_KEY:\n${refused.map((e) => `  ${e.name}: ${e.refused}`).join("\n")}`,
      );
    if (refused.length)
      warn(
        `ignored ${refused.length} off-site backup(s) not encrypted and signed with SAFE_DEPLOY_BACKUP_KEY (\`backup fetch --list\` says why): ${refused.map((e) => e.name).join(", ")}`,
      );
    key = all[0].key;
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
  const tmp = join(o.dir, `.${name}.tmp-${randomBytes(4).toString("hex")}`);
  try {
    const remote = await readRemoteManifest(s3, t, name);
    // The manifest says which object holds the copy (an encrypted one ends in `.enc`).
    if (remote.offsite?.key) key = remote.offsite.key;
    if (o.encryptionKey) {
      const refused = refusal(remote, where(t, key), o.encryptionKey, o.trustUnsigned);
      if (refused) throw new CheckFailedError(refused);
      if (remote.auth === undefined)
        warn(`accepting the unsigned manifest of ${name} as told by \`--trust-unsigned\``);
    }
    const encrypted =
      !!o.encryptionKey || remote.offsite?.encryption === "aes-256-gcm" || key.endsWith(".enc");
    if (encrypted && !o.encryptionKey)
      throw new ConfigError(
        `${where(t, key)} is encrypted: set SAFE_DEPLOY_BACKUP_KEY to the stack's \`backupEncryptionKey\``,
      );

    await mkdir(o.dir, { recursive: true, mode: 0o700 });
    const fh = await open(tmp, "wx", 0o600);
    const sent = hasher();
    const plain = hasher();
    try {
      const got = await s3.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }));
      // Counted inside the pipeline: a 'data' listener on the body would start it flowing before the
      // pipeline reads it, and the first chunks would miss the checksum and the file.
      let n = 0;
      const counted = new PassThrough({
        transform(c: Buffer, _e, done) {
          o.onProgress?.((n += c.length));
          done(null, c);
        },
      });
      await pipeline(
        got.Body as Readable,
        counted,
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

    const { offsite: _off, auth: _auth, ...manifest } = remote;
    await link(tmp, file).catch((e: NodeJS.ErrnoException) => {
      throw e.code === "EEXIST"
        ? new ConfigError(`${file} already exists; fetch into another \`--dir\``)
        : linkFailure(e, o.dir);
    });
    await writeFileAtomic(manifestPath(file), JSON.stringify(manifest, null, 2) + "\n", { mode: 0o600 });
    return { file, manifest, key };
  } finally {
    // The temp name goes whatever happened: after the link it is the file's second name (and a name
    // never made, after an early failure, fails to unlink quietly).
    await unlink(tmp).catch(() => {});
    s3.destroy();
  }
}
