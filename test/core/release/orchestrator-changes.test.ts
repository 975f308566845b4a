import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBackup, parseDatabaseUrl } from "../../../src/core/backup";
import { dropReleaseSlot, listReleaseSlots, slotName } from "../../../src/core/changes/slot";
import { restoreKeepingWrites, slotsToDrop, streamOf } from "../../../src/core/release/changes";
import { Ledger } from "../../../src/core/release/ledger";
import {
  deploy,
  rollbackTo,
  type DeployPorts,
  type NotifyType,
} from "../../../src/core/release/orchestrator";
import type { StackAccess, UpOptions } from "../../../src/core/release/stack-port";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

// Issue 20, part B items 4 and 5 through the guarded deploy: real PostgreSQL at wal_level=logical, real
// backups with change streams, the real restore with replay; only the Pulumi engine is faked.
let pg: TestPostgres;
let dir: string;
const local = { runIn: "local" as const };

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  dir = await mkdtemp(join(tmpdir(), "sd-orch-ch-"));
});
after(async () => {
  await pg?.close();
  await rm(dir, { recursive: true, force: true });
});

const slots = async () =>
  (await pg.query<{ slot_name: string }>("SELECT slot_name FROM pg_replication_slots")).map(
    (r) => r.slot_name,
  );

/** One deploy of a release that migrates `db` and then fails its gate (or not), with the app writing. */
async function scenario(db: string, o: { gateFails: boolean }) {
  const url = await pg.createDatabase(db);
  await pg.query(
    `CREATE TABLE customers (id serial PRIMARY KEY, name text);
     INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 20) g;`,
    [],
    db,
  );
  const conn = parseDatabaseUrl(url);
  const ledger = new Ledger(await mkdtemp(join(dir, "state-")), "prod");
  const prev = await ledger.create({ stack: "prod", commit: "a".repeat(40), config: {}, configFile: "x" });
  await ledger.markResult(prev.id, "good");
  const notes: Array<{ type: NotifyType; message: string; fields: Record<string, string> }> = [];
  const kept: string[] = [];
  let backupFile = "";
  let ups = 0;
  const urn = (t: string, n: string) => `urn:pulumi:prod::safe-deploy::${t}::${n}`;
  const stack = {
    name: "prod",
    exportState: async () => ({ version: 3, deployment: { resources: [] } }),
    up: async (u: UpOptions = {}) => {
      if (++ups > 1) return { outputs: {} };
      // Backup (with its change stream), migration, the new release's users writing, then the gate.
      const b = await createBackup({ databaseUrl: url, dir, label: db, changeSlot: slotName("prod", db) });
      backupFile = b.file;
      u.onEvent?.({
        kind: "done",
        op: "create",
        type: "pulumi-nodejs:dynamic/safe-deploy:Backup",
        urn: urn("pulumi-nodejs:dynamic/safe-deploy:Backup", "prod-backup"),
        outputs: { file: b.file },
      });
      await pg.query(
        "ALTER TABLE customers ADD COLUMN vip bool; CREATE TABLE coupons (code text PRIMARY KEY)",
        [],
        db,
      );
      u.onEvent?.({
        kind: "done",
        op: "create",
        type: "command:local:Command",
        urn: urn("command:local:Command", "prod-migration"),
      });
      await pg.query(
        "INSERT INTO customers (name, vip) VALUES ('late', true); INSERT INTO coupons VALUES ('X')",
        [],
        db,
      );
      if (o.gateFails) {
        u.onEvent?.({
          kind: "failed",
          op: "create",
          type: "pulumi-nodejs:dynamic/safe-deploy:HealthGate",
          urn: urn("pulumi-nodejs:dynamic/safe-deploy:HealthGate", "prod-health"),
        });
        throw new Error("health gate failed: simulated");
      }
      return { outputs: {} };
    },
    refresh: async () => {},
    cancel: async () => {},
    outputs: async () => ({}),
  } as unknown as StackAccess;
  const ports: DeployPorts = {
    stack,
    releases: ledger,
    config: { read: async () => "config: {}\n", write: async () => {} },
    lock: async () => async () => {},
    preflight: async () => [],
    database: {
      schemaVersion: async () => undefined,
      safetyBackup: async () => (await createBackup({ databaseUrl: url, dir, label: "safety" })).file,
      restore: async (file, safety) => {
        const k = await restoreKeepingWrites(file, {
          databaseUrl: url,
          safetyFile: safety,
          reportDir: dir,
          changeStream: true,
        });
        return k.replay ?? { lost: k.lost! };
      },
    },
    changes: {
      of: streamOf,
      keep: async (_id, s) => {
        kept.push(s.slot);
        return "2026-12-06T10:00:00.000Z";
      },
      sweep: async () => {
        const drop = slotsToDrop(
          await listReleaseSlots(local, conn),
          db,
          await ledger.list(),
          new Date(),
          true,
        );
        for (const d of drop) await dropReleaseSlot(local, conn, d.slot);
      },
    },
    verify: async () => {},
    notify: async (type, message, fields) => void notes.push({ type, message, fields }),
    git: { head: async () => "b".repeat(40), checkout: async () => ({ dir, remove: async () => {} }) },
    archiveCheckpoint: async (id) => join(dir, `${id}.json`),
    log: { step: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  };
  return { ports, notes, kept, ledger, backup: () => backupFile };
}

test("a failed deploy rolled back with restore: the later writes replayed, the report named in the notification and the release record, the slot gone", async () => {
  const s = await scenario("shop", { gateFails: true });
  const out = await deploy({ stack: "prod", autoRollback: true, soak: false }, s.ports);
  assert.equal(out.release.result, "rolled-back");
  const rolled = s.notes.find((n) => n.type === "ROLLBACK_SUCCESS")!;
  assert.match(
    rolled.message,
    /writes made after the backup: 1 replayed \(1 transaction\(s\)\), 1 reported in .*\.json/,
  );
  assert.match(rolled.fields.writesAfterBackup, /^1 replayed .*1 reported in /);
  const [rec] = await s.ledger.list();
  assert.equal(rec.replay?.applied, 1);
  assert.equal(rec.replay?.reported, 1);
  assert.match(rec.replay?.reportJson ?? "", /\.json$/);
  assert.deepEqual(await pg.query("SELECT name FROM customers WHERE name = 'late'", [], "shop"), [
    { name: "late" },
  ]);
  assert.deepEqual(await slots(), []);
});

test("a good deploy keeps its stream for the window and records it; a failed one without rollback leaves no slot", async () => {
  const good = await scenario("good", { gateFails: false });
  const out = await deploy({ stack: "prod", autoRollback: true, soak: false }, good.ports);
  assert.equal(out.release.result, "good");
  const slot = slotName("prod", "good");
  assert.deepEqual(good.kept, [slot]);
  assert.deepEqual(out.release.changes, {
    slot,
    startLsn: (await streamOf(good.backup()))!.startLsn,
    keepUntil: "2026-12-06T10:00:00.000Z",
  });
  assert.deepEqual(await slots(), [slot]);

  const bad = await scenario("bad", { gateFails: true });
  const failed = await deploy({ stack: "prod", autoRollback: false, soak: false }, bad.ports);
  assert.equal(failed.release.result, "bad");
  // The failed deploy's slot is dropped; another database's (the good release's) is not touched.
  assert.deepEqual(await slots(), [slot]);
  await pg.query("SELECT pg_drop_replication_slot($1)", [slot]);
});

test("slotsToDrop: expired kept slots always; orphans only when asked; other databases never", () => {
  const now = new Date("2026-12-06T09:00:00Z");
  const slotsOn = [
    { slot: "safe_deploy_a", database: "app" },
    { slot: "safe_deploy_b", database: "app" },
    { slot: "safe_deploy_c", database: "app" },
    { slot: "safe_deploy_d", database: "other" },
  ];
  const releases = [
    {
      result: "good" as const,
      changes: { slot: "safe_deploy_a", startLsn: "0/1", keepUntil: "2026-12-06T08:59:59Z" },
    },
    {
      result: "good" as const,
      changes: { slot: "safe_deploy_b", startLsn: "0/1", keepUntil: "2026-12-06T10:00:00Z" },
    },
    {
      result: "bad" as const,
      changes: { slot: "safe_deploy_c", startLsn: "0/1", keepUntil: "2026-12-06T10:00:00Z" },
    },
  ];
  assert.deepEqual(slotsToDrop(slotsOn, "app", releases, now, false), [
    { slot: "safe_deploy_a", why: "expired" },
  ]);
  assert.deepEqual(slotsToDrop(slotsOn, "app", releases, now, true), [
    { slot: "safe_deploy_a", why: "expired" },
    { slot: "safe_deploy_c", why: "orphan" },
  ]);
});

test("a manual rollback --to within the keep window replays the writes made since that release's backup", async () => {
  const s = await scenario("manual", { gateFails: false });
  await deploy({ stack: "prod", autoRollback: true, soak: false }, s.ports);
  // Users keep writing to the good release; a person then rolls the database back to before it.
  await pg.query("INSERT INTO customers (name, vip) VALUES ('later', false)", [], "manual");
  const out = await rollbackTo(
    {
      stack: "prod",
      steps: [{ kind: "safety-backup" }, { kind: "restore-backup", file: s.backup() }, { kind: "notify" }],
      backupFile: s.backup(),
    },
    s.ports,
  );
  assert.equal(out.exitCode, 0);
  const done = s.notes.at(-1)!;
  assert.equal(done.type, "ROLLBACK_SUCCESS");
  assert.match(done.message, /writes made after the backup: 2 replayed \(2 transaction\(s\)\), 1 reported/);
  assert.deepEqual(
    (
      await pg.query<{ name: string }>("SELECT name FROM customers WHERE id > 20 ORDER BY id", [], "manual")
    ).map((r) => r.name),
    ["late", "later"],
  );
  assert.deepEqual(await slots(), []);
});
