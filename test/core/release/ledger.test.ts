import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CannotRunError, CheckFailedError, ConfigError } from "../../../src/core/errors";
import {
  Ledger,
  newReleaseId,
  pickLastGood,
  sortReleases,
  type ReleaseRecord,
} from "../../../src/core/release/ledger";
import {
  describeStep,
  rollbackPlan,
  type RollbackInput,
  type RollbackStep,
} from "../../../src/core/release/plan";

const base = mkdtempSync(join(tmpdir(), "sd-ledger-"));
after(() => rmSync(base, { recursive: true, force: true }));

test("newReleaseId: sortable time, short commit, suffix", () => {
  const t = new Date("2026-11-23T03:04:05.678Z");
  const cases: Array<[string, string]> = [
    ["abc1234def5678", "r-20261123-030405-abc1234-00ff"],
    ["ab", "r-20261123-030405-ab-00ff"],
    ["", "r-20261123-030405-nocommit-00ff"],
    ["../../etc", "r-20261123-030405-etc-00ff"],
  ];
  for (const [commit, want] of cases) assert.equal(newReleaseId(t, commit, "00ff"), want);
  assert.match(newReleaseId(t, "abc"), /^r-20261123-030405-abc-[0-9a-f]{4}$/);
});

const rec = (id: string, time: string, result: ReleaseRecord["result"]): ReleaseRecord => ({
  id,
  stack: "s",
  time,
  commit: "c",
  config: {},
  result,
});

test("sortReleases and pickLastGood", () => {
  const rs = [
    rec("r-1", "2026-01-01T00:00:00.000Z", "good"),
    rec("r-3", "2026-01-03T00:00:00.000Z", "bad"),
    rec("r-2", "2026-01-02T00:00:00.000Z", "good"),
    rec("r-4", "2026-01-04T00:00:00.000Z", "pending"),
  ];
  assert.deepEqual(
    sortReleases(rs).map((r) => r.id),
    ["r-4", "r-3", "r-2", "r-1"],
  );
  const cases: Array<[string | undefined, string | undefined]> = [
    [undefined, "r-2"],
    ["r-2", "r-1"],
    ["r-4", "r-2"],
  ];
  for (const [except, want] of cases) assert.equal(pickLastGood(rs, except)?.id, want);
  assert.equal(pickLastGood([rec("r-9", "2026-01-01T00:00:00.000Z", "rolled-back")]), undefined);
});

test("the ledger stores one atomic JSON file per release: create, get, list, lastGood, markResult", async () => {
  const stateDir = join(base, "a");
  const ledger = new Ledger(stateDir, "production");
  assert.deepEqual(await ledger.list(), []);
  assert.equal(await ledger.lastGood(), undefined);

  const first = await ledger.create({
    stack: "production",
    commit: "1111111aaaa",
    config: { "safe-deploy:app": { name: "shop" }, "safe-deploy:dbPassword": { secure: "v1:abc" } },
    imageDigest: "sha256:aa",
    schemaVersionBefore: "0",
    backupFile: "/b/pre-1.dump",
    checkpoint: "/c/1.json",
    time: new Date("2026-11-20T10:00:00Z"),
  });
  assert.equal(first.result, "pending");
  assert.equal(first.time, "2026-11-20T10:00:00.000Z");
  assert.match(first.id, /^r-20261120-100000-1111111-[0-9a-f]{4}$/);
  await ledger.markResult(first.id, "good", { durationMs: 61_000 });

  const second = await ledger.create({
    stack: "production",
    commit: "2222222bbbb",
    config: {},
    time: new Date("2026-11-21T10:00:00Z"),
  });
  await ledger.update(second.id, { schemaVersion: "5" });
  const marked = await ledger.markResult(second.id, "rolled-back", {
    durationMs: 5000,
    failedStage: "health",
    error: "HTTP 500 from /health",
    rolledBackTo: first.id,
  });
  assert.deepEqual(marked, {
    ...second,
    schemaVersion: "5",
    result: "rolled-back",
    durationMs: 5000,
    failedStage: "health",
    error: "HTTP 500 from /health",
    rolledBackTo: first.id,
  });

  // What is on disk is exactly what `get` returns, one file per release, no temp files left.
  const dir = join(stateDir, "releases", "production");
  assert.deepEqual(readdirSync(dir).sort(), [`${first.id}.json`, `${second.id}.json`].sort());
  assert.deepEqual(
    JSON.parse(readFileSync(join(dir, `${second.id}.json`), "utf8")),
    await ledger.get(second.id),
  );

  assert.deepEqual(
    (await ledger.list()).map((r) => [r.id, r.result]),
    [
      [second.id, "rolled-back"],
      [first.id, "good"],
    ],
  );
  assert.equal((await ledger.lastGood())?.id, first.id);
  assert.equal((await ledger.lastGood(first.id))?.id, undefined);
  assert.deepEqual((await ledger.get(first.id)).config, {
    "safe-deploy:app": { name: "shop" },
    "safe-deploy:dbPassword": { secure: "v1:abc" },
  });

  // Stray files (a crash mid-write leaves temp names) and other stacks don't show up.
  writeFileSync(join(dir, "r-20261122-000000-x-00.json.123.tmp"), "{");
  writeFileSync(join(dir, "notes.json"), "{}");
  await new Ledger(stateDir, "staging").create({ stack: "staging", commit: "3", config: {} });
  assert.equal((await ledger.list()).length, 2);
});

test("get names a missing release and how to list them; bad ids and a missing stack are usage errors", async () => {
  const ledger = new Ledger(join(base, "b"), "prod");
  await assert.rejects(ledger.get("r-20260101-000000-abc-0000"), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /release `r-20260101-000000-abc-0000` not found for stack "prod"/);
    assert.match(e.message, /safe-deploy history --stack prod/);
    return true;
  });
  await assert.rejects(ledger.get("../../etc/passwd"), ConfigError);
  assert.throws(() => new Ledger(base, ""), /`--stack` is required/);
});

test("a record holding a secret in plaintext is refused, and nothing is written", async () => {
  const stateDir = join(base, "c");
  const ledger = new Ledger(stateDir, "prod", ["Sup3rS3cret!"]);
  await assert.rejects(
    ledger.create({
      stack: "prod",
      commit: "c",
      config: { "safe-deploy:databaseUrl": "postgres://u:Sup3rS3cret!@db/x" },
    }),
    (e: unknown) => e instanceof CheckFailedError && /contains a secret value in plaintext/.test(e.message),
  );
  assert.deepEqual(await ledger.list(), []);
});

test("an unreadable record is never skipped: list and get name the file and the fix; readAll keeps the rest", async () => {
  const stateDir = join(base, "d");
  const ledger = new Ledger(stateDir, "prod");
  const old = await ledger.create({
    stack: "prod",
    commit: "1111111",
    config: {},
    time: new Date("2026-01-01"),
  });
  await ledger.markResult(old.id, "good");
  const last = await ledger.create({
    stack: "prod",
    commit: "2222222",
    config: {},
    time: new Date("2026-01-02"),
  });
  await ledger.markResult(last.id, "good");
  const file = join(stateDir, "releases", "prod", `${last.id}.json`);
  const text = readFileSync(file, "utf8");
  const cases: Array<[string, RegExp]> = [
    [text.slice(0, 40), /not valid JSON/],
    ["null", /not a JSON object/],
    [JSON.stringify({ ...JSON.parse(text), time: undefined }), /`time` is missing/],
    [JSON.stringify({ ...JSON.parse(text), result: "goood" }), /`result` is "goood", not one of/],
    [JSON.stringify({ ...JSON.parse(text), id: old.id }), /its id is .*not the file's name/],
    [JSON.stringify({ ...JSON.parse(text), failedStage: "nap" }), /`failedStage` "nap" is not a stage/],
  ];
  for (const [content, reason] of cases) {
    writeFileSync(file, content);
    const named = (e: unknown) => {
      assert.ok(e instanceof CheckFailedError, String(e));
      assert.ok(e.message.includes(file), e.message);
      assert.match(e.message, reason);
      assert.match(e.message, /mv FILE FILE\.broken/);
      return true;
    };
    // The older good release must not silently stand in for the unreadable newer one.
    await assert.rejects(ledger.list(), named);
    await assert.rejects(ledger.lastGood(), named);
    await assert.rejects(ledger.get(last.id), named);
    const all = await ledger.readAll();
    assert.deepEqual(
      all.releases.map((r) => r.id),
      [old.id],
    );
    assert.equal(all.unreadable[0].file, file);
  }
  // A field a newer version added is kept, not refused.
  writeFileSync(file, JSON.stringify({ ...JSON.parse(text), approvedBy: "alice" }));
  assert.equal(((await ledger.get(last.id)) as unknown as { approvedBy: string }).approvedBy, "alice");
  assert.equal((await ledger.lastGood())?.id, last.id);
});

test("a state directory that cannot be written is exit 3 naming the file and the fix, not a bare errno", async () => {
  // Root ignores permissions, so the directory is made unusable the other way: a file in its place.
  const stateDir = join(base, "e");
  mkdirSync(stateDir);
  writeFileSync(join(stateDir, "releases"), "");
  const ledger = new Ledger(stateDir, "prod");
  await assert.rejects(ledger.create({ stack: "prod", commit: "2", config: {} }), (e: unknown) => {
    assert.ok(e instanceof CannotRunError, String(e));
    assert.match(e.message, /^cannot write the release record .*releases\/prod\/r-.*\.json: ENOTDIR/);
    assert.match(
      e.message,
      /check that .*releases\/prod is a directory this user may write, or pass --state-dir/,
    );
    return true;
  });
  await assert.rejects(ledger.list(), /cannot list the release records in .*releases\/prod: ENOTDIR/);
});

const prev = { id: "r-prev", commit: "old" };
const base6: RollbackInput = {
  failedStage: "health",
  migrationRan: false,
  schemaMoved: false,
  currentCommit: "new",
};

test("rollbackPlan: the right steps in the right order for each failure", () => {
  const cases: Array<[string, Partial<RollbackInput>, RollbackStep["kind"][], boolean]> = [
    [
      "preflight: nothing changed",
      { failedStage: "preflight", migrationRan: true, previous: prev },
      ["notify"],
      true,
    ],
    [
      "backup failed: no database restore, previous release re-applied from its commit",
      { failedStage: "backup", previous: prev },
      ["checkout-commit", "reapply-release", "verify-health", "notify"],
      true,
    ],
    [
      "migration failed: the database is restored even if no version moved",
      { failedStage: "migration", backupFile: "/b/pre.dump", previous: prev },
      ["checkout-commit", "safety-backup", "restore-backup", "reapply-release", "verify-health", "notify"],
      true,
    ],
    [
      "containers failed with no migration pending: database untouched",
      { failedStage: "containers", backupFile: "/b/pre.dump", previous: prev },
      ["checkout-commit", "reapply-release", "verify-health", "notify"],
      true,
    ],
    [
      "health failed after a migration ran",
      { migrationRan: true, backupFile: "/b/pre.dump", previous: prev },
      ["checkout-commit", "safety-backup", "restore-backup", "reapply-release", "verify-health", "notify"],
      true,
    ],
    [
      "soak failed, schema moved, same commit: no checkout",
      {
        failedStage: "soak",
        schemaMoved: true,
        backupFile: "/b/pre.dump",
        previous: { id: "r-prev", commit: "new" },
      },
      ["safety-backup", "restore-backup", "reapply-release", "verify-health", "notify"],
      true,
    ],
    [
      "interrupted update: pending operations cleared first",
      { pendingOperations: true, previous: prev },
      ["checkout-commit", "clear-pending-operations", "reapply-release", "verify-health", "notify"],
      true,
    ],
    [
      "schema moved but no backup: never start the old image, stop for a person",
      { schemaMoved: true, previous: prev },
      ["safety-backup", "manual", "notify"],
      false,
    ],
    [
      "first deploy: database restored, nothing to re-apply",
      { migrationRan: true, backupFile: "/b/pre.dump" },
      ["safety-backup", "restore-backup", "manual", "notify"],
      false,
    ],
  ];
  for (const [name, over, kinds, automatic] of cases) {
    const plan = rollbackPlan({ ...base6, ...over });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      kinds,
      name,
    );
    assert.equal(plan.automatic, automatic, name);
  }
  const full = rollbackPlan({ ...base6, migrationRan: true, backupFile: "/b/pre.dump", previous: prev });
  // The checkout first: a commit gone from git stops the rollback before the database is restored.
  assert.deepEqual(full.steps.slice(0, 4), [
    { kind: "checkout-commit", commit: "old" },
    { kind: "safety-backup" },
    { kind: "restore-backup", file: "/b/pre.dump" },
    { kind: "reapply-release", release: "r-prev" },
  ]);
  assert.deepEqual(full.steps.map(describeStep), [
    "check out commit old in a temporary git worktree",
    "take a safety backup of the database as it is now",
    "restore the pre-deploy backup /b/pre.dump",
    "re-apply release r-prev (its config and program) with up against the current state",
    "verify health",
    "notify",
  ]);
});
