// `migrate`/`rehearse`/`drift --stack S` read where the migrations are from the stack config, as `up`
// does: their own defaults (`./migrations`) disagreed with the config's `examples/app/migrations` (issue 16).
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { parse } from "yaml";
import { ConfigError } from "../core/errors";

/** Where a stack's migrations are: `safe-deploy:migrations` of `Pulumi.<stack>.yaml`, schema defaults. */
export interface StackMigrations {
  tool: string;
  /** Relative to `workDir` (or absolute). */
  dir: string;
  /** Absolute: the config's `workDir` resolved against the project directory. */
  workDir: string;
  /** `tool: command`'s apply command. */
  command?: string;
  /** The variable the tool reads its URL from (`migrations.databaseUrlEnv`). */
  databaseUrlEnv?: string;
}

/** Reads `safe-deploy:migrations` from `<projectDir>/Pulumi.<stack>.yaml` (no Pulumi CLI needed). */
export function stackMigrations(projectDir: string, stack: string): StackMigrations {
  const file = join(resolve(projectDir), `Pulumi.${stack}.yaml`);
  let doc: { config?: Record<string, unknown> } | null;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError(
      `cannot read ${file}: ${(e as Error).message}; check \`--stack\` and \`--project-dir\``,
    );
  }
  const m = (doc?.config?.["safe-deploy:migrations"] ?? {}) as Record<string, unknown>;
  const str = (k: string, d: string) => (typeof m[k] === "string" && m[k] ? (m[k] as string) : d);
  // The defaults of MigrationsSchema (src/config/schema.ts).
  return {
    tool: str("tool", "node-pg-migrate"),
    dir: str("dir", "examples/app/migrations"),
    workDir: resolve(projectDir, str("workDir", ".")),
    command: str("command", "") || undefined,
    databaseUrlEnv: str("databaseUrlEnv", "") || undefined,
  };
}

/**
 * With `--stack`, fills the options the user did not pass (commander's value source is `default` or
 * none) from the stack config: `tool`, the migrations directory (option `dirKey`) and `workDir`.
 */
export function applyStackMigrations(
  cmd: Command,
  o: { stack?: string; projectDir?: string; tool?: string; workDir?: string } & Record<string, unknown>,
  dirKey: "dir" | "migrations",
): void {
  if (!o.stack) return;
  const s = stackMigrations(o.projectDir ?? ".", o.stack);
  const unset = (k: string) => {
    const src = cmd.getOptionValueSource(k);
    return src === undefined || src === "default";
  };
  if (unset("tool")) o.tool = s.tool;
  if (unset(dirKey)) o[dirKey] = s.dir;
  if (unset("workDir")) o.workDir = s.workDir;
  if (unset("databaseUrlEnv") && s.databaseUrlEnv) o.databaseUrlEnv = s.databaseUrlEnv;
  // `migrate --command` is one action's command; the config's is the apply command rehearse/drift run.
  if (dirKey === "migrations" && unset("command") && s.command) o.command = s.command;
}
