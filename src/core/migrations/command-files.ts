// `--tool command` in rehearse and drift (issue 21): the user's own apply command, run once per
// migration file when it names `{file}`, with the user's `current` command telling which file the
// database is at (the SQL runner's own table: dbmate's schema_migrations, Flyway's history, ...).
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "../errors";
import { shellQuote } from "./presets";

/**
 * Migration files of a plain SQL directory, in order: `*.sql` files directly in it, or Prisma's
 * `NAME/migration.sql` layout; paths relative to the directory.
 */
export async function sqlMigrationFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.name.startsWith(".")) continue;
    if (e.isFile() && e.name.endsWith(".sql")) out.push(e.name);
    else if (e.isDirectory() && (await stat(join(dir, e.name, "migration.sql")).catch(() => undefined)))
      out.push(`${e.name}/migration.sql`);
  }
  return out;
}

/** The names a runner may record a file under: path, file name, name without `.sql`, directory, leading version. */
export function fileIds(file: string): string[] {
  const parts = file.split("/");
  const base =
    parts.length > 1 && parts[parts.length - 1] === "migration.sql" ? parts[0] : parts[parts.length - 1];
  const bare = base.replace(/\.sql$/, "");
  const version = /^(\d+)/.exec(bare)?.[1];
  return [...new Set([file, base, bare, ...(version ? [version, String(Number(version))] : [])])];
}

/** Index of the file the `current` command's output names (its last non-empty line), -1 for none applied. */
export function currentIndex(files: string[], output: string): number {
  const cur = output.trim().split("\n").pop()?.trim() ?? "";
  if (!cur) return -1;
  const i = files.findIndex((f) => fileIds(f).includes(cur));
  if (i < 0)
    throw new ConfigError(
      `the \`current\` command (\`--current-command\`) printed "${cur}", which names no migration file (${files.slice(0, 3).join(", ")}${files.length > 3 ? ", ..." : ""}): it must print the latest applied migration's file name, name without .sql, or version number, or nothing when none is applied`,
    );
  return i;
}

/** The apply command for one file: `{file}` becomes the quoted path relative to the migrations directory. */
export function applyFileCommand(up: string, dir: string, file: string): string {
  return up.replace(/\{file\}/g, shellQuote(join(dir, file)));
}

/** The step name of an apply command without `{file}`: it applies whatever is pending at once. */
export const WHOLE_COMMAND = "all pending (one run of --command)";

/** One step of a `--tool command` rehearsal or drift build. */
export interface CommandStep {
  name?: string;
  custom: { up: string };
}

/**
 * The steps that apply what is pending: with `{file}` in `up`, one per file after the one `current`
 * names (every file when there is no `current` command and nothing says otherwise); without it,
 * the whole command as one step.
 */
export async function commandSteps(o: {
  dir: string;
  up: string;
  current?: string;
  run: (cmd: string) => Promise<{ code: number; output: string }>;
  /** Stop after this file (drift: the live database's current one); default: all. */
  until?: number;
}): Promise<CommandStep[]> {
  if (!o.up)
    throw new ConfigError("`--tool command` needs `--command`: the shell command that applies migrations");
  if (!o.up.includes("{file}")) return [{ name: WHOLE_COMMAND, custom: { up: o.up } }];
  const files = await sqlMigrationFiles(o.dir);
  const from = o.current ? await currentOf(o, files) : -1;
  const to = o.until ?? files.length - 1;
  return files
    .slice(from + 1, to + 1)
    .map((f) => ({ name: f, custom: { up: applyFileCommand(o.up, o.dir, f) } }));
}

/** Runs the `current` command and returns the index of the file it names. */
export async function currentOf(
  o: { current?: string; run: (cmd: string) => Promise<{ code: number; output: string }> },
  files: string[],
): Promise<number> {
  if (!o.current) return -1;
  const r = await o.run(o.current);
  if (r.code !== 0)
    throw new ConfigError(
      `the \`current\` command (\`--current-command\`) failed (exit ${r.code}): ${r.output.trim().split("\n").pop()}; it must print the latest applied migration, or nothing`,
    );
  return currentIndex(files, r.output);
}
