import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { lintSql } from "../../../src/core/migrations/lint";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

// What lint claims about PostgreSQL, checked on a real PostgreSQL 15: which ADD COLUMN defaults rewrite
// the table (its filenode changes), and which statements the parser accepts but the server rejects.
const SCHEMA = `
  CREATE TABLE users (id int PRIMARY KEY, name text, tags text[]);
  INSERT INTO users SELECT g, 'n' FROM generate_series(1, 1000) g;
  CREATE FUNCTION make_code() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN 'x'; END $$;`;
const T = "SET lock_timeout = '3s'; SET statement_timeout = '1min';\n";

describe("lint agrees with a real PostgreSQL", () => {
  let pg: TestPostgres;
  let db = 0;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());
  const fresh = async () => {
    const name = `lint${++db}`;
    await pg.createDatabase(name);
    await pg.query(SCHEMA, [], name);
    return name;
  };
  const rules = async (sql: string) => (await lintSql(T + sql, "x.sql")).map((f) => f.rule);

  const defaults: Array<[string, boolean]> = [
    ["ALTER TABLE users ADD COLUMN a text DEFAULT lower('EN')", false],
    ["ALTER TABLE users ADD COLUMN a timestamptz NOT NULL DEFAULT now()", false],
    ["ALTER TABLE users ADD COLUMN a timestamptz DEFAULT statement_timestamp()", false],
    ["ALTER TABLE users ADD COLUMN a jsonb DEFAULT jsonb_build_object('k', 1)", false],
    ["ALTER TABLE users ADD COLUMN a bigint NOT NULL DEFAULT 10 * 1024", false],
    ["ALTER TABLE users ADD COLUMN a text[] NOT NULL DEFAULT ARRAY[]::text[]", false],
    ["ALTER TABLE users ADD COLUMN a text DEFAULT make_code()", true],
    ["ALTER TABLE users ADD COLUMN a float DEFAULT random()", true],
    ["ALTER TABLE users ADD COLUMN a uuid DEFAULT gen_random_uuid()", true],
    ["ALTER TABLE users ADD COLUMN a bigserial", true],
    ["ALTER TABLE users ADD COLUMN a int GENERATED ALWAYS AS (id * 2) STORED NOT NULL", true],
  ];
  for (const [sql, rewrites] of defaults)
    it(`${rewrites ? "rewrites" : "no rewrite"}: ${sql}`, async () => {
      const name = await fresh();
      const node = async () =>
        (await pg.query<{ f: string }>("SELECT pg_relation_filenode('users')::text AS f", [], name))[0].f;
      const before = await node();
      await pg.query(sql, [], name);
      assert.equal((await node()) !== before, rewrites, "PostgreSQL");
      assert.equal((await rules(sql + ";")).includes("add-column-rewrites-table"), rewrites, "lint");
    });

  const rejected: Array<[string, RegExp, string]> = [
    [
      "INSERT INTO users (id, name, name) VALUES (5000, 'a', 'b')",
      /specified more than once/,
      "duplicate-column-assignment",
    ],
    [
      "UPDATE users SET name = 'a', name = 'b' WHERE id = 1",
      /multiple assignments/,
      "duplicate-column-assignment",
    ],
    [
      "INSERT INTO users (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = 'a', name = 'b'",
      /multiple assignments/,
      "duplicate-column-assignment",
    ],
    [
      "CREATE VIEW v AS SELECT u.id, u.name, w.id FROM users u, users w",
      /specified more than once/,
      "view-duplicate-column",
    ],
    [
      "CREATE VIEW v AS SELECT count(*), count(DISTINCT id) FROM users",
      /specified more than once/,
      "view-duplicate-column",
    ],
    ["CREATE VIEW v (a, a) AS SELECT 1, 2", /specified more than once/, "view-duplicate-column"],
  ];
  for (const [sql, error, rule] of rejected)
    it(`rejected by PostgreSQL, reported as ${rule}: ${sql}`, async () => {
      const name = await fresh();
      await assert.rejects(pg.query(sql, [], name), error);
      assert.deepEqual(await rules(sql + ";"), [rule]);
    });

  const accepted = [
    "UPDATE users SET tags[1] = 'a', tags[2] = 'b' WHERE id = 7",
    "INSERT INTO users (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = excluded.name",
    "CREATE VIEW v AS SELECT u.id, u.name, w.id AS other_id, count(*) OVER () FROM users u, users w",
    "VACUUM (FULL FALSE) users",
  ];
  for (const sql of accepted)
    it(`accepted by PostgreSQL, not reported: ${sql}`, async () => {
      const name = await fresh();
      await pg.query(sql, [], name);
      assert.deepEqual(await rules(sql + ";"), []);
    });
});
