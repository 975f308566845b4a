// Issue 22: every off-site operation closes its connections to the store when it returns, fetched or
// refused: the store sits behind a loopback proxy whose idle keep-alive connections stay open until the
// client closes them (a store's own keep-alive timeout would close them after a few seconds and hide a
// client that never does). s3rver in this process, no PostgreSQL. Each wait is bounded.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { until } from "../../helpers/bounded";
import { startS3, startS3Proxy, type TestS3 } from "../../helpers/s3";
import { downloadBackup, uploadBackup, type S3Target } from "../../../src/core/backup/offsite";
import { fetchBackup, inspectOffsite, listOffsite } from "../../../src/core/backup/fetch";
import type { Manifest } from "../../../src/core/backup/manifest";

let server: TestS3;
let proxy: Awaited<ReturnType<typeof startS3Proxy>>;
let dir: string;
let n = 0;
const key = randomBytes(32);
const name = "backup_20260101_000000.pgdump";

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-offsite-sockets-"));
  server = await startS3(dir, ["b"]);
  proxy = await startS3Proxy(server.endpoint, () => "forward");
});
after(async () => {
  proxy?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A target through the proxy with its own prefix. */
const target = (): S3Target => ({
  bucket: "b",
  region: "us-east-1",
  endpoint: proxy.endpoint,
  prefix: `s${++n}/`,
  forcePathStyle: true,
  credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
});

/** Runs `op`, then waits until the proxy has no client connection left. */
async function closesItsConnections(what: string, op: () => Promise<unknown>) {
  await op();
  await until(`${what} to close its connections to the store`, () => proxy.openConnections() === 0);
}

/** Uploads backup `name` (random bytes, a manifest that matches them) to `t`, encrypted with `k` if given. */
async function upload(t: S3Target, k?: Buffer) {
  const bytes = randomBytes(2000);
  const file = join(mkdtempSync(join(dir, "src-")), name);
  writeFileSync(file, bytes);
  const m = {
    version: 2,
    file: name,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    sizeBytes: bytes.length,
    createdAt: "2026-01-01T00:00:00.000Z",
    compression: "none",
    rowCounts: {},
  } as unknown as Manifest;
  return uploadBackup(file, m, t, { encryptionKey: k });
}

test("an upload closes its connections", async () => {
  const t = target();
  assert.equal((await upload(t)).key, `${t.prefix}${name}`);
  await until("the upload to close its connections", () => proxy.openConnections() === 0);
});

test("a download closes its connections", async () => {
  const t = target();
  const { key: object } = await upload(t);
  await until("the upload to close its connections", () => proxy.openConnections() === 0);
  await closesItsConnections("the download", () => downloadBackup(t, object, join(dir, `down-${n}`)));
});

test("a listing, with a key or without, closes its connections", async () => {
  const t = target();
  await upload(t, key);
  await until("the upload to close its connections", () => proxy.openConnections() === 0);
  await closesItsConnections("the listing", () => listOffsite(t));
  await closesItsConnections("the listing with a key", async () => {
    assert.deepEqual(
      (await inspectOffsite(t, key)).map((e) => [e.name, e.refused ?? "ok"]),
      [[name, "ok"]],
    );
  });
});

test("a fetch closes its connections, fetched or refused", async () => {
  const t = target();
  await upload(t, key);
  await until("the upload to close its connections", () => proxy.openConnections() === 0);
  await closesItsConnections("the fetch", () =>
    fetchBackup({ target: t, dir: mkdtempSync(join(dir, "into-")), encryptionKey: key }),
  );
  await closesItsConnections("the refused fetch", () =>
    assert.rejects(
      fetchBackup({ target: t, dir: mkdtempSync(join(dir, "into-")), name, encryptionKey: randomBytes(32) }),
      /does not match its signature/,
    ),
  );
});
