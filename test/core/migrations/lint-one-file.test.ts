// Issue 22 (session 13): `lint FILE` on one file that is neither SQL nor a code migration (a README, a
// Python script passed by mistake): nothing in it is read as SQL, so `lint` then says that 0 statements
// could be checked instead of judging prose as migrations (session 12 listed the `.sql` test as never
// false: it is false only for such a file given on its own).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { lintMigrations } from "../../../src/core/migrations/lint";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sd-lint-one-file-"));
});
after(async () => rm(dir, { recursive: true, force: true }));

it("a file that is neither .sql nor a code migration counts as one migration with nothing read", async () => {
  const file = join(dir, "NOTES.md");
  await writeFile(file, "DROP TABLE users;\nALTER TABLE orders ADD COLUMN x int NOT NULL;\n");
  const report = await lintMigrations(file);
  assert.deepEqual(
    { migrations: report.migrations, statements: report.statements, findings: report.findings },
    { migrations: 1, statements: 0, findings: [] },
  );
});
