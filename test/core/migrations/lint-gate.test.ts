import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { runRehearse } from "../../../src/cli/commands/rehearse";
import { lintGate } from "../../../src/core/migrations/lint";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sd-lint-gate-"));
  await writeFile(join(dir, "1700000000000_ok.sql"), "-- Up Migration\nALTER TABLE t ADD COLUMN a text;\n");
  await writeFile(
    join(dir, "1700000000001_bad.sql"),
    "-- Up Migration\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\n",
  );
});
after(async () => rm(dir, { recursive: true, force: true }));

it("lintGate refuses on a lint error, naming file, line, rule and the way out", async () => {
  await assert.rejects(lintGate({ command: "migrate up", dir }), (e: Error) => {
    assert.equal(e.name, "CheckFailedError");
    assert.match(e.message, /^migrate up refused: lint found 1 error\(s\)/);
    assert.match(e.message, /1700000000001_bad\.sql:2 \[set-not-null\]/);
    assert.match(e.message, /--allow-lint "REASON"/);
    return true;
  });
});

it("lintGate goes ahead with --allow-lint REASON and prints the reason; an empty reason is a usage error", async () => {
  const lines: string[] = [];
  const found = await lintGate({ command: "rehearse", dir, allowLint: "20 rows", out: (t) => lines.push(t) });
  assert.deepEqual(
    found.map((f) => f.rule),
    ["set-not-null"],
    "require-timeouts is left to the runner",
  );
  assert.match(lines.join("\n"), /rehearse: lint found 1 error\(s\), allowed: 20 rows/);
  await assert.rejects(lintGate({ command: "rehearse", dir, allowLint: " " }), /needs the reason/);
});

it("rehearse runs the lint first: it refuses before touching the backup or the server", async () => {
  const backup = join(dir, "x.dump");
  await writeFile(backup, "not a dump");
  const o = {
    backup,
    migrations: ".",
    workDir: dir,
    // Port 1 on loopback: nothing listens, so reaching the server would fail differently.
    databaseUrl: "postgres://nobody@127.0.0.1:1/none",
    out: () => {},
  };
  await assert.rejects(runRehearse(o), /rehearse refused: lint found 1 error/);
  await assert.rejects(runRehearse({ ...o, allowLint: "demo table" }), (e: Error) => {
    // Past the gate, the rehearsal itself fails on the server that is not there.
    assert.equal(e.name, "CannotRunError");
    assert.match(e.message, /does not answer/);
    return true;
  });
});

it("migrate up runs the lint first: it refuses before touching the database; --allow-lint lets it go on", async () => {
  const { runMigrate } = await import("../../../src/cli/commands/migrate");
  const o = {
    action: "up",
    tool: "node-pg-migrate",
    dir: ".",
    workDir: dir,
    // Port 1 on loopback: nothing listens, so reaching the server would fail differently.
    databaseUrl: "postgres://nobody@127.0.0.1:1/none",
    out: () => {},
  };
  await assert.rejects(runMigrate(o), /migrate up refused: lint found 1 error/);
  await assert.rejects(runMigrate({ ...o, allowLint: "demo table" }), (e: Error) => {
    assert.doesNotMatch(e.message, /lint found/);
    return true;
  });
});
