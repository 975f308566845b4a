import type { Client } from "pg";

/** Rows per table, keyed `schema.table`. */
export type RowCounts = Record<string, number>;

/** Exact row counts of every ordinary table outside the system schemas. */
export async function countRows(client: Client): Promise<RowCounts> {
  const { rows } = await client.query<{ s: string; t: string }>(
    `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname <> 'safe_deploy'
     ORDER BY 1, 2`,
  );
  const out: RowCounts = {};
  for (const { s, t } of rows) {
    const ident = `${client.escapeIdentifier(s)}.${client.escapeIdentifier(t)}`;
    const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident}`);
    out[`${s}.${t}`] = Number(r.rows[0].n);
  }
  return out;
}

/** `users` means `public.users`. */
export function qualify(table: string): string {
  return table.includes(".") ? table : `public.${table}`;
}

/** One critical table that lost more rows than allowed (or vanished). */
export interface RowLoss {
  table: string;
  before: number;
  after: number | undefined;
  lossPercent: number;
}

/**
 * Critical tables whose loss exceeds `maxRowLossPercent` (default 0: any lost row fails). A table
 * that disappears counts as a 100% loss.
 */
export function rowLosses(
  before: RowCounts,
  after: RowCounts,
  criticalTables: string[],
  maxRowLossPercent = 0,
): RowLoss[] {
  const out: RowLoss[] = [];
  for (const name of criticalTables.map(qualify)) {
    const b = before[name];
    if (b === undefined || b === 0) continue;
    const a = after[name];
    const lossPercent = a === undefined ? 100 : Math.max(0, ((b - a) / b) * 100);
    if (lossPercent > maxRowLossPercent) out.push({ table: name, before: b, after: a, lossPercent });
  }
  return out;
}

/**
 * Critical tables found neither before nor after the migrations, as `schema.table`: a misspelt name
 * (`order` for `orders`, `Users` for `users`) would otherwise guard nothing and pass in silence. A
 * table the migrations create counts as found, so a first deploy on an empty database passes.
 */
export function unknownTables(before: RowCounts, after: RowCounts, criticalTables: string[]): string[] {
  return criticalTables.map(qualify).filter((t) => before[t] === undefined && after[t] === undefined);
}

/** The error text for {@link unknownTables}, listing the tables there are (the first 10). */
export function unknownTablesMessage(unknown: string[], after: RowCounts): string {
  const names = Object.keys(after).filter(
    (t) => !/^public\.(pgmigrations|alembic_version|_prisma_migrations)$/.test(t),
  );
  const there = names.length
    ? `tables there are: ${names.slice(0, 10).join(", ")}${names.length > 10 ? ", ..." : ""}`
    : "the database has no tables";
  return `critical ${unknown.length > 1 ? "tables" : "table"} ${unknown.join(", ")} ${unknown.length > 1 ? "do" : "does"} not exist, before or after the migrations, so its rows were not checked (${there}); fix the name in --critical-tables / integrity.criticalTables (schema.table, spelt as in the database)`;
}

/** One line per table whose count changed, e.g. `public.orders: 50 -> 40 (-10)`. */
export function formatCountChanges(before: RowCounts, after: RowCounts): string[] {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const out: string[] = [];
  for (const n of names) {
    const b = before[n];
    const a = after[n];
    if (b === a) continue;
    if (b === undefined) out.push(`${n}: new table, ${a} rows`);
    else if (a === undefined) out.push(`${n}: dropped (had ${b} rows)`);
    else out.push(`${n}: ${b} -> ${a} (${a - b >= 0 ? "+" : ""}${a - b})`);
  }
  return out;
}
