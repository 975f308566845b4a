// The orchestrator's pure parts, table-tested on their own (issue 22 part D: lines 1-160 of
// src/core/release/orchestrator.ts, measured by mutation): the notification field of a replay, the stage
// of a resource, what an update's events say, and pending operations cleared from a checkpoint.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  factsFromEvents,
  stageOf,
  withoutPendingOperations,
  writesField,
} from "../../../src/core/release/orchestrator";
import type { StepEvent } from "../../../src/core/release/stack-port";

const BACKUP = "pulumi-nodejs:dynamic/safe-deploy:Backup";
const CMD = "command:local:Command";
const CONTAINER = "docker:index/container:Container";
const GATE = "pulumi-nodejs:dynamic/safe-deploy:HealthGate";
const urn = (type: string, name: string) => `urn:pulumi:prod::shop::${type}::${name}`;

test("writesField: nothing, lost with why, or counts with the report files", () => {
  const cases: Array<[Parameters<typeof writesField>[0], Record<string, string>]> = [
    [undefined, {}],
    [{ lost: "the slot was dropped" }, { writesAfterBackup: "NOT replayed: the slot was dropped" }],
    [{ lost: "" }, { writesAfterBackup: "NOT replayed: " }],
    [{}, { writesAfterBackup: "0 replayed (0 transaction(s)), 0 reported" }],
    [
      { applied: 5, transactions: 2, reported: 1, reportJson: "/r/x.json" },
      { writesAfterBackup: "5 replayed (2 transaction(s)), 1 reported in /r/x.json" },
    ],
    [
      { applied: 5, transactions: 2, reported: 1, reportJson: "/r/x.json", reportSql: "/r/x.sql" },
      {
        writesAfterBackup: "5 replayed (2 transaction(s)), 1 reported in /r/x.json (re-insert with /r/x.sql)",
      },
    ],
    [
      { applied: 1, reportSql: "/r/x.sql" },
      { writesAfterBackup: "1 replayed (0 transaction(s)), 0 reported (re-insert with /r/x.sql)" },
    ],
  ];
  for (const [w, want] of cases) assert.deepEqual(writesField(w), want, JSON.stringify(w));
});

test("stageOf: by type, and for commands by the name after the last ::", () => {
  const cases: Array<[string, string, string]> = [
    [BACKUP, "shop-backup", "backup"],
    [GATE, "shop-health", "health"],
    [CMD, "shop-migrate", "migration"],
    [CMD, "shop-hook-collectstatic", "hooks"],
    [CMD, "shop-app-image-pin", "image"],
    [CMD, "shop-image-pin-migrate", "migration"], // only a name ending in -image-pin is a pin
    [CMD, "shop-pre-hook", "migration"], // `-hook-` in the middle, not at the end
    ["docker:index/remoteImage:RemoteImage", "shop-app-image", "image"],
    ["docker:index/registryImage:RegistryImage", "shop-app-image", "image"],
    ["docker:index/image:Image", "shop-app-image", "containers"],
    [CONTAINER, "shop-app", "containers"],
    ["command:remote:Command", "shop-migrate", "containers"],
  ];
  for (const [type, name, want] of cases)
    assert.equal(stageOf(type, urn(type, name)), want, `${type} ${name}`);
  // The hook test is on the resource's name, not on the stack or project part of the urn.
  assert.equal(stageOf(CMD, "urn:pulumi:a-hook-b::shop::command:local:Command::shop-migrate"), "migration");
  assert.equal(stageOf(CMD, "shop-hook-x"), "hooks", "a urn without :: is all name");
});

const ev = (
  type: string,
  name: string,
  op: string,
  kind: "done" | "failed" = "done",
  outputs?: Record<string, unknown>,
): StepEvent => ({ kind, op, type, urn: urn(type, name), outputs });

test("factsFromEvents: the first failure's stage; a migration ran unless unchanged, or if it failed", () => {
  assert.deepEqual(factsFromEvents([]), { migrationRan: false });
  assert.deepEqual(
    factsFromEvents([
      ev(CMD, "shop-migrate", "same"),
      ev(CONTAINER, "shop-app", "replace", "failed"),
      ev(GATE, "shop-health", "create", "failed"),
    ]),
    { migrationRan: false, failedStage: "containers" },
  );
  assert.deepEqual(factsFromEvents([ev(CMD, "shop-migrate", "create", "failed")]), {
    migrationRan: true,
    failedStage: "migration",
  });
  assert.deepEqual(factsFromEvents([ev(CMD, "shop-migrate", "update")]), { migrationRan: true });
  // A failed step's outputs are not facts: a failed backup took no backup.
  assert.deepEqual(
    factsFromEvents([ev(BACKUP, "shop-backup", "create", "failed", { file: "/b/half.dump" })]),
    { migrationRan: false, failedStage: "backup" },
  );
  // A failed hook is no migration.
  assert.deepEqual(factsFromEvents([ev(CMD, "shop-hook-x", "create", "failed")]), {
    migrationRan: false,
    failedStage: "hooks",
  });
});

test("factsFromEvents: only a backup this update took, and only its string outputs", () => {
  const out = { file: "/b/pre.dump", changesSkipped: "a long transaction" };
  for (const op of ["create", "replace", "create-replacement"]) {
    assert.deepEqual(
      factsFromEvents([ev(BACKUP, "shop-backup", op, "done", out)]),
      { migrationRan: false, backupFile: "/b/pre.dump", changesSkipped: "a long transaction" },
      op,
    );
  }
  for (const op of ["same", "update", "delete"])
    assert.deepEqual(
      factsFromEvents([ev(BACKUP, "shop-backup", op, "done", out)]),
      { migrationRan: false },
      op,
    );
  assert.deepEqual(
    factsFromEvents([ev(BACKUP, "shop-backup", "create", "done", { file: 1, changesSkipped: true })]),
    { migrationRan: false },
  );
  assert.deepEqual(factsFromEvents([ev(BACKUP, "shop-backup", "create")]), { migrationRan: false });
  // Not a backup: its outputs named `file` are not the backup.
  assert.deepEqual(factsFromEvents([ev(CONTAINER, "shop-app", "create", "done", out)]), {
    migrationRan: false,
  });
});

test("factsFromEvents: the image id of the app's image only, when it is a string", () => {
  const IMAGE = "docker:index/remoteImage:RemoteImage";
  assert.deepEqual(
    factsFromEvents([
      ev(IMAGE, "shop-db-image", "create", "done", { imageId: "sha256:db" }),
      ev(IMAGE, "shop-app-image", "same", "done", { imageId: "sha256:app" }),
      ev(IMAGE, "shop-proxy-image", "create", "done", { imageId: "sha256:proxy" }),
    ]),
    { migrationRan: false, imageId: "sha256:app" },
  );
  assert.deepEqual(factsFromEvents([ev(IMAGE, "shop-app-image-old", "create", "done", { imageId: "x" })]), {
    migrationRan: false,
  });
  assert.deepEqual(factsFromEvents([ev(IMAGE, "shop-app-image", "create", "done", { imageId: 5 })]), {
    migrationRan: false,
  });
  assert.deepEqual(factsFromEvents([ev(IMAGE, "shop-app-image", "create")]), { migrationRan: false });
  assert.deepEqual(factsFromEvents([ev(CONTAINER, "shop-app-image", "create", "done", { imageId: "x" })]), {
    migrationRan: false,
  });
});

test("withoutPendingOperations: a checkpoint without any is returned as it is", () => {
  for (const st of [undefined, null, {}, { deployment: {} }, { deployment: { pending_operations: [] } }]) {
    const got = withoutPendingOperations(st);
    assert.equal(got.state, st);
    assert.equal(got.cleared, 0);
  }
  const st = { version: 3, deployment: { resources: [1], pending_operations: [{ a: 1 }, { b: 2 }] } };
  assert.deepEqual(withoutPendingOperations(st), {
    state: { version: 3, deployment: { resources: [1], pending_operations: [] } },
    cleared: 2,
  });
  assert.equal(st.deployment.pending_operations.length, 2, "the input is not changed");
});
