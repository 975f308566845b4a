// Issue 15 A: someone who can write to the bucket but has no key plants or alters off-site backups.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { startS3, type TestS3 } from "../../helpers/s3";
import { createBackup, type BackupResult } from "../../../src/core/backup";
import { s3Client, uploadBackup, type S3Target } from "../../../src/core/backup/offsite";
import { runBackupFetch } from "../../../src/cli/commands/backup";

let server: TestS3;
let pg: TestPostgres;
let dir: string;
let older: BackupResult;
let newest: BackupResult;
const key = randomBytes(32);
const PLANTED = "backup_20991231_235959_pre-deploy.pgdump.zst";

const target = (prefix: string): S3Target => ({
  bucket: "offsite",
  region: "us-east-1",
  endpoint: server.endpoint,
  prefix,
  forcePathStyle: true,
});
const flags = (prefix: string, extra: object = {}) => ({
  bucket: "offsite",
  prefix,
  endpoint: server.endpoint,
  pathStyle: true,
  region: "us-east-1",
  ...extra,
});
const exitOf = (code: number, pattern: RegExp) => (e: Error & { exitCode?: number }) => {
  assert.equal(e.exitCode, code, e.message);
  assert.match(e.message, pattern);
  return true;
};
const empty = (d: string) => assert.deepEqual(existsSync(d) ? readdirSync(d) : [], [], "nothing written");

async function getText(k: string): Promise<string> {
  const s3 = s3Client(target(""));
  try {
    return await (
      await s3.send(new GetObjectCommand({ Bucket: "offsite", Key: k }))
    ).Body!.transformToString();
  } finally {
    s3.destroy();
  }
}
async function put(k: string, body: string | Buffer): Promise<void> {
  const s3 = s3Client(target(""));
  try {
    await s3.send(new PutObjectCommand({ Bucket: "offsite", Key: k, Body: body }));
  } finally {
    s3.destroy();
  }
}

/** Both legit backups uploaded encrypted under `prefix`, as the deploy does with a key. */
async function legit(prefix: string): Promise<void> {
  await uploadBackup(older.file, older.manifest, target(prefix), { encryptionKey: key });
  await uploadBackup(newest.file, newest.manifest, target(prefix), { encryptionKey: key });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-fetch-auth-"));
  server = await startS3(dir, ["offsite"]);
  process.env.AWS_ACCESS_KEY_ID = "S3RVER";
  process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";
  pg = await startPostgres();
  await pg.createDatabase("app");
  await pg.query("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)", [], "app");
  older = await createBackup({ databaseUrl: pg.url("app"), dir: join(dir, "server"), label: "manual" });
  await new Promise((r) => setTimeout(r, 1100));
  newest = await createBackup({ databaseUrl: pg.url("app"), dir: join(dir, "server"), label: "pre-deploy" });
});

after(async () => {
  delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  await server?.close();
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("with a key, a planted plaintext backup with a newer name is ignored for 'newest' and refused by name (exit 1)", async () => {
  await legit("planted/");
  // The attacker's copy: a valid dump and a consistent manifest saying `encryption: none`, no key needed.
  const bytes = readFileSync(older.file);
  const { createHash } = await import("node:crypto");
  const sha = createHash("sha256").update(bytes).digest("hex");
  await put(`planted/${PLANTED}`, bytes);
  const manifest = {
    ...older.manifest,
    file: PLANTED,
    createdAt: "2099-12-31T23:59:59.000Z",
    offsite: { key: `planted/${PLANTED}`, sha256: sha, sizeBytes: bytes.length, encryption: "none" },
  };
  await put(`planted/${PLANTED}.json`, JSON.stringify(manifest));
  process.env.SAFE_DEPLOY_BACKUP_KEY = key.toString("hex");

  const into = join(dir, "planted-newest");
  const warned: string[] = [];
  const file = await runBackupFetch(
    flags("planted/", { dir: into }),
    () => {},
    (l) => void warned.push(l),
  );
  assert.equal(file, join(into, newest.manifest.file), "the legit newest, not the planted 2099 one");
  assert.ok(readFileSync(file!).equals(readFileSync(newest.file)));
  assert.match(warned.join("\n"), new RegExp(`ignored 1 off-site backup.*${PLANTED}`));

  const byName = join(dir, "planted-by-name");
  await assert.rejects(
    runBackupFetch(
      flags("planted/", { dir: byName, name: PLANTED }),
      () => {},
      () => {},
    ),
    exitOf(
      1,
      new RegExp(`s3://offsite/planted/${PLANTED} is not encrypted, and SAFE_DEPLOY_BACKUP_KEY is set`),
    ),
  );
  empty(byName);

  const listed: string[] = [];
  await runBackupFetch(flags("planted/", { list: true }), (l) => void listed.push(l));
  assert.deepEqual(listed.slice(0, 2), [
    `planted/${newest.manifest.file}.enc`,
    `planted/${older.manifest.file}.enc`,
  ]);
  assert.match(listed[2], new RegExp(`^planted/${PLANTED}  REFUSED: .*is not encrypted`));
});

test("with a key, a manifest whose createdAt or checksum was changed is refused (exit 1), and the newest is the newest signed", async () => {
  await legit("tampered/");
  process.env.SAFE_DEPLOY_BACKUP_KEY = key.toString("hex");
  const olderKey = `tampered/${older.manifest.file}.json`;
  const m = JSON.parse(await getText(olderKey));
  await put(olderKey, JSON.stringify({ ...m, createdAt: "2099-12-31T23:59:59.000Z" }));
  const into = join(dir, "tampered-newest");
  const file = await runBackupFetch(
    flags("tampered/", { dir: into }),
    () => {},
    () => {},
  );
  assert.equal(file, join(into, newest.manifest.file), "the altered date does not make the older one newest");
  await assert.rejects(
    runBackupFetch(
      flags("tampered/", { dir: join(dir, "t1"), name: older.manifest.file }),
      () => {},
      () => {},
    ),
    exitOf(1, /does not match its signature: it was changed after upload/),
  );
  empty(join(dir, "t1"));

  const newestKey = `tampered/${newest.manifest.file}.json`;
  const n = JSON.parse(await getText(newestKey));
  await put(newestKey, JSON.stringify({ ...n, sha256: "0".repeat(64) }));
  await assert.rejects(
    runBackupFetch(
      flags("tampered/", { dir: join(dir, "t2") }),
      () => {},
      () => {},
    ),
    exitOf(1, /no backup under s3:\/\/offsite\/tampered\/ is encrypted and signed/),
  );
  empty(join(dir, "t2"));
});

test("with a key, an unsigned manifest (an older safe-deploy's upload) is refused unless named in --trust-unsigned", async () => {
  await uploadBackup(newest.file, newest.manifest, target("legacy/"), { encryptionKey: key });
  const mKey = `legacy/${newest.manifest.file}.json`;
  const { auth: _auth, ...unsigned } = JSON.parse(await getText(mKey));
  await put(mKey, JSON.stringify(unsigned));
  process.env.SAFE_DEPLOY_BACKUP_KEY = key.toString("hex");
  await assert.rejects(
    runBackupFetch(
      flags("legacy/", { dir: join(dir, "l1") }),
      () => {},
      () => {},
    ),
    exitOf(1, new RegExp(`is not signed .*\`--trust-unsigned ${newest.manifest.file}\``)),
  );
  empty(join(dir, "l1"));
  const warned: string[] = [];
  const file = await runBackupFetch(
    flags("legacy/", { dir: join(dir, "l2"), trustUnsigned: newest.manifest.file }),
    () => {},
    (l) => void warned.push(l),
  );
  assert.ok(readFileSync(file!).equals(readFileSync(newest.file)));
  assert.match(warned.join("\n"), /accepting the unsigned manifest/);
});

test("without a key, fetch says on stderr that the store's content is trusted as is", async () => {
  delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  await uploadBackup(older.file, older.manifest, target("plain/"));
  const warned: string[] = [];
  await runBackupFetch(
    flags("plain/", { dir: join(dir, "p") }),
    () => {},
    (l) => void warned.push(l),
  );
  assert.match(
    warned.join("\n"),
    /SAFE_DEPLOY_BACKUP_KEY is not set: the content of s3:\/\/offsite\/plain\/ is trusted as is/,
  );
  const listWarned: string[] = [];
  await runBackupFetch(
    flags("plain/", { list: true }),
    () => {},
    (l) => void listWarned.push(l),
  );
  assert.match(listWarned.join("\n"), /SAFE_DEPLOY_BACKUP_KEY is not set: .* unchecked/);
});

test("with a key, an encrypted object altered in the store fails its signed checksum (exit 1), nothing written", async () => {
  await uploadBackup(newest.file, newest.manifest, target("flipped/"), { encryptionKey: key });
  const k = `flipped/${newest.manifest.file}.enc`;
  const s3 = s3Client(target(""));
  try {
    const body = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: "offsite", Key: k }))).Body!.transformToByteArray(),
    );
    body[body.length >> 1] ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: "offsite", Key: k, Body: body }));
  } finally {
    s3.destroy();
  }
  process.env.SAFE_DEPLOY_BACKUP_KEY = key.toString("hex");
  const into = join(dir, "flipped");
  await assert.rejects(
    runBackupFetch(
      flags("flipped/", { dir: into }),
      () => {},
      () => {},
    ),
    exitOf(1, /failed authentication|does not match the checksum recorded when it was uploaded/),
  );
  empty(into);
});
