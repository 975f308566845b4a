import { execFile } from "node:child_process";
import { access } from "node:fs/promises";
import { resolve } from "node:path";
import { promisify } from "node:util";
import type { Client } from "pg";
import { stoppedBySignal } from "../backup/interrupt";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { redact, urlSecrets } from "../log/redact";
import {
  countRows,
  formatCountChanges,
  rowLosses,
  unknownTables,
  unknownTablesMessage,
  type RowCounts,
} from "./integrity";
import { alembicRevisions } from "./alembic";
import { createScratchDatabase, stagePrismaMigrations } from "./drift";
import { LOCAL_BIN, shellQuote, type CustomCommands, type Tool } from "./presets";
import { connect, migrate, runShell, schemaVersion, toolEnv } from "./runner";
import { checkToolTarget } from "./target";

/** Where Debian's PostgreSQL client binaries live (override with `PG_BIN`). */
const PG_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";

/** The URL without its password, plus the environment that carries the password instead (never argv). */
export function splitPassword(url: string): { url: string; env: Record<string, string> } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = "";
  return { url: u.toString(), env: password ? { PGPASSWORD: password } : {} };
}

/**
 * Restores a backup into an empty database. A safe-deploy backup (with its `FILE.json` manifest) goes
 * through the backup engine, which checks the sha256 and decompresses zstd/gzip; any other file is
 * taken as a plain `pg_dump -Fc` archive.
 */
export async function restoreBackup(file: string, databaseUrl: string): Promise<void> {
  if (
    await access(`${file}.json`).then(
      () => true,
      () => false,
    )
  ) {
    const { verifyBackup, restoreStream } = await import("../backup/verify");
    const { parseDatabaseUrl } = await import("../backup/runner");
    const { manifest } = await verifyBackup(file);
    const conn = parseDatabaseUrl(databaseUrl);
    const args = ["--no-owner", "--no-acl", "--exit-on-error", "-d", conn.database];
    await restoreStream(file, manifest, { runIn: "local" }, conn, args, "rehearsal restore");
    return;
  }
  const { url, env } = splitPassword(databaseUrl);
  try {
    await promisify(execFile)(
      `${PG_BIN}/pg_restore`,
      ["--no-owner", "--no-acl", "--exit-on-error", "-d", url, file],
      {
        env: { ...process.env, ...env },
        maxBuffer: 64 * 1024 * 1024,
      },
    );
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new CannotRunError(
      `pg_restore of ${file} failed: ${redact(err.stderr || err.message, urlSecrets(databaseUrl)).trim()}; check that it is a pg_dump -Fc file (\`safe-deploy backup verify\`)`,
    );
  }
}

/** One applied migration's figures. */
export interface RehearsalStep {
  from?: string;
  to?: string;
  /** The migration this step applied (revision, migration directory, file), when known beforehand. */
  name?: string;
  /** The migration's time: wall time of the step less the tool's start-up ({@link RehearsalReport}). */
  seconds: number;
  /** The step's wall time, the tool's start-up included. */
  wallSeconds?: number;
  /** Locks the tool's sessions waited for (sampled), e.g. `AccessExclusiveLock on public.users`. */
  locksWaited: string[];
  /** Relation locks the tool held (recorded and sampled): what the live app would have queued behind. */
  locksHeld: string[];
  /** Each DDL statement with the relation locks it added to its transaction (recorded, not sampled). */
  statements?: Array<{ statement: string; locks: string[] }>;
}

/** Options of {@link rehearse}. */
export interface RehearseOptions {
  backupFile: string;
  /** A server on which a scratch database can be created (the backup is restored there). */
  databaseUrl: string;
  /** An empty database to restore into instead of a new one (for a role without CREATEDB); emptied after. */
  scratchUrl?: string;
  tool: Tool;
  dir: string;
  workDir?: string;
  custom?: Partial<CustomCommands>;
  criticalTables?: string[];
  maxRowLossPercent?: number;
  lockTimeout?: string;
  statementTimeout?: string;
  /** The variable the tool reads its URL from besides DATABASE_URL (`migrations.databaseUrlEnv`). */
  databaseUrlEnv?: string;
  log?: (line: string) => void;
  /**
   * Runs once the backup is restored, before any migration: the lint gate, which then judges only the
   * migrations pending on the backup's database (its version table says which are applied).
   */
  beforeMigrations?: (scratchUrl: string) => Promise<void>;
}

/** What a rehearsal found. */
export interface RehearsalReport {
  steps: RehearsalStep[];
  /** The tool's start-up, measured with a read-only run and subtracted from each step's seconds. */
  startupSeconds?: number;
  /** How the start-up was measured. */
  startupHow?: string;
  rowChanges: string[];
  countsBefore: RowCounts;
  countsAfter: RowCounts;
  failure?: string;
}

/** The tools' own bookkeeping tables: their locks are not the migration's. */
const TOOL_TABLES = /^(public\.(pgmigrations|_prisma_migrations|alembic_version)|safe_deploy\..+)$/;

async function sampleLocks(
  url: string,
  stop: { done: boolean },
): Promise<{ waited: Set<string>; held: Set<string> }> {
  const waited = new Set<string>();
  const held = new Set<string>();
  const c = await connect(url, "safe-deploy rehearsal probe");
  try {
    while (!stop.done) {
      const { rows } = await c.query<{ mode: string; rel: string | null; granted: boolean }>(
        `SELECT l.mode, n.nspname || '.' || c.relname AS rel, l.granted
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE a.application_name = 'safe-deploy migrate tool' AND l.locktype = 'relation' AND a.datname = current_database()
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_deploy') AND n.nspname NOT LIKE 'pg_toast%'`,
      );
      for (const r of rows) {
        if (!r.rel || TOOL_TABLES.test(r.rel)) continue;
        (r.granted ? held : waited).add(`${r.mode} on ${r.rel}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await c.end();
  }
  return { waited, held };
}

const SYSTEM_SCHEMAS =
  "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/**
 * `--scratch-url`: a database the caller made for rehearsals. It must hold no tables (a rehearsal must
 * not mix with, or later wipe, anything else); afterwards every schema it got is dropped again.
 */
async function givenScratch(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const c = await connect(url, "safe-deploy rehearsal scratch");
  try {
    const { rows } = await c.query<{ t: string }>(
      `SELECT n.nspname || '.' || c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND ${SYSTEM_SCHEMAS} LIMIT 3`,
    );
    if (rows.length)
      throw new ConfigError(
        `\`--scratch-url\` database "${c.database}" is not empty (${rows.map((r) => r.t).join(", ")}...): a rehearsal restores into an empty database and empties it after; create one (\`CREATE DATABASE rehearsal\`, as a role that may) and pass its URL`,
      );
  } finally {
    await c.end();
  }
  return {
    url,
    drop: async () => {
      const d = await connect(url, "safe-deploy rehearsal scratch");
      try {
        await d.query("DROP EVENT TRIGGER IF EXISTS safe_deploy_rehearsal_locks");
        const { rows } = await d.query<{ s: string }>(
          `SELECT n.nspname AS s FROM pg_namespace n WHERE ${SYSTEM_SCHEMAS}`,
        );
        for (const { s } of rows) await d.query(`DROP SCHEMA ${d.escapeIdentifier(s)} CASCADE`);
        await d.query("CREATE SCHEMA IF NOT EXISTS public");
      } finally {
        await d.end();
      }
    },
  };
}

const LOCK_CHANNEL = "safe_deploy_rehearsal_locks";

/**
 * Records the relation locks each DDL statement takes, in its own transaction: a sampler polling from
 * another session misses a short ADD COLUMN or CREATE INDEX ("none seen"), and cannot name a relation the
 * migration created (its pg_class row is not committed yet). An event trigger at `ddl_command_end` reads
 * pg_locks joined with pg_class for its own backend and sends them with NOTIFY, delivered on commit.
 * Needs a superuser (event triggers): without one, `undefined` and the sampler alone reports.
 */
async function lockRecorder(url: string): Promise<
  | {
      take: () => Promise<Array<{ statement: string; locks: string[] }>>;
      close: () => Promise<void>;
    }
  | undefined
> {
  const c = await connect(url, "safe-deploy rehearsal locks");
  try {
    await c.query(`CREATE SCHEMA IF NOT EXISTS safe_deploy;
CREATE FUNCTION safe_deploy.rehearsal_locks() RETURNS event_trigger LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM pg_notify('${LOCK_CHANNEL}', left(json_build_object(
    'pid', pg_backend_pid(),
    'statement', tg_tag,
    'objects', (SELECT coalesce(json_agg(DISTINCT object_identity), '[]'::json) FROM pg_event_trigger_ddl_commands()),
    'locks', (SELECT coalesce(json_agg(l.mode || ' on ' || n.nspname || '.' || c.relname), '[]'::json)
      FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
        AND c.relkind IN ('r', 'p', 'm', 'f')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_deploy') AND n.nspname NOT LIKE 'pg_toast%'))::text, 7999));
EXCEPTION WHEN OTHERS THEN NULL; -- a report must never fail the migration
END $f$;
CREATE EVENT TRIGGER safe_deploy_rehearsal_locks ON ddl_command_end EXECUTE FUNCTION safe_deploy.rehearsal_locks();
LISTEN ${LOCK_CHANNEL};`);
  } catch {
    await c.end();
    return undefined;
  }
  let got: Array<{ statement: string; locks: string[] }> = [];
  const seen = new Map<number, Set<string>>();
  let marker: { token: string; arrived: () => void } | undefined;
  c.on("notification", (n) => {
    if (marker && n.payload === marker.token) return marker.arrived();
    try {
      const m = JSON.parse(n.payload ?? "") as {
        pid: number;
        statement: string;
        objects: string[];
        locks: string[];
      };
      // Locks accumulate over a transaction: a statement is charged with those it added.
      const before = seen.get(m.pid) ?? new Set<string>();
      const fresh = m.locks.filter((l) => !before.has(l) && !TOOL_TABLES.test(l.replace(/^.* on /, "")));
      m.locks.forEach((l) => before.add(l));
      seen.set(m.pid, before);
      // A statement that made nothing (IF NOT EXISTS) or only the tool's bookkeeping is left out.
      if (m.objects.some((o) => !TOOL_TABLES.test(o)))
        got.push({ statement: `${m.statement} ${m.objects.join(", ")}`, locks: [...new Set(fresh)].sort() });
    } catch {
      // a truncated payload (a huge migration): the sampler still reports
    }
  });
  return {
    take: async () => {
      // Notifications come in commit order: once our own marker, sent after the tool committed, is
      // back, every statement's report is in.
      const token = `marker-${process.hrtime.bigint()}`;
      const arrived = new Promise<void>((done) => (marker = { token, arrived: done }));
      await c.query("SELECT pg_notify($1, $2)", [LOCK_CHANNEL, token]);
      await arrived;
      const r = got;
      got = [];
      seen.clear();
      return r;
    },
    close: () => c.end().catch(() => {}),
  };
}

/**
 * Restores the backup into a scratch database, applies pending migrations one at a time, and reports
 * each one's duration and locks, and every table's row-count change. Fails (exit 1) when a migration
 * fails or a critical table loses rows; the scratch database is always dropped.
 */
export async function rehearse(opts: RehearseOptions): Promise<RehearsalReport> {
  // Caught so Ctrl-C half-way (a long restore, a slow migration) still drops the scratch database; the
  // tool killed by the same signal is no failed migration, so no report is given as if it were.
  return stoppedBySignal(
    () => rehearseSteps(opts),
    (sig) =>
      `rehearsal interrupted by ${sig}: the scratch database was dropped and nothing was rehearsed; run it again`,
  );
}

async function rehearseSteps(opts: RehearseOptions): Promise<RehearsalReport> {
  const log = opts.log ?? (() => {});
  const scratch = opts.scratchUrl
    ? await givenScratch(opts.scratchUrl)
    : await createScratchDatabase(opts.databaseUrl, "safe_deploy_rehearsal");
  try {
    const t0 = process.hrtime.bigint();
    log(`rehearsal: restoring ${opts.backupFile} into a scratch database`);
    await restoreBackup(opts.backupFile, scratch.url);
    log(
      `rehearsal: restored in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s; applying migrations one at a time`,
    );
    await opts.beforeMigrations?.(scratch.url);
    const c = await connect(scratch.url, "safe-deploy rehearsal");
    const recorder = await lockRecorder(scratch.url);
    const countsBefore = await countRows(c);
    const steps: RehearsalStep[] = [];
    let failure: string | undefined;
    let startup: Startup | undefined;
    try {
      const cwd = resolve(opts.workDir ?? ".");
      const env: Record<string, string> = {
        ...toolEnv(opts.tool, scratch.url, opts.databaseUrlEnv),
        PGAPPNAME: "safe-deploy rehearsal probe",
      };
      // The tool must act on the scratch copy (issue 21): checked once, before the first step.
      await checkToolTarget({
        tool: opts.tool,
        cwd,
        dir: resolve(cwd, opts.dir),
        databaseUrl: scratch.url,
        env,
        targetRevisions:
          opts.tool === "alembic" && (await schemaVersion(c, "alembic")) ? await alembicCurrent(c) : [],
      });
      const plan = await stepPlan(c, opts, cwd, env);
      startup = await measureStartup(opts, cwd, env);
      if (startup)
        log(
          `rehearsal: tool start-up ${startup.seconds.toFixed(2)} s (${startup.how}), subtracted from each step`,
        );
      for (let i = 0; plan === "until-still" || i < plan.length; i++) {
        const step = plan === "until-still" ? { target: "1" } : plan[i];
        const from = await schemaVersion(c, opts.tool);
        const stop = { done: false };
        const sampler = sampleLocks(scratch.url, stop);
        const t0 = process.hrtime.bigint();
        let to: string | undefined;
        const staged = step.prismaNames
          ? await stagePrismaMigrations(resolve(cwd, opts.dir), step.prismaNames)
          : undefined;
        try {
          to = (
            await migrate({
              action: "up",
              target: step.target,
              tool: opts.tool,
              dir: staged?.dir ?? opts.dir,
              workDir: opts.workDir,
              custom: step.custom ?? opts.custom,
              lockTimeout: opts.lockTimeout,
              statementTimeout: opts.statementTimeout,
              databaseUrl: scratch.url,
              databaseUrlEnv: opts.databaseUrlEnv,
              targetChecked: true,
            })
          ).after;
        } catch (e) {
          failure = (e as Error).message;
        } finally {
          stop.done = true;
          await staged?.remove();
        }
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        const seconds = Math.max(0, wall - (startup?.seconds ?? 0));
        const locks = await sampler;
        const statements = await recorder?.take();
        for (const st of statements ?? []) st.locks.forEach((l) => locks.held.add(l));
        // A relation the migration created is only an OID to the sampler's session: named above instead.
        for (const set of [locks.held, locks.waited])
          for (const l of set) if (/ on \d+$/.test(l)) set.delete(l);
        // A failed step is reported with what it did until it failed, and nothing runs after it.
        const failedStep = () =>
          steps.push({
            from,
            to: undefined,
            name: step.name,
            seconds,
            wallSeconds: wall,
            locksWaited: [...locks.waited],
            locksHeld: [...locks.held],
            statements,
          });
        if (failure) {
          failedStep();
          break;
        }
        if (plan === "until-still" && to === from) break;
        // The step's own migration must now be recorded in the scratch copy, or the tool applied it elsewhere.
        if (step.name && (opts.tool === "alembic" || opts.tool === "prisma")) {
          const at =
            opts.tool === "alembic"
              ? (await schemaVersion(c, "alembic"))
                ? await alembicCurrent(c)
                : []
              : to
                ? [to]
                : [];
          if (!at.includes(step.name)) {
            failure = `${opts.tool} exited 0 for ${step.name}, but the scratch copy's ${opts.tool === "alembic" ? "alembic_version" : "_prisma_migrations"} says ${at.join(", ") || "(none)"}: the tool did not act on the database in DATABASE_URL; make it read DATABASE_URL, or set \`migrations.databaseUrlEnv\` to the variable it reads`;
            failedStep();
            break;
          }
        }
        if (opts.tool === "command" && step.name && opts.custom?.current) {
          // The SQL runner's own record must now name this file, or the command ran elsewhere.
          const { currentOf, sqlMigrationFiles } = await import("./command-files");
          const files = await sqlMigrationFiles(resolve(cwd, opts.dir));
          const at = await currentOf(
            {
              current: opts.custom.current,
              run: (cmd) => runShell(cmd, { cwd, env, secrets: urlSecrets(env.DATABASE_URL) }),
            },
            files,
          );
          if (files[at] !== step.name) {
            failure = `the command exited 0 for ${step.name}, but the \`current\` command on the scratch database says ${files[at] ?? "(none)"}: the apply command did not act on the database in DATABASE_URL (or does not record what it applied); make it use DATABASE_URL, or set \`migrations.databaseUrlEnv\` to the variable it reads`;
            failedStep();
            break;
          }
        }
        steps.push({
          from,
          to: step.name ?? to,
          name: step.name,
          seconds,
          wallSeconds: wall,
          locksWaited: [...locks.waited].sort(),
          locksHeld: [...locks.held].sort(),
          statements,
        });
        log(`rehearsal: ${step.name ?? to} in ${seconds.toFixed(2)} s`);
      }
      const countsAfter = await countRows(c);
      const report: RehearsalReport = {
        steps,
        startupSeconds: startup?.seconds,
        startupHow: startup?.how,
        rowChanges: formatCountChanges(countsBefore, countsAfter),
        countsBefore,
        countsAfter,
        failure,
      };
      return report;
    } finally {
      await recorder?.close();
      await c.end();
    }
  } finally {
    await scratch.drop();
  }
}

/** One planned rehearsal step: the migration it applies and how `migrate up` is told to stop there. */
interface PlannedStep {
  name?: string;
  target?: string;
  /** Prisma: the migrations staged for this step (those applied plus the next one). */
  prismaNames?: string[];
  custom?: Partial<CustomCommands>;
}

async function alembicCurrent(c: Client): Promise<string[]> {
  return (await c.query<{ v: string }>("SELECT version_num AS v FROM alembic_version ORDER BY 1")).rows.map(
    (r) => r.v,
  );
}

/**
 * The pending migrations, one step each, decided before the first runs: Alembic revisions by id (`up
 * +1` at head failed with "Relative revision +1 didn't produce 1 migrations", issue 21), Prisma
 * directories staged one more at a time (`migrate deploy` takes no target), a custom command with
 * `{file}` once per file. node-pg-migrate steps with `up 1` until nothing moves ("until-still").
 */
async function stepPlan(
  c: Client,
  opts: RehearseOptions,
  cwd: string,
  env: Record<string, string>,
): Promise<PlannedStep[] | "until-still"> {
  if (opts.tool === "alembic") {
    const revs = await alembicRevisions({
      workDir: cwd,
      env: toolEnv("alembic", "postgresql://plan@127.0.0.1/plan"),
    });
    const down = new Map(revs.map((r) => [r.revision, r.down]));
    const applied = new Set<string>();
    const walk = (rev: string) => {
      if (applied.has(rev)) return;
      applied.add(rev);
      for (const d of down.get(rev) ?? []) walk(d);
    };
    if (await schemaVersion(c, "alembic")) for (const v of await alembicCurrent(c)) walk(v);
    return revs
      .filter((r) => !applied.has(r.revision))
      .map((r) => ({ name: r.revision, target: r.revision }));
  }
  if (opts.tool === "prisma") {
    const { appliedPrismaMigrations } = await import("./drift");
    const { migrationFileChecksums } = await import("./checksums");
    const dir = resolve(cwd, opts.dir);
    const all = [...new Set((await migrationFileChecksums("prisma", dir)).map((f) => f.name))];
    const applied = await appliedPrismaMigrations(c);
    const pending = all.filter((n) => !applied.includes(n));
    return pending.map((name, i) => ({ name, prismaNames: [...applied, ...pending.slice(0, i + 1)] }));
  }
  if (opts.tool === "command") {
    const { commandSteps } = await import("./command-files");
    return commandSteps({
      dir: resolve(cwd, opts.dir),
      up: opts.custom?.up ?? "",
      current: opts.custom?.current,
      run: (cmd) => runShell(cmd, { cwd, env, secrets: urlSecrets(env.DATABASE_URL) }),
    });
  }
  return "until-still";
}

interface Startup {
  seconds: number;
  how: string;
}

/**
 * The tool's start-up (interpreter, imports, connecting), timed once with a read-only command on the
 * scratch database, so step times are the migrations' own (issue 21: about 0.6 s of each step was the
 * tool starting). Undefined for a custom command (nothing read-only to time).
 */
async function measureStartup(
  opts: RehearseOptions,
  cwd: string,
  env: Record<string, string>,
): Promise<Startup | undefined> {
  const probe: Partial<Record<Tool, string>> = {
    alembic: "alembic current",
    "node-pg-migrate": `${LOCAL_BIN} node-pg-migrate up --dry-run -m ${shellQuote(opts.dir)} --no-verbose`,
    prisma: `${LOCAL_BIN} prisma migrate status --schema ${shellQuote(resolve(cwd, opts.dir, "..", "schema.prisma"))}`,
  };
  const cmd = probe[opts.tool];
  if (!cmd) return undefined;
  // The faster of two runs: the first pays for cold caches, and subtracting too much would hide a step.
  const times: number[] = [];
  for (let i = 0; i < 2; i++) {
    const t0 = process.hrtime.bigint();
    await runShell(cmd, { cwd, env, secrets: [] });
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return {
    seconds: Math.min(...times),
    how: `the faster of two runs of \`${cmd.replace(/^PATH="[^"]*" /, "")}\``,
  };
}

/** Human-readable report; the last line says whether the rehearsal passed. */
export function formatRehearsal(r: RehearsalReport, losses: string[]): string {
  const lines: string[] = [];
  if (r.steps.length === 0) lines.push("no pending migrations");
  for (const s of r.steps) {
    lines.push(
      `${s.to ?? `FAILED ${s.name ? s.name + " " : ""}after ${s.from ?? "(none)"}`}: ${s.seconds.toFixed(2)} s`,
    );
    lines.push(`  locks waited: ${s.locksWaited.length ? s.locksWaited.join(", ") : "none"}`);
    // "none seen": only sampled (no superuser for the recorder), a short lock can slip between samples.
    lines.push(
      `  locks held: ${s.locksHeld.length ? s.locksHeld.join(", ") : s.statements ? "none" : "none seen"}`,
    );
    for (const st of s.statements ?? [])
      lines.push(`    ${st.statement}: ${st.locks.length ? st.locks.join(", ") : "no new relation locks"}`);
  }
  if (r.startupSeconds !== undefined && r.steps.length)
    lines.push(
      `(step times exclude the tool's start-up, ${r.startupSeconds.toFixed(2)} s: ${r.startupHow ?? "measured once"}; wall times ${r.steps.map((s) => (s.wallSeconds ?? s.seconds).toFixed(2)).join(", ")} s)`,
    );
  lines.push("row counts:");
  lines.push(...(r.rowChanges.length ? r.rowChanges.map((l) => "  " + l) : ["  unchanged"]));
  if (r.failure) lines.push(`migration failed: ${r.failure}`);
  for (const l of losses) lines.push(`row loss: ${l}`);
  return lines.join("\n");
}

/** Runs {@link rehearse} and turns failures and critical row losses into CheckFailedError (exit 1). */
export async function rehearseOrFail(
  opts: RehearseOptions,
  out: (t: string) => void,
  json = false,
): Promise<RehearsalReport> {
  const r = await rehearse(opts);
  const losses = rowLosses(
    r.countsBefore,
    r.countsAfter,
    opts.criticalTables ?? [],
    opts.maxRowLossPercent,
  ).map((l) => `${l.table} lost ${l.lossPercent.toFixed(1)}% (${l.before} -> ${l.after ?? "dropped"})`);
  out(
    json
      ? JSON.stringify({ passed: !r.failure && !losses.length, ...r, rowLosses: losses }, null, 2)
      : formatRehearsal(r, losses),
  );
  if (r.failure)
    throw new CheckFailedError(
      `rehearsal failed: a migration failed on the restored backup; fix it before deploying`,
    );
  if (losses.length)
    throw new CheckFailedError(
      `rehearsal failed: critical tables lose rows (${losses.join("; ")}); limit is ${opts.maxRowLossPercent ?? 0}% (integrity.maxRowLossPercent)`,
    );
  const unknown = unknownTables(r.countsBefore, r.countsAfter, opts.criticalTables ?? []);
  if (unknown.length) throw new ConfigError(unknownTablesMessage(unknown, r.countsAfter));
  return r;
}
