import { randomBytes } from "node:crypto";
import { access, cp, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Client } from "pg";
import { stoppedBySignal } from "../backup/interrupt";
import { CannotRunError, ConfigError } from "../errors";
import { versionQuery, type CustomCommands, type Tool } from "./presets";
import { urlSecrets } from "../log/redact";
import { connect, migrate, runShell, schemaVersion, toolEnv } from "./runner";

/** A schema flattened to `category -> object key -> definition`, so two schemas compare as maps. */
export type SchemaSnapshot = Record<string, Record<string, string>>;

// safe_deploy is safe-deploy's own bookkeeping (row guard, migration checksums), not the app's schema.
const USER_SCHEMAS = `NOT IN ('pg_catalog', 'information_schema', 'safe_deploy') AND %s NOT LIKE 'pg_toast%%' AND %s NOT LIKE 'pg_temp%%'`;
const userSchema = (col: string) => `${col} ${USER_SCHEMAS.replace(/%s/g, col).replace(/%%/g, "%")}`;

/** Catalog queries, each returning rows of (k, v). Extension-owned objects are left out. */
const QUERIES: Record<string, string> = {
  extension: `SELECT extname AS k, '' AS v FROM pg_extension WHERE extname <> 'plpgsql'`,
  enum: `SELECT n.nspname || '.' || t.typname AS k, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) AS v
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace GROUP BY 1`,
  table: `SELECT n.nspname || '.' || c.relname AS k, CASE c.relkind WHEN 'p' THEN 'partitioned' ELSE '' END AS v
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND ${userSchema("n.nspname")}`,
  column: `SELECT n.nspname || '.' || c.relname || '.' || a.attname AS k,
      format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
      || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') AS v
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ${userSchema("n.nspname")}`,
  index: `SELECT n.nspname || '.' || ic.relname AS k, pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END AS v
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace WHERE ${userSchema("n.nspname")}`,
  constraint: `SELECT n.nspname || '.' || c.relname || '.' || con.conname AS k, pg_get_constraintdef(con.oid) AS v
    FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${userSchema("n.nspname")}`,
  view: `SELECT n.nspname || '.' || c.relname AS k, pg_get_viewdef(c.oid) AS v
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND ${userSchema("n.nspname")}`,
  function: `SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS k,
      pg_get_function_result(p.oid) || ' ' || md5(p.prosrc) AS v
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE ${userSchema("n.nspname")} AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')`,
  sequence: `SELECT n.nspname || '.' || c.relname AS k,
      format_type(s.seqtypid, NULL) || ' increment ' || s.seqincrement || ' min ' || s.seqmin || ' max ' || s.seqmax AS v
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${userSchema("n.nspname")}`,
};

/** Reads the catalog of the database `client` is connected to. */
export async function snapshotSchema(client: Client): Promise<SchemaSnapshot> {
  const out: SchemaSnapshot = {};
  for (const [cat, sql] of Object.entries(QUERIES)) {
    const { rows } = await client.query<{ k: string; v: string }>(sql);
    out[cat] = Object.fromEntries(rows.map((r) => [r.k, r.v ?? ""]));
  }
  return out;
}

/** One difference between the schema the migrations build and the live one. */
export interface DriftItem {
  category: string;
  key: string;
  expected?: string;
  live?: string;
}

/** Differences, sorted by category and key; empty when the schemas match. */
export function diffSchemas(expected: SchemaSnapshot, live: SchemaSnapshot): DriftItem[] {
  const out: DriftItem[] = [];
  for (const cat of Object.keys(QUERIES)) {
    const e = expected[cat] ?? {};
    const l = live[cat] ?? {};
    for (const key of [...new Set([...Object.keys(e), ...Object.keys(l)])].sort()) {
      if (e[key] !== l[key]) out.push({ category: cat, key, expected: e[key], live: l[key] });
    }
  }
  return out;
}

/** `- missing in live`, `+ only in live`, `~ differs` lines a person can read. */
export function formatDrift(items: DriftItem[]): string {
  return items
    .map((d) => {
      const def = (v?: string) => (v ? `: ${v}` : "");
      if (d.live === undefined)
        return `- ${d.category} ${d.key}${def(d.expected)} (the migrations create it; live lacks it)`;
      if (d.expected === undefined)
        return `+ ${d.category} ${d.key}${def(d.live)} (only in live; no migration creates it)`;
      return `~ ${d.category} ${d.key}\n    migrations: ${d.expected}\n    live:       ${d.live}`;
    })
    .join("\n");
}

/** A throwaway database on the same server as `databaseUrl`, dropped by `drop()`. */
export async function createScratchDatabase(
  databaseUrl: string,
  prefix = "safe_deploy_scratch",
): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  const admin = await connect(databaseUrl, "safe-deploy scratch");
  try {
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE template0`);
  } catch (e) {
    // The advice `backup verify --restore-test` gives (core/backup/runner.ts pgFailure), plus the way round.
    if ((e as { code?: string }).code === "42501") {
      const user = decodeURIComponent(new URL(databaseUrl).username) || "(default user)";
      throw new CannotRunError(
        `role "${user}" may not create databases, and ${prefix.includes("rehearsal") ? "a rehearsal restores the backup" : "a drift check builds the expected schema"} ` +
          `into a new one: grant it with \`ALTER ROLE "${user}" CREATEDB\` or use an admin's \`--database-url\`, or pass \`--scratch-url\` (an empty database to use instead)`,
      );
    }
    throw e;
  } finally {
    await admin.end();
  }
  const u = new URL(databaseUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = await connect(databaseUrl, "safe-deploy scratch");
      try {
        await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Options of {@link checkDrift}. */
export interface DriftOptions {
  databaseUrl: string;
  tool: Tool;
  dir: string;
  workDir?: string;
  custom?: Partial<CustomCommands>;
  /** An empty database to build the expected schema in; default: a scratch database on the live server. */
  scratchUrl?: string;
  /** The variable the tool reads its URL from besides DATABASE_URL (`migrations.databaseUrlEnv`). */
  databaseUrlEnv?: string;
}

/** Names of the Prisma migrations `_prisma_migrations` records as applied (finished, not rolled back), in order. */
export async function appliedPrismaMigrations(client: Client): Promise<string[]> {
  const t = await client.query<{ t: string | null }>("SELECT to_regclass('_prisma_migrations')::text AS t");
  if (!t.rows[0].t) return [];
  const { rows } = await client.query<{ name: string }>(
    `SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL
     GROUP BY migration_name ORDER BY min(finished_at), migration_name`,
  );
  return rows.map((r) => r.name);
}

/**
 * A temporary copy of a Prisma layout (`<dir>/../schema.prisma`, `<dir>/migration_lock.toml`,
 * `<dir>/<name>/`) holding only the migrations in `names`: `prisma migrate deploy` takes no target, so
 * this is how the scratch database stops at the live database's migrations. `remove()` deletes it.
 */
export async function stagePrismaMigrations(
  dir: string,
  names: string[],
): Promise<{ dir: string; remove: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), "safe-deploy-prisma-"));
  const remove = () => rm(root, { recursive: true, force: true });
  try {
    const staged = join(root, "migrations");
    await mkdir(staged);
    await cp(join(dirname(dir), "schema.prisma"), join(root, "schema.prisma"));
    const lock = join(dir, "migration_lock.toml");
    if (
      await access(lock).then(
        () => true,
        () => false,
      )
    )
      await cp(lock, join(staged, "migration_lock.toml"));
    for (const name of names) {
      const from = join(dir, name);
      if (
        await access(from).then(
          () => true,
          () => false,
        )
      )
        await cp(from, join(staged, name), { recursive: true });
    }
    return { dir: staged, remove };
  } catch (e) {
    await remove();
    throw e;
  }
}

/**
 * Builds the expected schema by applying the migrations to a scratch database (only those the live
 * database has applied, so pending migrations are not drift) and compares catalogs with the live one.
 */
export async function checkDrift(opts: DriftOptions): Promise<{ version?: string; items: DriftItem[] }> {
  // Caught so Ctrl-C while the expected schema is built still drops the scratch database, and the
  // tool killed by the same signal is not reported as a failed migration.
  return stoppedBySignal(
    () => driftSteps(opts),
    (sig) =>
      `drift check interrupted by ${sig}: ${opts.scratchUrl ? "" : "the scratch database was dropped and "}nothing was compared; run it again`,
  );
}

/** The database a session is in, on that server: the postmaster's start time tells servers apart. */
async function databaseIdentity(c: Client): Promise<string> {
  const { rows } = await c.query<{ id: string }>(
    "SELECT current_database() || '@' || pg_postmaster_start_time()::text AS id",
  );
  return rows[0].id;
}

/**
 * The expected schema is built in `--scratch-url`: the live database itself (nothing to apply, so it
 * matches itself) or one holding other objects would hide drift. One a previous run built (it holds
 * the tool's table) is fine: the migrations take it to the live version.
 */
async function checkScratch(url: string, tool: Tool, liveId: string): Promise<void> {
  const c = await connect(url, "safe-deploy drift");
  try {
    if ((await databaseIdentity(c)) === liveId)
      throw new ConfigError(
        "`--scratch-url` is the live database itself: the migrations would be compared with what they already built there, so drift could never show. Pass an empty database, or leave the flag out for a temporary one on the live server",
      );
    const own = versionQuery(tool)?.table;
    if (own && (await c.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [own])).rows[0].t)
      return;
    const snap = await snapshotSchema(c);
    const found = Object.entries(snap).flatMap(([cat, m]) => Object.keys(m).map((k) => `${cat} ${k}`));
    if (found.length)
      throw new ConfigError(
        `\`--scratch-url\` database "${c.database}" is not empty (${found.slice(0, 3).join(", ")}${found.length > 3 ? `, ${found.length - 3} more` : ""}): the expected schema is built there, and objects no migration creates would hide drift. Pass an empty database, or leave the flag out for a temporary one on the live server`,
      );
  } finally {
    await c.end();
  }
}

async function driftSteps(opts: DriftOptions): Promise<{ version?: string; items: DriftItem[] }> {
  const live = await connect(opts.databaseUrl, "safe-deploy drift");
  let liveSnap: SchemaSnapshot;
  let version: string | undefined;
  let prismaApplied: string[] = [];
  let liveId: string;
  try {
    version = await schemaVersion(live, opts.tool);
    if (opts.tool === "prisma") prismaApplied = await appliedPrismaMigrations(live);
    liveSnap = await snapshotSchema(live);
    liveId = await databaseIdentity(live);
  } finally {
    await live.end();
  }
  if (opts.scratchUrl) await checkScratch(opts.scratchUrl, opts.tool, liveId);
  const scratch = opts.scratchUrl
    ? { url: opts.scratchUrl, drop: async () => {} }
    : await createScratchDatabase(opts.databaseUrl);
  try {
    const run = {
      action: "up" as const,
      tool: opts.tool,
      workDir: opts.workDir,
      custom: opts.custom,
      databaseUrlEnv: opts.databaseUrlEnv,
    };
    // A custom command builds everything, unless it takes `{file}` and a `current` command says where
    // the live database is: then only the files up to that one. Otherwise no version means nothing
    // applied yet, so the expected schema is an empty one.
    if (opts.tool === "command") {
      const { commandSteps, currentOf, sqlMigrationFiles } = await import("./command-files");
      const cwd = resolve(opts.workDir ?? ".");
      const dir = resolve(cwd, opts.dir);
      const up = opts.custom?.up ?? "";
      const until =
        up.includes("{file}") && opts.custom?.current
          ? await currentOf(
              {
                current: opts.custom.current,
                run: (cmd) =>
                  runShell(cmd, {
                    cwd,
                    env: toolEnv("command", opts.databaseUrl, opts.databaseUrlEnv),
                    secrets: urlSecrets(opts.databaseUrl),
                  }),
              },
              await sqlMigrationFiles(dir),
            )
          : undefined;
      if (until !== undefined && until >= 0) version = (await sqlMigrationFiles(dir))[until];
      const steps = await commandSteps({ dir, up, run: async () => ({ code: 0, output: "" }), until });
      for (const step of steps)
        await migrate({ ...run, custom: step.custom, dir: opts.dir, databaseUrl: scratch.url });
    } else if (version !== undefined && opts.tool === "prisma") {
      const dir = resolve(opts.workDir ?? ".", opts.dir);
      const staged = await stagePrismaMigrations(dir, prismaApplied);
      try {
        await migrate({ ...run, dir: staged.dir, databaseUrl: scratch.url });
      } finally {
        await staged.remove();
      }
    } else if (version !== undefined)
      await migrate({ ...run, target: version, dir: opts.dir, databaseUrl: scratch.url });
    const c = await connect(scratch.url, "safe-deploy drift");
    try {
      let items = diffSchemas(await snapshotSchema(c), liveSnap);
      // Nothing applied, but the tool's own table exists (created empty, or emptied by migrating all
      // the way down): that table is the tool's bookkeeping, not drift.
      const own = version === undefined ? versionQuery(opts.tool)?.table : undefined;
      if (own) items = items.filter((i) => !new RegExp(`^[^.]+\\.${own}($|[._])`).test(i.key));
      return { version, items };
    } finally {
      await c.end();
    }
  } finally {
    await scratch.drop();
  }
}
