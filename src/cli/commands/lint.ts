import type { Command } from "commander";

/** Options of `safe-deploy lint`. */
export interface LintOptions {
  paths: string[];
  out?: (text: string) => void;
}

/** Lints migration SQL files; throws CheckFailedError (exit 1) when any finding is an error. */
export async function runLint(opts: LintOptions): Promise<void> {
  const { lintPaths, formatFindings, sqlFiles } = await import("../../core/migrations/lint");
  const { CheckFailedError, ConfigError } = await import("../../core/errors");
  const out = opts.out ?? ((t: string) => process.stdout.write(t + "\n"));
  if (opts.paths.length === 0)
    throw new ConfigError("`lint` needs at least one PATH (a .sql file or a directory)");
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
  const findings = await lintPaths(opts.paths).catch(notFound);
  if (findings.length) out(formatFindings(findings));
  const errors = findings.filter((f) => f.severity === "error").length;
  out(`${errors} error(s), ${findings.length - errors} warning(s)`);
  if (errors > 0)
    throw new CheckFailedError(
      `lint found ${errors} error(s); fix them or allow one on purpose with \`-- safe-deploy: allow RULE\``,
    );
}

/** Registers `lint PATH...`. */
export function register(program: Command): void {
  program
    .command("lint")
    .description("Report destructive or locking changes in migration SQL (PostgreSQL's own parser)")
    .argument("<paths...>", "SQL files or directories")
    .action(async (paths: string[]) => runLint({ paths }));
}
