import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "pg";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import {
  COUNTS_AND_SUMS_SQL,
  ROW_COUNTS_SQL,
  STABLE_TEXT_SQL,
  TABLE_CHECKSUM_QUERY,
  TABLE_CHECKSUMS_SQL,
} from "../../../src/core/backup/session";

// The content checksums a backup records cost a scan of every row (issue 18): each row is rendered
// as text once, not once per sum, and the values stay those of backups taken before (issue 15).
let pg: TestPostgres;

/** The checksum definition of issue 15, as first written: what existing manifests hold. */
const FIRST_SQL = `SELECT 'SUMS:' || coalesce(json_object_agg(k, h), '{}')::text FROM (
  SELECT n.nspname || '.' || c.relname AS k,
    (xpath('/row/h/text()', query_to_xml(format(
      'select coalesce(sum(hashtextextended(x, 1)), 0) || '':'' || coalesce(sum(hashtextextended(x, 2)), 0) as h '
      'from (select row(r.*)::text as x from %I.%I r) s',
      n.nspname, c.relname), false, true, '')))[1]::text AS h
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  ORDER BY 1) t;`;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("sums");
  await pg.query(
    `CREATE SCHEMA "Odd ""s""";
     CREATE TABLE "Odd ""s""".t (id int, name text, at timestamptz, f float8, b bytea);
     INSERT INTO "Odd ""s""".t SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'n "q" (' || i || '), ü\\' END,
       '2026-12-06 05:00+01'::timestamptz + i * interval '1 minute', i / 3.0, int4send(i)
       FROM generate_series(1, 500) i;
     CREATE TABLE empty (x int);`,
    [],
    "sums",
  );
});
after(async () => {
  await pg?.close();
});

async function withClient<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: pg.url("sums") });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const sums = async (c: Client, sql: string) => {
  const rows = (await c.query(`${STABLE_TEXT_SQL}\n${sql}`)) as unknown as Array<{ rows: string[][] }>;
  const last = rows[rows.length - 1].rows[0];
  return JSON.parse(String(Object.values(last)[0]).slice("SUMS:".length)) as Record<string, string>;
};

test("the checksums are those of the first definition, so existing manifests still verify", async () => {
  await withClient(async (c) => {
    const now = await sums(c, TABLE_CHECKSUMS_SQL);
    assert.deepEqual(now, await sums(c, FIRST_SQL));
    assert.deepEqual(Object.keys(now).sort(), ['Odd "s".t', "public.empty"]);
    assert.equal(now["public.empty"], "0:0");
  });
});

test("the backup's one scan per table gives the same counts and checksums as the separate queries", async () => {
  await withClient(async (c) => {
    const rows = (await c.query(`${STABLE_TEXT_SQL}\n${COUNTS_AND_SUMS_SQL}`)) as unknown as Array<{
      rows: string[][];
    }>;
    const both = JSON.parse(
      String(Object.values(rows[rows.length - 1].rows[0])[0]).slice("SCAN:".length),
    ) as Record<string, string>;
    const counts = JSON.parse(
      String(Object.values((await c.query(ROW_COUNTS_SQL)).rows[0])[0]).slice("ROWS:".length),
    ) as Record<string, number>;
    const first = await sums(c, FIRST_SQL);
    assert.deepEqual(
      both,
      Object.fromEntries(Object.keys(first).map((k) => [k, `${counts[k]};${first[k]}`])),
    );
    assert.equal(both['Odd "s".t'], `500;${first['Odd "s".t']}`);
  });
});

test("a big table is summed by the server's parallel workers", async () => {
  // Costs zeroed so the planner picks workers for a small table whenever the query allows them.
  const plan = await withClient(async (c) => {
    await c.query(
      "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2",
    );
    const q = (await c.query("SELECT format($1::text, 'Odd \"s\"', 't') AS q", [TABLE_CHECKSUM_QUERY]))
      .rows[0].q;
    const r = await c.query(`EXPLAIN ${q}`);
    return r.rows.map((x: Record<string, string>) => x["QUERY PLAN"]).join("\n");
  });
  // Summed in the workers, each sending the leader one partial sum. With `offset 0` the sums sat above
  // the limit, every row's text would have gone to the leader, and the planner chose no workers.
  assert.match(plan, /Partial Aggregate[\s\S]*Parallel Seq Scan/, plan);
});

test("each row is rendered as text once per checksum, not once per sum", async () => {
  // auto_explain shows the plan of the per-table query that query_to_xml runs.
  const plans = await withClient(async (c) => {
    const notices: string[] = [];
    c.on("notice", (n) => notices.push(String(n.message)));
    await c.query(
      "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; " +
        "SET auto_explain.log_verbose = on; SET auto_explain.log_level = notice; SET client_min_messages = notice",
    );
    await c.query(TABLE_CHECKSUMS_SQL);
    return notices.filter((n) => n.includes('"Odd ""s"""."t"') || n.includes('"Odd ""s""".t'));
  });
  assert.ok(plans.length >= 1, "auto_explain reported the per-table query");
  // Rendered by the scan and read twice by the aggregate; inlined, the scan returned the columns and
  // the aggregate rendered the row once for each of its two sums.
  assert.match(
    plans[0],
    /Seq Scan on [^\n]*\n\s*Output: \(ROW\(r\.id, r\.name, r\.at, r\.f, r\.b\)\)::text\b/,
  );
});
