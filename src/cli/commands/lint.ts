import type { Command } from "commander";

/** Options of `safe-deploy lint`. */
export interface LintOptions {
  paths: string[];
  out?: (text: string) => void;
}

/** Lints migration SQL files; throws CheckFailedError (exit 1) when any finding is an error. */
export async function runLint(opts: LintOptions): Promise<void> {
  const { lintPaths, formatFindings } = await import("../../core/migrations/lint");
  const { CheckFailedError, ConfigError } = await import("../../core/errors");
  const out = opts.out ?? ((t: string) => process.stdout.write(t + "\n"));
  if (opts.paths.length === 0)
    throw new ConfigError("`lint` needs at least one PATH (a .sql file or a directory)");
  const findings = await lintPaths(opts.paths).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") throw new ConfigError(`\`lint\`: no such file or directory: ${e.path}`);
    throw e;
  });
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
