/** Compression applied to the pg_dump custom-format archive. */
export type Compression = "zstd" | "gzip" | "none";

/** File extension per compression: `.pgdump` is pg_dump's custom format (-Fc), then the compressor's. */
export const EXTENSIONS: Record<Compression, string> = {
  zstd: ".pgdump.zst",
  gzip: ".pgdump.gz",
  none: ".pgdump",
};

const LABEL = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** Throws unless `label` is safe inside a file name (lowercase letters, digits, dashes). */
export function checkLabel(label: string): string {
  if (!LABEL.test(label)) {
    throw new Error(`\`--label\` "${label}" must be 1-40 lowercase letters, digits or dashes`);
  }
  return label;
}

/** `backup_YYYYMMDD_HHMMSS[_label]` + extension, in UTC. */
export function backupFileName(when: Date, compression: Compression, label?: string): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const stamp =
    `${when.getUTCFullYear()}${p(when.getUTCMonth() + 1)}${p(when.getUTCDate())}_` +
    `${p(when.getUTCHours())}${p(when.getUTCMinutes())}${p(when.getUTCSeconds())}`;
  return `backup_${stamp}${label ? `_${checkLabel(label)}` : ""}${EXTENSIONS[compression]}`;
}

/** What a backup file's name says, or undefined when it is not one of ours. */
export interface ParsedName {
  createdAt: Date;
  label?: string;
  compression: Compression;
}

/** Parses a name made by `backupFileName` (the manifest stays the source of truth). */
export function parseBackupFileName(name: string): ParsedName | undefined {
  const m =
    /^backup_(\d{4})(\d\d)(\d\d)_(\d\d)(\d\d)(\d\d)(?:_([a-z0-9][a-z0-9-]*))?\.pgdump(\.zst|\.gz)?$/.exec(
      name,
    );
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, label, ext] = m;
  return {
    createdAt: new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +s)),
    label,
    compression: ext === ".zst" ? "zstd" : ext === ".gz" ? "gzip" : "none",
  };
}
