// A restore whose pg_restore runs in the database's container (issue 22, the survivors of `loadArchive`
// in src/core/backup/restore.ts that needed Docker): the archive is streamed into it, never decompressed
// to a temp file here, which pg_restore in the container could not read, even with room on the disk and
// the data spread over two tables (what takes the temp copy locally). Said so in the step. Real Docker,
// the project's PostgreSQL test image; last in the `backup/restore` key (a container start a run).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  docker,
  ensureDocker,
  postgresImage,
  removeContainer,
  runContainer,
  type TestContainer,
  waitForPostgresIn,
} from "../../helpers/docker";
import { createBackup, restoreBackup } from "../../../src/core/backup";

let db: TestContainer;
let dir: string;
const url = (name: string) => `postgres://app:In5ideSecret@127.0.0.1:5432/${name}`;
const psql = (sql: string, name = "app") =>
  docker([
    ...["exec", "-e", "PGPASSWORD=In5ideSecret", db.name],
    ...["psql", "-At", "-h", "127.0.0.1", "-U", "app", "-d", name, "-c", sql],
  ]);

before(async () => {
  await ensureDocker();
  db = await runContainer({
    image: await postgresImage(),
    env: { POSTGRES_USER: "app", POSTGRES_PASSWORD: "In5ideSecret", POSTGRES_DB: "app" },
  });
  await waitForPostgresIn(db.name);
  await psql(
    `CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 300) g;
     CREATE TABLE u (id int, s text); INSERT INTO u SELECT g, md5(g::text) FROM generate_series(1, 300) g;`,
  );
  dir = mkdtempSync(join(tmpdir(), "sd-restore-container-"));
});
after(async () => {
  if (db) await removeContainer(db.name);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("pg_restore in a container: the archive streamed into it, said why, no temp copy; the rows there", async () => {
  const target = { runIn: "container" as const, container: db.name };
  const b = await createBackup({ databaseUrl: url("app"), dir, label: "ctr", target });
  const steps: string[] = [];
  await restoreBackup(b.file, {
    databaseUrl: url("app_copy"),
    target,
    keepFree: 0,
    onStep: (s) => steps.push(s),
  });
  assert.deepEqual(steps, [
    "restore: streaming the archive into one pg_restore (pg_restore runs in a container, which cannot read a file here)",
  ]);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes(".restore-")),
    [],
  );
  assert.equal(
    (await psql("SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM u)", "app_copy")).trim(),
    "600",
  );
});
