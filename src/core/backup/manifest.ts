import type { Compression } from "./names";

/** The JSON manifest written beside each backup as `NAME.json` (README, "Command line"). */
export interface Manifest {
  /**
   * Manifest format version. 2: `tableChecksums` are sha256 of each table's COPY data in the archive
   * (issue 18); 1: server-side sums of each row's text (TABLE_CHECKSUM_QUERY), still verified as such.
   */
  version: 1 | 2;
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
  /**
   * Content checksum of every table, by `schema.table`, from the same snapshot (older backups lack it).
   * Version 2: sha256 (hex) of the table's COPY data as pg_dump wrote it (TimeZone UTC), for every table
   * with a data block; version 1: `SUM1:SUM2` of every ordinary and partitioned table.
   */
  tableChecksums?: Record<string, string>;
  /**
   * Size in bytes of the uncompressed pg_dump archive (backups from 2026-12-06 on): a restore checks it
   * against the free disk space before decompressing to a temp file for `pg_restore -j2`.
   */
  archiveBytes?: number;
  /** Bytes of each table's data in the archive, by `schema.table` (with `archiveBytes`): whether `-j2` can pay off. */
  tableBytes?: Record<string, number>;
  /** Version 2: the archive's encoding, which a check re-dumps in (`pg_dump -E`) to compare the checksums. */
  encoding?: string;
  /** Version 2: set when the dump wrote bytea in `escape` form (the database's or role's setting), so a re-dump does too. */
  byteaOutput?: "escape";
  /**
   * The release's change stream (issue 20): the logical slot created with the snapshot this dump was
   * taken from, and its consistent point. The dump holds every write committed before `startLsn`, the
   * slot every one after, so a rollback with restore can replay them. Absent when the stream was off.
   */
  changes?: { slot: string; startLsn: string };
}

/** Whether `v` is a manifest version this code reads (a newer one is refused, not misread). */
export function knownManifestVersion(v: unknown): v is Manifest["version"] {
  return v === 1 || v === 2;
}

/** Path of the manifest that belongs to `file`. */
export function manifestPath(file: string): string {
  return `${file}.json`;
}
