// Which migrations the target database already applied, read from the tool's own version table, so
// lint judges only what is pending (issue 21: years of applied history refused every deploy).
import { migrationFileChecksums } from "./checksums";
import type { Tool } from "./presets";

/** Runs one query and returns the first column of each row as text (psql -At, or a pg client). */
export type FirstColumn = (sql: string) => Promise<string[]>;

/** What an applied-migrations answer rests on, for the report (`the database's pgmigrations`). */
export interface Applied {
  /** Migration files (relative to the directory, `/`-separated) already applied. */
  files: Set<string>;
  /** Where the answer came from, for messages. */
  from: string;
}

/** The version table of each tool (safe-deploy's own history for a custom command). */
const TABLES: Record<Tool, { table: string; sql: string }> = {
  "node-pg-migrate": { table: "pgmigrations", sql: "SELECT name FROM pgmigrations" },
  prisma: {
    table: "_prisma_migrations",
    sql: "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL",
  },
  alembic: { table: "alembic_version", sql: "SELECT version_num FROM alembic_version" },
  command: {
    table: "safe_deploy.migration_history",
    sql: "SELECT name FROM safe_deploy.migration_history WHERE tool = 'command'",
  },
};

/**
 * The migration files of `dir` the database applied, from the tool's version table; an empty set when
 * the table does not exist yet (a new database: everything is pending). Alembic keeps only the current
 * revision(s): every revision below them in the `down_revision` chain is applied too.
 */
export async function appliedFromDatabase(tool: Tool, dir: string, query: FirstColumn): Promise<Applied> {
  const { table, sql } = TABLES[tool];
  const from = `the database's ${table}`;
  const [exists] = await query(`SELECT to_regclass('${table}') IS NOT NULL`);
  if (!/^(t|true)$/.test(String(exists).trim())) return { files: new Set(), from };
  const names = new Set((await query(sql)).map((n) => n.trim()).filter(Boolean));
  const files = await migrationFileChecksums(tool, dir);
  if (tool === "alembic") {
    const down = new Map(files.map((f) => [f.name, f.down]));
    const below = new Set<string>();
    for (const head of names)
      for (let rev: string | undefined = head; rev && !below.has(rev); rev = down.get(rev)) below.add(rev);
    return { files: new Set(files.filter((f) => below.has(f.name)).map((f) => f.file)), from };
  }
  return { files: new Set(files.filter((f) => names.has(f.name)).map((f) => f.file)), from };
}

/**
 * The migration files of the directory at a good release's commit: that release migrated to its latest,
 * so every one of them is applied. `lsTree` is `git ls-tree -r --name-only COMMIT -- .` run in the
 * migrations directory (paths relative to it).
 */
export function appliedAtCommit(lsTree: string, release: string): Applied {
  return {
    files: new Set(lsTree.split("\n").filter(Boolean)),
    from: `the commit of the last good release ${release}`,
  };
}
