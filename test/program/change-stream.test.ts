import { before, test } from "node:test";
import assert from "node:assert/strict";
import type { RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";

// Issue 20: the managed database runs with logical decoding, so a release's change stream can keep the
// writes a rollback with restore would otherwise lose.
let byName: (n: string) => RecordedResource;

before(async () => {
  ({ byName } = (
    await loadProgram({
      stack: "prod",
      config: { app: { image: "web:1" }, rollback: { changeStream: false } },
      secrets: { dbPassword: "pw-123456" },
    })
  ).rec);
});

test("the database container starts with wal_level=logical and room for replication slots", () => {
  const db = byName("prod-database-db").inputs;
  assert.deepEqual(db.command, [
    "postgres",
    "-c",
    "wal_level=logical",
    "-c",
    "max_replication_slots=20",
    "-c",
    "max_wal_senders=20",
  ]);
});

test("the Backup opens the release's change stream unless rollback.changeStream is off", () => {
  const b = byName("prod-backup").inputs;
  assert.equal(b.changeStream, false);
  assert.equal(b.stack, "prod");
  // Defaults reach the provider: a minute's wait for running transactions, no refusal.
  assert.equal(b.slotWaitSeconds, 60);
  assert.equal(b.requireNoLoss, false);
});
