// The backup engine: Pulumi-free functions the provider, the CLI and rollback share.
export { createBackup, type BackupResult, type CreateOptions } from "./create";
export { manifestPath, type Manifest } from "./manifest";
export { backupFileName, parseBackupFileName, EXTENSIONS, type Compression } from "./names";
export { parseDatabaseUrl, type RunTarget } from "./runner";
export { verifyBackup, readManifest, type VerifyResult } from "./verify";
export { restoreBackup, listSessions, describeSession, type RestoreResult, type DbSession } from "./restore";
export { listBackups, pruneBackups, choosePrune, type BackupEntry } from "./retention";
