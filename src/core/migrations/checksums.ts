import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { Client } from "pg";
import { literal } from "../database/quote";
import { ConfigError } from "../errors";
import { isMigrationFile } from "./edits";
import type { Tool } from "./presets";

/**
 * safe-deploy's own record of each applied migration's checksum, as Flyway's history table: an applied
 * migration edited afterwards never runs again, and a data fix changes no schema, so only the file's
 * checksum can tell (issue 15).
 */
const HISTORY_DDL = `CREATE SCHEMA IF NOT EXISTS safe_deploy;
CREATE TABLE IF NOT EXISTS safe_deploy.migration_history (
  tool text NOT NULL, name text NOT NULL, file text NOT NULL, checksum text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(), recorded_by text NOT NULL, PRIMARY KEY (tool, name))`;

/** One migration file: the name its tool records it under, its path in the directory, its checksum. */
export interface MigrationFile {
  name: string;
  file: string;
  checksum: string;
}

/** One recorded migration whose file changed or went away since it was applied. */
export interface ChecksumEdit {
  name: string;
  file: string;
  change: "edited" | "removed";
}

/** SHA-256 of a migration's text, line endings normalised so a CRLF checkout is not an edit. */
export function checksum(text: string): string {
  return createHash("sha256").update(text.replace(/\r\n/g, "\n")).digest("hex");
}

/** Alembic's `revision = "..."` / `down_revision = ...` of a revision file. */
export function alembicRevision(text: string): { revision?: string; down?: string } {
  const get = (k: string) =>
    new RegExp(`^${k}(?:\\s*:[^=\\n]+)?\\s*=\\s*['"]([^'"]+)['"]`, "m").exec(text)?.[1];
  return { revision: get("revision"), down: get("down_revision") };
}

async function walk(root: string, dir: string, depth: number): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.name.startsWith(".") || e.name === "node_modules" || e.name === "__pycache__") continue;
    const p = join(dir, e.name);
    if (e.isDirectory() && depth > 0) out.push(...(await walk(root, p, depth - 1)));
    else if (e.isFile()) out.push(relative(root, p).split(sep).join("/"));
  }
  return out;
}

/**
 * The migration files `tool` runs from `dir`, under the name its own table records: node-pg-migrate the
 * file name without extension, Prisma the directory of `migration.sql`, Alembic the revision id, a
 * custom command the file's path.
 */
export async function migrationFileChecksums(
  tool: Tool,
  dir: string,
): Promise<Array<MigrationFile & { down?: string }>> {
  const files = (await walk(dir, dir, 3)).filter((f) => isMigrationFile(tool, f)).sort();
  const out: Array<MigrationFile & { down?: string }> = [];
  for (const file of files) {
    const text = await readFile(join(dir, file), "utf8");
    let name = file;
    let down: string | undefined;
    if (tool === "node-pg-migrate") name = file.replace(/\.[^.]+$/, "");
    else if (tool === "prisma") name = file.split("/")[0];
    else if (tool === "alembic") {
      const r = alembicRevision(text);
      name = r.revision ?? file;
      down = r.down;
    }
    out.push({ name, file, checksum: checksum(text), down });
  }
  return out;
}

async function exists(client: Client, table: string): Promise<boolean> {
  return !!(await client.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [table])).rows[0].t;
}

/**
 * Names of the migrations the tool's own table says are applied; for Alembic the chain of
 * `down_revision`s below the current revision(s). Undefined for a custom command (no table of its own).
 */
export async function appliedMigrationNames(
  client: Client,
  tool: Tool,
  files: Array<MigrationFile & { down?: string }>,
): Promise<string[] | undefined> {
  if (tool === "node-pg-migrate") {
    if (!(await exists(client, "pgmigrations"))) return [];
    return (
      await client.query<{ name: string }>("SELECT name FROM pgmigrations ORDER BY run_on, id")
    ).rows.map((r) => r.name);
  }
  if (tool === "prisma") {
    if (!(await exists(client, "_prisma_migrations"))) return [];
    return (
      await client.query<{ name: string }>(
        "SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY finished_at",
      )
    ).rows.map((r) => r.name);
  }
  if (tool === "alembic") {
    if (!(await exists(client, "alembic_version"))) return [];
    const current = (await client.query<{ v: string }>("SELECT version_num AS v FROM alembic_version")).rows;
    const down = new Map(files.map((f) => [f.name, f.down]));
    const out = new Set<string>();
    for (const { v } of current)
      for (let rev: string | undefined = v; rev && !out.has(rev); rev = down.get(rev)) out.add(rev);
    return [...out];
  }
  return undefined;
}

/** Creates the history table if needed; returns the recorded `name -> {file, checksum}` of `tool`. */
async function recorded(client: Client, tool: Tool, create: boolean): Promise<Map<string, MigrationFile>> {
  // CREATE SCHEMA IF NOT EXISTS still wants CREATE on the database: only run it when the table is missing.
  if (!(await exists(client, "safe_deploy.migration_history"))) {
    if (!create) return new Map();
    await client.query(HISTORY_DDL);
  }
  const { rows } = await client.query<MigrationFile>(
    "SELECT name, file, checksum FROM safe_deploy.migration_history WHERE tool = $1",
    [tool],
  );
  return new Map(rows.map((r) => [r.name, r]));
}

/**
 * Recorded migrations whose file is now different or gone: the pure comparison behind `migrate check`,
 * `drift` and preflight.
 */
export function compareChecksums(
  files: MigrationFile[],
  recordedRows: Iterable<MigrationFile>,
): ChecksumEdit[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const out: ChecksumEdit[] = [];
  for (const r of recordedRows) {
    const f = byName.get(r.name);
    if (!f) out.push({ name: r.name, file: r.file, change: "removed" });
    else if (f.checksum !== r.checksum) out.push({ name: r.name, file: f.file, change: "edited" });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** What {@link syncChecksums} wrote: checksums recorded now, and recorded ones dropped after a `down`. */
export interface SyncResult {
  recorded: string[];
  forgotten: string[];
}

/**
 * Records the checksum of every applied migration that has none yet (first run: a backfill; after `up`:
 * the ones it applied) and forgets those no longer applied (after `down`, so re-applying an edited file
 * records its new text). A custom command has no table: after a successful `up` every file counts as
 * applied.
 */
export async function syncChecksums(
  client: Client,
  tool: Tool,
  dir: string,
  recordedBy: "up" | "down" | "backfill",
): Promise<SyncResult> {
  const files = await migrationFileChecksums(tool, dir);
  const have = await recorded(client, tool, true);
  const applied =
    (await appliedMigrationNames(client, tool, files)) ??
    (recordedBy === "up" ? files.map((f) => f.name) : [...have.keys()]);
  const appliedSet = new Set(applied);
  const byName = new Map(files.map((f) => [f.name, f]));
  const result: SyncResult = { recorded: [], forgotten: [] };
  for (const name of applied) {
    const f = byName.get(name);
    if (!f || have.has(name)) continue;
    await client.query(
      "INSERT INTO safe_deploy.migration_history (tool, name, file, checksum, recorded_by) VALUES ($1, $2, $3, $4, $5)",
      [tool, name, f.file, f.checksum, recordedBy],
    );
    result.recorded.push(name);
  }
  for (const name of have.keys()) {
    if (appliedSet.has(name)) continue;
    await client.query("DELETE FROM safe_deploy.migration_history WHERE tool = $1 AND name = $2", [
      tool,
      name,
    ]);
    result.forgotten.push(name);
  }
  return result;
}

/** Recorded migrations edited or removed since they were applied (read-only; none when nothing is recorded). */
export async function checksumEdits(client: Client, tool: Tool, dir: string): Promise<ChecksumEdit[]> {
  const have = await recorded(client, tool, false);
  if (!have.size) return [];
  const files = await migrationFileChecksums(tool, dir);
  if (!files.length)
    throw new ConfigError(
      `no ${tool} migration files in ${dir} to check the ${have.size} recorded checksum(s) against: pass the migrations directory (\`--dir\` / \`--migrations\`)`,
    );
  return compareChecksums(files, have.values());
}

/** The sentence for edited applied migrations, naming the way to accept an intended edit. */
export function checksumEditsMessage(edits: ChecksumEdit[]): string {
  return (
    `applied migration(s) changed since safe-deploy recorded their checksum: ${edits.map((e) => `${e.name} (${e.file}, ${e.change})`).join(", ")}. ` +
    `An applied migration never runs again, so the change never reaches the database: restore the file and put the change in a new migration; ` +
    `if the edit is intended and the database already matches it, record the new text with ${edits.map((e) => `\`safe-deploy migrate accept-edit ${e.name}\``).join(", ")}`
  );
}

/** `migrate accept-edit NAME`: records the file's current checksum for an intended edit; returns the old and new checksums. */
export async function acceptEdit(
  client: Client,
  tool: Tool,
  dir: string,
  name: string,
): Promise<{ from: string; to: string }> {
  const have = await recorded(client, tool, true);
  const r = have.get(name);
  if (!r)
    throw new ConfigError(
      `\`accept-edit ${name}\`: no checksum is recorded for ${name} (recorded: ${[...have.keys()].join(", ") || "none"}); it is applied the next time \`safe-deploy migrate up\` runs`,
    );
  const f = (await migrationFileChecksums(tool, dir)).find((x) => x.name === name);
  if (!f)
    throw new ConfigError(
      `\`accept-edit ${name}\`: no file for ${name} in ${dir}; restore it (an applied migration's file must stay)`,
    );
  await client.query(
    "UPDATE safe_deploy.migration_history SET checksum = $3, file = $4, recorded_at = now(), recorded_by = 'accept-edit' WHERE tool = $1 AND name = $2",
    [tool, name, f.checksum, f.file],
  );
  return { from: r.checksum, to: f.checksum };
}

/**
 * Preflight's check through any SQL runner (psql in the database's container, for a managed database):
 * `sql(text)` returns psql `-At` output. No history table yet means nothing recorded, so no problem.
 */
export async function recordedChecksumProblems(
  tool: Tool,
  dir: string,
  sql: (text: string) => Promise<string>,
): Promise<string[]> {
  const has = (await sql("SELECT to_regclass('safe_deploy.migration_history') IS NOT NULL;")).trim();
  if (has !== "t") return [];
  const text = await sql(
    `SELECT name || E'\\t' || file || E'\\t' || checksum FROM safe_deploy.migration_history WHERE tool = ${literal(tool)};`,
  );
  const rows = text
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [name, file, sum] = l.split("\t");
      return { name, file, checksum: sum };
    });
  if (!rows.length) return [];
  const edits = compareChecksums(await migrationFileChecksums(tool, dir), rows);
  return edits.length ? [`${checksumEditsMessage(edits)} (or pass --allow-migration-edits)`] : [];
}
