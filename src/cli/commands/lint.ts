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

/** Lints migration SQL files; throws CheckFailedError (exit 1) when any finding is an error. */
export async function runLint(opts: LintOptions): Promise<void> {
  const { lintPaths, formatFindings, sqlFiles, DEFAULT_PG_VERSION } =
    await import("../../core/migrations/lint");
  const { CheckFailedError, ConfigError } = await import("../../core/errors");
  const out = opts.out ?? ((t: string) => process.stdout.write(t + "\n"));
  if (opts.paths.length === 0)
    throw new ConfigError("`lint` needs at least one PATH (a .sql file or a directory)");
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
  // A directory with nothing to lint (a wrong path, or .js migrations) must not pass as "0 errors".
  const { existsSync } = await import("node:fs");
  const { join } = await import("node:path");
  for (const p of opts.paths) {
    const files = await sqlFiles([p]).catch(notFound);
    if (files.length === 0 && !existsSync(join(p, "alembic.ini")))
      throw new ConfigError(
        `\`lint\`: no .sql file under ${p}, so nothing would be checked; pass the directory of the SQL migrations (or of alembic.ini)`,
      );
  }
  const findings = await lintPaths(opts.paths, { pgVersion }).catch(notFound);
  const errors = findings.filter((f) => f.severity === "error").length;
  if (opts.json)
    out(JSON.stringify({ pgVersion, errors, warnings: findings.length - errors, findings }, null, 2));
  else {
    if (findings.length) out(formatFindings(findings));
    out(`${errors} error(s), ${findings.length - errors} warning(s) (PostgreSQL ${pgVersion})`);
  }
  if (errors > 0)
    throw new CheckFailedError(
      `lint found ${errors} error(s); fix them or allow one on purpose with \`-- safe-deploy: allow RULE\` (rules: docs/lint-rules.md)`,
    );
}

/** Registers `lint PATH...`. */
export function register(program: Command): void {
  program
    .command("lint")
    .description("Report destructive or locking changes in migration SQL (PostgreSQL's own parser)")
    .argument("<paths...>", "SQL files or directories")
    .option(
      "--pg-version <major>",
      "PostgreSQL major version of the target (default: the stack's image, else 15)",
    )
    .option("--stack <name>", "read the PostgreSQL version from this stack's database image")
    .option("--project-dir <dir>", "directory of Pulumi.yaml, for --stack", ".")
    .option("--json", "print the findings as one JSON document")
    .action(async (paths: string[], o: Omit<LintOptions, "paths">) => runLint({ paths, ...o }));
}
