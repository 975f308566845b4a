// Issue 22: every off-site operation closes its connections to the store when it returns, fetched or
// refused: the store sits behind a loopback proxy whose idle keep-alive connections stay open until the
// client closes them (a store's own keep-alive timeout would close them after a few seconds and hide a
// client that never does). s3rver in this process, no PostgreSQL. Each wait is bounded.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { until } from "../../helpers/bounded";
import { s3Target, startS3, startS3Proxy, uploadRandom, type TestS3 } from "../../helpers/s3";
import { downloadBackup, type S3Target } from "../../../src/core/backup/offsite";
import { fetchBackup, inspectOffsite, listOffsite } from "../../../src/core/backup/fetch";

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
const target = () => s3Target(proxy.endpoint, `s${++n}/`);

/** Runs `op`, then waits until the proxy has no client connection left. */
async function closesItsConnections(what: string, op: () => Promise<unknown>) {
  await op();
  await until(`${what} to close its connections to the store`, () => proxy.openConnections() === 0);
}

/** Uploads backup `name` to `t`, encrypted with `k` if given. */
const upload = async (t: S3Target, k?: Buffer) => (await uploadRandom(dir, t, name, { key: k })).r;

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
