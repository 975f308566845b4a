import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { startS3, startSilentStore, type TestS3 } from "../../helpers/s3";
import { createBackup, verifyBackup } from "../../../src/core/backup";
import {
  decryptStream,
  downloadBackup,
  encryptStream,
  uploadBackup,
  type S3Target,
} from "../../../src/core/backup/offsite";

let server: TestS3;
let target: S3Target;
let pg: TestPostgres;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-bk-s3-"));
  server = await startS3(dir, ["backups"]);
  target = {
    bucket: "backups",
    region: "us-east-1",
    endpoint: server.endpoint,
    prefix: "staging/",
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  };
  pg = await startPostgres();
  await pg.createDatabase("app");
  await pg.query(
    "CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
    [],
    "app",
  );
});
after(async () => {
  await server?.close();
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

test("multipart upload of a 20 MB file, verified after upload; manifest uploaded beside it", async () => {
  const f = join(dir, "backup_20260101_000000_manual.pgdump");
  const data = randomBytes(20 * 1024 * 1024);
  writeFileSync(f, data);
  const m = { version: 1, sha256: sha(data), sizeBytes: data.length } as never;
  const r = await uploadBackup(f, m, target);
  assert.equal(r.key, "staging/backup_20260101_000000_manual.pgdump");
  assert.equal(r.sha256, sha(data));
  const back = join(dir, "back.bin");
  await downloadBackup(target, r.key, back);
  assert.equal(sha(readFileSync(back)), sha(data));
  const mf = join(dir, "back.json");
  await downloadBackup(target, r.key + ".json", mf);
  assert.equal(JSON.parse(readFileSync(mf, "utf8")).offsite.key, r.key);
});

test("encrypted off-site copy of a real backup: ciphertext differs, decrypts to the exact file", async () => {
  const b = await createBackup({ databaseUrl: pg.url("app"), dir: join(dir, "local"), label: "manual" });
  const key = randomBytes(32);
  const r = await uploadBackup(b.file, b.manifest, target, { encryptionKey: key });
  assert.match(r.key, /\.pgdump\.zst\.enc$/);
  assert.notEqual(r.sha256, b.manifest.sha256);
  const enc = join(dir, "enc.bin");
  await downloadBackup(target, r.key, enc);
  assert.ok(!readFileSync(enc).includes(readFileSync(b.file).subarray(0, 64)));
  const restored = join(dir, "local2", b.manifest.file);
  (await import("node:fs")).mkdirSync(join(dir, "local2"));
  await downloadBackup(target, r.key, restored, { encryptionKey: key });
  writeFileSync(restored + ".json", readFileSync(b.manifestFile));
  assert.equal(sha(readFileSync(restored)), b.manifest.sha256);
  await verifyBackup(restored);
  await assert.rejects(
    downloadBackup(target, r.key, join(dir, "wrongkey"), { encryptionKey: randomBytes(32) }),
    /wrong key or altered/,
  );
});

test("AES-256-GCM stream: a flipped ciphertext byte fails authentication", async () => {
  const key = randomBytes(32);
  const plain = randomBytes(100_000);
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([plain]), encryptStream(key), async function (src) {
    for await (const c of src) chunks.push(c as Buffer);
  });
  const ct = Buffer.concat(chunks);
  const dec = async (buf: Buffer) => {
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([buf.subarray(0, 777), buf.subarray(777)]),
      decryptStream(key),
      async function (src) {
        for await (const c of src) out.push(c as Buffer);
      },
    );
    return Buffer.concat(out);
  };
  assert.ok((await dec(ct)).equals(plain));
  ct[5000] ^= 1;
  await assert.rejects(dec(ct), /wrong key or altered/);
});

test("an unreachable store fails with exit 3 and names the bucket", async () => {
  const f = join(dir, "backup_20260101_000001.pgdump");
  writeFileSync(f, "x");
  await assert.rejects(
    uploadBackup(f, {} as never, { ...target, endpoint: "http://127.0.0.1:1" }),
    (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /s3:\/\/backups\//);
      return true;
    },
  );
});

test("a store that accepts the connection and never answers: the upload gives up (exit 3) instead of hanging", async () => {
  const silent = await startSilentStore();
  const f = join(dir, "backup_20260101_000002.pgdump");
  writeFileSync(f, "x".repeat(1000));
  try {
    await assert.rejects(
      uploadBackup(f, {} as never, {
        ...target,
        endpoint: silent.endpoint,
        idleTimeoutSeconds: 1,
      }),
      (e: Error & { exitCode?: number }) => {
        assert.equal(e.exitCode, 3, e.message);
        assert.match(e.message, /uploading backup_20260101_000002\.pgdump to s3:\/\/backups\//);
        return true;
      },
    );
    assert.ok(silent.connections() > 0, "the upload did reach the silent server");
  } finally {
    silent.close();
  }
});
