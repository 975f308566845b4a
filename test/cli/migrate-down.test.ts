import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { runMigrate } from "../../src/cli/commands/migrate";
import { main } from "../../src/cli/index";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

const ROOT = join(__dirname, "../..");
const DIR = "test/fixtures/migrations/npm";
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => pg?.close());

const applied = async (db: string) =>
  (await pg.query<{ name: string }>("SELECT name FROM pgmigrations ORDER BY id", [], db)).map((r) => r.name);

it("migrate down asks on a terminal with the list to revert; without one it needs --yes (exit 2)", async () => {
  const url = await pg.createDatabase("downconfirm");
  const o = { tool: "node-pg-migrate", dir: DIR, workDir: ROOT, databaseUrl: url, out: () => {} };
  await runMigrate({ ...o, action: "up" });
  const flags = ["--tool", "node-pg-migrate", "--dir", DIR, "--work-dir", ROOT, "--database-url", url];
  // The test's stdin is not a terminal: refused, nothing dropped.
  assert.equal(await main(["migrate", "down", "2", ...flags]), 2);
  assert.equal((await applied("downconfirm")).length, 3);
  const err = await runMigrate({ ...o, action: "down", target: "2" }).then(
    () => assert.fail("must refuse"),
    (e: Error) => e,
  );
  assert.match(
    err.message,
    /would revert 2 migration\(s\) \(1700000003000_users-name, 1700000002000_create-orders\) on database "downconfirm".*pass `--yes`/,
  );
  // On a terminal: the question names the database and the migrations; a wrong answer reverts nothing.
  const asked: string[] = [];
  await assert.rejects(
    runMigrate({ ...o, action: "down", target: "2", ask: async (q) => (asked.push(q), "n") }),
    /migrate down cancelled: nothing was reverted/,
  );
  assert.match(
    asked[0],
    /^Revert 2 migration\(s\) \(1700000003000_users-name, 1700000002000_create-orders\) on database "downconfirm"\?/,
  );
  assert.equal((await applied("downconfirm")).length, 3);
  await runMigrate({ ...o, action: "down", ask: async () => "downconfirm" });
  assert.deepEqual(await applied("downconfirm"), [
    "1700000001000_create-users",
    "1700000002000_create-orders",
  ]);
  assert.equal(await main(["migrate", "down", "1", ...flags, "--yes"]), 0);
  assert.deepEqual(await applied("downconfirm"), ["1700000001000_create-users"]);
});
