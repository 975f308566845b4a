import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setupMocks, plaintextPart } from "../helpers/mocks";
import { callSerializedProvider, UNKNOWN } from "../helpers/provider";
import { startPostgres, type TestPostgres } from "../helpers/postgres";
import { startS3 } from "../helpers/s3";
import { diffBackup } from "../../src/providers/backup/diff";

let pg: TestPostgres;
let dir: string;
let providerText: string;
let wire: Record<string, any>;
let dbUrl: string;

before(
  async () => {
    pg = await startPostgres();
    dbUrl = await pg.createDatabase("shop");
    await pg.query(
      "CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) SELECT 'n' || g FROM generate_series(1, 250) g;" +
        "CREATE SCHEMA audit; CREATE TABLE audit.log (at timestamptz DEFAULT now()); INSERT INTO audit.log DEFAULT VALUES;",
      [],
      "shop",
    );
    dir = mkdtempSync(join(tmpdir(), "sd-bk-"));
    const rec = await setupMocks({});
    const pulumi = await import("@pulumi/pulumi");
    const { Backup } = await import("../../src/providers/backup");
    new Backup("pre", {
      releaseKey: "k1",
      databaseUrl: pulumi.secret(dbUrl),
      dir: join(dir, "backups"),
      compression: "zstd",
    });
    await rec.registered("pre");
    const r = rec.byName("pre");
    assert.equal(r.type, "pulumi-nodejs:dynamic/safe-deploy:Backup");
    providerText = r.inputs.__provider;
    wire = r.wireInputs;
  },
  { timeout: 120_000 },
);

after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the database URL never reaches state in plaintext; it is marked a secret output", () => {
  assert.ok(!JSON.stringify(plaintextPart(wire)).includes(pg.password));
  assert.ok(!JSON.stringify(providerText).includes(pg.password));
});

test("diff: only a new release key replaces (new backup); settings update in place", () => {
  const base = { releaseKey: "a", dir: "/b", compression: "zstd" };
  assert.deepEqual(diffBackup(base, { ...base }), {
    changes: false,
    replaces: [],
    deleteBeforeReplace: false,
  });
  assert.deepEqual(diffBackup(base, { ...base, releaseKey: "b" }).replaces, ["releaseKey"]);
  const d = diffBackup(base, { ...base, compression: "gzip" });
  assert.deepEqual(d, { changes: true, replaces: [], deleteBeforeReplace: false });
});

test("serialized provider: check, diff, create a real backup, delete keeps the file", async () => {
  const inputs = { releaseKey: "k1", databaseUrl: dbUrl, dir: join(dir, "backups"), compression: "zstd" };
  const checked = await callSerializedProvider(providerText, "check", [{}, inputs]);
  assert.deepEqual(checked.failures, []);
  const bad = await callSerializedProvider(providerText, "check", [{}, { ...inputs, dir: "" }]);
  assert.equal(bad.failures[0].property, "dir");

  const created = await callSerializedProvider(providerText, "create", [inputs]);
  const outs = created.outs;
  assert.match(created.id, /^backup_\d{8}_\d{6}_pre-deploy\.pgdump\.zst$/);
  assert.equal(outs.file, join(dir, "backups", created.id));
  assert.ok(!JSON.stringify(created).includes(pg.password), "no secret in the outputs");
  const bytes = readFileSync(outs.file);
  assert.equal(outs.sha256, createHash("sha256").update(bytes).digest("hex"));
  assert.equal(outs.sizeBytes, bytes.length);
  assert.equal(bytes.readUInt32LE(0), 0xfd2fb528, "a zstd frame");
  assert.equal(statSync(outs.file).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, "backups")).mode & 0o777, 0o700);
  const manifest = JSON.parse(readFileSync(outs.file + ".json", "utf8"));
  assert.equal(manifest.sha256, outs.sha256);
  assert.equal(manifest.database, "shop");
  assert.equal(manifest.format, "custom");
  assert.equal(manifest.compression, "zstd");
  assert.equal(manifest.label, "pre-deploy");
  assert.match(manifest.serverVersion, /^15\./);
  assert.deepEqual(manifest.rowCounts, { "audit.log": 1, "public.items": 250 });

  const same = await callSerializedProvider(providerText, "diff", [created.id, outs, inputs]);
  assert.equal(same.changes, false);
  const next = await callSerializedProvider(providerText, "diff", [
    created.id,
    outs,
    { ...inputs, releaseKey: "k2" },
  ]);
  assert.deepEqual(next.replaces, ["releaseKey"]);

  await callSerializedProvider(providerText, "delete", [created.id, outs]);
  assert.ok(existsSync(outs.file), "delete never removes a backup");
  assert.ok(existsSync(outs.file + ".json"));
});

test("Pulumi's provider host as shipped: a backup without backup.s3 is created, not failed on `s3Key: undefined`", async () => {
  // Before the fix the outs carried `s3Key: undefined`: the host's Struct.fromJavaScript threw
  // "Unexpected struct type." (pulumi/pulumi#7576) after the dump was written, failing every deploy
  // of a stack without backup.s3 and leaving a stray dump behind. guard: false = no harness check.
  const d = join(dir, "no-s3");
  const inputs = { releaseKey: "k-no-s3", databaseUrl: dbUrl, dir: d };
  const created = await callSerializedProvider(providerText, "create", [inputs], { guard: false });
  assert.equal("s3Key" in created.outs, false, "no s3Key at all when nothing was uploaded");
  assert.equal(created.outs.file, join(d, created.id));
  assert.deepEqual(readdirSync(d).sort(), [created.id, `${created.id}.json`].sort());
});

test("preview: check and diff take unknown inputs (the engine's UUID) without throwing", async () => {
  const inputs = { releaseKey: UNKNOWN, databaseUrl: UNKNOWN, dir: join(dir, "backups"), runIn: UNKNOWN };
  const checked = await callSerializedProvider(providerText, "check", [{}, inputs]);
  assert.deepEqual(checked.failures, []);
  assert.equal(checked.inputs.releaseKey, UNKNOWN);
  const container = { ...inputs, runIn: "container", container: UNKNOWN };
  assert.deepEqual((await callSerializedProvider(providerText, "check", [{}, container])).failures, []);
  const olds = { releaseKey: "k1", dir: join(dir, "backups"), file: "/x", sha256: "00", sizeBytes: 1 };
  const d = await callSerializedProvider(providerText, "diff", ["id", olds, inputs]);
  assert.equal(d.changes, true);
  assert.deepEqual(d.replaces, ["releaseKey"], "an unknown release key may be a new release: a new backup");
  const s3 = {
    ...olds,
    releaseKey: "k1",
    s3: { bucket: UNKNOWN, region: "r", prefix: "p", forcePathStyle: true },
  };
  const d2 = await callSerializedProvider(providerText, "diff", ["id", olds, s3]);
  assert.deepEqual([d2.changes, d2.replaces], [true, []]);
});

test("serialized provider: an unreachable database fails clearly, with no file and no password", async () => {
  const d = join(dir, "unreachable");
  const url = `postgres://tester:${pg.password}@127.0.0.1:1/shop`;
  await assert.rejects(
    callSerializedProvider(providerText, "create", [{ releaseKey: "k", databaseUrl: url, dir: d }]),
    (e: Error) => {
      assert.match(e.message, /cannot reach database "shop"/);
      assert.ok(!e.message.includes(pg.password));
      return true;
    },
  );
  assert.deepEqual(existsSync(d) ? readdirSync(d) : [], [], "no file left behind");
});

test("serialized provider: off-site copy (encrypted) and retention run after the backup", async () => {
  const server = await startS3(dir, ["bk"]);
  try {
    const d = join(dir, "offsite");
    const { mkdirSync, writeFileSync } = await import("node:fs");
    mkdirSync(d, { recursive: true });
    for (const day of [20, 21, 22, 23]) {
      const f = join(d, `backup_202601${day}_000000_pre-deploy.pgdump.zst`);
      writeFileSync(f, "old");
      writeFileSync(f + ".json", "{}");
    }
    const inputs = {
      releaseKey: "k9",
      databaseUrl: dbUrl,
      dir: d,
      retention: { days: 7, minKeep: 3 },
      s3: {
        bucket: "bk",
        region: "us-east-1",
        endpoint: server.endpoint,
        prefix: "prod",
        forcePathStyle: true,
      },
      encryptionKey: "ab".repeat(32),
    };
    const env = { ...process.env, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };
    const created = await callSerializedProvider(providerText, "create", [inputs], { env });
    assert.equal(created.outs.s3Key, `prod/${created.id}.enc`);
    // The whole key: a short piece like "abab" also turns up by chance in the outputs' sha256 hex (a CI flake).
    const outsText = JSON.stringify(created.outs);
    assert.ok(!outsText.includes(inputs.encryptionKey), "the key is not in the outputs");
    assert.ok(
      !outsText.includes(Buffer.from(inputs.encryptionKey, "hex").toString("base64")),
      "nor in base64",
    );
    const left = readdirSync(d).filter((f) => !f.endsWith(".json"));
    assert.deepEqual(
      left.sort(),
      [
        created.id,
        "backup_20260122_000000_pre-deploy.pgdump.zst",
        "backup_20260123_000000_pre-deploy.pgdump.zst",
      ].sort(),
    );
  } finally {
    await server.close();
  }
});

test("serialized provider: a malformed encryption key fails before the dump; a failed upload says the local backup is kept", async () => {
  const d = join(dir, "badkey");
  const s3 = {
    bucket: "bk",
    region: "us-east-1",
    endpoint: "http://127.0.0.1:1",
    prefix: "p",
    forcePathStyle: true,
  };
  const badKey = "not-a-key-" + "z".repeat(20);
  await assert.rejects(
    callSerializedProvider(providerText, "create", [
      { releaseKey: "k", databaseUrl: dbUrl, dir: d, s3, encryptionKey: badKey },
    ]),
    (e: Error) => {
      assert.match(e.message, /`backupEncryptionKey` must be 32 bytes/);
      assert.ok(!e.message.includes(badKey));
      return true;
    },
  );
  assert.equal(existsSync(d), false, "no dump was started");

  const env = { ...process.env, AWS_ACCESS_KEY_ID: "x", AWS_SECRET_ACCESS_KEY: "y" };
  await assert.rejects(
    callSerializedProvider(
      providerText,
      "create",
      [{ releaseKey: "k", databaseUrl: dbUrl, dir: d, s3, encryptionKey: "ab".repeat(32) }],
      { env },
    ),
    (e: Error) => {
      const kept = /the local backup (\S+) is complete and kept/.exec(e.message);
      assert.ok(kept, e.message);
      assert.ok(
        existsSync(kept[1]) && existsSync(kept[1] + ".json"),
        "the local backup and its manifest stay",
      );
      return true;
    },
  );
});
