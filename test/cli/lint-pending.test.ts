import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openContext } from "../../src/cli/context";
import { runLint } from "../../src/cli/commands/lint";
import { Ledger } from "../../src/core/release/ledger";
import type { ConfigMap, StackAccess } from "../../src/core/release/stack-port";
import { migrate } from "../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

// Issue 21 point 1: judge only what is pending against the target database (its tool's version table), or,
// with no database to ask, what is new since the last good release's commit. Histories of our own making in
// each tool's layout, applied by the real tools (Alembic from Debian, node-pg-migrate) to a real PostgreSQL.
const ROOT = join(__dirname, "../..");
const FIX = join(ROOT, "test/fixtures/migrations");
const tmp = mkdtempSync(join(tmpdir(), "sd-lint-pending-"));
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function lint(o: Parameters<typeof runLint>[0]): Promise<{ text: string; error?: string }> {
  const lines: string[] = [];
  try {
    await runLint({ baseline: join(tmp, "no-baseline.json"), ...o, out: (t) => lines.push(t) });
    return { text: lines.join("\n") };
  } catch (e) {
    return { text: lines.join("\n"), error: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

describe("lint --database-url judges only the pending migrations", () => {
  it("Alembic: seven old revisions with findings applied, the one pending revision judged", async () => {
    const dir = join(FIX, "alembic-history");
    const url = await pg.createDatabase("alembic_history");
    await migrate({ tool: "alembic", action: "up", target: "r07", dir: ".", workDir: dir, databaseUrl: url });
    const r = await lint({ paths: [dir], databaseUrl: url });
    assert.match(r.error ?? "", /lint found 1 error/);
    const findings = r.text.split("\n").filter((l) => /: error \[/.test(l));
    assert.equal(findings.length, 1, r.text);
    assert.match(
      findings[0],
      /versions\/r08_orders_created_at_index\.py:1: error \[create-index-without-concurrently\] in upgrade\(\): CREATE INDEX orders_created_at_idx/,
    );
    assert.match(
      r.text,
      /7 migration\(s\) of .*alembic-history skipped as applied \(the database's alembic_version\)/,
    );
    assert.ok(!r.text.includes(pg.password) && !(r.error ?? "").includes(pg.password));
  });

  it("node-pg-migrate TypeScript: three applied by the real tool are skipped; a new database judges all", async () => {
    const dir = join(FIX, "npm-ts");
    const url = await pg.createDatabase("npm_ts");
    await migrate({
      tool: "node-pg-migrate",
      action: "up",
      target: "3",
      dir,
      workDir: ROOT,
      databaseUrl: url,
    });
    const r = await lint({ paths: [dir], databaseUrl: url });
    assert.equal(r.error, undefined, r.text);
    assert.match(
      r.text,
      /^0 error\(s\), 0 warning\(s\) .*; 3 migration\(s\) of .*npm-ts skipped as applied \(the database's pgmigrations\); 1 not checkable offline$/m,
    );
    // migrate up / rehearse's gate, given the database, judges the same way (it refused on the history before).
    const { lintGate } = await import("../../src/core/migrations/lint");
    const gate = (database?: { url: string; tool: "node-pg-migrate" }) =>
      lintGate({ command: "migrate up", dir, database, baseline: join(tmp, "no-baseline.json") });
    await assert.rejects(gate(), /migrate up refused: lint found 3 error/);
    assert.deepEqual(await gate({ url, tool: "node-pg-migrate" }), []);
    // `migrate up` passes its database to the gate: the two pending migrations run (refused before).
    const { runMigrate } = await import("../../src/cli/commands/migrate");
    const said: string[] = [];
    const up = {
      tool: "node-pg-migrate",
      dir,
      workDir: ROOT,
      databaseUrl: url,
      out: (t: string) => said.push(t),
    };
    await runMigrate({ ...up, action: "up" });
    said.length = 0;
    await runMigrate({ ...up, action: "current" });
    assert.deepEqual(said, ["1700000005000_fill-from-query"]);
    const fresh = await lint({ paths: [dir], databaseUrl: await pg.createDatabase("npm_ts_new") });
    assert.match(fresh.error ?? "", /lint found 3 error/);
    assert.ok(!fresh.text.includes("skipped as applied"));
  });

  it("Prisma's migrations/*/migration.sql: the rows of _prisma_migrations decide (Prisma's CLI stand-in below)", async () => {
    const dir = join(FIX, "prisma-history/migrations");
    const db = "prisma_history";
    const url = await pg.createDatabase(db);
    // STAND-IN for `prisma migrate deploy` (its engine cannot be downloaded here): Prisma's own table DDL,
    // each migration.sql applied, and the row Prisma writes for it. Only the first two.
    await pg.query(
      `CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL,
        finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0)`,
      [],
      db,
    );
    const names = readdirSync(dir)
      .filter((n) => /^\d{14}_/.test(n))
      .sort();
    for (const [i, name] of names.slice(0, 2).entries()) {
      await pg.query(readFileSync(join(dir, name, "migration.sql"), "utf8"), [], db);
      await pg.query(
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ($1, 'x', now(), $2, 1)",
        [`0000000${i}-0000-0000-0000-000000000000`, name],
        db,
      );
    }
    // A failed attempt (finished_at NULL) is not applied: its migration is still judged.
    await pg.query(
      "INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES ('failed-0000-0000-0000-000000000000', 'x', $1)",
      [names[2]],
      db,
    );
    const r = await lint({ paths: [dir], databaseUrl: url, tool: "prisma" });
    const findings = r.text.split("\n").filter((l) => /: (error|warning) \[/.test(l));
    assert.deepEqual(
      findings.map((l) => l.replace(/^.*migrations\//, "").replace(/:\d+: .*\[(.*)\].*$/, " $1")),
      [
        "20240320000000_team_slug_index/migration.sql require-timeouts",
        "20240320000000_team_slug_index/migration.sql create-index-without-concurrently",
        "20240410000000_team_name_unique/migration.sql create-index-without-concurrently",
      ],
    );
    assert.match(r.text, /2 migration\(s\) of .* skipped as applied \(the database's _prisma_migrations\)/);
    // Without a database, lint still judges all, and says nothing about skipping.
    const all = await lint({ paths: [dir] });
    assert.match(all.error ?? "", /lint found 3 error/);
    assert.ok(!all.text.includes("skipped"));
  });
});

describe("the pre-deploy check lints only the migrations this deploy will run", () => {
  const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
  const context = (project: string, url: string) => {
    const config: ConfigMap = {
      "safe-deploy:app": plain({ image: "web:any" }),
      "safe-deploy:database": plain({ mode: "external" }),
      "safe-deploy:migrations": plain({ dir: "migrations" }),
      "safe-deploy:databaseUrl": { value: url, secret: true },
    };
    return openContext({
      stack: "staging",
      projectDir: project,
      console: { write: () => {} },
      openStack: async (o) => ({ name: o.stack, getAllConfig: async () => config }) as unknown as StackAccess,
    });
  };
  const lintProblems = async (project: string, url: string) =>
    (await (await context(project, url)).ports({ allowDirty: true }).preflight()).filter((p) =>
      /lint/.test(p),
    );

  it("with the database: applied migrations with findings pass, a pending one is refused (before: all refused)", async () => {
    const project = join(tmp, "db-project");
    mkdirSync(project);
    writeFileSync(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
    cpSync(join(FIX, "npm-ts"), join(project, "migrations"), { recursive: true });
    const url = await pg.createDatabase("preflight_ts");
    const dir = join(project, "migrations");
    await migrate({ tool: "node-pg-migrate", action: "up", dir, workDir: ROOT, databaseUrl: url });
    assert.deepEqual(await lintProblems(project, url), []);
    writeFileSync(
      join(dir, "1700000006000_drop-accounts.ts"),
      'import type { MigrationBuilder } from "node-pg-migrate";\n\nexport async function up(pgm: MigrationBuilder): Promise<void> {\n  pgm.dropTable("accounts");\n}\n',
    );
    const [problem, ...more] = await lintProblems(project, url);
    assert.deepEqual(more, []);
    assert.match(
      problem,
      /^lint found 1 error\(s\) in the pending migrations \(.*1700000006000_drop-accounts\.ts:1 \[drop-table\]\); 5 applied migration\(s\) skipped \(the database's pgmigrations\): see 'safe-deploy lint .*--write-baseline/,
    );
    assert.ok(!problem.includes(pg.password));
  });

  it("database unreachable: what the last good release's commit held is applied; the baseline accepts the rest", async () => {
    const project = join(tmp, "git-project");
    mkdirSync(join(project, "migrations"), { recursive: true });
    const git = (...args: string[]) =>
      execFileSync("git", ["-C", project, "-c", "user.name=t", "-c", "user.email=t@example.test", ...args], {
        encoding: "utf8",
      }).trim();
    git("init", "-q");
    writeFileSync(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
    const ts = readdirSync(join(FIX, "npm-ts")).sort();
    for (const f of ts.slice(0, 3)) cpSync(join(FIX, "npm-ts", f), join(project, "migrations", f));
    git("add", "-A");
    git("commit", "-qm", "three migrations, deployed");
    const ledger = new Ledger(join(project, ".safe-deploy"), "staging");
    const good = await ledger.create({ stack: "staging", commit: git("rev-parse", "HEAD"), config: {} });
    await ledger.markResult(good.id, "good");
    writeFileSync(
      join(project, "migrations/1700000004000_truncate.sql"),
      "-- Up Migration\nTRUNCATE accounts;\nCREATE INDEX accounts_plan2 ON accounts (plan);\n",
    );
    // Nothing listens on port 1: the version table cannot be read.
    const down = "postgres://nobody:secret-pw@127.0.0.1:1/none";
    const [problem] = await lintProblems(project, down);
    assert.match(
      problem,
      /lint found 2 error\(s\) in the pending migrations \(.*1700000004000_truncate\.sql:2 \[truncate\], .*1700000004000_truncate\.sql:3 \[create-index-without-concurrently\]\); 3 applied migration\(s\) skipped \(the commit of the last good release r-/,
    );
    // The team accepts the index on purpose: the baseline, kept in the repository, lets it pass.
    const r = await lint({
      paths: [join(project, "migrations/1700000004000_truncate.sql")],
      baseline: join(project, ".safe-deploy/lint-baseline.json"),
      writeBaseline: true,
    });
    assert.match(r.text, /^wrote 3 accepted finding/);
    const [after] = await lintProblems(project, down);
    assert.equal(after, undefined, "every finding of the pending migration is accepted");
  });
});
