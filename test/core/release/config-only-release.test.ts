// Issue 15: `rollback --to A` after a config-only release B restored A's own pre-deploy backup (the
// database before A), dropping everything written while A and B ran. A config-only release takes no
// backup: its Backup step is `same` (or `update` for a settings change) and carries A's file.
import assert from "node:assert/strict";
import { test } from "node:test";
import type * as auto from "@pulumi/pulumi/automation";
import { toStepEvent } from "../../../src/cli/stack";
import type { ReleaseRecord } from "../../../src/core/release/ledger";
import { factsFromEvents } from "../../../src/core/release/orchestrator";
import { manualRollbackPlan } from "../../../src/core/release/plan";

const urn = (type: string, name: string) => `urn:pulumi:staging::safe-deploy::${type}::${name}`;
const BACKUP = "pulumi-nodejs:dynamic/safe-deploy:Backup";

/** A resource's outputs event as the Automation API delivers it (engine event, metadata.op). */
function outputs(
  type: string,
  name: string,
  op: string,
  out: Record<string, unknown> = {},
): auto.EngineEvent {
  return {
    sequence: 0,
    timestamp: 0,
    resOutputsEvent: {
      metadata: {
        op,
        urn: urn(type, name),
        type,
        provider: "",
        new: { type, urn: urn(type, name), outputs: out },
      },
    },
  } as unknown as auto.EngineEvent;
}

/** The engine's event sequence of an update; only what `toStepEvent` picks out reaches the orchestrator. */
function facts(events: auto.EngineEvent[]) {
  return factsFromEvents(events.map(toStepEvent).filter((e) => e !== undefined));
}

const A_FILE = "/backups/backup_20261201_100000_pre-deploy.pgdump.zst";
const C_FILE = "/backups/backup_20261203_100000_pre-deploy.pgdump.zst";

test("a config-only release records no backup: its Backup step is `same` or `update` and carries the previous file", () => {
  const configOnly = facts([
    outputs(BACKUP, "staging-backup", "same", { file: A_FILE }),
    outputs("command:local:Command", "staging-migration-migrate", "same"),
    outputs("docker:index/container:Container", "staging-app-app", "replace", { name: "app" }),
    outputs("pulumi-nodejs:dynamic/safe-deploy:HealthGate", "staging-health", "update"),
  ]);
  assert.equal(configOnly.backupFile, undefined);
  assert.equal(configOnly.migrationRan, false);
  const settingsOnly = facts([outputs(BACKUP, "staging-backup", "update", { file: A_FILE })]);
  assert.equal(settingsOnly.backupFile, undefined);
  // A new release key replaces the Backup (a new dump); the very first deploy creates it.
  assert.equal(facts([outputs(BACKUP, "staging-backup", "replace", { file: C_FILE })]).backupFile, C_FILE);
  assert.equal(facts([outputs(BACKUP, "staging-backup", "create", { file: C_FILE })]).backupFile, C_FILE);
});

test("rollback --to A after a config-only B and a migrating C restores C's backup (the database as B left it), not A's", () => {
  const rec = (id: string, time: string, extra: Partial<ReleaseRecord>): ReleaseRecord => ({
    id,
    stack: "staging",
    time,
    commit: `${id}000000`,
    config: {},
    result: "good",
    ...extra,
  });
  const a = rec("A", "2026-12-01T10:00:00Z", { backupFile: A_FILE, schemaVersion: "1" });
  const bFacts = facts([outputs(BACKUP, "staging-backup", "same", { file: A_FILE })]);
  const b = rec("B", "2026-12-02T10:00:00Z", { backupFile: bFacts.backupFile, schemaVersion: "1" });
  const cFacts = facts([outputs(BACKUP, "staging-backup", "replace", { file: C_FILE })]);
  const c = rec("C", "2026-12-03T10:00:00Z", { backupFile: cFacts.backupFile, schemaVersion: "2" });
  const plan = manualRollbackPlan({
    releases: [c, b, a],
    target: a,
    currentSchema: "2",
    currentCommit: c.commit,
  });
  assert.ok(plan.ok, plan.ok ? "" : plan.reason);
  assert.equal(plan.backupFile, C_FILE);
});

test("the release's image is the app's: a database or proxy image event after it does not replace it", () => {
  const IMAGE = "docker:index/remoteImage:RemoteImage";
  const f = facts([
    outputs(IMAGE, "staging-app-image", "same", { imageId: "sha256:app" }),
    outputs(IMAGE, "staging-db-image", "create", { imageId: "sha256:postgres" }),
    outputs(IMAGE, "staging-app-proxy-image", "same", { imageId: "sha256:haproxy" }),
  ]);
  assert.equal(f.imageId, "sha256:app");
});

test("pinReleaseImage: a tag becomes the id the release ran; builds, digests, ids and missing ids are left alone", async () => {
  const { pinReleaseImage } = await import("../../../src/core/release/pin-image");
  const id = `sha256:${"0f".repeat(32)}`;
  const tagged = "# staging\nconfig:\n  safe-deploy:app:\n    image: web:staging # mutable\n    port: 3000\n";
  const pinned = pinReleaseImage(tagged, id);
  assert.match(pinned, new RegExp(`image: ${id}`));
  assert.match(pinned, /# staging/);
  assert.match(pinned, /port: 3000/);
  const built = "config:\n  safe-deploy:app:\n    image: web:x\n    build:\n      context: app\n";
  assert.equal(pinReleaseImage(built, id), built);
  const digest = `config:\n  safe-deploy:app:\n    image: web@sha256:${"1".repeat(64)}\n`;
  assert.equal(pinReleaseImage(digest, id), digest);
  assert.equal(pinReleaseImage(tagged, undefined), tagged);
  assert.equal(pinReleaseImage(tagged, "not-an-id"), tagged);
});
