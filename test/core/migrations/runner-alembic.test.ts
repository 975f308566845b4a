// Issue 22 (session 12): `migrate check` with the real Alembic on branched revisions (fixture
// alembic-branches: r2 branches into r3 (labelled `feat`) and r4, merged in r5; r6 a second head off r1):
// the pending list read from `alembic heads` and `alembic history` whatever the database holds. Needs
// Debian's `alembic`.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { alembicHeads } from "../../../src/core/migrations/alembic";
import { migrate } from "../../../src/core/migrations/runner";
import { withEnv } from "../../helpers/env";
import { failure } from "../../helpers/failure";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const WORK = join(__dirname, "../../fixtures/migrations/alembic-branches");
const FIX = "fix: apply them with `safe-deploy migrate up`";
const MERGE = "r3, r4 -> r5 (feat) (head) (mergepoint), merge feature and audit";
const SIDE = "r1 -> r6 (side) (head), side table";

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
    "every revision pending from base, oldest first, the labelled heads and the merge included",
    { timeout: 60_000 },
    async () => {
      assert.deepEqual(await failure(check()), [
        "CheckFailedError",
        [
          "6 pending:",
          "  <base> -> r1 (branchpoint), create accounts",
          "  r1 -> r2 (branchpoint), accounts email",
          "  r2 -> r4, audit log",
          "  r2 -> r3 (feat), feature flags",
          `  ${MERGE}`,
          `  ${SIDE}`,
          FIX,
        ].join("\n"),
      ]);
    },
  );

  it(
    "what is pending on each branch: the merge and the other head, the other head alone, nothing; an unknown revision fails",
    { timeout: 60_000 },
    async () => {
      await at("r3", "r4");
      assert.deepEqual(await failure(check()), [
        "CheckFailedError",
        `2 pending:\n  ${MERGE}\n  ${SIDE}\n${FIX}`,
      ]);
      await at("r5");
      assert.deepEqual(await failure(check()), ["CheckFailedError", `1 pending:\n  ${SIDE}\n${FIX}`]);
      await at("r6", "r5");
      assert.deepEqual(await check(), {
        before: "r6",
        after: "r6",
        output: "0 pending: the database is at the script head(s) r5, r6",
      });
      await at("r6", "zz9");
      assert.deepEqual(await failure(check()), [
        "CheckFailedError",
        "alembic_version holds zz9, which `alembic history` does not list: the database was migrated by other scripts than these (a newer release?)",
      ]);
      await at("zz8");
      await pg.query("INSERT INTO alembic_version VALUES ('zz9')", [], "branches");
      const [, message] = await failure(check());
      assert.match(
        message,
        /^alembic_version holds (zz8, zz9|zz9, zz8), which `alembic history` does not list/,
      );
    },
  );

  it("a revision with an empty message is listed without the blank Alembic leaves after its comma", async () => {
    const bin = mkdtempSync(join(tmpdir(), "sd-alembic-empty-doc-"));
    try {
      writeFileSync(
        join(bin, "alembic"),
        `#!/bin/sh\ncase "$1" in\n  heads) echo "r2 (head)";;\n  history) printf 'r1 -> r2 (head), \\n<base> -> r1, first\\n';;\n  *) exec /usr/bin/alembic "$@";;\nesac\n`,
        { mode: 0o755 },
      );
      await at("r1");
      assert.deepEqual(await failure(withEnv({ PATH: `${bin}:${process.env.PATH}` }, check)), [
        "CheckFailedError",
        `1 pending:\n  r1 -> r2 (head),\n${FIX}`,
      ]);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("alembicHeads reads the heads on labelled branches too", async () => {
    assert.deepEqual((await alembicHeads({ workDir: WORK })).sort(), ["r5", "r6"]);
  });

  it("a failed `alembic history` fails the check with its exit code and output, never read as nothing pending", async () => {
    const bin = mkdtempSync(join(tmpdir(), "sd-alembic-history-"));
    try {
      writeFileSync(
        join(bin, "alembic"),
        `#!/bin/sh\nif [ "$1" = history ]; then echo "history: no script directory" >&2; exit 4; fi\nexec /usr/bin/alembic "$@"\n`,
        { mode: 0o755 },
      );
      await at("r3");
      assert.deepEqual(await failure(withEnv({ PATH: `${bin}:${process.env.PATH}` }, check)), [
        "CheckFailedError",
        "alembic history failed (exit 4): history: no script directory",
      ]);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
