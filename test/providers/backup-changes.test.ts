import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { setupMocks } from "../helpers/mocks";
import { callSerializedProvider, SerializedProviderError } from "../helpers/provider";
import { PG_BIN, startPostgres, type TestPostgres } from "../helpers/postgres";

// Issue 20, part B item 2: the pre-deploy backup opens the release's change stream. The Backup provider
// runs in Pulumi's own provider host (test/helpers/provider.ts), which rejects `undefined` in outs.
let pg: TestPostgres;
let dir: string;
let providerText: string;
let dbUrl: string;

const slots = async () =>
  (await pg.query<{ slot_name: string }>("SELECT slot_name FROM pg_replication_slots ORDER BY 1")).map(
    (r) => r.slot_name,
  );

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  dbUrl = await pg.createDatabase("shop");
  await pg.query(
    "CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) SELECT 'n' || g FROM generate_series(1, 5000) g;",
    [],
    "shop",
  );
  dir = mkdtempSync(join(tmpdir(), "sd-bkch-"));
  const rec = await setupMocks({});
  const pulumi = await import("@pulumi/pulumi");
  const { Backup } = await import("../../src/providers/backup");
  new Backup("pre", {
    releaseKey: "k1",
    databaseUrl: pulumi.secret(dbUrl),
    dir,
    changeStream: true,
    stack: "prod",
  });
  await rec.registered("pre");
  providerText = rec.byName("pre").inputs.__provider;
});

after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the backup creates the release's slot and dumps its snapshot: writes racing it are in the dump or the slot, once", async () => {
  // One writer, one row per transaction, running through the whole backup.
  const writer = new Client({ connectionString: dbUrl });
  await writer.connect();
  let stop = false;
  const writing = (async () => {
    while (!stop) await writer.query("INSERT INTO items (name) VALUES ('racing')");
  })();
  const inputs = { releaseKey: "k1", databaseUrl: dbUrl, dir, changeStream: true, stack: "prod" };
  let created: any;
  try {
    created = await callSerializedProvider(providerText, "create", [inputs]);
  } finally {
    stop = true;
    await writing;
    await writer.end();
  }
  const outs = created.outs;
  assert.match(outs.changeSlot, /^safe_deploy_prod_\d{14}$/);
  assert.match(outs.changeStartLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.equal("changesSkipped" in outs, false);
  const manifest = JSON.parse(readFileSync(`${outs.file}.json`, "utf8"));
  assert.deepEqual(manifest.changes, { slot: outs.changeSlot, startLsn: outs.changeStartLsn });
  assert.deepEqual(await slots(), [outs.changeSlot]);
  // Inserts the slot holds after its consistent point (pgoutput 'I' messages), read without consuming.
  const [{ n }] = await pg.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
       'proto_version', '1', 'publication_names', 'safe_deploy_changes') WHERE get_byte(data, 0) = 73`,
    [outs.changeSlot],
    "shop",
  );
  const [{ total }] = await pg.query<{ total: string }>("SELECT count(*) AS total FROM items", [], "shop");
  // The manifest's count comes from the session that imported the slot's snapshot (as pg_dump did).
  assert.ok(Number(n) > 0, "the writer committed after the slot's start");
  assert.equal(manifest.rowCounts["public.items"] + Number(n), Number(total));
  await pg.query("SELECT pg_drop_replication_slot($1)", [outs.changeSlot]);
});

test("a backup that fails after the slot was made (another backup holds the lock) drops it", async () => {
  const holder = new Client({ connectionString: dbUrl });
  await holder.connect();
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext('safe-deploy:backup:shop'))");
    const inputs = { releaseKey: "k2", databaseUrl: dbUrl, dir, changeStream: true, stack: "prod" };
    await assert.rejects(
      callSerializedProvider(providerText, "create", [inputs]),
      (e: unknown) => e instanceof SerializedProviderError && /another backup/.test(e.message),
    );
  } finally {
    await holder.end();
  }
  assert.deepEqual(await slots(), []);
});

test("a dump that fails drops the slot it made", async () => {
  // The real tools, except a pg_dump that answers --version and then fails as a full disk would.
  const bin = mkdtempSync(join(tmpdir(), "sd-bin-"));
  for (const t of ["psql", "pg_restore"]) symlinkSync(join(PG_BIN, t), join(bin, t));
  writeFileSync(
    join(bin, "pg_dump"),
    `#!/bin/sh\n[ "$1" = "--version" ] && exec ${PG_BIN}/pg_dump --version\necho "pg_dump: error: could not write: No space left on device" >&2\nexit 1\n`,
  );
  chmodSync(join(bin, "pg_dump"), 0o755);
  try {
    const inputs = { releaseKey: "k3", databaseUrl: dbUrl, dir, changeStream: true, stack: "prod" };
    await assert.rejects(
      callSerializedProvider(providerText, "create", [inputs], { env: { ...process.env, PG_BIN: bin } }),
      /No space left/,
    );
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
  assert.deepEqual(await slots(), []);
});

test("a server without logical decoding: the backup is taken as before and says why there is no stream", async () => {
  const plain = await startPostgres();
  try {
    const url = await plain.createDatabase("shop");
    const inputs = { releaseKey: "k4", databaseUrl: url, dir, changeStream: true, stack: "prod" };
    const { outs } = await callSerializedProvider(providerText, "create", [inputs]);
    assert.equal("changeSlot" in outs, false);
    assert.match(outs.changesSkipped, /wal_level/);
    assert.ok(!outs.changesSkipped.includes(plain.password));
    assert.equal(JSON.parse(readFileSync(`${outs.file}.json`, "utf8")).changes, undefined);
  } finally {
    await plain.close();
  }
});

test("the stream off: no slot, no stream fields", async () => {
  const inputs = { releaseKey: "k5", databaseUrl: dbUrl, dir, changeStream: false, stack: "prod" };
  const { outs } = await callSerializedProvider(providerText, "create", [inputs]);
  assert.equal("changeSlot" in outs || "changesSkipped" in outs, false);
  assert.deepEqual(await slots(), []);
});

test("a table without primary key: no stream (the publication would make PostgreSQL refuse its updates), and its updates still work", async () => {
  const url = await pg.createDatabase("nopk");
  await pg.query("CREATE TABLE events (at int, what text); INSERT INTO events VALUES (1, 'a')", [], "nopk");
  const inputs = { releaseKey: "k6", databaseUrl: url, dir, changeStream: true, stack: "prod" };
  const { outs } = await callSerializedProvider(providerText, "create", [inputs]);
  assert.equal("changeSlot" in outs, false);
  assert.match(outs.changesSkipped, /public\.events.*primary key/);
  assert.deepEqual(await pg.query("SELECT pubname FROM pg_publication", [], "nopk"), []);
  await pg.query("UPDATE events SET what = 'b'", [], "nopk");
  assert.deepEqual(await slots(), []);
});

test(
  "a transaction left open: the backup waits slotWaitSeconds, then goes on without a stream naming it, or under requireNoLoss fails leaving no file",
  { timeout: 120_000 },
  async (t) => {
    const app = new Client({ connectionString: dbUrl, application_name: "billing-job" });
    await app.connect();
    t.after(() => app.end().catch(() => {}));
    await app.query("BEGIN");
    await app.query("INSERT INTO items (name) VALUES ('held')");
    const pid = (await app.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    const base = { databaseUrl: dbUrl, changeStream: true, stack: "prod", slotWaitSeconds: 1 };

    const { outs } = await callSerializedProvider(providerText, "create", [
      { ...base, releaseKey: "k7", dir },
    ]);
    assert.equal("changeSlot" in outs, false);
    assert.match(outs.changesSkipped, new RegExp(`waited 1 s .*pid ${pid} \\(.*application "billing-job"`));
    assert.ok(readFileSync(`${outs.file}.json`, "utf8").length > 0, "the backup itself was taken");

    const strict = mkdtempSync(join(tmpdir(), "sd-bkch-strict-"));
    t.after(() => rmSync(strict, { recursive: true, force: true }));
    const err = await callSerializedProvider(providerText, "create", [
      { ...base, releaseKey: "k8", dir: strict, requireNoLoss: true },
    ]).then(
      () => assert.fail("took a backup without a stream under requireNoLoss"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SerializedProviderError, String(err));
    assert.match(
      String((err as Error).message),
      new RegExp(
        `rollback\\.requireNoLoss: no backup was taken.*pid ${pid}.*set \`rollback\\.requireNoLoss: false\``,
      ),
    );
    assert.deepEqual(readdirSync(strict), [], "no file, no manifest");
    assert.deepEqual(await slots(), []);
  },
);
