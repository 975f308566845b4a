// Issue 22: add-column-rewrites-table's list of functions a DEFAULT may call without a rewrite, name by
// name (each one dropped from the list would report a column that PostgreSQL 11+ adds without a rewrite),
// and the SQL keywords that look like calls but reach lint as other nodes. In process, no server.
import assert from "node:assert/strict";
import { it } from "node:test";
import { lintSql } from "../../../src/core/migrations/lint";

const rewrites = async (def: string) =>
  (await lintSql(`ALTER TABLE t ADD COLUMN c text DEFAULT ${def};`, "x.sql", { timeoutsSetByRunner: true }))
    .filter((f) => f.rule === "add-column-rewrites-table")
    .map((f) => f.message);

/** Immutable or stable in pg_proc (`provolatile` 'i' or 's'): evaluated once at ALTER time. */
const SAFE = [
  "now()",
  "transaction_timestamp()",
  "statement_timestamp()",
  "current_setting('app.region')",
  "timezone('UTC', now())",
  "(now() AT TIME ZONE 'UTC')",
  "date_trunc('day', now())",
  "make_date(2026, 1, 1)",
  "make_time(1, 2, 3)",
  "make_timestamp(2026, 1, 1, 0, 0, 0)",
  "make_timestamptz(2026, 1, 1, 0, 0, 0)",
  "make_interval(days => 1)",
  "to_timestamp(0)",
  "to_date('2026-01-01', 'YYYY-MM-DD')",
  "lower('A')",
  "upper('a')",
  "btrim(' a ')",
  "trim(' a ')",
  "ltrim(' a')",
  "trim(leading ' a')",
  "rtrim('a ')",
  "concat('a', 1)",
  "concat_ws(',', 'a', 'b')",
  "length('a')",
  "abs(-1)",
  "round(1.5)",
  "array_fill(0, ARRAY[2])",
  "json_build_object('k', 1)",
  "jsonb_build_object('k', 1)",
  "json_build_array(1)",
  "jsonb_build_array(1)",
  "to_jsonb(1)",
  "to_json(1)",
  "jsonb_object('{a,1}')",
  "int4range(1, 2)",
  "int8range(1, 2)",
  "numrange(1, 2)",
  "tstzrange(now(), NULL)",
  "daterange('2026-01-01', NULL)",
  "pg_catalog.now()",
  "NOW()",
  // Keywords, not calls: SQLValueFunction, CoalesceExpr, NULLIF's A_Expr, MinMaxExpr.
  "CURRENT_TIMESTAMP",
  "current_date",
  "localtimestamp",
  "coalesce(NULL, 'a')",
  "nullif('a', 'b')",
  "greatest(1, 2)",
  "least(1, 2)",
];

it("a DEFAULT calling only immutable or stable functions (or keywords) adds the column without a rewrite", async () => {
  for (const def of SAFE) assert.deepEqual(await rewrites(def), [], def);
});

it("a volatile or unknown function anywhere in the DEFAULT is named, keywords around it or not", async () => {
  const cases: Array<[string, string]> = [
    ["gen_random_uuid()", "gen_random_uuid"],
    ["coalesce(NULL, uuid_generate_v4()::text)", "uuid_generate_v4"],
    ["greatest(1, nextval('s'))", "nextval"],
    ["lower(app.make_code())", "make_code"],
    ["now() + make_delay()", "make_delay"],
    ["round(random())", "random"],
    // Quoted, the name keeps its case: not pg_catalog's now() but a function of the user's.
    ['"NOW"()', "NOW"],
  ];
  for (const [def, fn] of cases)
    assert.deepEqual(
      await rewrites(def),
      [`ADD COLUMN c with DEFAULT ${fn}(), not known to be immutable or stable on t`],
      def,
    );
});
