import type { Conn, RunTarget } from "../backup/runner";

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

/** Checks wal_level, the role's rights, free slots and tables without replica identity. */
export async function logicalReadiness(target: RunTarget, conn: Conn): Promise<Readiness> {
  void target;
  void conn;
  throw new Error("not yet");
}
