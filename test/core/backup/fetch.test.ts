import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { startS3, type TestS3 } from "../../helpers/s3";
import { createBackup, verifyBackup, type BackupResult } from "../../../src/core/backup";
import { uploadBackup, type S3Target } from "../../../src/core/backup/offsite";
import { runBackupFetch } from "../../../src/cli/commands/backup";

// A real S3-compatible server on loopback; the CLI reaches it through the SDK's usual credential chain.
let server: TestS3;
let target: S3Target;
let endpoint: string;
let pg: TestPostgres;
let dir: string;
let older: BackupResult;
let newest: BackupResult;
const key = randomBytes(32);
const keyHex = key.toString("hex");

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-fetch-"));
  server = await startS3(dir, ["offsite"]);
  endpoint = server.endpoint;
  target = { bucket: "offsite", region: "us-east-1", endpoint, prefix: "production/", forcePathStyle: true };
  process.env.AWS_ACCESS_KEY_ID = "S3RVER";
  process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";
  pg = await startPostgres();
  await pg.createDatabase("app");
  await pg.query(
    "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 3000) g",
    [],
    "app",
  );
  // Two releases' backups off-site: an older plain copy and the newest, encrypted.
  older = await createBackup({ databaseUrl: pg.url("app"), dir: join(dir, "server"), label: "manual" });
  await new Promise((r) => setTimeout(r, 1100));
  newest = await createBackup({ databaseUrl: pg.url("app"), dir: join(dir, "server"), label: "pre-deploy" });
  await uploadBackup(older.file, older.manifest, target);
  await uploadBackup(newest.file, newest.manifest, target, { encryptionKey: key });
});

after(async () => {
  delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  await server?.close();
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const flags = (extra: object = {}) => ({
  bucket: "offsite",
  prefix: "production/",
  endpoint,
  pathStyle: true,
  region: "us-east-1",
  ...extra,
});
const lines = () => {
  const out: string[] = [];
  return { out, push: (l: string) => void out.push(l) };
};
const exitOf = (code: number, pattern: RegExp) => (e: Error & { exitCode?: number }) => {
  assert.equal(e.exitCode, code, e.message);
  assert.match(e.message, pattern);
  return true;
};

test("backup fetch --list shows the off-site backups, newest first", async () => {
  const o = lines();
  await runBackupFetch(flags({ list: true }), o.push);
  assert.deepEqual(o.out, [`production/${newest.manifest.file}.enc`, `production/${older.manifest.file}`]);
});

test("backup fetch: the newest copy comes back decrypted, byte for byte, with its manifest, 0600, and verifies", async () => {
  process.env.SAFE_DEPLOY_BACKUP_KEY = keyHex;
  const into = join(dir, "recovered");
  const o = lines();
  const file = await runBackupFetch(flags({ dir: into }), o.push);
  assert.equal(o.out.at(-1), join(into, newest.manifest.file), "the path is the last line");
  assert.ok(readFileSync(file!).equals(readFileSync(newest.file)));
  assert.deepEqual(JSON.parse(readFileSync(file + ".json", "utf8")), newest.manifest);
  assert.equal(statSync(file!).mode & 0o777, 0o600);
  const v = await verifyBackup(file!);
  assert.equal(v.manifest.rowCounts["public.orders"], 3000);
  await assert.rejects(
    runBackupFetch(flags({ dir: into }), () => {}),
    exitOf(2, /already exists/),
  );
});

test("backup fetch NAME: an unencrypted copy by its name, no key needed", async () => {
  delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  const into = join(dir, "by-name");
  const file = await runBackupFetch(flags({ dir: into, name: older.manifest.file }), () => {});
  assert.ok(readFileSync(file!).equals(readFileSync(older.file)));
});

test("backup fetch: no key, a wrong key, or a name that is not a backup: a clear error and nothing written", async () => {
  const into = join(dir, "refused");
  delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  await assert.rejects(
    runBackupFetch(flags({ dir: into }), () => {}),
    exitOf(2, /is encrypted: set SAFE_DEPLOY_BACKUP_KEY to the stack's `backupEncryptionKey`/),
  );
  process.env.SAFE_DEPLOY_BACKUP_KEY = randomBytes(32).toString("hex");
  await assert.rejects(
    runBackupFetch(flags({ dir: into }), () => {}),
    exitOf(1, /does not match its signature: .*signed with another key than SAFE_DEPLOY_BACKUP_KEY/),
  );
  process.env.SAFE_DEPLOY_BACKUP_KEY = keyHex;
  await assert.rejects(
    runBackupFetch(flags({ dir: into, name: "dump.sql" }), () => {}),
    exitOf(2, /"dump\.sql" is not a backup name/),
  );
  await assert.rejects(
    runBackupFetch(flags({ dir: into, name: "backup_20200101_000000.pgdump.zst" }), () => {}),
    exitOf(1, /has no manifest at s3:\/\/offsite\/production\/backup_20200101_000000\.pgdump\.zst\.json/),
  );
  assert.deepEqual(existsSync(into) ? readdirSync(into) : [], [], "no file, no temp file left");
});

test("backup fetch: an object altered in the store fails its checksum (exit 1) and leaves nothing", async () => {
  delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  const { PutObjectCommand, GetObjectCommand } = await import("@aws-sdk/client-s3");
  const { s3Client } = await import("../../../src/core/backup/offsite");
  const s3 = s3Client(target);
  const k = `production/${older.manifest.file}`;
  try {
    const body = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: "offsite", Key: k }))).Body!.transformToByteArray(),
    );
    body[Math.floor(body.length / 2)] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: "offsite", Key: k, Body: body }));
  } finally {
    s3.destroy();
  }
  const into = join(dir, "altered");
  await assert.rejects(
    runBackupFetch(flags({ dir: into, name: older.manifest.file }), () => {}),
    exitOf(1, /does not match the checksum recorded when it was uploaded/),
  );
  assert.deepEqual(existsSync(into) ? readdirSync(into) : [], []);
});

test("backup fetch: an empty prefix or an unreachable store are told apart (exit 2 / exit 3)", async () => {
  mkdirSync(join(dir, "empty"), { recursive: true });
  writeFileSync(join(dir, "empty", "keep"), "");
  await assert.rejects(
    runBackupFetch(flags({ dir: join(dir, "empty"), prefix: "nothing-here/" }), () => {}),
    exitOf(2, /no backups under s3:\/\/offsite\/nothing-here\/; check the bucket and prefix/),
  );
  await assert.rejects(
    runBackupFetch(flags({ dir: join(dir, "empty"), endpoint: "http://127.0.0.1:1" }), () => {}),
    exitOf(3, /listing s3:\/\/offsite\/production\/ failed/),
  );
});

test("backup fetch: a copy whose object is gone names the command that lists what is there", async () => {
  delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  const { DeleteObjectCommand } = await import("@aws-sdk/client-s3");
  const { s3Client } = await import("../../../src/core/backup/offsite");
  const gone = { ...target, prefix: "gone/" };
  await uploadBackup(older.file, older.manifest, gone);
  const s3 = s3Client(gone);
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: "offsite", Key: `gone/${older.manifest.file}` }));
  } finally {
    s3.destroy();
  }
  await assert.rejects(
    runBackupFetch(flags({ dir: join(dir, "gone"), prefix: "gone/", name: older.manifest.file }), () => {}),
    exitOf(2, /does not exist; `backup fetch --list` shows what is there$/),
  );
});

test("backup fetch: no AWS credentials or wrong ones say which variables to set (exit 3)", async () => {
  const saved = { ...process.env };
  try {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    delete process.env.AWS_PROFILE;
    process.env.AWS_EC2_METADATA_DISABLED = "true";
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, "no-credentials");
    process.env.AWS_CONFIG_FILE = join(dir, "no-config");
    await assert.rejects(
      runBackupFetch(flags({ list: true }), () => {}),
      exitOf(3, /Could not load credentials.*: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/),
    );
    process.env.AWS_ACCESS_KEY_ID = "WRONG";
    process.env.AWS_SECRET_ACCESS_KEY = "WRONG";
    await assert.rejects(
      runBackupFetch(flags({ list: true }), () => {}),
      exitOf(3, /check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY/),
    );
  } finally {
    process.env = saved;
  }
});

test("fetchBackup reports the bytes downloaded as they arrive, up to the whole object (progress on a terminal)", async () => {
  delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  const { fetchBackup } = await import("../../../src/core/backup/fetch");
  const seen: number[] = [];
  const r = await fetchBackup({
    target,
    dir: join(dir, "progress"),
    // The newest copy: an earlier test altered the older one on purpose.
    name: newest.manifest.file,
    encryptionKey: key,
    onProgress: (n) => seen.push(n),
  });
  assert.ok(seen.length >= 1, "progress was reported");
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    seen,
    "never goes backwards",
  );
  // Counted as downloaded: the encrypted object, a little larger than the backup it decrypts to.
  assert.ok(seen.at(-1)! >= statSync(r.file).size, `${seen.at(-1)} < ${statSync(r.file).size}`);
});
