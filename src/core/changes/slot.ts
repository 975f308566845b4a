import type { Conn, RunTarget } from "../backup/runner";

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
  void stack;
  void releaseId;
  throw new Error("not yet");
}

/**
 * Creates the logical slot `slot` (pgoutput) over a replication connection with EXPORT_SNAPSHOT and
 * keeps that session open, so `pg_dump --snapshot` dumps exactly the state at `startLsn`.
 */
export async function createReleaseSlot(target: RunTarget, conn: Conn, slot: string): Promise<ReleaseSlot> {
  void target;
  void conn;
  void slot;
  throw new Error("not yet");
}

/** Drops `slot` (ending a session that still holds it); false when there was none. */
export async function dropReleaseSlot(target: RunTarget, conn: Conn, slot: string): Promise<boolean> {
  void target;
  void conn;
  void slot;
  throw new Error("not yet");
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
  void target;
  void conn;
  throw new Error("not yet");
}
