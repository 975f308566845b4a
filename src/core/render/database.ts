// Issue 17: migrations against an external database (Supabase) need a direct connection.
import { ConfigError } from "../errors";

/**
 * Whether a URL goes through a transaction-mode pooler (port 6543, Supabase's pgbouncer/Supavisor; or a
 * `*.pooler.supabase.com` host on any port but 5432, its session mode), where migrations' session state
 * (advisory locks, SET, prepared statements) breaks.
 */
export function isPooledUrl(url: string): boolean {
  try {
    const u = new URL(url);
    const pooler = /(^|\.)pooler\.supabase\.com$/i.test(u.hostname);
    return u.port === "6543" || (pooler && !["", "5432"].includes(u.port));
  } catch {
    return false;
  }
}

/**
 * The URL migrations and the pre-deploy backup use: `migrationDatabaseUrl` when set, else
 * `databaseUrl`; a pooled one is refused with the key that fixes it. Messages never hold the URL.
 */
export function directDatabaseUrl(databaseUrl: string, migrationDatabaseUrl?: string): string {
  if (migrationDatabaseUrl) {
    if (isPooledUrl(migrationDatabaseUrl)) {
      throw new ConfigError(
        "`migrationDatabaseUrl` goes through a transaction pooler (port 6543 or pooler.supabase.com), which cannot run migrations: set it to the direct connection (Supabase: Project Settings → Database → Direct connection, port 5432)",
      );
    }
    return migrationDatabaseUrl;
  }
  if (isPooledUrl(databaseUrl)) {
    throw new ConfigError(
      "`databaseUrl` goes through a transaction pooler (port 6543 or pooler.supabase.com), which cannot run migrations or pg_dump: set the direct URL with `pulumi config set --secret migrationDatabaseUrl postgres://...:5432/...` (the app keeps the pooled one)",
    );
  }
  return databaseUrl;
}
