import { createHash } from "node:crypto";
import { CannotRunError } from "../errors";
import { pgFailure, spawnPg, watch, type Conn, type RunTarget } from "../backup/runner";
import { runSql } from "../backup/session";
import { literal } from "../database/quote";
import { errorText, NO_IDENTITY_SQL, outLine } from "./sql";

/** The publication every release slot decodes through (FOR ALL TABLES, created if missing). */
export const PUBLICATION = "safe_deploy_changes";

/** Prefix of every slot this tool creates; `listReleaseSlots` and cleanup only touch these. */
export const SLOT_PREFIX = "safe_deploy_";

/** A release's slot, created with an exported snapshot that `pg_dump --snapshot` reads. */
export interface ReleaseSlot {
  slot: string;
  /** The slot's consistent point: the dump holds everything committed before it, the slot everything after. */
  startLsn: string;
  /** Snapshot name for `pg_dump --snapshot=` (valid while the replication session idles, until `close`). */
  snapshot: string;
  /** ends the replication session (after pg_dump finished); the slot stays */
  close(): Promise<void>;
  /** Ends the session and drops the slot (a failed or cancelled backup leaves no slot behind). */
  abort(): Promise<void>;
}

/** The slot name of a release: `safe_deploy_<stack>_<release>`, at most 63 chars of [a-z0-9_]. */
export function slotName(stack: string, releaseId: string): string {
  const clean = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_+|_+$/g, "");
  const name = `${SLOT_PREFIX}${clean(stack) || "stack"}_${clean(releaseId) || "release"}`;
  if (name.length <= 63) return name;
  // Cut names keep a hash of the whole, so two long release ids never share a slot.
  const hash = createHash("sha256").update(`${stack}\0${releaseId}`).digest("hex").slice(0, 10);
  return `${name.slice(0, 63 - 11).replace(/_+$/, "")}_${hash}`;
}

/** Throws unless `slot` is one of ours and a plain identifier (it is spliced into a replication command). */
function checkSlot(slot: string): void {
  if (!/^safe_deploy_[a-z0-9_]{1,51}$/.test(slot)) {
    throw new CannotRunError(
      `slot name "${slot}" is not one of safe-deploy's (safe_deploy_ followed by up to 51 of a-z 0-9 _): make it with slotName()`,
    );
  }
}

/** SQL that creates the publication if it is missing (FOR ALL TABLES needs a superuser). */
const ENSURE_PUBLICATION = `DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '${PUBLICATION}') THEN
    CREATE PUBLICATION ${PUBLICATION} FOR ALL TABLES;
  END IF;
END $$;`;

/** The error for a server or role that cannot keep a change stream, naming the fix. */
export function slotFailure(what: string, err: unknown, conn: Conn): Error {
  const text = errorText(err);
  if (/wal_level/.test(text)) {
    return new CannotRunError(
      `${what}: the server runs with wal_level below logical, so it cannot keep the writes made after the ` +
        "deploy for a rollback: set `wal_level = logical` and restart it (RDS/Aurora: parameter " +
        "`rds.logical_replication = 1`; the managed database container already does), or turn the change " +
        "stream off and accept that a rollback loses the writes made after the deploy",
    );
  }
  if (
    /must be superuser|permission denied|must be owner|REPLICATION attribute|replication role/i.test(text)
  ) {
    return new CannotRunError(
      `${what}: role "${conn.user}" may not create the publication ${PUBLICATION} (FOR ALL TABLES needs a ` +
        `superuser) or replication slots (needs REPLICATION): run once as a superuser \`CREATE PUBLICATION ` +
        `${PUBLICATION} FOR ALL TABLES\` and \`ALTER ROLE "${conn.user}" REPLICATION\`, or use an admin's URL`,
    );
  }
  if (/pg_hba\.conf.*replication connection/i.test(text)) {
    return new CannotRunError(
      `${what}: the server's pg_hba.conf lets role "${conn.user}" in, but not over a replication connection ` +
        `(the change stream needs one): add \`host replication ${conn.user} <client address> scram-sha-256\` ` +
        "and reload the server (SELECT pg_reload_conf())",
    );
  }
  if (/all replication slots are in use|max_replication_slots/i.test(text)) {
    return new CannotRunError(
      `${what}: every replication slot of the server is in use: raise \`max_replication_slots\` (restart) ` +
        "or drop slots that are no longer needed (`safe-deploy status` lists this tool's)",
    );
  }
  if (/already exists/.test(text)) {
    return new CannotRunError(
      `${what}: a slot of that name already exists (an earlier attempt of this release?): drop it with ` +
        "dropReleaseSlot / the cleanup command, then retry",
    );
  }
  // Passed on as thrown (its class and exit code), even when it is not `instanceof Error` (see errorText).
  return err && typeof err === "object" && "message" in err
    ? (err as Error)
    : new CannotRunError(`${what} failed: ${text}`);
}

/** How long slot creation waits for running transactions by default (`rollback.slotWaitSeconds`). */
export const DEFAULT_SLOT_WAIT_MS = 60_000;

/** The oldest transactions holding a transaction id: those a new logical slot waits for, server-wide. */
const BLOCKERS_SQL = `SELECT 'BLOCK:' || coalesce(json_agg(b)::text, '[]') FROM (
  SELECT pid, datname AS db, usename AS "user", application_name AS app, state,
    extract(epoch FROM now() - xact_start)::int AS seconds
  FROM pg_stat_activity
  WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  ORDER BY xact_start LIMIT 5) b;`;

/** Ends the walsender creating `slot` (its slot is still ephemeral then, so it goes too). */
const terminateCreatorSql = (slot: string) =>
  `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'walsender' ` +
  `AND query LIKE ${literal(`CREATE_REPLICATION_SLOT ${slot} %`)};`;

/** The sessions slot creation waited for, as a person reads them. Pure. */
export function formatBlockers(out: string): string {
  let rows: Array<{
    pid: number;
    db?: string;
    user?: string;
    app?: string;
    state?: string;
    seconds?: number;
  }>;
  try {
    rows = JSON.parse(outLine(out, "BLOCK:") || "[]");
  } catch {
    rows = [];
  }
  if (!rows.length)
    return "the sessions could not be listed (a role without pg_read_all_stats sees only its own)";
  return rows
    .map(
      (r) =>
        `pid ${r.pid} (${r.user ? `role "${r.user}"` : "another role"}${r.app ? `, application "${r.app}"` : ""}` +
        `${r.db ? ` on "${r.db}"` : ""}, ${r.state ?? "state unknown"}` +
        `${r.seconds === undefined || r.seconds === null ? "" : `, transaction open ${r.seconds} s`})`,
    )
    .join(", ");
}

/** libpq connection string value, quoted. */
const conninfoValue = (v: string) => `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

/**
 * Creates the logical slot `slot` (pgoutput) over a replication connection with EXPORT_SNAPSHOT and
 * keeps that session open, so `pg_dump --snapshot` dumps exactly the state at `startLsn`. Creating the
 * slot waits for transactions already running to end (PostgreSQL needs them finished to find its
 * consistent point): at most `waitMs`, then the attempt is cancelled (no slot is left) and the error
 * names the sessions it waited for. Refused while a table has no primary key or replica identity (nl-wire request 2). The publication is created first: pgoutput reads it as of each change, so one
 * created after the slot would be missing for the changes before it.
 */
export async function createReleaseSlot(
  target: RunTarget,
  conn: Conn,
  slot: string,
  { waitMs = DEFAULT_SLOT_WAIT_MS }: { waitMs?: number } = {},
): Promise<ReleaseSlot> {
  checkSlot(slot);
  const what = `creating the change stream slot "${slot}" on database "${conn.database}"`;
  // Checked before the publication exists: with it, the app's UPDATE and DELETE on these tables fail.
  const facts = await runSql(
    target,
    conn,
    `SELECT 'WAL:' || current_setting('wal_level'); SELECT 'NOID:' || (${NO_IDENTITY_SQL})::text;`,
    what,
  );
  const walLevel = outLine(facts, "WAL:");
  if (walLevel !== "logical") throw slotFailure(what, `wal_level is ${walLevel}`, conn);
  const noIdentity = JSON.parse(outLine(facts, "NOID:") || "[]") as string[];
  if (noIdentity.length) {
    throw new CannotRunError(
      `${what}: ${noIdentity.join(", ")} ${noIdentity.length > 1 ? "have" : "has"} no primary key or replica ` +
        `identity; while the change stream's publication exists PostgreSQL refuses UPDATE and DELETE on such ` +
        "tables (and they could not be replayed): add a primary key, or `ALTER TABLE … REPLICA IDENTITY FULL`, " +
        "or turn the change stream off",
    );
  }
  try {
    await runSql(target, conn, ENSURE_PUBLICATION, what);
  } catch (e) {
    // Two deploys creating it at once: the loser finds it there.
    if (!/already exists/.test(errorText(e))) throw slotFailure(what, e, conn);
  }
  // The replication option goes in the conninfo (libpq has no environment variable for it); the
  // credentials stay in the environment.
  const psql = spawnPg(
    target,
    "psql",
    [
      "-X",
      "-q",
      "-At",
      "-v",
      "ON_ERROR_STOP=1",
      "-d",
      `dbname=${conninfoValue(conn.database)} replication=database`,
    ],
    conn,
  );
  const w = watch(psql);
  psql.stdin!.on("error", () => {});
  let out = "";
  const marker = "__SLOT_READY__";
  const ready = new Promise<string>((resolve) => {
    psql.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (out.includes(`${marker}\n`)) resolve(out);
    });
  });
  const exited = w.done.then((code) => {
    throw slotFailure(what, pgFailure(what, w.stderr() || `psql exited with ${code}`, conn, target), conn);
  });
  exited.catch(() => {});
  psql.stdin!.write(`CREATE_REPLICATION_SLOT ${slot} LOGICAL pgoutput EXPORT_SNAPSHOT;\n\\echo ${marker}\n`);
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), waitMs)));
  const text = await Promise.race([ready, exited, waited]).finally(() => clearTimeout(timer));
  if (text === "timeout") {
    const blockers = await runSql(target, conn, BLOCKERS_SQL, what).catch(() => "");
    // The walsender ends with its session; a slot still being created is ephemeral and goes with it.
    await runSql(target, conn, terminateCreatorSql(slot), what).catch(() => "");
    psql.stdin!.end();
    await Promise.race([w.done, new Promise((r) => setTimeout(r, 5_000))]);
    if (psql.exitCode === null && psql.signalCode === null) psql.kill("SIGKILL");
    throw new CannotRunError(
      `${what}: waited ${Math.round(waitMs / 1000)} s for transactions that were already running to end ` +
        `(PostgreSQL starts a change stream only once they have): ${formatBlockers(blockers)}. Commit or roll ` +
        "them back (`SELECT pg_terminate_backend(<pid>)` ends a session), or raise `rollback.slotWaitSeconds`",
    );
  }
  const row = text.split("\n").find((l) => l.startsWith(`${slot}|`));
  const [, startLsn, snapshot] = row?.split("|") ?? [];
  const end = async () => {
    psql.stdin!.end();
    await w.done;
  };
  if (!startLsn || !snapshot) {
    await end();
    await dropReleaseSlot(target, conn, slot).catch(() => {});
    throw new CannotRunError(`${what}: unexpected answer from the server: ${text.slice(0, 200)}`);
  }
  return {
    slot,
    startLsn,
    snapshot,
    close: end,
    abort: async () => {
      await end();
      await dropReleaseSlot(target, conn, slot);
    },
  };
}

/**
 * Drops `slot` (ending a session that still holds it); false when there was none. When no slot of
 * ours is left in the database, the publication goes too: while it exists, PostgreSQL refuses UPDATE
 * and DELETE on tables without a primary key or replica identity (it publishes them).
 */
export async function dropReleaseSlot(target: RunTarget, conn: Conn, slot: string): Promise<boolean> {
  checkSlot(slot);
  const name = literal(slot);
  const out = await runSql(
    target,
    conn,
    `SELECT 'HAD:' || count(*) FROM pg_replication_slots WHERE slot_name = ${name};
DO $$
DECLARE pid int; tries int := 0;
BEGIN
  LOOP
    SELECT active_pid INTO pid FROM pg_replication_slots WHERE slot_name = ${name};
    EXIT WHEN NOT FOUND;
    IF pid IS NULL THEN
      PERFORM pg_drop_replication_slot(${name});
      EXIT;
    END IF;
    tries := tries + 1;
    IF tries > 10 THEN
      RAISE EXCEPTION 'slot % is held by process % that does not end', ${name}, pid;
    END IF;
    PERFORM pg_terminate_backend(pid, 5000);
  END LOOP;
  IF NOT EXISTS (SELECT 1 FROM pg_replication_slots
      WHERE slot_name LIKE 'safe\\_deploy\\_%' AND database = current_database()) THEN
    DROP PUBLICATION IF EXISTS ${PUBLICATION};
  END IF;
END $$;`,
    `dropping the change stream slot "${slot}"`,
  );
  return outLine(out, "HAD:") !== "0";
}

/** One of this tool's slots on a server, with the WAL it holds back. */
export interface SlotInfo {
  slot: string;
  database: string;
  active: boolean;
  /** WAL the server keeps for this slot (current WAL position minus the slot's restart_lsn). */
  retainedBytes: number;
}

/** Every `safe_deploy_` slot on the server of `conn` (other slots are not ours and not listed). */
export async function listReleaseSlots(target: RunTarget, conn: Conn): Promise<SlotInfo[]> {
  const out = await runSql(
    target,
    conn,
    `SELECT 'SLOTS:' || coalesce(json_agg(json_build_object('slot', slot_name, 'database', database,
    'active', active, 'retainedBytes', coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint)
    ORDER BY slot_name), '[]')
  FROM pg_replication_slots WHERE slot_name LIKE 'safe\\_deploy\\_%';`,
    "listing the change stream slots",
  );
  return JSON.parse(outLine(out, "SLOTS:") || "[]") as SlotInfo[];
}
