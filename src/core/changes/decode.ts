import type { Conn, RunTarget } from "../backup/runner";

/** A column of a relation as the stream describes it. */
export interface StreamColumn {
  name: string;
  /** Part of the replica identity (the key updates and deletes are matched by). */
  key: boolean;
  typeOid: number;
}

/** A relation as the stream describes it (its definition on the live database when the change was written). */
export interface StreamRelation {
  schema: string;
  name: string;
  columns: StreamColumn[];
  /** 'd' default (primary key), 'f' full, 'i' index, 'n' nothing. */
  replicaIdentity: string;
}

/** A row image: column name → the value's text form (null for NULL); unchanged TOAST values are absent. */
export type Row = Record<string, string | null>;

/** One row change of a committed transaction. */
export type Change =
  | { kind: "insert"; relation: StreamRelation; row: Row }
  | { kind: "update"; relation: StreamRelation; key: Row; row: Row }
  | { kind: "delete"; relation: StreamRelation; key: Row }
  | { kind: "truncate"; relations: StreamRelation[]; cascade: boolean; restartIdentity: boolean };

/** One committed transaction of the stream, in commit order. */
export interface StreamTransaction {
  xid: number;
  /** LSN of its commit record. */
  commitLsn: string;
  /** LSN just past it: peek up to here again and it is included. */
  endLsn: string;
  commitTime: Date;
  changes: Change[];
}

/** Options of `readChanges`. */
export interface ReadOptions {
  target: RunTarget;
  /** The database holding the slot. */
  conn: Conn;
  slot: string;
  /** Stop at this LSN (default: the WAL position when reading starts). */
  uptoLsn?: string;
}

/**
 * Peeks (never consumes) the slot's committed transactions as pgoutput through SQL, so it works
 * wherever psql runs (locally or `docker exec`), decoded by pg-logical-replication's parser.
 */
export async function* readChanges(o: ReadOptions): AsyncGenerator<StreamTransaction> {
  void o;
  yield* [];
  throw new Error("not yet");
}
