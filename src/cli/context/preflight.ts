// The checks before a deploy changes anything: clean tree, migrations lint and edits, Docker, the
// database, disk room. Each problem says what to do.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, statfs } from "node:fs/promises";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { listBackups } from "../../core/backup";
import { parseDatabaseUrl } from "../../core/backup/runner";
import { runSql } from "../../core/backup/session";
import type { Readiness } from "../../core/changes/ready";
import { appliedMigrationEdits } from "../../core/migrations/edits";
import { git, hasCommit } from "./git";
import type { ReleaseContext } from "./types";

const run = promisify(execFile);

/**
 * Applied migrations edited or removed since the last good release (which had applied every migration of
 * its commit): a migration that ran never runs again, so the edit would never reach this database. Flyway
 * refuses the same by checksum; git already holds the applied versions. Said, not refused, when that
 * commit is not in this clone (a shallow CI checkout).
 */
async function migrationEdits(ctx: ReleaseContext, migDir: string): Promise<string[]> {
  const last = await ctx.ledger.lastGood();
  if (!last || !/^[0-9a-f]{7,64}$/i.test(last.commit)) return [];
  const short = last.commit.slice(0, 12);
  if (!(await hasCommit(migDir, last.commit))) {
    ctx.log.warn(
      `applied migrations not checked for edits: commit ${short} of the last good release ${last.id} is not in ` +
        `this clone (fetch the whole history, e.g. fetch-depth: 0)`,
    );
    return [];
  }
  const diff = await git(migDir, [
    "-c",
    "core.quotePath=false",
    "diff",
    "--no-renames",
    "--name-status",
    "--relative",
    last.commit,
    "--",
    ".",
  ]);
  const edits = appliedMigrationEdits(ctx.config.migrations.tool, diff);
  if (!edits.length) return [];
  return [
    `applied migration(s) changed since release ${last.id} (commit ${short}) applied them: ` +
      `${edits.map((e) => `${e.file} (${e.change})`).join(", ")}. A migration that already ran never runs ` +
      `again, so the change would never reach the database: restore them (\`git checkout ${short} -- FILE\` in ` +
      `${migDir}) and put the change in a new migration; if the database already matches (you applied it by ` +
      `hand), pass --allow-migration-edits`,
  ];
}

/**
 * Lint of the migrations this deploy will run (issue 21): those the database's version table does not
 * list; with no database to ask, those added since the last good release's commit (which applied all of
 * its own); with neither (a first deploy, a new database), all. Findings in the lint baseline
 * (`.safe-deploy/lint-baseline.json`) are accepted. The runner sets the timeouts.
 */
async function pendingLint(
  ctx: ReleaseContext,
  migDir: string,
  db: { target: Parameters<typeof runSql>[0]; url: string } | "new" | "unknown",
): Promise<string[]> {
  const { lintMigrations } = await import("../../core/migrations/lint");
  const { DEFAULT_BASELINE, baselineFilter } = await import("../../core/migrations/baseline");
  const { appliedFromDatabase, appliedAtCommit } = await import("../../core/migrations/pending");
  const tool = ctx.config.migrations.tool;
  let applied: { files: Set<string>; from: string } | undefined;
  if (typeof db === "object") {
    const query = async (q: string) =>
      (await runSql(db.target, parseDatabaseUrl(db.url), `${q};`, "reading applied migrations")).split("\n");
    applied = await appliedFromDatabase(tool, migDir, query).catch(() => undefined);
  }
  // A database not created yet has applied nothing; one we cannot read, what the last good release had.
  const last = applied || db === "new" ? undefined : await ctx.ledger.lastGood();
  if (last && /^[0-9a-f]{7,64}$/i.test(last.commit) && (await hasCommit(migDir, last.commit)))
    applied = appliedAtCommit(
      await git(migDir, ["ls-tree", "-r", "--name-only", last.commit, "--", "."]).catch(() => ""),
      last.id,
    );
  const baseline = resolve(ctx.projectDir, DEFAULT_BASELINE);
  const report = await lintMigrations(migDir, {
    timeoutsSetByRunner: true,
    applied: applied?.files,
    accept: await baselineFilter(baseline),
    cwd: resolve(ctx.projectDir, ctx.config.migrations.workDir),
  });
  const skipped = [
    report.skippedApplied ? `${report.skippedApplied} applied migration(s) skipped (${applied?.from})` : "",
    report.accepted ? `${report.accepted} accepted in the baseline ${DEFAULT_BASELINE}` : "",
  ].filter(Boolean);
  const pending = report.migrations - report.skippedApplied;
  if (pending > 0 && report.statements === 0)
    ctx.log.warn(
      `lint checked no statement of the ${pending} pending migration(s) in ${migDir}` +
        (report.unchecked.length
          ? ` (not checkable offline: ${report.unchecked.map((u) => u.file).join(", ")})`
          : "") +
        ": review them by hand",
    );
  else if (report.unchecked.length)
    ctx.log.warn(
      `lint could not check ${report.unchecked.map((u) => `${u.file} (${u.reason})`).join(", ")}: review by hand`,
    );
  const errors = report.findings.filter((f) => f.severity === "error");
  if (!errors.length) return [];
  return [
    `lint found ${errors.length} error(s) in the pending migrations (${errors.map((f) => `${f.file}:${f.line} [${f.rule}]`).join(", ")})` +
      `${skipped.length ? `; ${skipped.join("; ")}` : ""}: see 'safe-deploy lint ${migDir}', or accept them on purpose ` +
      `with 'safe-deploy lint --write-baseline ${migDir}' (docs/adopting.md)`,
  ];
}

/** Checks before anything changes; each problem says what to do. */
export async function preflight(
  ctx: ReleaseContext,
  allowDirty: boolean,
  allowMigrationEdits = false,
): Promise<string[]> {
  const problems: string[] = [];
  const { config, projectDir } = ctx;
  if (!allowDirty) {
    // The stack's own file may differ from the commit (a secret just set): the release records its text.
    // Untracked files count: a new migration nobody committed would run, and no rollback could know it.
    const dirty = await git(projectDir, [
      "status",
      "--porcelain",
      "--untracked-files=all",
      "--",
      ".",
      `:(exclude)Pulumi.${ctx.stackName}.yaml`,
    ]).catch((e: Error) => `?? ${e.message}`);
    if (dirty) {
      problems.push(
        `the git tree has uncommitted changes or untracked files (a release must be reproducible from its ` +
          `commit): commit them, add what is not source to .gitignore, or pass --allow-dirty:\n${dirty
            .split("\n")
            .slice(0, 10)
            .map((l) => `      ${l}`)
            .join("\n")}`,
      );
    }
  }
  const migDir = resolve(projectDir, config.migrations.workDir, config.migrations.dir);
  if (!allowMigrationEdits && existsSync(migDir)) problems.push(...(await migrationEdits(ctx, migDir)));
  // A managed database exists once an update created its container (the stack's `containers` output).
  const dbExists =
    config.database.mode === "external" ||
    !!((await ctx.containers().catch(() => ({}))) as Record<string, string>).database;
  const db = await ctx.database();
  // A new PostgreSQL major cannot start on the old data directory: the upgrade is its own guarded step.
  if (config.database.mode === "container" && dbExists) {
    const { databaseMajorProblem } = await import("../../core/database/upgrade");
    const container = ((await ctx.containers().catch(() => ({}))) as Record<string, string>).database;
    const major = await databaseMajorProblem({
      stack: ctx.stackName,
      image: config.database.image,
      container,
      volumeName: config.database.volumeName,
      dockerHost: config.docker.host,
    }).catch((e: Error) => `could not check the database's PostgreSQL major: ${e.message}`);
    if (major) problems.push(major);
  }
  // Docker must answer wherever the stack's containers run; a stack with none (a Render app on an external
  // database, a pm2 app on one) does not need it at all.
  if (needsDocker(config))
    await run("docker", ["info", "--format", "{{.ServerVersion}}"], {
      env: { ...process.env, DOCKER_HOST: config.docker.host },
      timeout: 30_000,
    }).catch((e: { stderr?: string; message: string }) =>
      problems.push(
        `Docker at ${config.docker.host} does not answer (${(e.stderr || e.message).trim().split("\n")[0]}): start it, or check docker.host`,
      ),
    );
  let dbBytes: number | undefined;
  if (db && dbExists) {
    try {
      dbBytes = Number(
        (
          await runSql(
            db.target,
            parseDatabaseUrl(db.url),
            "SELECT pg_database_size(current_database());",
            "connecting",
          )
        ).trim(),
      );
      // Edits of applied migrations by checksum (issue 15): a data fix changes no file list git could show.
      if (!allowMigrationEdits && existsSync(migDir)) {
        const { recordedChecksumProblems } = await import("../../core/migrations/checksums");
        const sql = (q: string) =>
          runSql(db.target, parseDatabaseUrl(db.url), q, "reading migration checksums");
        problems.push(
          ...(await recordedChecksumProblems(config.migrations.tool, migDir, sql).catch((e: Error) => [
            `the checksums of applied migrations could not be checked: ${ctx.log.redact(e.message)}`,
          ])),
        );
      }
      if (config.rollback.changeStream) {
        const { logicalReadiness } = await import("../../core/changes/ready");
        const verdict = noLossVerdict(
          await logicalReadiness(db.target, parseDatabaseUrl(db.url)),
          config.rollback.requireNoLoss,
        );
        problems.push(...verdict.problems.map((p) => ctx.log.redact(p)));
        if (verdict.warning) ctx.log.warn(ctx.log.redact(verdict.warning));
      }
    } catch (e) {
      problems.push(`the database (${db.where}) is not reachable: ${ctx.log.redact((e as Error).message)}`);
    }
  }
  if (config.migrations.tool !== "command" && existsSync(migDir))
    problems.push(...(await pendingLint(ctx, migDir, dbExists ? (db ?? "unknown") : "new")));
  if (!config.rollback.changeStream) {
    ctx.fileLog.info(
      "rollback.changeStream is off: a rollback with restore loses the writes made after the pre-deploy backup",
    );
  }
  await mkdir(ctx.backupDir, { recursive: true, mode: 0o700 });
  const newest = (await listBackups(ctx.backupDir).catch(() => []))[0];
  const need = Math.max(64 << 20, newest?.sizeBytes ? newest.sizeBytes * 2 : Math.ceil((dbBytes ?? 0) / 2));
  const fs = await statfs(ctx.backupDir);
  const free = fs.bavail * fs.bsize;
  if (free < need) {
    problems.push(
      `only ${(free / 2 ** 20).toFixed(0)} MiB free in ${ctx.backupDir}; the pre-deploy backup needs about ` +
        `${(need / 2 ** 20).toFixed(0)} MiB: free space, prune old backups ('safe-deploy backup prune --dir ${ctx.backupDir}') or set backup.dir`,
    );
  }
  return problems;
}

/** What the preflight says of no-loss rollback (issue 20): problems refuse the deploy, a warning only tells. */
export function noLossVerdict(
  r: Pick<Readiness, "problems" | "tablesWithoutIdentity">,
  requireNoLoss: boolean,
): { problems: string[]; warning?: string } {
  const tables = r.tablesWithoutIdentity;
  const reasons = [
    ...r.problems,
    ...(tables.length && !r.problems.some((p) => tables.some((t) => p.includes(t)))
      ? [
          `table(s) without a primary key or replica identity: ${tables.join(", ")} (their updates and deletes cannot ` +
            "be replayed): add a primary key, or `ALTER TABLE ... REPLICA IDENTITY FULL`",
        ]
      : []),
  ];
  if (!reasons.length) return { problems: [] };
  if (requireNoLoss) {
    return {
      problems: [
        `rollback.requireNoLoss: a rollback of this deploy could lose writes, so it is refused: ${reasons.join("; ")}. ` +
          "Fix the above, or set `rollback.requireNoLoss: false` to deploy anyway",
      ],
    };
  }
  const partly = !r.problems.length;
  return {
    problems: [],
    warning:
      (partly
        ? "no-loss rollback is partial: a rollback with restore would lose the updates and deletes made after this " +
          "deploy to the tables named here"
        : "no-loss rollback is not possible: a rollback with restore would lose every write made after this deploy") +
      ` (${reasons.join("; ")}); \`rollback.requireNoLoss: true\` refuses such a deploy instead`,
  };
}

/** Whether a stack runs anything in Docker: a container database, Docker or Swarm app targets. Pure. */
export function needsDocker(config: {
  app: { target: string };
  database: { mode: string };
  redis?: { enabled: boolean };
}): boolean {
  if (config.app.target === "docker" || config.app.target === "swarm") return true;
  return config.database.mode === "container" || !!config.redis?.enabled;
}
