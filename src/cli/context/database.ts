// The stack's database as the CLI reaches it: locally, through its host port, or by `docker exec` (also
// over ssh://), and the schema version read there.
import type { StackConfig } from "../../config";
import { urlHost } from "../../core/address";
import { parseDatabaseUrl, type RunTarget } from "../../core/backup/runner";
import { runSql } from "../../core/backup/session";
import { versionQuery } from "../../core/migrations/presets";
import type { StackSecrets } from "./config";

/** Where and how the tool reaches the stack's database. */
export interface DatabaseTarget {
  url: string;
  target: RunTarget;
  /** For messages: "postgres on 127.0.0.1:55432" or "container app-db on ssh://...". */
  where: string;
}

/**
 * The database as the CLI reaches it: an external URL; a managed container through its host port; or,
 * when the backups run in the container (a remote Docker host), `docker exec` into the container the
 * stack's `containers` output names. Undefined before the first deploy created the container.
 */
export function databaseTarget(
  config: StackConfig,
  secrets: StackSecrets,
  containers: Record<string, string> | undefined,
): DatabaseTarget | undefined {
  const db = config.database;
  if (db.mode === "external") {
    if (!secrets.databaseUrl) return undefined;
    const u = parseDatabaseUrl(secrets.databaseUrl);
    return {
      url: secrets.databaseUrl,
      target: { runIn: "local" },
      where: `${u.host}/${u.database}`,
    };
  }
  const pw = encodeURIComponent(secrets.dbPassword ?? "");
  const user = encodeURIComponent(db.user);
  if (config.backup.runIn === "container") {
    const name = containers?.database;
    if (!name) return undefined;
    return {
      url: `postgres://${user}:${pw}@127.0.0.1:5432/${db.name}`,
      target: { runIn: "container", container: name, dockerHost: config.docker.host },
      where: `container ${name} on ${config.docker.host}`,
    };
  }
  const host = urlHost(db.bindAddress);
  return {
    url: `postgres://${user}:${pw}@${host}:${db.hostPort}/${db.name}`,
    target: { runIn: "local" },
    where: `${host}:${db.hostPort}/${db.name}`,
  };
}

/** The latest applied migration of the stack's tool, read with psql where the database is reached. */
export async function readSchemaVersion(
  db: DatabaseTarget,
  config: StackConfig,
): Promise<string | undefined> {
  const q = versionQuery(config.migrations.tool);
  if (!q) return undefined;
  const conn = parseDatabaseUrl(db.url);
  const exists = await runSql(
    db.target,
    conn,
    `SELECT to_regclass('${q.table}') IS NOT NULL;`,
    "reading the schema version",
  );
  if (exists.trim() !== "t") return undefined;
  return (await runSql(db.target, conn, `${q.sql};`, "reading the schema version")).trim() || undefined;
}
