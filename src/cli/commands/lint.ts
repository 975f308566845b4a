import type { Command } from "commander";

/** Options of `safe-deploy lint`. */
export interface LintOptions {
  paths: string[];
  /** PostgreSQL major version of the target; default: the `--stack`'s database image, else 15. */
  pgVersion?: string | number;
  /** Stack whose `safe-deploy:database.image` gives the PostgreSQL version. */
  stack?: string;
  /** Directory of Pulumi.yaml (for `--stack`), default `.`. */
  projectDir?: string;
  /** Print one JSON document instead of text. */
  json?: boolean;
  /** Judge only the migrations this database has not applied (its tool's version table). */
  databaseUrl?: string;
  /** Whose version table to read; default from the layout (alembic.ini, NAME/migration.sql, else node-pg-migrate). */
  tool?: string;
  /** The baseline file (default `.safe-deploy/lint-baseline.json`); used when it exists. */
  baseline?: string;
  /** Write every current finding to the baseline instead of reporting them. */
  writeBaseline?: boolean;
  out?: (text: string) => void;
}

/**
 * The PostgreSQL major version of a stack's database, from `Pulumi.<stack>.yaml` (no Pulumi CLI needed):
 * `safe-deploy:database.image`, the schema's default `postgres:15` when unset; undefined for an
 * external database, whose version lint cannot know.
 */
export async function stackPgVersion(projectDir: string, stack: string): Promise<number | undefined> {
  const { readFile } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const { parse } = await import("yaml");
  const { ConfigError } = await import("../../core/errors");
  const { pgVersionFromImage } = await import("../../core/migrations/lint");
  const file = join(projectDir, `Pulumi.${stack}.yaml`);
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT")
      throw new ConfigError(`\`lint --stack ${stack}\`: no ${file}; pass --project-dir or --pg-version`);
    throw e;
  });
  const db = ((parse(text) as { config?: Record<string, unknown> } | null)?.config?.[
    "safe-deploy:database"
  ] ?? {}) as { mode?: string; image?: string };
  if (db.mode === "external") return undefined;
  const image = db.image ?? "postgres:15";
  const v = pgVersionFromImage(image);
  if (v === undefined)
    throw new ConfigError(
      `\`lint --stack ${stack}\`: cannot tell the PostgreSQL version of the database image ${image}; pass --pg-version`,
    );
  return v;
}

/** The tool whose version table tells what a directory's database applied, from its layout. */
export async function detectTool(dir: string): Promise<"alembic" | "prisma" | "node-pg-migrate"> {
  const { existsSync } = await import("node:fs");
  const { readdir } = await import("node:fs/promises");
  const { join } = await import("node:path");
  if (existsSync(join(dir, "alembic.ini"))) return "alembic";
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.some((n) => existsSync(join(dir, n, "migration.sql"))) ? "prisma" : "node-pg-migrate";
}

/**
 * Lints migrations (SQL files, node-pg-migrate JS/TS, Alembic); throws CheckFailedError (exit 1) when
 * any finding is an error. With `databaseUrl`, only the migrations that database has not applied are
 * judged; findings the baseline file accepted are left out; `writeBaseline` accepts every finding.
 */
export async function runLint(opts: LintOptions): Promise<void> {
  const { lintMigrations, formatFindings, DEFAULT_PG_VERSION } = await import("../../core/migrations/lint");
  const { DEFAULT_BASELINE, baselineFilter, writeBaseline } = await import("../../core/migrations/baseline");
  const { CheckFailedError, ConfigError } = await import("../../core/errors");
  const out = opts.out ?? ((t: string) => process.stdout.write(t + "\n"));
  if (opts.paths.length === 0)
    throw new ConfigError("`lint` needs at least one PATH (a .sql file or a directory)");
  const tools = ["node-pg-migrate", "prisma", "alembic", "command"];
  if (opts.tool !== undefined && !tools.includes(opts.tool))
    throw new ConfigError(`\`--tool\` must be one of ${tools.join(", ")}, not ${opts.tool}`);
  if (opts.writeBaseline && opts.databaseUrl)
    throw new ConfigError(
      "`--write-baseline` accepts the findings of every migration, applied or not: drop `--database-url`",
    );
  let pgVersion: number | undefined;
  if (opts.pgVersion !== undefined) {
    pgVersion = Number(opts.pgVersion);
    if (!Number.isInteger(pgVersion) || pgVersion < 9 || pgVersion > 99)
      throw new ConfigError(
        `\`--pg-version\` must be a PostgreSQL major version like 15, not ${String(opts.pgVersion)}`,
      );
  } else if (opts.stack) pgVersion = await stackPgVersion(opts.projectDir ?? ".", opts.stack);
  pgVersion ??= DEFAULT_PG_VERSION;
  const notFound = (e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") throw new ConfigError(`\`lint\`: no such file or directory: ${e.path}`);
    throw e;
  };
  const baselineFile = opts.baseline ?? DEFAULT_BASELINE;
  const accept = opts.writeBaseline ? undefined : await baselineFilter(baselineFile);
  const { stat } = await import("node:fs/promises");
  const reports = [];
  for (const p of opts.paths) {
    const isDir = (await stat(p).catch(notFound)).isDirectory();
    let applied;
    if (opts.databaseUrl && isDir) {
      const { appliedFromDatabase } = await import("../../core/migrations/pending");
      const { connect } = await import("../../core/migrations/runner");
      const client = await connect(opts.databaseUrl, "safe-deploy lint");
      try {
        const tool = (opts.tool ?? (await detectTool(p))) as "node-pg-migrate";
        applied = await appliedFromDatabase(tool, p, async (q) =>
          (await client.query<Record<string, unknown>>(q)).rows.map((r) => String(Object.values(r)[0])),
        );
      } finally {
        await client.end();
      }
    }
    const report = await lintMigrations(p, { pgVersion, applied: applied?.files, accept }).catch(notFound);
    // A directory with nothing to lint (a wrong path) must not pass as "0 errors".
    if (report.migrations === 0)
      throw new ConfigError(
        `\`lint\`: no migration under ${p} (.sql files, node-pg-migrate .js/.ts, or alembic.ini), so nothing would be checked; pass the migrations directory`,
      );
    const pending = report.migrations - report.skippedApplied;
    if (pending > 0 && report.statements === 0)
      throw new ConfigError(
        `\`lint\`: ${pending} migration(s) under ${p} but 0 statements could be checked` +
          (report.unchecked.length
            ? ` (not checkable offline: ${report.unchecked.map((u) => `${u.file}: ${u.reason}`).join("; ")})`
            : "") +
          `: nothing was judged, which is not "0 problems"`,
      );
    reports.push({ path: p, from: applied?.from, ...report });
  }
  const findings = reports.flatMap((r) => r.findings);
  if (opts.writeBaseline) {
    const b = await writeBaseline(baselineFile, findings);
    out(
      `wrote ${b.entries.length} accepted finding(s) to ${baselineFile}: commit it; later lints and deploys skip them and report any new or changed statement`,
    );
    return;
  }
  const errors = findings.filter((f) => f.severity === "error").length;
  const skipped = reports.reduce((n, r) => n + r.skippedApplied, 0);
  const accepted = reports.reduce((n, r) => n + r.accepted, 0);
  const unchecked = reports.flatMap((r) => r.unchecked);
  if (opts.json) {
    const summary = { pgVersion, errors, warnings: findings.length - errors };
    const extra = { skippedApplied: skipped, accepted, unchecked };
    out(JSON.stringify({ ...summary, ...extra, findings }, null, 2));
  } else {
    if (findings.length) out(formatFindings(findings));
    for (const u of unchecked) out(`${u.file}: not checkable offline: ${u.reason}`);
    const parts = [`${errors} error(s), ${findings.length - errors} warning(s) (PostgreSQL ${pgVersion})`];
    for (const r of reports)
      if (r.skippedApplied)
        parts.push(`${r.skippedApplied} migration(s) of ${r.path} skipped as applied (${r.from})`);
    if (accepted) parts.push(`${accepted} accepted in the baseline ${baselineFile}`);
    if (unchecked.length) parts.push(`${unchecked.length} not checkable offline`);
    out(parts.join("; "));
  }
  if (errors > 0)
    throw new CheckFailedError(
      `lint found ${errors} error(s); fix them, allow one on purpose with \`-- safe-deploy: allow RULE\` (rules: docs/lint-rules.md), or accept the existing ones with \`safe-deploy lint --write-baseline\` (docs/adopting.md)`,
    );
}

/** Registers `lint PATH...`. */
export function register(program: Command): void {
  program
    .command("lint")
    .description(
      "Report destructive or locking changes in migrations: SQL, node-pg-migrate JS/TS, Alembic (PostgreSQL's own parser)",
    )
    .argument("<paths...>", "migration files or directories")
    .option(
      "--pg-version <major>",
      "PostgreSQL major version of the target (default: the stack's image, else 15)",
    )
    .option("--stack <name>", "read the PostgreSQL version from this stack's database image")
    .option("--project-dir <dir>", "directory of Pulumi.yaml, for --stack", ".")
    .option("--json", "print the findings as one JSON document")
    .option(
      "--database-url <url>",
      "judge only the migrations this database has not applied (read from the tool's version table)",
    )
    .option(
      "--tool <tool>",
      "whose version table --database-url reads (default: from the directory's layout)",
    )
    .option("--baseline <file>", "accepted findings to skip", ".safe-deploy/lint-baseline.json")
    .option("--write-baseline", "accept every current finding: write them to the baseline file")
    .action(async (paths: string[], o: Omit<LintOptions, "paths">) => runLint({ paths, ...o }));
}
