// Issue 22 (session 14): what the listing with a key shows for a refused backup whose manifest names its
// object, and what a fetch leaves in the directory. s3rver in this process, no PostgreSQL.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { s3Target, startS3, uploadRandom, type TestS3 } from "../../helpers/s3";
import { s3Client } from "../../../src/core/backup/offsite";
import { fetchBackup, inspectOffsite } from "../../../src/core/backup/fetch";

let server: TestS3;
let dir: string;
let n = 0;
const key = randomBytes(32);
const name = "backup_20260101_000000.pgdump";

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-fetch-refused-"));
  server = await startS3(dir, ["b"]);
});
after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const target = () => s3Target(server.endpoint, `r${++n}/`);

test("with a key, a plaintext copy beside a stray .enc object is refused under the object its manifest names", async () => {
  const t = target();
  await uploadRandom(dir, t, name);
  // Listed first now (`.enc` before the plaintext), but the manifest is about the plaintext object.
  const s3 = s3Client(t);
  try {
    await s3.send(new PutObjectCommand({ Bucket: "b", Key: `${t.prefix}${name}.enc`, Body: "stray" }));
  } finally {
    s3.destroy();
  }
  assert.deepEqual(
    (await inspectOffsite(t, key)).map((e) => [e.key, e.refused]),
    [
      [
        `${t.prefix}${name}`,
        `s3://b/${t.prefix}${name} is not encrypted, and SAFE_DEPLOY_BACKUP_KEY is set: a plaintext copy is refused (anyone who can write to the bucket could have put it there); if it really is yours, fetch it without SAFE_DEPLOY_BACKUP_KEY`,
      ],
    ],
  );
});

test("a fetch leaves the backup and its manifest in the directory, and no temp file", async () => {
  const t = target();
  const { bytes } = await uploadRandom(dir, t, name, { key });
  const into = mkdtempSync(join(dir, "into-"));
  const r = await fetchBackup({ target: t, dir: into, encryptionKey: key });
  assert.deepEqual(readdirSync(into).sort(), [name, `${name}.json`]);
  assert.ok(readFileSync(r.file).equals(bytes));
});
