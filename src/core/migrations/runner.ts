import { spawn } from "node:child_process";
import { access, readdir, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Client } from "pg";
import { parseDatabaseUrl } from "../backup/runner";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { redact, urlSecrets } from "../log/redact";
import { pgOptions } from "./command";
import { countRows, formatCountChanges, rowLosses, type RowCounts } from "./integrity";
import { toolCommand, versionQuery, type Action, type CustomCommands, type Tool } from "./presets";

/** Advisory lock key (two int4s) every safe-deploy migration run takes, so two runs never interleave. */
export const MIGRATE_LOCK: [number, number] = [0x5afe, 0xd391];

/** Options of one `migrate` run. */
export interface MigrateOptions {
  action: Action;
  /** N (a count) or REV (a migration name / revision) for up and down. */
  target?: string;
  tool: Tool;
  dir: string;
  workDir?: string;
  databaseUrl: string;
  custom?: Partial<CustomCommands>;
  lockTimeout?: string;
  statementTimeout?: string;
  /** How long a second run waits for the first to finish (default 60 s). */
  lockWaitSeconds?: number;
  /**
   * Re-runs after a `lock_timeout` cancel this many times (default 0), waiting 2 s more each time: a
   * short lock_timeout with retries beats a long wait that queues the live app behind the migration.
   * Only safe when the tool runs each attempt in a transaction (node-pg-migrate, Alembic on PostgreSQL).
   */
  lockRetries?: number;
  /** If set, this release's backup file must exist before anything runs. */
  backupFile?: string;
  integrity?: { criticalTables: string[]; maxRowLossPercent?: number };
  log?: (line: string) => void;
}

/** What a run did. */
export interface MigrateResult {
  before?: string;
  after?: string;
  output: string;
  rowChanges?: string[];
}

/**
 * Connects, or throws CannotRunError (exit 3) with the URL's password masked; a malformed URL is a
 * ConfigError (exit 2) saying how to write it.
 */
export async function connect(databaseUrl: string, applicationName = "safe-deploy"): Promise<Client> {
  parseDatabaseUrl(databaseUrl);
  const client = new Client({
    connectionString: databaseUrl,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
  });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return client;
  } catch (e) {
    await client.end().catch(() => {});
    throw new CannotRunError(
      `the database does not answer (${redact(databaseUrl)}): ${redact((e as Error).message, urlSecrets(databaseUrl))}; check --database-url / DATABASE_URL and that the server is up`,
    );
  }
}

/**
 * Takes the migration advisory lock on `client`'s session, waiting up to `waitSeconds`; then fails
 * naming the session that holds it, so an operator can tell a stuck deploy from a running one.
 */
export async function acquireMigrateLock(client: Client, waitSeconds = 60): Promise<void> {
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    const { rows } = await client.query<{ ok: boolean }>(
      "SELECT pg_try_advisory_lock($1, $2) AS ok",
      MIGRATE_LOCK,
    );
    if (rows[0].ok) return;
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const { rows } = await client.query<{ pid: number; application_name: string; since: string }>(
    `SELECT a.pid, a.application_name, a.backend_start::text AS since FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2 AND l.granted`,
    MIGRATE_LOCK,
  );
  const h = rows[0];
  const holder = h
    ? `pid ${h.pid} (application_name "${h.application_name}", connected since ${h.since})`
    : "another session";
  throw new CannotRunError(
    `another migration run holds the migration lock: ${holder}; waited ${waitSeconds} s. Wait for it to finish, or end it with SELECT pg_terminate_backend(${h?.pid ?? "PID"}) if it is stuck`,
  );
}

/** The tool's latest applied migration, or undefined (no table yet, or a custom tool). */
export async function schemaVersion(client: Client, tool: Tool): Promise<string | undefined> {
  const q = versionQuery(tool);
  if (!q) return undefined;
  const exists = await client.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [q.table]);
  if (!exists.rows[0].t) return undefined;
  const { rows } = await client.query<{ version: string }>(q.sql);
  return rows[0]?.version;
}

/** Runs a shell command with DATABASE_URL only in its environment; output comes back redacted. */
export async function runShell(
  cmd: string,
  opts: { cwd: string; env: Record<string, string>; secrets: string[] },
): Promise<{ code: number; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn("/bin/sh", ["-c", cmd], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (code) => resolveRun({ code: code ?? 1, output: redact(output, opts.secrets) }));
  });
}

/**
 * Indexes left INVALID, typically by CREATE INDEX CONCURRENTLY cut short by a timeout: they cost
 * writes, serve no reads, and block re-running the migration.
 */
export async function invalidIndexes(client: Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

/** Whether a tool's output says PostgreSQL cancelled a statement for `lock_timeout`. */
export function isLockTimeout(output: string): boolean {
  return /canceling statement due to lock timeout|\block timeout\b|LockNotAvailable/i.test(output);
}

/**
 * The resolved path of a migrations directory the tool reads (node-pg-migrate, Prisma) that is not a
 * directory, for an error naming the flag; undefined when it is fine. Alembic and custom commands
 * find their own scripts.
 */
export async function missingMigrationsDirectory(
  tool: Tool,
  workDir: string | undefined,
  dir: string,
): Promise<string | undefined> {
  if (tool !== "node-pg-migrate" && tool !== "prisma") return undefined;
  const path = resolve(workDir ?? ".", dir);
  return (await stat(path).catch(() => undefined))?.isDirectory() ? undefined : path;
}

/** Migration names found in a node-pg-migrate directory, in the order the tool runs them. */
export async function migrationFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names
    .filter((n) => /\.(sql|js|cjs|mjs|ts)$/.test(n) && !n.startsWith("."))
    .map((n) => n.replace(/\.[^.]+$/, ""))
    .sort();
}

async function appliedNodePgMigrate(client: Client): Promise<Array<{ name: string; run_on: string }>> {
  const t = await client.query<{ t: string | null }>("SELECT to_regclass('pgmigrations')::text AS t");
  if (!t.rows[0].t) return [];
  return (
    await client.query<{ name: string; run_on: string }>(
      "SELECT name, run_on::text FROM pgmigrations ORDER BY run_on, id",
    )
  ).rows;
}

/**
 * node-pg-migrate's `up NAME` runs only that file; safe-deploy's `up REV` means "up to and including
 * REV" and `down REV` "down until REV is the latest", as in Alembic, so REV becomes a count.
 */
async function revisionToCount(
  client: Client,
  dir: string,
  action: "up" | "down",
  rev: string,
): Promise<number> {
  const applied = (await appliedNodePgMigrate(client)).map((a) => a.name);
  if (action === "down") {
    const i = applied.indexOf(rev);
    if (i < 0)
      throw new ConfigError(
        `\`down ${rev}\`: no applied migration is named ${rev} (see \`safe-deploy migrate history\`)`,
      );
    return applied.length - 1 - i;
  }
  const pending = (await migrationFiles(dir)).filter((f) => !applied.includes(f));
  const i = pending.indexOf(rev);
  if (i < 0) {
    if (applied.includes(rev)) return 0;
    throw new ConfigError(
      `\`up ${rev}\`: no migration named ${rev} in ${dir} (see \`safe-deploy migrate history\`)`,
    );
  }
  return i + 1;
}

/**
 * `safe-deploy migrate ACTION`: checks the database answers and the backup exists, takes the advisory
 * lock, records the version before and after, and runs the tool with lock_timeout/statement_timeout
 * in PGOPTIONS. A failed tool throws CheckFailedError (exit 1) with its redacted output.
 */
export async function migrate(opts: MigrateOptions): Promise<MigrateResult> {
  const log = opts.log ?? (() => {});
  const cwd = resolve(opts.workDir ?? ".");
  if (opts.backupFile)
    await access(opts.backupFile).catch(() => {
      throw new CheckFailedError(
        `this release's backup ${opts.backupFile} does not exist; take it first (\`safe-deploy backup create\`)`,
      );
    });
  const env = {
    DATABASE_URL: opts.databaseUrl,
    PGOPTIONS: pgOptions(opts.lockTimeout, opts.statementTimeout),
    PGAPPNAME: "safe-deploy migrate tool",
  };
  const client = await connect(opts.databaseUrl, "safe-deploy migrate");
  try {
    const mutating = opts.action === "up" || opts.action === "down";
    if (mutating) await acquireMigrateLock(client, opts.lockWaitSeconds);
    const before = await schemaVersion(client, opts.tool);
    let target = opts.target;
    if (opts.tool === "node-pg-migrate" && target && !/^\d+$/.test(target) && mutating)
      target = String(await revisionToCount(client, resolve(cwd, opts.dir), opts.action as "up", target));
    // node-pg-migrate reads `up 0` as "all": nothing to do must not run anything.
    if (mutating && target === "0") return { before, after: before, output: "nothing to do" };
    let cmd: string | undefined;
    try {
      cmd = toolCommand(opts.tool, opts.action, { dir: opts.dir, target, custom: opts.custom });
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
    if (!cmd) {
      // node-pg-migrate has no read-only verbs: answer from its table and the directory.
      const applied = await appliedNodePgMigrate(client);
      const files = await migrationFiles(resolve(cwd, opts.dir));
      const done = new Set(applied.map((a) => a.name));
      const pending = files.filter((f) => !done.has(f));
      let output: string;
      if (opts.action === "current") output = before ?? "(no migration applied)";
      else if (opts.action === "history")
        output = [
          ...applied.map((a) => `${a.name}  applied ${a.run_on}`),
          ...pending.map((p) => `${p}  pending`),
        ].join("\n");
      else {
        const unknown = applied.filter((a) => !files.includes(a.name)).map((a) => a.name);
        output = `${pending.length} pending${pending.length ? ": " + pending.join(", ") : ""}`;
        if (unknown.length) output += `\napplied but missing from ${opts.dir}: ${unknown.join(", ")}`;
        const invalid = await invalidIndexes(client);
        if (invalid.length) output += `\ninvalid indexes: ${invalid.join(", ")}`;
        if (unknown.length || invalid.length)
          throw new CheckFailedError(
            `${output}\nfix: restore the missing migration files; DROP INDEX CONCURRENTLY each invalid index and re-run its migration`,
          );
      }
      return { before, after: before, output };
    }
    const countsBefore: RowCounts | undefined =
      opts.integrity && mutating ? await countRows(client) : undefined;
    log(
      `migrate ${opts.action}${opts.target ? " " + opts.target : ""} with ${opts.tool}: from ${before ?? "(none)"}`,
    );
    const secrets = urlSecrets(opts.databaseUrl);
    let { code, output } = await runShell(cmd, { cwd, env, secrets });
    for (
      let attempt = 1;
      code !== 0 && attempt <= (opts.lockRetries ?? 0) && isLockTimeout(output);
      attempt++
    ) {
      log(
        `migrate ${opts.action}: lock_timeout hit, retry ${attempt}/${opts.lockRetries} in ${2 * attempt} s`,
      );
      await new Promise((r) => setTimeout(r, 2000 * attempt));
      ({ code, output } = await runShell(cmd, { cwd, env, secrets }));
    }
    const after = await schemaVersion(client, opts.tool);
    if (code !== 0)
      throw new CheckFailedError(
        `${opts.tool} ${opts.action} failed (exit ${code}); schema version before ${before ?? "(none)"}, now ${after ?? "(none)"}:\n${output.trim()}`,
      );
    log(`migrate ${opts.action}: now at ${after ?? "(none)"}`);
    const invalid = await invalidIndexes(client);
    if (invalid.length)
      throw new CheckFailedError(
        `${opts.tool} ${opts.action} left invalid indexes: ${invalid.join(", ")} (a CONCURRENTLY build was cut short); DROP INDEX CONCURRENTLY them and re-run`,
      );
    const result: MigrateResult = { before, after, output };
    if (countsBefore && opts.integrity) {
      const countsAfter = await countRows(client);
      result.rowChanges = formatCountChanges(countsBefore, countsAfter);
      const losses = rowLosses(
        countsBefore,
        countsAfter,
        opts.integrity.criticalTables,
        opts.integrity.maxRowLossPercent,
      );
      if (losses.length)
        throw new CheckFailedError(
          `integrity check failed: ${losses.map((l) => `${l.table} lost ${l.lossPercent.toFixed(1)}% of its rows (${l.before} -> ${l.after ?? "dropped"})`).join("; ")}; limit is ${opts.integrity.maxRowLossPercent ?? 0}% (integrity.maxRowLossPercent). Restore the pre-deploy backup`,
        );
    }
    return result;
  } finally {
    await client.end().catch(() => {});
  }
}
