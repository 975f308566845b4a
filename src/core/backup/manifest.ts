import type { Compression } from "./names";

/** The JSON manifest written beside each backup as `NAME.json` (README, "Command line"). */
export interface Manifest {
  /** Manifest format version. */
  version: 1;
  file: string;
  sha256: string;
  sizeBytes: number;
  createdAt: string;
  database: string;
  serverVersion: string;
  serverVersionNum: number;
  pgDumpVersion: string;
  /** pg_dump archive format: always "custom" (-Fc, internal compression off). */
  format: "custom";
  compression: Compression;
  label?: string;
  /** Exact row count of every table, by `schema.table`, from the same snapshot as the dump. */
  rowCounts: Record<string, number>;
  encryption?: { algorithm: "aes-256-gcm" };
  /** Content checksum of every table, by `schema.table`, from the same snapshot (older backups lack it). */
  tableChecksums?: Record<string, string>;
  /**
   * The release's change stream (issue 20): the logical slot created with the snapshot this dump was
   * taken from, and its consistent point. The dump holds every write committed before `startLsn`, the
   * slot every one after, so a rollback with restore can replay them. Absent when the stream was off.
   */
  changes?: { slot: string; startLsn: string };
}

/** Path of the manifest that belongs to `file`. */
export function manifestPath(file: string): string {
  return `${file}.json`;
}
