// Issue 22: an uploaded backup is stored as `application/octet-stream` and its manifest as
// `application/json`, whether it goes up in one PUT or in parts (over 8 MiB): the SDK types a one-PUT
// body by itself, but a multipart upload without a type is stored as the store's default
// (`binary/octet-stream` on s3rver and AWS S3). s3rver in this process, no PostgreSQL.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { s3Target, startS3, type TestS3 } from "../../helpers/s3";
import { s3Client, uploadBackup } from "../../../src/core/backup/offsite";

let server: TestS3;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-offsite-types-"));
  server = await startS3(dir, ["b"]);
});
after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const target = () => s3Target(server.endpoint, "t/");

/** The Content-Type the store keeps for each of `keys`. */
async function typesOf(keys: string[]): Promise<(string | undefined)[]> {
  const s3 = s3Client(target());
  try {
    const out: (string | undefined)[] = [];
    for (const key of keys)
      out.push((await s3.send(new HeadObjectCommand({ Bucket: "b", Key: key }))).ContentType);
    return out;
  } finally {
    s3.destroy();
  }
}

for (const [how, bytes] of [
  ["in one PUT", 1000],
  ["in parts (9 MiB)", 9 * 1024 * 1024],
] as const)
  test(`an upload ${how} stores the backup as application/octet-stream and its manifest as application/json`, async () => {
    const name = `backup_20260101_00000${bytes > 1000 ? 1 : 0}.pgdump`;
    const file = join(dir, name);
    writeFileSync(file, randomBytes(bytes));
    await uploadBackup(file, { version: 2, file: name } as never, target());
    assert.deepEqual(await typesOf([`t/${name}`, `t/${name}.json`]), [
      "application/octet-stream",
      "application/json",
    ]);
  });
