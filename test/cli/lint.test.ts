import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { runLint } from "../../src/cli/commands/lint";
import { main } from "../../src/cli/index";

const FIX = join(__dirname, "../fixtures/lint");

it("lint exits 1 on errors and 0 on a clean file, through the CLI contract", async () => {
  const lines: string[] = [];
  await assert.rejects(runLint({ paths: [join(FIX, "data.sql")], out: (t) => lines.push(t) }), /3 error/);
  assert.match(lines.join("\n"), /data\.sql:3: error \[update-without-where\]/);
  await runLint({ paths: [join(FIX, "safe.sql")], out: () => {} });
  assert.equal(await main(["lint", join(FIX, "destructive.sql")]), 1);
  assert.equal(await main(["lint", join(FIX, "missing.sql")]), 2);
});

it("a directory whose migrations yield no statement is a usage error, not a pass over nothing", async () => {
  const empty = await mkdtemp(join(tmpdir(), "sd-lint-"));
  try {
    await writeFile(join(empty, "1700000000000_init.js"), "exports.up = () => {};\n");
    await assert.rejects(runLint({ paths: [join(FIX, "safe.sql"), empty], out: () => {} }), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      // A JS migration is rendered through node-pg-migrate now (issue 21); an empty `up` yields nothing.
      assert.match(
        e.message,
        /1 migration\(s\) under .*sd-lint-.* but 0 statements could be checked: nothing was judged/,
      );
      return true;
    });
    assert.equal(await main(["lint", empty]), 2);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});

it("--json prints one document with the PostgreSQL version, the counts and every finding", async () => {
  const got: string[] = [];
  await assert.rejects(runLint({ paths: [join(FIX, "data.sql")], json: true, out: (t) => got.push(t) }));
  const doc = JSON.parse(got.join("\n")) as {
    pgVersion: number;
    errors: number;
    findings: Array<{ rule: string; line: number; why: string; instead: string }>;
  };
  assert.equal(doc.pgVersion, 15);
  assert.equal(doc.errors, 3);
  assert.deepEqual(
    doc.findings.map((f) => `${f.rule}@${f.line}`),
    ["update-without-where@3", "delete-without-where@5", "vacuum-full@6"],
  );
  assert.ok(doc.findings.every((f) => f.why && f.instead));
});

it("--stack reads the PostgreSQL version from the stack's database image; --pg-version overrides it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sd-lint-stack-"));
  try {
    const sql = join(dir, "1.sql");
    await writeFile(
      sql,
      "SET lock_timeout = '5s'; SET statement_timeout = '5min';\nALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT 0;\n",
    );
    await writeFile(
      join(dir, "Pulumi.old.yaml"),
      "config:\n  safe-deploy:database:\n    mode: container\n    image: postgres:10-alpine\n",
    );
    await writeFile(join(dir, "Pulumi.new.yaml"), "config:\n  safe-deploy:app:\n    image: web:1\n");
    const lines: string[] = [];
    await assert.rejects(
      runLint({ paths: [sql], stack: "old", projectDir: dir, out: (t) => lines.push(t) }),
      /1 error/,
    );
    assert.match(lines.join("\n"), /add-column-rewrites-table\] .*PostgreSQL 10 < 11/);
    await runLint({ paths: [sql], stack: "new", projectDir: dir, out: () => {} });
    await runLint({ paths: [sql], stack: "old", projectDir: dir, pgVersion: "16", out: () => {} });
    assert.equal(await main(["lint", "--pg-version", "10", sql]), 1);
    assert.equal(await main(["lint", "--pg-version", "15", "--json", sql]), 0);
    assert.equal(await main(["lint", "--pg-version", "fifteen", sql]), 2);
    assert.equal(await main(["lint", "--stack", "missing", "--project-dir", dir, sql]), 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
