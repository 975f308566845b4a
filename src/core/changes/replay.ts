import type { Conn, RunTarget } from "../backup/runner";

/** Options of `replayChanges`. */
export interface ReplayOptions {
  target: RunTarget;
  /** db holding the slot */
  live: Conn;
  slot: string;
  startLsn: string;
  /** restored db, old schema */
  into: Conn;
  /** Where the report of changes that do not map (tables absent in the old schema) is written. */
  reportDir: string;
  /**
   * Transaction ids whose changes are not replayed: the migration's own DML (a backfill), which the
   * old schema must not receive as if a user wrote it. `txid_current()` values (64-bit) or 32-bit xids.
   */
  excludeXids?: ReadonlyArray<number | string | bigint>;
  /** Called with the number of transactions applied so far. */
  onProgress?: (n: number) => void;
  /** Polled between transactions: a signal means stop cleanly (nothing half-applied). */
  interrupted?: () => NodeJS.Signals | undefined;
}

/** What a replay did. */
export interface ReplayResult {
  transactions: number;
  /** Row changes read from the stream (excluded ones not counted). */
  changes: number;
  /** Row changes applied to `into`. */
  applied: number;
  /** Row changes written to the report instead. */
  reported: number;
  /** Path of the JSON report (every unmapped row), when anything was reported. */
  reportJson?: string;
  /** Path of the SQL that re-inserts the reported rows on the new schema. */
  reportSql?: string;
  /** The stream was replayed up to here. */
  upToLsn: string;
  /** `schema.sequence` names set past the replayed rows. */
  sequencesAdvanced: string[];
}

/**
 * Replays the slot's committed changes since `startLsn` into `into` (restored, old schema), in commit
 * order, one source transaction per target transaction.
 */
export async function replayChanges(o: ReplayOptions): Promise<ReplayResult> {
  void o;
  throw new Error("not yet");
}
