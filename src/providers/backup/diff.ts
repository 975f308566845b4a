/** Inputs the provider compares (the state holds them minus `databaseUrl`). */
export interface BackupState {
  releaseKey?: string;
  dir?: string;
  label?: string;
  compression?: string;
  runIn?: string;
  container?: string;
  dockerHost?: string;
  retention?: unknown;
  s3?: unknown;
  changeStream?: boolean;
  slotWaitSeconds?: number;
  requireNoLoss?: boolean;
}

const SETTINGS = [
  "dir",
  "label",
  "compression",
  "runIn",
  "container",
  "dockerHost",
  "retention",
  "s3",
  "changeStream",
  "slotWaitSeconds",
  "requireNoLoss",
] as const;

/**
 * A new release key means a new release, so a new backup: a replacement, which gives the resource a new
 * id (the migration's trigger). Other settings only apply to the next backup: an update that keeps the
 * file. Pure, so it is table-tested.
 */
export function diffBackup(
  olds: BackupState,
  news: BackupState,
): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
  const replaces = olds.releaseKey !== news.releaseKey ? ["releaseKey"] : [];
  const changed = SETTINGS.filter((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null));
  return { changes: replaces.length > 0 || changed.length > 0, replaces, deleteBeforeReplace: false };
}
