import { readdir, readFile, stat, unlink } from "node:fs/promises";
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

/** A leftover `.NAME.tmp-XXXX` (or `.NAME.json.tmp-XXXX`) of a backup or manifest write that never finished. */
export interface TempFile {
  file: string;
  name: string;
  createdAt: string;
  modifiedAt: string;
}

const TEMP = /^\.(.+?)(?:\.json)?\.tmp-[0-9a-f]+$/;

/** Lists the temp files `createBackup` leaves behind when killed (names as in create.ts), by name. */
export async function listTempFiles(dir: string): Promise<TempFile[]> {
  const out: TempFile[] = [];
  for (const name of await readdir(dir)) {
    const p = parseBackupFileName(TEMP.exec(name)?.[1] ?? "");
    if (!p) continue;
    const file = join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (st?.isFile())
      out.push({ file, name, createdAt: p.createdAt.toISOString(), modifiedAt: st.mtime.toISOString() });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Retention settings. */
export interface RetentionPolicy {
  keepDays: number;
  keepMin: number;
}

/** Nothing unfinished is touched within a day: it may be a dump or a copy still being written. */
const GRACE_MS = 86_400_000;

/** Age reference of a file: the later of its name's stamp and its mtime (a copy in progress is fresh). */
const lastTouched = (e: { createdAt: string; modifiedAt?: string }) =>
  Math.max(Date.parse(e.createdAt), e.modifiedAt ? Date.parse(e.modifiedAt) : -Infinity);

/**
 * Which backups retention removes: older than `keepDays`, but never the newest, never a `safety`
 * backup, and never so many that fewer than `keepMin` (non-safety) backups remain. Only backups with
 * a manifest count (`backup verify` rejects the others): manifest-less ones are listed in `unusable`
 * and removed only when older than both `keepDays` and a day, and never when labelled `safety`. Pure.
 */
export function choosePrune<
  T extends { createdAt: string; label?: string; hasManifest?: boolean; modifiedAt?: string },
>(entries: T[], policy: RetentionPolicy, now: Date): { keep: T[]; remove: T[]; unusable: T[] } {
  const cutoff = now.getTime() - policy.keepDays * 86_400_000;
  const usable = entries
    .filter((e) => e.hasManifest !== false)
    // Newest first; two stamped in the same second keep the order they came in (listBackups': by name), so
    // which of them counts as the newest is decided, not left to an inconsistent comparator.
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  const unusable = entries.filter((e) => e.hasManifest === false);
  const keep: T[] = [];
  const remove: T[] = [];
  let kept = 0;
  usable.forEach((e, i) => {
    const protectedEntry = i === 0 || e.label === "safety";
    const young = Date.parse(e.createdAt) >= cutoff;
    if (protectedEntry || young || kept < policy.keepMin) {
      keep.push(e);
      if (e.label !== "safety") kept++;
    } else remove.push(e);
  });
  const oldEnough = Math.min(cutoff, now.getTime() - GRACE_MS);
  for (const e of unusable) if (e.label !== "safety" && lastTouched(e) < oldEnough) remove.push(e);
  return { keep, remove, unusable };
}

/** Temp files untouched for over a day: left by a killed dump, never to be finished. Pure. */
export function staleTempFiles<T extends { createdAt: string; modifiedAt: string }>(
  temps: T[],
  now: Date,
): T[] {
  return temps.filter((t) => lastTouched(t) < now.getTime() - GRACE_MS);
}

/** What `pruneBackups` did (or would do with `dryRun`). */
export interface PruneResult {
  /** Backups with a manifest that stay. */
  keep: BackupEntry[];
  /** Backups removed: past retention, or manifest-less and old. */
  remove: BackupEntry[];
  /** Every backup file without a manifest, removed or not. */
  unusable: BackupEntry[];
  /** Temp files older than a day, removed. */
  staleTemp: TempFile[];
}

/** Applies retention to `dir`; with `dryRun` only reports. Returns what was (or would be) removed. */
export async function pruneBackups(
  dir: string,
  policy: RetentionPolicy,
  o: { dryRun?: boolean; now?: Date } = {},
): Promise<PruneResult> {
  if (!Number.isFinite(policy.keepDays) || policy.keepDays < 0)
    throw new ConfigError("`--keep-days` must be a number >= 0");
  if (!Number.isInteger(policy.keepMin) || policy.keepMin < 1)
    throw new ConfigError("`--keep-min` must be an integer >= 1");
  const now = o.now ?? new Date();
  const entries = await Promise.all(
    (await listBackups(dir)).map(async (e) =>
      // A file that vanished meanwhile counts as just touched, so it is left alone.
      e.hasManifest
        ? e
        : { ...e, modifiedAt: ((await stat(e.file).catch(() => undefined))?.mtime ?? now).toISOString() },
    ),
  );
  const r = choosePrune(entries, policy, now);
  const staleTemp = staleTempFiles(await listTempFiles(dir), now);
  if (!o.dryRun) {
    for (const e of r.remove) {
      await unlink(e.file);
      await unlink(manifestPath(e.file)).catch(() => {});
    }
    for (const t of staleTemp) await unlink(t.file).catch(() => {});
  }
  return { ...r, staleTemp };
}
