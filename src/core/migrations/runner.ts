import { spawn } from "node:child_process";
import { access, readdir, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Client } from "pg";
import { parseDatabaseUrl } from "../backup/runner";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { redact, urlSecrets } from "../log/redact";
import { pgOptions } from "./command";
import { checksumEdits, checksumEditsMessage, syncChecksums } from "./checksums";
import { armRowGuard, disarmRowGuard, guardVerdict } from "./guard";
import { armMigrationMarker, disarmMigrationMarker } from "./marker";
import {
  countRows,
  formatCountChanges,
  rowLosses,
  unknownTables,
  unknownTablesMessage,
  type RowCounts,
} from "./integrity";
import { alembicHeads, alembicTarget, databaseAddress, headsIn, sqlalchemyUrl } from "./alembic";
import { toolCommand, versionQuery, type Action, type CustomCommands, type Tool } from "./presets";
import { checkToolTarget, claimedApplied, notMovedMessage } from "./target";

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
  /**
   * The variable the tool reads its URL from when not DATABASE_URL (`migrations.databaseUrlEnv`, e.g.
   * NEXT_PRIVATE_DATABASE_URL): set to the same URL as DATABASE_URL.
   */
  databaseUrlEnv?: string;
  /** The caller already checked that the tool connects to `databaseUrl` (rehearsal's later steps). */
  targetChecked?: boolean;
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
  // A session ended by the server (a migration terminating the others) is an error on the next query,
  // not an uncaught 'error' event that kills the process.
  client.on("error", () => {});
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
     WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2 AND l.granted
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
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
    child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
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

/** What to do when a tool's command is not found where it runs. */
const NPM_TOOL_HINT =
  "install it in `--work-dir` (`npm ci`; node_modules/.bin is searched before PATH), or pass the `--work-dir` where it is installed";
const INSTALL_HINT: Record<Tool, string> = {
  "node-pg-migrate": NPM_TOOL_HINT,
  prisma: NPM_TOOL_HINT,
  alembic: "install Alembic and the database driver where safe-deploy runs (`pip install alembic psycopg2`)",
  command: "check the command given with `--command` and the PATH it runs with",
};

/** Whether a tool's output says PostgreSQL cancelled a statement for `lock_timeout`. */
export function isLockTimeout(output: string): boolean {
  return /canceling statement due to lock timeout|\block timeout\b|LockNotAvailable/i.test(output);
}

/**
 * The migration a tool was running when it failed, read from its output: node-pg-migrate's
 * `### MIGRATION NAME (UP) ###`, Alembic's `Running upgrade A -> B` or the revision file in its
 * traceback, Prisma's `Migration name: NAME`. Undefined when the output does not say.
 */
export function failedMigration(tool: Tool, output: string): string | undefined {
  const last = (re: RegExp) => [...output.matchAll(re)].pop();
  if (tool === "node-pg-migrate") return last(/^### MIGRATION (\S+) \((?:UP|DOWN)\) ###$/gm)?.[1];
  if (tool === "alembic") {
    const step = last(/Running (?:upgrade|downgrade) (.*?) -> (\S+)/g); // `Running upgrade  -> a1` from base
    if (step) return step[2].replace(/,$/, "");
    return last(/File "[^"]*?([^"/]+\/[^"/]+\.py)", line \d+, in (?:upgrade|downgrade)\b/g)?.[1];
  }
  if (tool === "prisma")
    return (last(/Migration name: (\S+)/g) ?? last(/The `([^`]+)` migration started at/g))?.[1];
  return undefined;
}

/** A session that kept the migration tool waiting for a lock, described for an operator. */
export interface Blocker {
  pid: number;
  text: string;
}

/**
 * Sessions the migration tool's sessions (PGAPPNAME "safe-deploy migrate tool") are waiting on now,
 * with what each holds: sampled while the tool runs, because once lock_timeout cancels the tool the
 * wait, and with it pg_blocking_pids, is gone.
 */
export async function lockBlockers(client: Client): Promise<Blocker[]> {
  const { rows } = await client.query<{
    pid: number;
    app: string;
    state: string | null;
    xact_s: number | null;
    holds: string | null;
    wants: string | null;
  }>(
    `SELECT DISTINCT b.pid, b.application_name AS app, b.state,
       extract(epoch FROM now() - b.xact_start)::int AS xact_s,
       (SELECT string_agg(DISTINCT l.relation::regclass::text, ', ') FROM pg_locks l
         WHERE l.pid = b.pid AND l.locktype = 'relation' AND l.granted AND l.database = w.datid
           AND l.relation::regclass::text !~ '^(pg_|information_schema\\.)') AS holds,
       (SELECT l.mode || coalesce(' on ' || l.relation::regclass::text, CASE l.locktype WHEN 'virtualxid'
           THEN ' on an older transaction (CONCURRENTLY waits for every transaction open when it started)'
           ELSE ' (' || l.locktype || ')' END)
         FROM pg_locks l WHERE l.pid = w.pid AND NOT l.granted LIMIT 1) AS wants
     FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
     JOIN pg_stat_activity b ON b.pid = bp.pid
     WHERE w.application_name = 'safe-deploy migrate tool' AND w.datname = current_database()
       AND b.pid <> pg_backend_pid()`,
  );
  return rows.map((r) => ({
    pid: r.pid,
    text:
      `pid ${r.pid} (application_name "${r.app}", ${r.state ?? "unknown state"}` +
      `${r.xact_s !== null ? `, transaction open ${r.xact_s} s` : ""}` +
      `${r.holds ? `, holding locks on ${r.holds}` : ""})` +
      `${r.wants ? ` while the migration waited for ${r.wants}` : ""}`,
  }));
}

/** Samples {@link lockBlockers} every 200 ms until `stop.done`; returns one entry per blocking pid. */
async function watchBlockers(client: Client, stop: { done: boolean }): Promise<Blocker[]> {
  const seen = new Map<number, Blocker>();
  while (!stop.done) {
    for (const b of await lockBlockers(client).catch(() => [])) seen.set(b.pid, b);
    await new Promise((r) => setTimeout(r, 200));
  }
  return [...seen.values()];
}

/**
 * The lines after a failed run's output saying why it failed and what to do next: lock_timeout with
 * the sessions that blocked it, statement_timeout, INVALID indexes the run left behind.
 */
export function failureHints(f: {
  tool?: Tool;
  failed?: string;
  output: string;
  blockers: Blocker[];
  newInvalid: string[];
  lockTimeout?: string;
  statementTimeout?: string;
  attempts: number;
}): string[] {
  const out: string[] = [];
  if (isLockTimeout(f.output)) {
    const tries = f.attempts > 1 ? ` on each of ${f.attempts} attempts` : "";
    const who = f.blockers.length
      ? `blocked by ${f.blockers.map((b) => b.text).join("; ")}`
      : "the session holding the lock had gone before it could be named";
    const end = f.blockers.length
      ? `wait for it to finish, or end it with ${f.blockers.map((b) => `SELECT pg_terminate_backend(${b.pid})`).join("; ")}, then re-run`
      : "re-run";
    out.push(
      `lock_timeout (${f.lockTimeout ?? "5s"}) cancelled the migration${tries}: ${who}. ${f.newInvalid.length ? "" : "Nothing of that migration was kept; "}${end}. A session that keeps a transaction open blocks every ALTER: run migrations in a quiet window, or raise --lock-retries`,
    );
  }
  if (/canceling statement due to statement timeout/i.test(f.output))
    out.push(
      `statement_timeout (${f.statementTimeout ?? "15min"}) cancelled a statement: raise --statement-timeout for this migration, or make it cheaper (batches, CONCURRENTLY)`,
    );
  // Prisma may leave a migration half-applied and then refuses every later deploy (P3009) until the
  // failed row is resolved (prisma/orm#10127): both need a person, so say what to check and run.
  if (f.tool === "prisma" && /P3009|P3018/.test(f.output)) {
    const name = f.failed ?? "NAME";
    out.push(
      `prisma does not promise to run a migration in a transaction (its docs cover half-applied migrations), so statements before the failing one may have stayed applied: check the schema (\`safe-deploy drift\`) or restore the pre-deploy backup, then mark the migration with \`npx prisma migrate resolve --rolled-back ${name}\` and re-run; until then every deploy stops with P3009`,
    );
  }
  if (f.newInvalid.length)
    out.push(
      `the run left INVALID ${f.newInvalid.length > 1 ? "indexes" : "index"} ${f.newInvalid.join(", ")} (a CREATE INDEX CONCURRENTLY cut short); re-running fails with "already exists" until you ${f.newInvalid.map((i) => `DROP INDEX CONCURRENTLY ${i}`).join("; ")}`,
    );
  return out;
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

/**
 * node-pg-migrate's own order of its files: the number before the first `_` (a 13-digit ms timestamp,
 * a 17-digit UTC `yyyymmddhhmmssSSS`, else the plain number or 0), then the names compared with numbers
 * read as numbers. A plain string sort put `10_c` before `2_b`, so `up 2_b` also applied `10_c`.
 */
function toolOrder(a: string, b: string): number {
  const at = (n: string) => {
    const p = n.split("_")[0];
    const u = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d{3})$/.exec(p);
    return u ? Date.parse(`${u[1]}-${u[2]}-${u[3]}T${u[4]}:${u[5]}:${u[6]}.${u[7]}Z`) : Number(p) || 0;
  };
  return (
    at(a) - at(b) ||
    a.localeCompare(b, undefined, {
      usage: "sort",
      numeric: true,
      sensitivity: "variant",
      ignorePunctuation: true,
    })
  );
}

/** Migration names found in a node-pg-migrate directory, in the order the tool runs them. */
export async function migrationFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names
    .filter((n) => /\.(sql|js|cjs|mjs|ts)$/.test(n) && !n.startsWith("."))
    .sort(toolOrder)
    .map((n) => n.replace(/\.[^.]+$/, ""));
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
 * Alembic revisions not applied yet, oldest first (`alembic check` only compares models with the
 * database and passes with pending revisions): `alembic heads` against alembic_version, then every
 * revision of `alembic history` that is neither in alembic_version nor below one that is. A range
 * (`-r CURRENT:heads`) missed a head on another branch than CURRENT's.
 */
async function alembicPending(
  client: Client,
  run: (cmd: string) => Promise<{ code: number; output: string }>,
): Promise<string[]> {
  const t = await client.query<{ t: string | null }>("SELECT to_regclass('alembic_version')::text AS t");
  const current = t.rows[0].t
    ? (await client.query<{ v: string }>("SELECT version_num AS v FROM alembic_version")).rows.map((r) => r.v)
    : [];
  const heads = await run("alembic heads");
  if (heads.code !== 0)
    throw new CheckFailedError(`alembic heads failed (exit ${heads.code}): ${heads.output.trim()}`);
  const headRevs = headsIn(heads.output);
  if (headRevs.every((h) => current.includes(h))) return [];
  const hist = await run("alembic history");
  if (hist.code !== 0)
    throw new CheckFailedError(`alembic history failed (exit ${hist.code}): ${hist.output.trim()}`);
  // Newest first: `<base> -> r1, doc`, a merge `r3, r4 -> r5 (head) (mergepoint), doc`, a dependency
  // `r1 (d9) -> r2, doc`.
  const steps = [...hist.output.matchAll(/^(.*?) -> (\w+)\b((?: \([^)]*\))*).*$/gm)].map((m) => ({
    line: m[0].trim(),
    rev: m[2],
    below: m[1].split(/[\s,()]+/).filter((r) => r && r !== "<base>"),
    // `(feat) (head)`: the branch labels shown after the revision (inherited ones too), and the marks.
    tags: [...m[3].matchAll(/\(([^)]*)\)/g)].flatMap((t) => t[1].split(", ")),
  }));
  const below = new Map(steps.map((s) => [s.rev, s.below]));
  // A dependency may name a branch label (`r1 (feat) -> r3`), which Alembic applies with the revision
  // that needs it: the label's oldest revision, listed last, is the one carrying it.
  const labelled = new Map(steps.flatMap((s) => s.tags.map((l) => [l, s.rev] as const)));
  const unknown = current.filter((r) => !below.has(r));
  if (unknown.length)
    throw new CheckFailedError(
      `alembic_version holds ${unknown.join(", ")}, which \`alembic history\` does not list: the database was migrated by other scripts than these (a newer release?)`,
    );
  const applied = new Set<string>();
  const apply = (r: string) => {
    if (applied.has(r)) return;
    applied.add(r);
    for (const b of below.get(r) ?? []) apply(labelled.get(b) ?? b);
  };
  current.forEach(apply);
  return steps
    .filter((s) => !applied.has(s.rev))
    .map((s) => s.line)
    .reverse();
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
 * The node-pg-migrate migrations `down [N|REV]` would revert, newest first (N defaults to 1; REV stays
 * applied), so a person can be shown them before anything is dropped.
 */
export async function migrationsToRevert(databaseUrl: string, target?: string): Promise<string[]> {
  const client = await connect(databaseUrl, "safe-deploy migrate");
  try {
    const applied = (await appliedNodePgMigrate(client)).map((a) => a.name).reverse();
    if (target === undefined || /^\d+$/.test(target)) return applied.slice(0, Number(target ?? 1));
    const i = applied.indexOf(target);
    if (i < 0)
      throw new ConfigError(
        `\`down ${target}\`: no applied migration is named ${target} (see \`safe-deploy migrate history\`)`,
      );
    return applied.slice(0, i);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The environment every tool gets: DATABASE_URL, and the same URL under `migrations.databaseUrlEnv`
 * when the tool reads another variable; Alembic's as `postgresql://` (SQLAlchemy 1.4 rejects `postgres://`).
 */
export function toolEnv(tool: Tool, databaseUrl: string, databaseUrlEnv?: string): Record<string, string> {
  if (databaseUrlEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(databaseUrlEnv))
    throw new ConfigError(
      `\`migrations.databaseUrlEnv\` (\`--database-url-env\`) must be an environment variable name such as NEXT_PRIVATE_DATABASE_URL, got "${databaseUrlEnv}"`,
    );
  const url = tool === "alembic" ? sqlalchemyUrl(databaseUrl) : databaseUrl;
  return { DATABASE_URL: url, ...(databaseUrlEnv ? { [databaseUrlEnv]: url } : {}) };
}

/** Every revision alembic_version holds (several on branches), sorted; empty before the first. */
async function alembicVersions(client: Client): Promise<string[]> {
  const t = await client.query<{ t: string | null }>("SELECT to_regclass('alembic_version')::text AS t");
  if (!t.rows[0].t) return [];
  return (
    await client.query<{ v: string }>("SELECT version_num AS v FROM alembic_version ORDER BY 1")
  ).rows.map((r) => r.v);
}

/**
 * After `up` exited 0 with the version table unchanged: the message saying the tool migrated another
 * database (it reported applying migrations, or some were pending and still are), or undefined.
 */
async function notMoved(
  client: Client,
  opts: MigrateOptions,
  o: {
    cwd: string;
    env: Record<string, string>;
    migDir: string;
    target?: string;
    before?: string;
    output: string;
  },
): Promise<string | undefined> {
  const claimed = claimedApplied(opts.tool, o.output);
  let stillPending: string[] = [];
  let elsewhere: string | undefined;
  // `up REV` with REV already applied moves nothing and is fine: only "all" and "N" must move.
  const all = o.target === undefined || /^\d+$/.test(o.target) || /^heads?$/.test(o.target);
  if (opts.tool === "alembic") {
    const run = { workDir: o.cwd, env: o.env };
    if (all && !claimed.length) {
      const current = await alembicVersions(client);
      stillPending = (await alembicHeads(run).catch(() => [])).filter((h) => !current.includes(h));
    }
    if (claimed.length || stillPending.length) {
      const t = await alembicTarget(run);
      if (t.url) elsewhere = `alembic current says it is ${t.revisions.join(",") || "(none)"} in ${t.url}`;
    }
  } else if (opts.tool === "node-pg-migrate" && all && !claimed.length) {
    const done = new Set((await appliedNodePgMigrate(client)).map((a) => a.name));
    stillPending = (await migrationFiles(o.migDir)).filter((f) => !done.has(f));
  } else if (opts.tool === "prisma" && !claimed.length) {
    const { migrationFileChecksums } = await import("./checksums");
    const names = [...new Set((await migrationFileChecksums("prisma", o.migDir)).map((f) => f.name))];
    const t = await client.query<{ t: string | null }>("SELECT to_regclass('_prisma_migrations')::text AS t");
    const done = new Set(
      t.rows[0].t
        ? (
            await client.query<{ n: string }>(
              "SELECT migration_name AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL",
            )
          ).rows.map((r) => r.n)
        : [],
    );
    stillPending = names.filter((n) => !done.has(n));
  }
  if (!claimed.length && !stillPending.length) return undefined;
  return notMovedMessage({
    tool: opts.tool,
    named: databaseAddress(opts.databaseUrl),
    table: versionQuery(opts.tool)?.table ?? "the version table",
    before: o.before,
    claimed,
    stillPending,
    elsewhere,
  });
}

/**
 * Recorded checksums this role may not read (another role made safe_deploy): a permission error becomes
 * the grant that fixes it; anything else is thrown as it came.
 */
function unreadableChecksums(e: Error & { code?: string }, user: string): string {
  if (e.code !== "42501") throw e;
  return (
    `the checksums of applied migrations in safe_deploy.migration_history could not be read (${e.message}), so ` +
    `edits of applied migrations are not checked: let role "${user}" read them (GRANT USAGE ON SCHEMA safe_deploy ` +
    `TO "${user}"; GRANT SELECT ON safe_deploy.migration_history TO "${user}") or migrate as the role that made them`
  );
}

/** Why the checksums could not be written; the migration itself still runs (bookkeeping must not block it). */
function checksumsNotRecorded(e: Error): string {
  return `migration checksums not recorded in safe_deploy.migration_history (${e.message}): edits of applied migrations go unnoticed until the migration role may CREATE in the database (GRANT CREATE ON DATABASE ... TO ...)`;
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
  // Checked first: the tool would fail with `spawn /bin/sh ENOENT`, which names neither the directory nor the flag.
  if (!(await stat(cwd).catch(() => undefined))?.isDirectory())
    throw new ConfigError(
      `the work directory ${cwd} is not a directory: pass the one the tool runs from as \`--work-dir\``,
    );
  let options: string;
  try {
    options = pgOptions(opts.lockTimeout, opts.statementTimeout);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  // Alembic without its alembic.ini fails with exit 255 only after the lock and version reads.
  if (opts.tool === "alembic" && !process.env.ALEMBIC_CONFIG)
    await access(resolve(cwd, "alembic.ini")).catch(() => {
      throw new ConfigError(
        `no alembic.ini in ${cwd}: pass the directory Alembic runs from as \`--work-dir\` (or set ALEMBIC_CONFIG)`,
      );
    });
  const guarded = !!opts.integrity && (opts.action === "up" || opts.action === "down");
  // Only node-pg-migrate (run with --single-transaction) lets the guard's check roll the migrations back;
  // with the others a loss is already committed when it is seen, so only a restore can undo it (issue 15).
  if (guarded && opts.tool !== "node-pg-migrate" && !opts.backupFile)
    throw new ConfigError(
      `\`--critical-tables\` with \`--tool ${opts.tool}\` needs \`--backup FILE\`: ${opts.tool} does not run the migrations in one transaction, so lost rows can only be brought back by restoring a backup taken first (\`safe-deploy backup create\`); it is restored automatically when rows are lost`,
    );
  const env = toolEnv(opts.tool, opts.databaseUrl, opts.databaseUrlEnv);
  env.PGOPTIONS = options;
  env.PGAPPNAME = "safe-deploy migrate tool";
  const client = await connect(opts.databaseUrl, "safe-deploy migrate");
  let lost: Error | undefined;
  client.on("error", (e: Error) => (lost ??= e));
  let armed = false;
  let marking = false;
  const disarm = async () => {
    if (armed) await disarmRowGuard(client).catch(() => {});
    armed = false;
    if (marking) await disarmMigrationMarker(client).catch(() => {});
    marking = false;
  };
  try {
    const mutating = opts.action === "up" || opts.action === "down";
    if (mutating) await acquireMigrateLock(client, opts.lockWaitSeconds);
    const before = await schemaVersion(client, opts.tool);
    const migDir = resolve(cwd, opts.dir);
    // Before anything runs: the tool must act on this database (issue 21).
    if (!opts.targetChecked && (mutating || opts.action === "check" || opts.action === "current"))
      await checkToolTarget({
        tool: opts.tool,
        cwd,
        dir: migDir,
        databaseUrl: opts.databaseUrl,
        env,
        targetRevisions: opts.tool === "alembic" ? await alembicVersions(client) : undefined,
      });
    if (mutating) {
      const back = await syncChecksums(client, opts.tool, migDir, "backfill").catch((e: Error) => {
        log(`warning: ${checksumsNotRecorded(e)}`);
        return { recorded: [], forgotten: [] };
      });
      if (back.recorded.length)
        log(
          `recorded the checksums of ${back.recorded.length} already-applied migration(s) in safe_deploy.migration_history (first run with checksums; edits from now on are found): ${back.recorded.join(", ")}`,
        );
      const edits = await checksumEdits(client, opts.tool, migDir).catch((e: Error) => {
        log(`warning: ${unreadableChecksums(e, client.user ?? "?")}`);
        return [];
      });
      if (edits.length) log(`warning: ${checksumEditsMessage(edits)}`);
    } else if (opts.action === "check") {
      const edits = await checksumEdits(client, opts.tool, migDir).catch((e: Error) => {
        throw new CannotRunError(unreadableChecksums(e, client.user ?? "?"));
      });
      if (edits.length) throw new CheckFailedError(checksumEditsMessage(edits));
    }
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
        // Pending migrations are a failed check, as in `prisma migrate status` (issue 15): a CI step
        // or a script reading the exit code must not take "3 pending" for "up to date".
        const fixes = [
          ...(pending.length ? ["apply them with `safe-deploy migrate up`"] : []),
          ...(unknown.length ? [`restore the missing migration files to ${opts.dir}`] : []),
          ...invalid.map((i) => `DROP INDEX CONCURRENTLY ${i}`),
          ...(invalid.length ? ["then re-run the migration that builds each dropped index"] : []),
        ];
        if (fixes.length) throw new CheckFailedError(`${output}\nfix: ${fixes.join("; ")}`);
      }
      return { before, after: before, output };
    }
    if (opts.tool === "alembic" && opts.action === "check") {
      // The database's alembic_version against the script heads, not `alembic check`: that compares
      // the app's models (it needs them importable) and came only in Alembic 1.9 (issue 21).
      const secrets = urlSecrets(opts.databaseUrl);
      const pending = await alembicPending(client, (c) => runShell(c, { cwd, env, secrets }));
      if (pending.length)
        throw new CheckFailedError(
          `${pending.length} pending:\n${pending.map((p) => `  ${p}`).join("\n")}\nfix: apply them with \`safe-deploy migrate up\``,
        );
      const at = await alembicVersions(client);
      return {
        before,
        after: before,
        output: `0 pending: the database is at the script head(s) ${at.join(", ")}`,
      };
    }
    const countsBefore: RowCounts | undefined =
      opts.integrity && mutating ? await countRows(client) : undefined;
    if (countsBefore && opts.integrity && opts.tool === "node-pg-migrate") {
      await armRowGuard(
        client,
        countsBefore,
        opts.integrity.criticalTables,
        opts.integrity.maxRowLossPercent,
      ).catch((e: Error) => {
        throw new CannotRunError(
          `could not set up the row-loss check for --critical-tables (nothing was migrated): ${redact(e.message, urlSecrets(opts.databaseUrl))}; the migration role needs CREATE on the database (for the safe_deploy schema) and to own pgmigrations`,
        );
      });
      armed = true;
    }
    if (mutating) {
      // A rollback's replay must tell this migration's transactions from the users' (marker.ts).
      const mark = await armMigrationMarker(client);
      marking = mark.armed;
      if (mark.reason) log(`note: ${redact(mark.reason, urlSecrets(opts.databaseUrl))}`);
    }
    log(
      `migrate ${opts.action}${opts.target ? " " + opts.target : ""} with ${opts.tool}: from ${before ?? "(none)"}`,
    );
    const secrets = urlSecrets(opts.databaseUrl);
    const invalidBefore = new Set(await invalidIndexes(client));
    const newInvalid = async () => (await invalidIndexes(client)).filter((i) => !invalidBefore.has(i));
    const blockers = new Map<number, Blocker>();
    const attempt = async () => {
      // Stryker disable next-line ObjectLiteral: watchBlockers loops while !stop.done, and {} leaves done undefined, as falsy as false
      const stop = { done: false };
      const watching = watchBlockers(client, stop);
      try {
        return await runShell(cmd, { cwd, env, secrets });
      } finally {
        stop.done = true;
        for (const b of await watching) blockers.set(b.pid, b);
      }
    };
    let { code, output } = await attempt();
    let attempts = 1;
    // A cancelled CREATE INDEX CONCURRENTLY leaves its index behind, so a retry would only fail with
    // "already exists" and hide the lock_timeout that was the real cause.
    while (
      code !== 0 &&
      attempts <= (opts.lockRetries ?? 0) &&
      isLockTimeout(output) &&
      (await newInvalid()).length === 0
    ) {
      log(
        `migrate ${opts.action}: lock_timeout hit, retry ${attempts}/${opts.lockRetries} in ${2 * attempts} s`,
      );
      await new Promise((r) => setTimeout(r, 2000 * attempts));
      ({ code, output } = await attempt());
      attempts++;
    }
    const after = await schemaVersion(client, opts.tool);
    // /bin/sh's 127 and 126: the tool is not there or not executable, so nothing ran at all.
    if (code === 127 || code === 126)
      throw new CannotRunError(
        `${opts.tool} ${opts.action} could not start in ${cwd} (exit ${code}): ${output.trim()}; ${INSTALL_HINT[opts.tool]}`,
      );
    const verdict = code !== 0 ? guardVerdict(output) : undefined;
    if (verdict)
      throw new CheckFailedError(
        `integrity check failed: ${verdict}; limit is ${opts.integrity?.maxRowLossPercent ?? 0}% (--max-row-loss-percent / integrity.maxRowLossPercent). The migrations' transaction was rolled back, so no row was lost: schema version still ${after ?? "(none)"}. Fix the migration, or raise the limit if the loss is intended`,
      );
    if (code !== 0) {
      const failed = failedMigration(opts.tool, output);
      const hints = failureHints({
        tool: opts.tool,
        failed,
        output,
        blockers: [...blockers.values()],
        newInvalid: await newInvalid(),
        lockTimeout: opts.lockTimeout,
        statementTimeout: opts.statementTimeout,
        attempts,
      });
      throw new CheckFailedError(
        `${opts.tool} ${opts.action} failed${failed ? ` in migration ${failed}` : ""} (exit ${code}); schema version before ${before ?? "(none)"}, now ${after ?? "(none)"}:\n${output.trim()}${hints.map((h) => "\n" + h).join("")}`,
      );
    }
    if (opts.action === "up" && after === before) {
      const message = await notMoved(client, opts, { cwd, env, migDir, target, before, output });
      if (message) throw new CheckFailedError(message);
    }
    log(`migrate ${opts.action}: now at ${after ?? "(none)"}`);
    const synced = await syncChecksums(
      client,
      opts.tool,
      migDir,
      opts.action === "down" ? "down" : "up",
    ).catch((e: Error) => {
      log(`warning: ${checksumsNotRecorded(e)}`);
      return { recorded: [], forgotten: [] };
    });
    if (synced.recorded.length || synced.forgotten.length)
      log(
        `migrate ${opts.action}: checksums${synced.recorded.length ? ` recorded for ${synced.recorded.join(", ")}` : ""}${synced.forgotten.length ? ` forgotten for reverted ${synced.forgotten.join(", ")}` : ""}`,
      );
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
      if (losses.length) {
        const what = `integrity check failed: ${losses.map((l) => `${l.table} lost ${l.lossPercent.toFixed(1)}% of its rows (${l.before} -> ${l.after ?? "dropped"})`).join("; ")}; limit is ${opts.integrity.maxRowLossPercent ?? 0}% (integrity.maxRowLossPercent)`;
        if (!opts.backupFile) throw new CheckFailedError(`${what}. Restore the pre-deploy backup`);
        await disarm();
        await client.end().catch(() => {});
        log(`migrate ${opts.action}: rows lost, restoring ${opts.backupFile}`);
        const { restoreBackup } = await import("../backup/restore");
        const restored = await restoreBackup(opts.backupFile, { databaseUrl: opts.databaseUrl }).catch(
          (e: Error) => {
            throw new CheckFailedError(
              `${what}. Restoring ${opts.backupFile} automatically failed too: ${redact(e.message, secrets)}; restore it by hand (\`safe-deploy backup restore ${opts.backupFile}\`)`,
            );
          },
        );
        throw new CheckFailedError(
          `${what}. The database was restored automatically from ${opts.backupFile}, so no row is lost${restored.previousDatabase ? `; the database as the migrations left it is kept as ${restored.previousDatabase}` : ""}. Fix the migration, or raise the limit if the loss is intended`,
        );
      }
      const unknown = unknownTables(countsBefore, countsAfter, opts.integrity.criticalTables);
      if (unknown.length)
        throw new ConfigError(
          `${unknownTablesMessage(unknown, countsAfter)}. The migrations did run: schema version ${before ?? "(none)"} -> ${after ?? "(none)"}`,
        );
    }
    return result;
  } catch (e) {
    if (!lost) throw e;
    throw new CheckFailedError(
      `safe-deploy's own database session ("safe-deploy migrate") was ended during the run (${lost.message}): did a migration terminate the other sessions? The migration lock went with it and nothing after the run was checked (schema version, INVALID indexes, row counts): see \`safe-deploy migrate current\`, and leave sessions named "safe-deploy migrate" out of such a statement`,
    );
  } finally {
    await disarm();
    await client.end().catch(() => {});
  }
}
