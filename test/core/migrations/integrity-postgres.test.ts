// Issue 22: countRows on a real server, then the verdict on a critical table the migrations dropped.
// (The pure verdict has its own file, integrity.test.ts, quick enough for a mutation run.)
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { countRows, rowLosses } from "../../../src/core/migrations/integrity";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

describe("countRows then rowLosses on a real database", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it(
    "DROP TABLE of a critical table is reported as a 100% loss, with the default limit",
    { timeout: 60_000 },
    async () => {
      const c = new Client({ connectionString: await pg.createDatabase("dropped") });
      await c.connect();
      try {
        await c.query(`CREATE SCHEMA "Odd"; CREATE TABLE "Odd"."T x" (id int); INSERT INTO "Odd"."T x" VALUES (1), (2);
        CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 3);
        CREATE TABLE empty (id int);`);
        const before = await countRows(c);
        assert.deepEqual(before, { "Odd.T x": 2, "public.empty": 0, "public.orders": 3 });
        await c.query("DROP TABLE orders");
        const after = await countRows(c);
        assert.deepEqual(rowLosses(before, after, ["orders", "empty", "Odd.T x"]), [
          { table: "public.orders", before: 3, after: undefined, lossPercent: 100 },
        ]);
      } finally {
        await c.end();
      }
    },
  );
});
