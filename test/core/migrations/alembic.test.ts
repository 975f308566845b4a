import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

// Needs Debian's `alembic` (python3-alembic + python3-psycopg2): apt-get install -y alembic python3-psycopg2.
const WORK = join(__dirname, "../../fixtures/migrations/alembic");

describe("alembic preset with real PostgreSQL", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it("upgrade N / head, current, history, downgrade, with versions before and after", async () => {
    const url = await pg.createDatabase("alembic");
    const o = { tool: "alembic" as const, dir: ".", workDir: WORK, databaseUrl: url };
    const one = await migrate({ ...o, action: "up", target: "1" });
    assert.deepEqual([one.before, one.after], [undefined, "a1"]);
    const head = await migrate({ ...o, action: "up" });
    assert.deepEqual([head.before, head.after], ["a1", "b2"]);
    assert.match((await migrate({ ...o, action: "current" })).output, /b2 \(head\)/);
    assert.match((await migrate({ ...o, action: "history" })).output, /a1 -> b2 \(head\)/);
    const down = await migrate({ ...o, action: "down", target: "a1" });
    assert.equal(down.after, "a1");
    assert.equal((await pg.query("SELECT to_regclass('accounts_email_idx') AS t", [], "alembic"))[0].t, null);
    assert.equal(
      (await pg.query<{ n: string }>("SELECT count(*) AS n FROM accounts", [], "alembic"))[0].n,
      "10",
    );
  });

  it("drift with alembic: none at the live revision, then a manual index shows up", async () => {
    const { checkDrift } = await import("../../../src/core/migrations/drift");
    const url = await pg.createDatabase("alembic_drift");
    const o = { tool: "alembic" as const, dir: ".", workDir: WORK, databaseUrl: url };
    await migrate({ ...o, action: "up", target: "a1" });
    assert.deepEqual((await checkDrift(o)).items, []);
    await pg.query("CREATE INDEX manual ON accounts (email)", [], "alembic_drift");
    assert.deepEqual(
      (await checkDrift(o)).items.map((d) => `${d.category} ${d.key}`),
      ["index public.manual"],
    );
  });
});

describe("lint of Alembic migrations through offline SQL", () => {
  it("flags the revision that creates an index without CONCURRENTLY, and not the one creating its table", async () => {
    const { lintPaths } = await import("../../../src/core/migrations/lint");
    const found = await lintPaths([WORK]);
    // Findings name the revision file, not a line of generated SQL (issue 21).
    assert.deepEqual(
      found.map((f) => `${f.rule} ${f.file.slice(WORK.length)}:${f.line} ${f.message}`),
      [
        "create-index-without-concurrently /versions/b2_accounts_email_index.py:1 in upgrade(): CREATE INDEX accounts_email_idx on accounts without CONCURRENTLY",
        "require-timeouts /versions/b2_accounts_email_index.py:1 in upgrade(): Index before any SET lock_timeout / statement_timeout",
      ],
    );
  });

  it("a revision that needs a connection is named not checkable offline; the others are still linted (before: exit 3)", async () => {
    const { lintMigrations } = await import("../../../src/core/migrations/lint");
    const dir = join(__dirname, "../../fixtures/migrations/alembic-adopt");
    const r = await lintMigrations(dir, { timeoutsSetByRunner: true });
    assert.deepEqual(
      r.unchecked.map((u) => u.file.slice(dir.length + 1)),
      ["versions/3c4d_accounts_domain_backfill.py"],
    );
    assert.match(r.unchecked[0].reason, /^not checkable offline: /);
    assert.deepEqual(
      r.findings.map((f) => `${f.file.slice(dir.length + 1)} ${f.rule}`),
      ["versions/5e6f_accounts_email_index.py create-index-without-concurrently"],
    );
  });
});

describe("migrate check with alembic", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it("fails (exit 1) listing the revisions not applied yet; passes at head", async () => {
    const url = await pg.createDatabase("alembic_check");
    const o = { tool: "alembic" as const, dir: ".", workDir: WORK, databaseUrl: url };
    await migrate({ ...o, action: "up", target: "a1" });
    const err = await migrate({ ...o, action: "check" }).then(
      () => assert.fail("must fail"),
      (e: Error & { exitCode?: number }) => e,
    );
    assert.equal(err.exitCode, 1);
    assert.match(
      err.message,
      /^1 pending:\n {2}a1 -> b2 \(head\), index accounts\.email.*\nfix: apply them with `safe-deploy migrate up`$/,
    );
    await migrate({ ...o, action: "up" });
    await migrate({ ...o, action: "check" });
  });
});
