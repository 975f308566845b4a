import type { StackConfig } from "../../config";

type Tool = StackConfig["migrations"]["tool"];

/** One applied migration that changed since the release that applied it. */
export interface MigrationEdit {
  /** Path relative to the migrations directory. */
  file: string;
  change: "edited" | "removed";
}

/**
 * Whether `file` (relative to the migrations directory, `/`-separated) is a migration `tool` runs:
 * node-pg-migrate reads the directory's own files, Prisma `NAME/migration.sql`, Alembic `versions/*.py`;
 * a custom command is assumed to run `.sql` files. Other files (a README, Alembic's env.py) may change.
 */
export function isMigrationFile(tool: Tool, file: string): boolean {
  const base = file.split("/").pop() ?? "";
  if (base.startsWith(".")) return false;
  switch (tool) {
    case "node-pg-migrate":
      return !file.includes("/") && /\.(js|cjs|mjs|ts|sql)$/.test(file);
    case "prisma":
      return /^[^/]+\/migration\.sql$/.test(file);
    case "alembic":
      return /(^|\/)versions\/[^/]+\.py$/.test(file);
    case "command":
      return file.endsWith(".sql");
  }
}

/**
 * The migrations that the release at the compared commit had applied (every migration file it had: a
 * good release migrated to the latest) and that are now different or gone, from `git diff --name-status
 * --no-renames --relative COMMIT -- .` run in the migrations directory. Added files are new migrations.
 */
export function appliedMigrationEdits(tool: Tool, nameStatus: string): MigrationEdit[] {
  const out: MigrationEdit[] = [];
  for (const line of nameStatus.split("\n")) {
    const m = /^([A-Z])\d*\t(.+)$/.exec(line);
    if (!m || !isMigrationFile(tool, m[2])) continue;
    if (m[1] === "M" || m[1] === "T") out.push({ file: m[2], change: "edited" });
    else if (m[1] === "D") out.push({ file: m[2], change: "removed" });
  }
  return out;
}
