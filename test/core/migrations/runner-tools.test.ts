// Issue 22 (session 12): runner.ts between runShell and toolEnv, in process on one server: how a tool's
// shell runs (no stdin, its exit, a signal), the migration files node-pg-migrate sees and their order,
// and `up REV` / `down REV` through the real node-pg-migrate on numbered files (2_b before 10_c).
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  migrate,
  migrationFiles,
  migrationsToRevert,
  missingMigrationsDirectory,
  runShell,
  type MigrateOptions,
} from "../../../src/core/migrations/runner";
import { within } from "../../helpers/bounded";
import { failure } from "../../helpers/failure";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "runner-tools-"));
});
after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("runShell", () => {
  const sh = (cmd: string, env: Record<string, string> = {}, secrets: string[] = []) =>
    within(cmd, runShell(cmd, { cwd: tmp, env, secrets }));

  it("stdin is closed (a tool that asks waits for nobody); stdout and stderr both come back, secrets masked", async () => {
    assert.deepEqual(await sh("cat; echo read-to-end"), { code: 0, output: "read-to-end\n" });
    assert.deepEqual(await sh('echo "out $SD_X"; echo err >&2; exit 4', { SD_X: "pw-9" }, ["pw-9"]), {
      code: 4,
      output: "out ***\nerr\n",
    });
    assert.deepEqual(await sh("pwd"), { code: 0, output: `${tmp}\n` });
  });

  it("a tool killed by a signal is a failure (exit 1), not a success; a directory that is not there is an error", async () => {
    assert.deepEqual(await sh("echo started; kill -KILL $$"), { code: 1, output: "started\n" });
    await assert.rejects(
      runShell("true", { cwd: join(tmp, "nowhere"), env: {}, secrets: [] }),
      (e: NodeJS.ErrnoException) => e.code === "ENOENT",
    );
  });
});

describe("migrationFiles and missingMigrationsDirectory", () => {
  it("the files node-pg-migrate runs, in its order: by the number before `_` (ms or UTC timestamps), then numbers read as numbers", async () => {
    const dir = join(tmp, "order");
    await mkdir(dir);
    const files = [
      "1_a.sql",
      "2_x9.sql",
      "2_x10.js",
      "2_ab.cjs",
      "2_a-c.mjs",
      "2_dotted.v2.sql",
      "10_c.ts",
      "init_x.sql",
      "1800000000000_t.sql",
      "20240101000000000_u.sql",
      "120240101000000000_w.sql",
      ".hidden.sql",
      "README.md",
      "3_old.sql.orig",
      "4_types.d",
    ];
    for (const f of files) await writeFile(join(dir, f), "-- Up Migration\n");
    assert.deepEqual(await migrationFiles(dir), [
      "init_x",
      "1_a",
      "2_ab",
      "2_a-c",
      "2_dotted.v2",
      "2_x9",
      "2_x10",
      "10_c",
      "20240101000000000_u", // 2024-01-01, before 1800000000000 (2027)
      "1800000000000_t",
      "120240101000000000_w", // 18 digits: neither format, read as a number
    ]);
  });

  it("a missing directory is named resolved from the working directory when no --work-dir is given", async () => {
    assert.equal(
      await missingMigrationsDirectory("node-pg-migrate", undefined, "no-such-dir"),
      resolve("no-such-dir"),
    );
    assert.equal(await missingMigrationsDirectory("prisma", undefined, "test"), undefined);
  });
});

describe("up REV and down REV with the real node-pg-migrate on numbered files", () => {
  let pg: TestPostgres;
  let url: string;
  let work: string;
  const run = (o: Partial<MigrateOptions>) =>
    migrate({ tool: "node-pg-migrate", action: "up", dir: "mig", workDir: work, databaseUrl: url, ...o });
  const tables = async () =>
    (
      await pg.query<{ t: string }>(
        "SELECT string_agg(relname, ',' ORDER BY relname) AS t FROM pg_class WHERE relname LIKE 't\\_%' AND relkind = 'r'",
        [],
        "numbered",
      )
    )[0].t;
  before(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase("numbered");
    work = join(tmp, "numbered");
    await mkdir(join(work, "mig"), { recursive: true });
    await symlink(join(ROOT, "node_modules"), join(work, "node_modules"));
    for (const name of ["1_a", "2_b2", "10_c"])
      await writeFile(
        join(work, "mig", `${name}.sql`),
        `-- Up Migration\nCREATE TABLE t_${name} (id int);\n-- Down Migration\nDROP TABLE t_${name};\n`,
      );
  });
  after(async () => pg?.close());

  it(
    "up REV applies up to REV in the tool's order, down REV reverts what came after it",
    { timeout: 120_000 },
    async () => {
      assert.equal((await run({ target: "1_a" })).after, "1_a");
      const history = (await run({ action: "history" })).output.split("\n");
      assert.deepEqual(history.slice(1), ["2_b2  pending", "10_c  pending"]);
      assert.equal((await run({ target: "2_b2" })).after, "2_b2");
      assert.equal(await tables(), "t_1_a,t_2_b2");
      assert.equal((await run({ target: "10_c" })).after, "10_c");
      assert.deepEqual(await migrationsToRevert(url, "2_b2"), ["10_c"]);
      assert.deepEqual(await migrationsToRevert(url, "0"), []);
      assert.deepEqual(await migrationsToRevert(url, "10"), ["10_c", "2_b2", "1_a"]); // a count of two digits
      assert.deepEqual(await migrationsToRevert(url, "10_c"), []); // the latest: nothing to revert
      const down = await run({ action: "down", target: "1_a" });
      assert.deepEqual([down.before, down.after], ["10_c", "1_a"]);
      assert.equal(await tables(), "t_1_a");
    },
  );

  it(
    "a tool that is not installed where it runs: exit 127, and how to install it",
    { timeout: 60_000 },
    async () => {
      const path = process.env.PATH;
      process.env.PATH = "/nonexistent";
      try {
        await mkdir(join(tmp, "bare", "mig"), { recursive: true });
        const bare = join(tmp, "bare");
        assert.deepEqual(
          await failure(run({ workDir: bare, databaseUrl: await pg.createDatabase("bare") })),
          [
            "CannotRunError",
            `node-pg-migrate up could not start in ${bare} (exit 127): /bin/sh: 1: node-pg-migrate: not found; install it in \`--work-dir\` (\`npm ci\`; node_modules/.bin is searched before PATH), or pass the \`--work-dir\` where it is installed`,
          ],
        );
        const alembic = join(ROOT, "test/fixtures/migrations/alembic-branches");
        assert.deepEqual(
          await failure(run({ tool: "alembic", dir: ".", workDir: alembic, targetChecked: true })),
          [
            "CannotRunError",
            `alembic up could not start in ${alembic} (exit 127): /bin/sh: 1: alembic: not found; install Alembic and the database driver where safe-deploy runs (\`pip install alembic psycopg2\`)`,
          ],
        );
      } finally {
        process.env.PATH = path;
      }
    },
  );
});
