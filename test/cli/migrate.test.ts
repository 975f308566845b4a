import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { runMigrate } from "../../src/cli/commands/migrate";
import { main } from "../../src/cli/index";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

const ROOT = join(__dirname, "../..");
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => pg?.close());

it("migrate up/current through the CLI contract, with exit codes for bad usage and failures", async () => {
  const url = await pg.createDatabase("cli");
  const common = [
    "--tool",
    "node-pg-migrate",
    "--dir",
    "test/fixtures/migrations/npm",
    "--work-dir",
    ROOT,
    "--database-url",
    url,
  ];
  assert.equal(await main(["migrate", "up", "2", ...common]), 0);
  const lines: string[] = [];
  await runMigrate({
    action: "current",
    tool: "node-pg-migrate",
    dir: "test/fixtures/migrations/npm",
    workDir: ROOT,
    databaseUrl: url,
    out: (t) => lines.push(t),
  });
  assert.deepEqual(lines, ["1700000002000_create-orders"]);
  assert.equal(await main(["migrate", "sideways", ...common]), 2);
  assert.equal(await main(["migrate", "up", "--tool", "flyway", "--database-url", url]), 2);
  const brokenDir = [
    "--tool",
    "node-pg-migrate",
    "--dir",
    "test/fixtures/migrations/npm-broken",
    "--work-dir",
    ROOT,
  ];
  const url2 = await pg.createDatabase("cli2");
  assert.equal(await main(["migrate", "up", ...brokenDir, "--database-url", url2]), 1);
  assert.equal(await main(["migrate", "current", ...common.slice(0, -1), "postgres://x:y@127.0.0.1:1/z"]), 3);
});
