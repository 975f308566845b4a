import { stat } from "node:fs/promises";
import { ConfigError } from "../core/errors";

/**
 * Checks a FILE argument of `backup verify|restore` before any work: a missing file says "does not exist",
 * a directory says so and how to list its backups (both exit 2), rather than an ENOENT/EISDIR from deep inside.
 */
export async function checkBackupFile(file: string): Promise<void> {
  const s = await stat(file).catch(() => undefined);
  if (!s) throw new ConfigError(`backup file ${file} does not exist (check the FILE argument)`);
  if (s.isDirectory())
    throw new ConfigError(
      `${file} is a directory, not a backup file: pass one of its backups (\`safe-deploy backup list --dir ${file}\` lists them)`,
    );
  if (!s.isFile()) throw new ConfigError(`${file} is not a regular file: pass a backup file`);
}
