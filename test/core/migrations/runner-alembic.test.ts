// Issue 22 (session 12): `migrate check` with the real Alembic on branched revisions (fixture
// alembic-branches: r1 -> r2 -> r3 (labelled `feat`) and r4 -> merged in r5): the pending list read from
// `alembic heads` and `alembic history` whatever the database holds. Needs Debian's `alembic`.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { migrate } from "../../../src/core/migrations/runner";
import { failure } from "../../helpers/failure";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const WORK = join(__dirname, "../../fixtures/migrations/alembic-branches");
const FIX = "fix: apply them with `safe-deploy migrate up`";

describe("migrate check with alembic on branches and a merge", () => {
  let pg: TestPostgres;
  let url: string;
  const check = () =>
    migrate({
      tool: "alembic",
      action: "check",
      dir: ".",
      workDir: WORK,
      databaseUrl: url,
      targetChecked: true,
    });
  const at = (...revs: string[]) =>
    pg.query(
      `CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY); DELETE FROM alembic_version; ${revs
        .map((r) => `INSERT INTO alembic_version VALUES ('${r}');`)
        .join(" ")}`,
      [],
      "branches",
    );
  before(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase("branches");
  });
  after(async () => pg?.close());

  it(
    "every revision pending from base, oldest first, the labelled merge head included",
    { timeout: 60_000 },
    async () => {
      assert.deepEqual(await failure(check()), [
        "CheckFailedError",
        [
          "5 pending:",
          "  <base> -> r1, create accounts",
          "  r1 -> r2 (branchpoint), accounts email",
          "  r2 -> r4, audit log",
          "  r2 -> r3 (feat), feature flags",
          "  r3, r4 -> r5 (feat) (head) (mergepoint), merge feature and audit",
          FIX,
        ].join("\n"),
      ]);
    },
  );

  it(
    "at both branches the merge alone is pending; at the merge nothing is; a revision the scripts lack fails",
    { timeout: 60_000 },
    async () => {
      await at("r3", "r4");
      assert.deepEqual(await failure(check()), [
        "CheckFailedError",
        `1 pending:\n  r3, r4 -> r5 (feat) (head) (mergepoint), merge feature and audit\n${FIX}`,
      ]);
      await at("r5");
      assert.deepEqual(await check(), {
        before: "r5",
        after: "r5",
        output: "0 pending: the database is at the script head(s) r5",
      });
      await at("zz9");
      assert.deepEqual(await failure(check()), [
        "CheckFailedError",
        "alembic history failed (exit 255): FAILED: Can't locate revision identified by 'zz9'",
      ]);
    },
  );
});
