import type { Command } from "commander";
import { toolCommandOptions } from "../shared";

/** Options of `safe-deploy drift`. */
export interface DriftCliOptions {
  /** Required unless `stack` is given. */
  migrations?: string;
  stack?: string;
  projectDir?: string;
  json?: boolean;
  tool?: string;
  workDir?: string;
  databaseUrl?: string;
  scratchUrl?: string;
  /** `--tool command`: the shell command that applies migrations (`{file}`: once per migration file). */
  command?: string;
  /** `--tool command`: prints the latest applied migration, so only those build the expected schema. */
  currentCommand?: string;
  /** The variable the tool reads its URL from, set like DATABASE_URL (`migrations.databaseUrlEnv`). */
  databaseUrlEnv?: string;
  out?: (text: string) => void;
}

/** Compares the live schema with what the migrations build; CheckFailedError (exit 1) on drift. */
export async function runDrift(opts: DriftCliOptions): Promise<void> {
  const { ConfigError, CheckFailedError } = await import("../../core/errors");
  const out = opts.out ?? ((t: string) => process.stdout.write(t + "\n"));
  const databaseUrl = opts.databaseUrl ?? process.env.DATABASE_URL;
  if (!databaseUrl) throw new ConfigError("no database: pass `--database-url` or set DATABASE_URL");
  if (!opts.migrations)
    throw new ConfigError("`drift` needs `--migrations DIR` or `--stack S` to read it from Pulumi.<S>.yaml");
  const migrations = opts.migrations;
  const tool = opts.tool ?? "node-pg-migrate";
  if (!["node-pg-migrate", "prisma", "alembic", "command"].includes(tool))
    throw new ConfigError(`\`--tool\` must be node-pg-migrate|prisma|alembic|command, got "${tool}"`);
  if (tool === "command" && !opts.command)
    throw new ConfigError(
      "`--tool command` needs `--command CMD`: the shell command that applies migrations (with `{file}` and `--current-command`, only the applied ones build the expected schema)",
    );
  if (opts.scratchUrl) {
    const { parseDatabaseUrl } = await import("../../core/backup/runner");
    parseDatabaseUrl(opts.scratchUrl, "`--scratch-url`");
  }
  const { missingMigrationsDirectory } = await import("../../core/migrations/runner");
  const missing = await missingMigrationsDirectory(tool as "prisma", opts.workDir, migrations);
  if (missing)
    throw new ConfigError(
      `\`--migrations\` ${migrations}${missing === migrations ? "" : ` (${missing})`} does not exist or is not a directory; pass the migrations directory, absolute or relative to \`--work-dir\``,
    );
  const { checkDrift, formatDrift } = await import("../../core/migrations/drift");
  const { version, items } = await checkDrift({
    databaseUrl,
    tool: tool as "node-pg-migrate",
    dir: migrations,
    workDir: opts.workDir,
    scratchUrl: opts.scratchUrl,
    custom: opts.command ? { up: opts.command, current: opts.currentCommand } : undefined,
    databaseUrlEnv: opts.databaseUrlEnv,
  });
  const at = `at version ${version ?? "(none)"}`;
  // A data fix edited into an applied migration changes no schema: only its recorded checksum shows it.
  const { connect } = await import("../../core/migrations/runner");
  const { checksumEdits, checksumEditsMessage } = await import("../../core/migrations/checksums");
  const { resolve } = await import("node:path");
  const client = await connect(databaseUrl, "safe-deploy drift");
  const edits = await checksumEdits(
    client,
    tool as "node-pg-migrate",
    resolve(opts.workDir ?? ".", migrations),
  ).finally(() => client.end().catch(() => {}));
  if (opts.json)
    out(
      JSON.stringify(
        {
          drift: items.length > 0 || edits.length > 0,
          version: version ?? null,
          items,
          checksumEdits: edits,
        },
        null,
        2,
      ),
    );
  if (items.length === 0 && edits.length === 0) {
    if (opts.json) return;
    out(`no drift: the live schema matches the migrations ${at}`);
    return;
  }
  if (items.length === 0)
    throw new CheckFailedError(`no schema drift ${at}, but ${checksumEditsMessage(edits)}`);
  if (!opts.json) out(formatDrift(items));
  // What the migrations build but live lacks or has otherwise is as often an applied migration
  // edited after it ran (it never runs again) as a manual change: say both, or one is sent hunting.
  const edited = items.some((i) => i.expected !== undefined)
    ? `; if nobody changed the database by hand, a migration applied before was edited afterwards (\`git log -p -- ${migrations}\`): applied migrations never run again, so restore that file and put the change in a new migration`
    : "";
  throw new CheckFailedError(
    `schema drift: ${items.length} difference(s) between the live database and the migrations ${at}; turn manual changes into a migration or revert them${edited}${edits.length ? `. Also, ${checksumEditsMessage(edits)}` : ""}`,
  );
}

/** Registers `drift --migrations DIR`. */
export function register(program: Command): void {
  toolCommandOptions(
    program
      .command("drift")
      .description("Compare the live schema with the one the migrations build in a scratch database")
      .option(
        "--migrations <dir>",
        "migrations directory, absolute or relative to --work-dir (required without --stack)",
      ),
  )
    .option("--work-dir <dir>", "where the tool runs", ".")
    .option("--database-url <url>", "defaults to $DATABASE_URL")
    .option(
      "--scratch-url <url>",
      "an empty database to build the expected schema in (default: a temporary one on the live server)",
    )
    .option("--json", "print the result as JSON on stdout")
    .option("--stack <name>", "read the migrations' tool, dir and workDir from Pulumi.<stack>.yaml")
    .option("--project-dir <dir>", "directory of Pulumi.yaml, for --stack", ".")
    .action(async (o: DriftCliOptions, cmd: Command) => {
      const { applyStackMigrations } = await import("../stack-migrations");
      applyStackMigrations(cmd, o as DriftCliOptions & Record<string, unknown>, "migrations");
      return runDrift(o);
    });
}
