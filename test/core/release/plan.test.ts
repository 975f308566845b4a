// The rollback plans (issue 22): each mutant here is a rollback that restores the wrong backup, skips a
// needed restore (an old program started on a schema it does not know), or tells the person the wrong
// thing to do when it stops.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ReleaseRecord } from "../../../src/core/release/ledger";
import {
  backupAfter,
  describeStep,
  manualRollbackPlan,
  rollbackPlan,
  type RollbackInput,
} from "../../../src/core/release/plan";

const rel = (id: string, time: string, over: Partial<ReleaseRecord> = {}): ReleaseRecord => ({
  id,
  stack: "staging",
  time,
  commit: `commit-${id}-0123456789`,
  config: {},
  result: "good",
  ...over,
});

const A = rel("r-a", "2026-12-01T10:00:00Z", { schemaVersion: "001", backupFile: "/b/a.dump" });
const B = rel("r-b", "2026-12-02T10:00:00Z", { schemaVersion: "002", backupFile: "/b/b.dump" });
const C = rel("r-c", "2026-12-03T10:00:00Z", { schemaVersion: "003", backupFile: "/b/c.dump" });
const newestFirst = [C, B, A];

test("backupAfter: the first later release with a backup, by time then id, whatever the list's order", () => {
  assert.equal(backupAfter(newestFirst, A), "/b/b.dump");
  assert.equal(backupAfter([A, B, C], A), "/b/b.dump");
  assert.equal(backupAfter(newestFirst, B), "/b/c.dump");
  assert.equal(backupAfter(newestFirst, C), undefined);
  // A later release without a backup (config-only) is skipped for the next one that took one.
  const Bnone = { ...B, backupFile: undefined };
  assert.equal(backupAfter([C, Bnone, A], A), "/b/c.dump");
  // Same start time: the id decides which came after.
  const A2 = rel("r-a2", A.time, { backupFile: "/b/a2.dump" });
  const A0 = rel("r-9", A.time, { backupFile: "/b/a0.dump" });
  assert.equal(backupAfter([C, B, A2, A, A0], A), "/b/a2.dump");
  assert.equal(backupAfter([C, B, A2, A, A0], A0), "/b/a.dump");
  assert.equal(backupAfter([A], A), undefined);
  // An earlier release is never "after", whatever its id.
  const earlier = rel("r-z", "2026-11-30T10:00:00Z", { backupFile: "/b/z.dump" });
  assert.equal(backupAfter([C, B, A, earlier], A), "/b/b.dump");
});

test("manual --to: schema matches the target's, so no restore; checkout when the commit differs", () => {
  const p = manualRollbackPlan({
    releases: newestFirst,
    target: B,
    currentSchema: "002",
    currentCommit: C.commit,
  });
  assert.deepEqual(p, {
    ok: true,
    steps: [
      { kind: "checkout-commit", commit: B.commit },
      { kind: "reapply-release", release: "r-b" },
      { kind: "verify-health" },
      { kind: "notify" },
    ],
    backupFile: undefined,
    why: "the database is already at migration 002, which it knows: no restore",
  });
  // The same commit on disk: no checkout.
  const same = manualRollbackPlan({
    releases: newestFirst,
    target: B,
    currentSchema: "002",
    currentCommit: B.commit,
  });
  assert.ok(same.ok);
  assert.deepEqual(
    same.steps.map((s) => s.kind),
    ["reapply-release", "verify-health", "notify"],
  );
});

test("manual --to: schema differs, so the backup the next deploy took is restored after the checkout", () => {
  const p = manualRollbackPlan({
    releases: newestFirst,
    target: A,
    currentSchema: "003",
    currentCommit: C.commit,
  });
  assert.deepEqual(p, {
    ok: true,
    steps: [
      { kind: "checkout-commit", commit: A.commit },
      { kind: "safety-backup" },
      { kind: "restore-backup", file: "/b/b.dump" },
      { kind: "reapply-release", release: "r-a" },
      { kind: "verify-health" },
      { kind: "notify" },
    ],
    backupFile: "/b/b.dump",
    why: "the database is at migration 003, release r-a ran 001: restoring /b/b.dump, the backup taken right after it",
  });
});

test("manual --to: the target's schema falls back to its schemaVersionBefore; unknown on either side restores", () => {
  const before = { ...A, schemaVersion: undefined, schemaVersionBefore: "001" };
  const ok = manualRollbackPlan({
    releases: [C, B, before],
    target: before,
    currentSchema: "001",
    currentCommit: "x",
  });
  assert.ok(ok.ok && ok.backupFile === undefined, JSON.stringify(ok));
  const unknownNow = manualRollbackPlan({ releases: newestFirst, target: A, currentCommit: "x" });
  assert.ok(unknownNow.ok);
  assert.equal(unknownNow.backupFile, "/b/b.dump");
  assert.equal(
    unknownNow.why,
    "the database is at migration (unknown), release r-a ran 001: restoring /b/b.dump, the backup taken right after it",
  );
  const noSchema = { ...A, schemaVersion: undefined };
  const unknownThen = manualRollbackPlan({
    releases: [C, B, noSchema],
    target: noSchema,
    currentSchema: "001",
    currentCommit: "x",
  });
  assert.ok(unknownThen.ok);
  assert.equal(unknownThen.backupFile, "/b/b.dump");
  assert.match(unknownThen.why, /release r-a ran \(unknown\): restoring/);
  // No migration table now and none recorded then (a custom tool): nothing to compare, nothing restored.
  const bothEmpty = manualRollbackPlan({ releases: [C, B, noSchema], target: noSchema, currentCommit: "x" });
  assert.ok(bothEmpty.ok);
  assert.equal(bothEmpty.backupFile, undefined);
  assert.equal(bothEmpty.why, "the database is already at migration (none), which it knows: no restore");
});

test("manual --to without a later backup refuses, naming the flag and the command that lists backups", () => {
  const p = manualRollbackPlan({
    releases: newestFirst,
    target: C,
    currentSchema: "004",
    currentCommit: "x",
  });
  assert.deepEqual(p, {
    ok: false,
    reason:
      "the database is at migration 004, release r-c ran 003: starting the old program against a schema it does " +
      "not know could corrupt data, and no backup from that time was recorded. Name one: --full commit-r-c-0 FILE " +
      "(list them with 'safe-deploy rollback --list')",
  });
});

test("manual --commit: matched against the migration files that commit knows, never a release's backup", () => {
  const commit = "abcdef0123456789abcdef";
  const known = manualRollbackPlan({
    releases: newestFirst,
    commit,
    currentSchema: "002",
    knownSchemas: ["001", "002"],
    currentCommit: C.commit,
  });
  assert.deepEqual(known, {
    ok: true,
    steps: [
      { kind: "checkout-commit", commit },
      { kind: "reapply-release", release: "abcdef012345" },
      { kind: "verify-health" },
      { kind: "notify" },
    ],
    backupFile: undefined,
    why: "the database is already at migration 002, which it knows: no restore",
  });
  for (const knownSchemas of [["001"], undefined]) {
    const refused = manualRollbackPlan({
      releases: newestFirst,
      commit,
      currentSchema: "002",
      knownSchemas,
      currentCommit: "x",
    });
    assert.deepEqual(refused, {
      ok: false,
      reason:
        "the database is at migration 002: starting the old program against a schema it does not know could corrupt " +
        "data, and no backup from that time was recorded. Name one: --full abcdef012345 FILE (list them with " +
        "'safe-deploy rollback --list')",
    });
  }
  // No schema now and a custom tool: a commit is not a recorded release, so it cannot vouch for it.
  assert.equal(
    manualRollbackPlan({ releases: newestFirst, commit, knownSchemas: ["001"], currentCommit: "x" }).ok,
    false,
  );
});

test("manual --backup / --full: the named backup is always restored", () => {
  assert.deepEqual(
    manualRollbackPlan({ releases: newestFirst, backupFile: "/b/x.dump", currentCommit: "x" }),
    {
      ok: true,
      steps: [
        { kind: "safety-backup" },
        { kind: "restore-backup", file: "/b/x.dump" },
        { kind: "verify-health" },
        { kind: "notify" },
      ],
      backupFile: "/b/x.dump",
      why: "restoring /b/x.dump as asked",
    },
  );
  const full = manualRollbackPlan({
    releases: newestFirst,
    target: B,
    backupFile: "/b/x.dump",
    currentSchema: "002",
    currentCommit: B.commit,
  });
  assert.ok(full.ok);
  assert.deepEqual(
    full.steps.map((s) => s.kind),
    ["safety-backup", "restore-backup", "reapply-release", "verify-health", "notify"],
  );
  assert.equal(full.why, "restoring /b/x.dump as asked");
  // Nothing named at all: the database is left as it is.
  const none = manualRollbackPlan({ releases: newestFirst, currentCommit: "x" });
  assert.deepEqual(none, {
    ok: true,
    steps: [{ kind: "verify-health" }, { kind: "notify" }],
    backupFile: undefined,
    why: "the database is left as it is",
  });
});

const base: RollbackInput = {
  failedStage: "containers",
  migrationRan: false,
  schemaMoved: false,
  currentCommit: "new",
};

test("automatic plan: a preflight failure only notifies; a failed migration restores even if nothing moved", () => {
  assert.deepEqual(
    rollbackPlan({ ...base, failedStage: "preflight", migrationRan: true, backupFile: "/b/p" }),
    {
      steps: [{ kind: "notify" }],
      automatic: true,
    },
  );
  assert.deepEqual(
    rollbackPlan({
      ...base,
      failedStage: "migration",
      backupFile: "/b/p",
      previous: { id: "r-p", commit: "new" },
    }),
    {
      steps: [
        { kind: "safety-backup" },
        { kind: "restore-backup", file: "/b/p" },
        { kind: "reapply-release", release: "r-p" },
        { kind: "verify-health" },
        { kind: "notify" },
      ],
      automatic: true,
    },
  );
});

test("automatic plan: the manual stops say exactly what the person must do", () => {
  assert.deepEqual(rollbackPlan({ ...base, migrationRan: true, pendingOperations: true }), {
    steps: [
      { kind: "clear-pending-operations" },
      { kind: "safety-backup" },
      {
        kind: "manual",
        reason:
          "the database changed but this release has no pre-deploy backup: restore one by hand with " +
          "`safe-deploy backup restore FILE`, then `safe-deploy rollback --to RELEASE`",
      },
      { kind: "notify" },
    ],
    automatic: false,
  });
  assert.deepEqual(rollbackPlan(base), {
    steps: [
      {
        kind: "manual",
        reason:
          "there is no earlier good release to re-apply (first deploy of this stack): fix the failure and " +
          "deploy again, or destroy the stack's containers by hand",
      },
      { kind: "notify" },
    ],
    automatic: false,
  });
});

test("describeStep: one line per kind, naming its file, commit or release", () => {
  assert.deepEqual(
    [
      { kind: "clear-pending-operations" },
      { kind: "safety-backup" },
      { kind: "restore-backup", file: "/b/p" },
      { kind: "checkout-commit", commit: "abc" },
      { kind: "reapply-release", release: "r-p" },
      { kind: "verify-health" },
      { kind: "manual", reason: "do X" },
      { kind: "notify" },
    ].map((s) => describeStep(s as Parameters<typeof describeStep>[0])),
    [
      "clear the pending operations of the interrupted update (stack export, drop them, stack import, refresh)",
      "take a safety backup of the database as it is now",
      "restore the pre-deploy backup /b/p",
      "check out commit abc in a temporary git worktree",
      "re-apply release r-p (its config and program) with up against the current state",
      "verify health",
      "STOP, needs a person: do X",
      "notify",
    ],
  );
});
