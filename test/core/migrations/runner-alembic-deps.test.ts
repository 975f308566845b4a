// Issue 22 (session 13): `migrate check` with the real Alembic when a revision depends on a branch by its
// label (`depends_on = "feat"`): Alembic applies the labelled revision with it and keeps only the
// dependent one in alembic_version, so the labelled revision must not be listed as pending.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";
import { migrate } from "../../../src/core/migrations/runner";
import { failure } from "../../helpers/failure";
import { fileServer } from "../../helpers/file-server";

const ENV_PY = join(__dirname, "../../fixtures/migrations/alembic");
const f = fileServer("sd-runner-alembic-deps-");

/** A revision file: `down` its parent, optional branch label and dependency. */
const revision = (rev: string, doc: string, down: string | null, extra = "") =>
  `"""${doc}"""\nrevision = "${rev}"\ndown_revision = ${down ? `"${down}"` : "None"}\n${extra}\n\ndef upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n`;

it(
  "a dependency named by its branch label counts as applied with the revision that needs it",
  { timeout: 60_000 },
  async () => {
    const work = join(f.tmp, "deps");
    await mkdir(join(work, "versions"), { recursive: true });
    await writeFile(
      join(work, "alembic.ini"),
      `[alembic]\nscript_location = ${ENV_PY}\nversion_locations = %(here)s/versions\n`,
    );
    const files: Record<string, string> = {
      r1: revision("r1", "accounts", null),
      r2: revision("r2", "feature flags", "r1", 'branch_labels = ("feat",)'),
      r3: revision("r3", "uses the flags", "r1", 'depends_on = "feat"'),
      r4: revision("r4", "audit log", "r1"),
    };
    for (const [rev, text] of Object.entries(files))
      await writeFile(join(work, "versions", `${rev}.py`), text);
    const url = await f.pg.createDatabase("deps");
    // What `alembic upgrade r3` leaves: r2 ran as r3's dependency, alembic_version names r3 alone.
    await f.pg.query(
      "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('r3')",
      [],
      "deps",
    );
    assert.deepEqual(
      await failure(
        migrate({
          tool: "alembic",
          action: "check",
          dir: ".",
          workDir: work,
          databaseUrl: url,
          targetChecked: true,
        }),
      ),
      [
        "CheckFailedError",
        "1 pending:\n  r1 -> r4 (head), audit log\nfix: apply them with `safe-deploy migrate up`",
      ],
    );
  },
);
