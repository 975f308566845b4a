import { readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "../errors";
import { manifestPath, type Manifest } from "./manifest";
import { parseBackupFileName, type Compression } from "./names";

/** One backup found in a directory. */
export interface BackupEntry {
  file: string;
  name: string;
  createdAt: string;
  label?: string;
  compression: Compression;
  sizeBytes?: number;
  sha256?: string;
  database?: string;
  hasManifest: boolean;
}

/** Lists the backups in `dir`, newest first (temp files and strangers ignored). */
export async function listBackups(dir: string): Promise<BackupEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new ConfigError(`backup directory ${dir} does not exist (check \`--dir\`)`);
  }
  const out: BackupEntry[] = [];
  for (const name of names) {
    const p = parseBackupFileName(name);
    if (!p) continue;
    const file = join(dir, name);
    let m: Manifest | undefined;
    try {
      m = JSON.parse(await readFile(manifestPath(file), "utf8"));
    } catch {
      m = undefined;
    }
    out.push({
      file,
      name,
      createdAt: m?.createdAt ?? p.createdAt.toISOString(),
      label: m?.label ?? p.label,
      compression: p.compression,
      sizeBytes: m?.sizeBytes,
      sha256: m?.sha256,
      database: m?.database,
      hasManifest: !!m,
    });
  }
  return out.sort((a, b) =>
    a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.name < b.name ? 1 : -1,
  );
}

/** Retention settings. */
export interface RetentionPolicy {
  keepDays: number;
  keepMin: number;
}

/**
 * Which backups retention removes: older than `keepDays`, but never the newest, never a `safety`
 * backup, and never so many that fewer than `keepMin` (non-safety) backups remain. Pure.
 */
export function choosePrune<T extends { createdAt: string; label?: string }>(
  entries: T[],
  policy: RetentionPolicy,
  now: Date,
): { keep: T[]; remove: T[] } {
  const sorted = [...entries].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  const cutoff = now.getTime() - policy.keepDays * 86_400_000;
  const keep: T[] = [];
  const remove: T[] = [];
  let kept = 0;
  sorted.forEach((e, i) => {
    const protectedEntry = i === 0 || e.label === "safety";
    const young = Date.parse(e.createdAt) >= cutoff;
    if (protectedEntry || young || kept < policy.keepMin) {
      keep.push(e);
      if (e.label !== "safety") kept++;
    } else remove.push(e);
  });
  return { keep, remove };
}

/** Applies retention to `dir`; with `dryRun` only reports. Returns what was (or would be) removed. */
export async function pruneBackups(
  dir: string,
  policy: RetentionPolicy,
  o: { dryRun?: boolean; now?: Date } = {},
): Promise<{ keep: BackupEntry[]; remove: BackupEntry[] }> {
  if (!Number.isFinite(policy.keepDays) || policy.keepDays < 0)
    throw new ConfigError("`--keep-days` must be a number >= 0");
  if (!Number.isInteger(policy.keepMin) || policy.keepMin < 1)
    throw new ConfigError("`--keep-min` must be an integer >= 1");
  const r = choosePrune(await listBackups(dir), policy, o.now ?? new Date());
  if (!o.dryRun) {
    for (const e of r.remove) {
      await unlink(e.file);
      await unlink(manifestPath(e.file)).catch(() => {});
    }
  }
  return r;
}
