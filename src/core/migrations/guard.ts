import type { Client } from "pg";
import { qualify, type RowCounts } from "./integrity";

/** Marker the guard's exception starts with, so the runner can tell it from the migration's own errors. */
export const GUARD_MARKER = "safe-deploy integrity check:";

/**
 * The table node-pg-migrate creates itself (its `migrations-table` default); the guard needs it before the
 * tool's first run to hang its trigger on.
 */
const PGMIGRATIONS_DDL =
  "CREATE TABLE IF NOT EXISTS public.pgmigrations (id SERIAL PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)";

/**
 * A deferred constraint trigger on node-pg-migrate's own table: it fires at COMMIT of the transaction that
 * records (or un-records) a migration, counts each critical table there and raises when one lost more
 * than allowed, so the whole `--single-transaction` run rolls back and no row is lost (issue 15). The
 * baseline rows name the session that set them: a run killed before its cleanup leaves rows that no
 * longer apply once that session is gone. TRUNCATE and DROP TABLE are caught too (count 0, no table).
 */
const GUARD_SQL = `
CREATE SCHEMA IF NOT EXISTS safe_deploy;
CREATE TABLE IF NOT EXISTS safe_deploy.row_guard (
  name text PRIMARY KEY, ident text NOT NULL, rows bigint NOT NULL, max_loss_percent numeric NOT NULL, owner_pid int NOT NULL);
CREATE OR REPLACE FUNCTION safe_deploy.check_row_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE g record; n bigint; loss numeric; problems text[] := '{}';
BEGIN
  IF current_setting('safe_deploy.row_guard_checked', true) = 'yes' THEN RETURN NULL; END IF;
  PERFORM set_config('safe_deploy.row_guard_checked', 'yes', true);
  FOR g IN SELECT * FROM safe_deploy.row_guard r
      WHERE EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.owner_pid) ORDER BY name LOOP
    IF to_regclass(g.ident) IS NULL THEN
      n := NULL; loss := 100;
    ELSE
      EXECUTE format('SELECT count(*) FROM %s', g.ident) INTO n;
      loss := greatest(0, (g.rows - n) * 100.0 / g.rows);
    END IF;
    IF loss > g.max_loss_percent THEN
      problems := problems || format('%s would lose %s%% of its rows (%s -> %s)', g.name,
        to_char(loss, 'FM990.0'), g.rows, coalesce(n::text, 'dropped'));
    END IF;
  END LOOP;
  IF cardinality(problems) > 0 THEN
    RAISE EXCEPTION '${GUARD_MARKER} %', array_to_string(problems, '; ') USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $fn$;
DROP TRIGGER IF EXISTS safe_deploy_row_guard ON public.pgmigrations;
CREATE CONSTRAINT TRIGGER safe_deploy_row_guard AFTER INSERT OR DELETE ON public.pgmigrations
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION safe_deploy.check_row_guard();
`;

/** `schema.table` as a quoted identifier. */
function quoted(client: Client, table: string): string {
  const [s, ...t] = qualify(table).split(".");
  return `${client.escapeIdentifier(s)}.${client.escapeIdentifier(t.join("."))}`;
}

/**
 * Arms the in-transaction row-loss guard for node-pg-migrate: records each critical table's count (from
 * `before`) against this session's pid. Tables with no rows are skipped (nothing to lose).
 */
export async function armRowGuard(
  client: Client,
  before: RowCounts,
  criticalTables: string[],
  maxRowLossPercent = 0,
): Promise<void> {
  await client.query(PGMIGRATIONS_DDL);
  await client.query(GUARD_SQL);
  await client.query("DELETE FROM safe_deploy.row_guard");
  for (const t of criticalTables.map(qualify)) {
    if (!before[t]) continue;
    await client.query(
      "INSERT INTO safe_deploy.row_guard (name, ident, rows, max_loss_percent, owner_pid) VALUES ($1, $2, $3, $4, pg_backend_pid())",
      [t, quoted(client, t), before[t], maxRowLossPercent],
    );
  }
}

/** Removes the guard's trigger and baseline (the function and schema stay, harmless). */
export async function disarmRowGuard(client: Client): Promise<void> {
  await client.query("DROP TRIGGER IF EXISTS safe_deploy_row_guard ON public.pgmigrations");
  await client.query("DELETE FROM safe_deploy.row_guard WHERE owner_pid = pg_backend_pid()");
}

/** The guard's verdict in a tool's output (`public.orders would lose 20.0% of its rows (50 -> 40)`), or undefined. */
export function guardVerdict(output: string): string | undefined {
  const i = output.indexOf(GUARD_MARKER);
  if (i < 0) return undefined;
  return output
    .slice(i + GUARD_MARKER.length)
    .split("\n")[0]
    .trim();
}
