import { spawn } from "node:child_process";
import { access, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Client } from "pg";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { redact } from "../log/redact";
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

/** Connects, or throws CannotRunError (exit 3) with the URL's password masked. */
export async function connect(databaseUrl: string, applicationName = "safe-deploy"): Promise<Client> {
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
      `the database does not answer (${redact(databaseUrl)}): ${redact((e as Error).message, [databaseUrl])}; check --database-url / DATABASE_URL and that the server is up`,
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
  let cmd: string | undefined;
  try {
    cmd = toolCommand(opts.tool, opts.action, { dir: opts.dir, target: opts.target, custom: opts.custom });
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const client = await connect(opts.databaseUrl, "safe-deploy migrate");
  try {
    const mutating = opts.action === "up" || opts.action === "down";
    if (mutating) await acquireMigrateLock(client, opts.lockWaitSeconds);
    const before = await schemaVersion(client, opts.tool);
    if (!cmd) {
      // node-pg-migrate has no read-only verbs: answer from its table and the directory.
      const applied = await appliedNodePgMigrate(client);
      const files = await migrationFiles(join(cwd, opts.dir));
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
      }
      return { before, after: before, output };
    }
    const countsBefore: RowCounts | undefined =
      opts.integrity && mutating ? await countRows(client) : undefined;
    log(
      `migrate ${opts.action}${opts.target ? " " + opts.target : ""} with ${opts.tool}: from ${before ?? "(none)"}`,
    );
    const { code, output } = await runShell(cmd, { cwd, env, secrets: [opts.databaseUrl] });
    const after = await schemaVersion(client, opts.tool);
    if (code !== 0)
      throw new CheckFailedError(
        `${opts.tool} ${opts.action} failed (exit ${code}); schema version before ${before ?? "(none)"}, now ${after ?? "(none)"}:\n${output.trim()}`,
      );
    log(`migrate ${opts.action}: now at ${after ?? "(none)"}`);
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
