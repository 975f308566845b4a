import type { Conn, RunTarget } from "../backup/runner";
import { runSql } from "../backup/session";
import { PUBLICATION } from "./slot";
import { NO_IDENTITY_SQL, outLine } from "./sql";

/** Whether a server and role can keep a release's change stream, and what to change if not. */
export interface Readiness {
  walLevel: string;
  /** The role may create replication slots (superuser or REPLICATION). */
  canReplicate: boolean;
  /** The publication exists, or the role may create it FOR ALL TABLES (superuser). */
  canPublish: boolean;
  /** `schema.table` of tables without primary key or replica identity. */
  tablesWithoutIdentity: string[];
  /** Each problem names its fix, e.g. RDS `rds.logical_replication = 1`; empty when ready. */
  problems: string[];
}

const READINESS_SQL = `SELECT 'READY:' || json_build_object(
  'walLevel', current_setting('wal_level'),
  'rds', current_setting('rds.logical_replication', true),
  'superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
  'replication', (SELECT rolreplication FROM pg_roles WHERE rolname = current_user),
  'publication', EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '${PUBLICATION}' AND puballtables),
  'maxSlots', current_setting('max_replication_slots')::int,
  'usedSlots', (SELECT count(*) FROM pg_replication_slots),
  'noIdentity', (${NO_IDENTITY_SQL})
)::text;`;

/** What the server answered (the input of `readinessProblems`). */
export interface ReadinessFacts {
  walLevel: string;
  rds: string | null;
  superuser: boolean;
  replication: boolean;
  publication: boolean;
  maxSlots: number;
  usedSlots: number;
  noIdentity: string[];
}

/** The problems of a server's answers, each with its fix (pure, so tests table-drive it). */
export function readinessProblems(r: ReadinessFacts, user: string): string[] {
  const problems: string[] = [];
  if (r.walLevel !== "logical") {
    problems.push(
      r.rds !== null
        ? `wal_level is ${r.walLevel}, not logical: set the parameter \`rds.logical_replication = 1\` in the instance's parameter group and reboot it`
        : `wal_level is ${r.walLevel}, not logical: set \`wal_level = logical\` (ALTER SYSTEM SET wal_level = logical, or -c wal_level=logical for a container) and restart the server`,
    );
  }
  if (!r.superuser && !r.replication) {
    problems.push(
      `role "${user}" may not create replication slots: \`ALTER ROLE "${user}" REPLICATION\` (RDS: \`GRANT rds_replication TO "${user}"\`)`,
    );
  }
  if (!r.publication && !r.superuser) {
    problems.push(
      `publication ${PUBLICATION} is missing and role "${user}" may not create it FOR ALL TABLES: run once as a superuser \`CREATE PUBLICATION ${PUBLICATION} FOR ALL TABLES\``,
    );
  }
  if (r.maxSlots - r.usedSlots < 1) {
    problems.push(
      `all ${r.maxSlots} replication slots are in use: raise \`max_replication_slots\` (restart) or drop unused slots`,
    );
  }
  if (r.noIdentity.length) {
    problems.push(
      `tables without primary key or replica identity: ${r.noIdentity.join(", ")}; while the publication exists PostgreSQL refuses UPDATE and DELETE on them, and they could not be replayed: add a primary key, or \`ALTER TABLE … REPLICA IDENTITY FULL\``,
    );
  }
  return problems;
}

/** Checks wal_level, the role's rights, free slots and tables without replica identity. */
export async function logicalReadiness(target: RunTarget, conn: Conn): Promise<Readiness> {
  const out = await runSql(target, conn, READINESS_SQL, "checking logical replication readiness");
  const r = JSON.parse(outLine(out, "READY:")) as ReadinessFacts;
  return {
    walLevel: r.walLevel,
    canReplicate: r.superuser || r.replication,
    canPublish: r.publication || r.superuser,
    tablesWithoutIdentity: r.noIdentity,
    problems: readinessProblems(r, conn.user),
  };
}
