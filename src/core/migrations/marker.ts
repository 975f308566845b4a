import type { Client } from "pg";

/**
 * The table where a migration's transactions record their ids (issue 20). A rollback's replay skips
 * every transaction that writes to a migration tool's bookkeeping table; tools that record a migration
 * in a transaction of its own (Prisma, golang-migrate, node-pg-migrate's `noTransaction`, a team's own
 * runner) leave the migration's DDL and backfill unrecognised, so its backfill would be replayed into the
 * old schema as if a user had written it. While `migrate up` runs, an event trigger marks each
 * transaction that changes the schema (temporary objects aside) in this table, so such a transaction is
 * recognised whoever ran it.
 */
export const MARKER_TABLE = "safe_deploy.migration_xacts";

/** Hours an armed marker stays live should `migrate up` be killed before it disarms it. */
const ARMED_HOURS = 24;

const ARM_SQL = `
CREATE SCHEMA IF NOT EXISTS safe_deploy;
CREATE TABLE IF NOT EXISTS ${MARKER_TABLE} (xid bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS safe_deploy.migration_marker (owner_pid int PRIMARY KEY, until timestamptz NOT NULL);
-- SECURITY DEFINER and every error swallowed: a session that may not write here (the app's role
-- running DDL) must never fail because of the marker.
CREATE OR REPLACE FUNCTION safe_deploy.mark_migration_xact() RETURNS event_trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE schema_change boolean;
BEGIN
  IF coalesce(now() > (SELECT max(until) FROM safe_deploy.migration_marker), true) THEN RETURN; END IF;
  IF TG_EVENT = 'sql_drop' THEN
    SELECT bool_or(NOT d.is_temporary) INTO schema_change FROM pg_event_trigger_dropped_objects() d;
  ELSE
    SELECT bool_or(c.schema_name IS NULL OR c.schema_name NOT LIKE 'pg\\_temp%') INTO schema_change
      FROM pg_event_trigger_ddl_commands() c;
  END IF;
  IF coalesce(schema_change, false) THEN
    INSERT INTO ${MARKER_TABLE} (xid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
  END IF;
EXCEPTION WHEN OTHERS THEN
  RETURN;
END $fn$;
INSERT INTO safe_deploy.migration_marker VALUES (pg_backend_pid(), now() + interval '${ARMED_HOURS} hours')
  ON CONFLICT (owner_pid) DO UPDATE SET until = excluded.until;
DROP EVENT TRIGGER IF EXISTS safe_deploy_mark_migration;
CREATE EVENT TRIGGER safe_deploy_mark_migration ON ddl_command_end EXECUTE FUNCTION safe_deploy.mark_migration_xact();
DROP EVENT TRIGGER IF EXISTS safe_deploy_mark_migration_drop;
CREATE EVENT TRIGGER safe_deploy_mark_migration_drop ON sql_drop EXECUTE FUNCTION safe_deploy.mark_migration_xact();`;

/**
 * Arms the marker for the migrations this session is about to run. Creating an event trigger needs a
 * superuser: without one the migration runs as before, and the returned reason says what a rollback
 * will not recognise.
 */
export async function armMigrationMarker(client: Client): Promise<{ armed: boolean; reason?: string }> {
  try {
    await client.query(ARM_SQL);
    return { armed: true };
  } catch (e) {
    return {
      armed: false,
      reason:
        `the migration's transactions are not marked for a rollback's replay (${(e as Error).message.split("\n")[0]}; ` +
        "event triggers need a superuser): a migration that records itself apart from its changes (Prisma, " +
        "noTransaction) would have its data changes replayed by a rollback with restore",
    };
  }
}

/**
 * Ends this session's marking. The event triggers go with the last armed session; the table stays, so a
 * rollback can still tell the migration's transactions apart.
 */
export async function disarmMigrationMarker(client: Client): Promise<void> {
  await client.query(
    `DELETE FROM safe_deploy.migration_marker WHERE owner_pid = pg_backend_pid() OR until < now()
       OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = owner_pid)`,
  );
  const { rows } = await client.query<{ n: string }>(
    "SELECT count(*) AS n FROM safe_deploy.migration_marker",
  );
  if (Number(rows[0].n) === 0)
    await client.query(
      "DROP EVENT TRIGGER IF EXISTS safe_deploy_mark_migration; DROP EVENT TRIGGER IF EXISTS safe_deploy_mark_migration_drop",
    );
}
