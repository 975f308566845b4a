import { execFile } from "node:child_process";
import { access } from "node:fs/promises";
import { promisify } from "node:util";
import { stoppedBySignal } from "../backup/interrupt";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { redact, urlSecrets } from "../log/redact";
import { createScratchDatabase } from "./drift";
import {
  countRows,
  formatCountChanges,
  rowLosses,
  unknownTables,
  unknownTablesMessage,
  type RowCounts,
} from "./integrity";
import type { CustomCommands, Tool } from "./presets";
import { connect, migrate, schemaVersion } from "./runner";

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
  seconds: number;
  /** Locks the tool's sessions waited for (sampled), e.g. `AccessExclusiveLock on public.users`. */
  locksWaited: string[];
  /** Relation locks the tool held (sampled): what the live app would have queued behind. */
  locksHeld: string[];
}

/** Options of {@link rehearse}. */
export interface RehearseOptions {
  backupFile: string;
  /** A server on which a scratch database can be created (the backup is restored there). */
  databaseUrl: string;
  tool: Tool;
  dir: string;
  workDir?: string;
  custom?: Partial<CustomCommands>;
  criticalTables?: string[];
  maxRowLossPercent?: number;
  lockTimeout?: string;
  statementTimeout?: string;
  log?: (line: string) => void;
}

/** What a rehearsal found. */
export interface RehearsalReport {
  steps: RehearsalStep[];
  rowChanges: string[];
  countsBefore: RowCounts;
  countsAfter: RowCounts;
  failure?: string;
}

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
        `SELECT l.mode, l.relation::regclass::text AS rel, l.granted FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE a.application_name = 'safe-deploy migrate tool' AND l.locktype = 'relation' AND a.datname = current_database()`,
      );
      for (const r of rows) {
        if (!r.rel || r.rel.startsWith("pg_")) continue;
        (r.granted ? held : waited).add(`${r.mode} on ${r.rel}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await c.end();
  }
  return { waited, held };
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
  const scratch = await createScratchDatabase(opts.databaseUrl, "safe_deploy_rehearsal");
  try {
    await restoreBackup(opts.backupFile, scratch.url);
    const c = await connect(scratch.url, "safe-deploy rehearsal");
    const countsBefore = await countRows(c);
    const steps: RehearsalStep[] = [];
    let failure: string | undefined;
    try {
      for (;;) {
        const from = await schemaVersion(c, opts.tool);
        const stop = { done: false };
        const sampler = sampleLocks(scratch.url, stop);
        const t0 = process.hrtime.bigint();
        let to: string | undefined;
        try {
          const target = opts.tool === "prisma" ? undefined : "1";
          to = (
            await migrate({
              action: "up",
              target,
              tool: opts.tool,
              dir: opts.dir,
              workDir: opts.workDir,
              custom: opts.custom,
              lockTimeout: opts.lockTimeout,
              statementTimeout: opts.statementTimeout,
              databaseUrl: scratch.url,
            })
          ).after;
        } catch (e) {
          failure = (e as Error).message;
        } finally {
          stop.done = true;
        }
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const locks = await sampler;
        if (failure) {
          steps.push({
            from,
            to: undefined,
            seconds,
            locksWaited: [...locks.waited],
            locksHeld: [...locks.held],
          });
          break;
        }
        if (to === from) break;
        steps.push({
          from,
          to,
          seconds,
          locksWaited: [...locks.waited].sort(),
          locksHeld: [...locks.held].sort(),
        });
        log(`rehearsal: ${to} in ${seconds.toFixed(2)} s`);
        if (opts.tool === "prisma") break;
      }
      const countsAfter = await countRows(c);
      const report: RehearsalReport = {
        steps,
        rowChanges: formatCountChanges(countsBefore, countsAfter),
        countsBefore,
        countsAfter,
        failure,
      };
      return report;
    } finally {
      await c.end();
    }
  } finally {
    await scratch.drop();
  }
}

/** Human-readable report; the last line says whether the rehearsal passed. */
export function formatRehearsal(r: RehearsalReport, losses: string[]): string {
  const lines: string[] = [];
  if (r.steps.length === 0) lines.push("no pending migrations");
  for (const s of r.steps) {
    lines.push(`${s.to ?? "FAILED after " + (s.from ?? "(none)")}: ${s.seconds.toFixed(2)} s`);
    lines.push(`  locks waited: ${s.locksWaited.length ? s.locksWaited.join(", ") : "none"}`);
    lines.push(`  locks held: ${s.locksHeld.length ? s.locksHeld.join(", ") : "none seen"}`);
  }
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
): Promise<RehearsalReport> {
  const r = await rehearse(opts);
  const losses = rowLosses(
    r.countsBefore,
    r.countsAfter,
    opts.criticalTables ?? [],
    opts.maxRowLossPercent,
  ).map((l) => `${l.table} lost ${l.lossPercent.toFixed(1)}% (${l.before} -> ${l.after ?? "dropped"})`);
  out(formatRehearsal(r, losses));
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
