// Issue 22: `backup fetch --list` prints the same order whatever order the store lists its keys in. A
// plaintext and an `.enc` copy of one backup have the same name, so only the whole key can order them:
// the listing is read straight from the store (s3rver, in this process: keys in ascending order) and
// through a loopback proxy that hands the same listing back reversed. No PostgreSQL.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { s3Target, startS3, startS3Proxy, uploadRandom, type TestS3 } from "../../helpers/s3";
import { s3Client } from "../../../src/core/backup/offsite";
import { runBackupFetch } from "../../../src/cli/commands/backup";

let server: TestS3;
let reversing: Awaited<ReturnType<typeof startS3Proxy>>;
let dir: string;
let n = 0;
const keyHex = "ab".repeat(32);

/** A listing's `<Contents>` elements in the opposite order, the rest of the answer as it was. */
const reversed = (body: string) => {
  const contents = body.match(/<Contents>.*?<\/Contents>/gs) ?? [];
  return body.replace(/<Contents>.*<\/Contents>/s, () => contents.reverse().join(""));
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-fetch-order-"));
  server = await startS3(dir, ["b"]);
  reversing = await startS3Proxy(
    server.endpoint,
    () => "forward",
    (req) => (/[?&]list-type=2/.test(req.url!) ? reversed : undefined),
  );
  // The CLI reaches the store through the SDK's usual credential chain.
  process.env.AWS_ACCESS_KEY_ID = "S3RVER";
  process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";
});
after(async () => {
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_SECRET_ACCESS_KEY;
  reversing?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The store itself, under `prefix`. */
const direct = (prefix: string) => s3Target(server.endpoint, prefix);

/** A fresh prefix holding `names` as small objects, stored as anyone with write access could. */
async function prefixWith(names: string[]): Promise<string> {
  const prefix = `o${++n}/`;
  const s3 = s3Client(direct(prefix));
  try {
    for (const name of names)
      await s3.send(new PutObjectCommand({ Bucket: "b", Key: `${prefix}${name}`, Body: name }));
  } finally {
    s3.destroy();
  }
  return prefix;
}

/** The keys under `prefix` in the order the store at `endpoint` lists them. */
async function storeOrder(endpoint: string, prefix: string): Promise<string[]> {
  const s3 = s3Client({ bucket: "b", region: "us-east-1", endpoint, prefix, forcePathStyle: true });
  try {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: "b", Prefix: prefix }));
    return (page.Contents ?? []).map((o) => o.Key!.slice(prefix.length));
  } finally {
    s3.destroy();
  }
}

/** What `backup fetch` prints for `prefix` through the store at `endpoint` (`--list` unless told). */
async function listed(
  endpoint: string,
  prefix: string,
  o: { dir?: string; list?: boolean } = { list: true },
) {
  const out: string[] = [];
  await runBackupFetch(
    { bucket: "b", prefix, endpoint, pathStyle: true, region: "us-east-1", ...o },
    (l) => void out.push(l),
    () => {},
  );
  return out;
}

test("--list without a key: newest first, a name's .enc copy before its plaintext, in either listing order", async () => {
  const names = [
    "backup_20260101_000000.pgdump",
    "backup_20260101_000000.pgdump.enc",
    "backup_20260101_000000_a.pgdump",
    "backup_20260102_000000.pgdump.gz",
    "backup_20260102_000000.pgdump.gz.enc",
    "backup_20251231_235959.pgdump.zst",
  ];
  const prefix = await prefixWith(names);
  // The two ways the store hands the keys over.
  assert.deepEqual(await storeOrder(server.endpoint, prefix), [...names].sort());
  assert.deepEqual(await storeOrder(reversing.endpoint, prefix), [...names].sort().reverse());
  const expected = [
    "backup_20260102_000000.pgdump.gz.enc",
    "backup_20260102_000000.pgdump.gz",
    "backup_20260101_000000_a.pgdump",
    "backup_20260101_000000.pgdump.enc",
    "backup_20260101_000000.pgdump",
    "backup_20251231_235959.pgdump.zst",
  ].map((k) => `${prefix}${k}`);
  assert.deepEqual(await listed(server.endpoint, prefix), expected);
  assert.deepEqual(await listed(reversing.endpoint, prefix), expected);
});

test("--list with a key: a backup whose manifest is missing is shown under its .enc key, in either listing order", async () => {
  const prefix = await prefixWith([
    "backup_20260101_000000.pgdump",
    "backup_20260101_000000.pgdump.enc",
    "backup_20260102_000000_b.pgdump.zst",
    "backup_20260102_000000_b.pgdump.zst.enc",
  ]);
  const refused = (name: string) =>
    `${prefix}${name}.enc  REFUSED: ${name} has no manifest at s3://b/${prefix}${name}.json: the backup is not there or its upload never finished, and without a manifest it cannot be checked (\`backup fetch --list\` shows what is there)`;
  const expected = [refused("backup_20260102_000000_b.pgdump.zst"), refused("backup_20260101_000000.pgdump")];
  process.env.SAFE_DEPLOY_BACKUP_KEY = keyHex;
  try {
    assert.deepEqual(await listed(server.endpoint, prefix), expected);
    assert.deepEqual(await listed(reversing.endpoint, prefix), expected);
  } finally {
    delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  }
});

test("with a key, signed times decide, not names; equal signed times keep the names' order, in either listing order", async () => {
  const prefix = `o${++n}/`;
  const key = Buffer.from(keyHex, "hex");
  // The newest name carries the oldest signed time; two others were signed at the same time.
  for (const [name, createdAt] of [
    ["backup_20260105_000000.pgdump", "2025-12-01T00:00:00.000Z"],
    ["backup_20260101_000000.pgdump", "2026-01-01T00:00:00.000Z"],
    ["backup_20260103_000000.pgdump", "2026-01-01T00:00:00.000Z"],
  ])
    await uploadRandom(dir, direct(prefix), name, { key, createdAt });
  const expected = [
    "backup_20260103_000000.pgdump.enc",
    "backup_20260101_000000.pgdump.enc",
    "backup_20260105_000000.pgdump.enc",
  ].map((k) => `${prefix}${k}`);
  process.env.SAFE_DEPLOY_BACKUP_KEY = keyHex;
  try {
    for (const endpoint of [server.endpoint, reversing.endpoint]) {
      assert.deepEqual(await listed(endpoint, prefix), expected);
      // Without a name, the first of the list is fetched.
      const into = mkdtempSync(join(dir, "into-"));
      assert.equal(
        (await listed(endpoint, prefix, { dir: into })).at(-1),
        join(into, "backup_20260103_000000.pgdump"),
      );
    }
  } finally {
    delete process.env.SAFE_DEPLOY_BACKUP_KEY;
  }
});
