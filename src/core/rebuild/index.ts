import { pipeline } from "node:stream/promises";
import type { Client } from "pg";
import { createBackup } from "../backup/create";
import { catchingSignals } from "../backup/interrupt";
import { carryOver, createLike, describeSession, swapDatabase } from "../backup/restore";
import {
  parseDatabaseUrl,
  pgFailure,
  spawnPg,
  watch,
  withDatabase,
  type Conn,
  type RunTarget,
} from "../backup/runner";
import { holdAdvisoryLock, openSnapshot, runSql } from "../backup/session";
import { ident } from "../database/quote";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { silentLogger, type Logger } from "../log/logger";
import type { Tool } from "../migrations/presets";
import { connect, migrate, runShell } from "../migrations/runner";
import {
  addConstraintsNotValid,
  countTables,
  disableTriggers,
  dropConstraints,
  enableTriggers,
  largeObjects,
  nonEmpty,
  qualified,
  readCatalog,
  readConstraints,
  refreshMaterializedViews,
  relationGrants,
  relationNames,
  sequenceValues,
  setSequences,
  validateConstraints,
} from "./catalog";
import { copyTable } from "./copy";
import { formatPlan, planRebuild, type RebuildPlan } from "./plan";

export { formatPlan, planRebuild, typeCarries, type RebuildPlan } from "./plan";

/** The points a rebuild passes, in order; `onStep` is called at each (tests stop it there). */
export type RebuildStep = "schema" | "plan" | "backup" | "copy" | "validate" | "swap";

/** Options of one rebuild. */
export interface RebuildOptions {
  /** The live database. */
  databaseUrl: string;
  /** Schema source: a database whose schema (`pg_dump --schema-only`) the new database gets... */
  schemaFrom?: string;
  /** ...or a migrations directory applied to the empty new database. */
  migrations?: { dir: string; tool: Tool; workDir?: string };
  /** Where the `safety` backup goes (required unless `dryRun`). */
  backupDir?: string;
  /** Build the schema in a scratch database, print the plan, drop it: the live database is not touched. */
  dryRun?: boolean;
  /** Shown the plan before anything happens to the live database; false cancels. */
  confirm?: (lines: string[]) => Promise<boolean>;
  /** Called with the plan's lines once it is known. */
  onPlan?: (lines: string[]) => void;
  /** Shell command that stops the app (or turns maintenance on) before the backup. */
  stopApp?: string;
  /** Shell command run at the end (success or failure) when `stopApp` ran. */
  startApp?: string;
  onStep?: (step: RebuildStep, signal: AbortSignal) => Promise<void>;
  log?: Logger;
  now?: Date;
}

/** What a rebuild did. */
export interface RebuildResult {
  plan: RebuildPlan;
  dryRun: boolean;
  database: string;
  /** The old database, kept under this name. */
  previousDatabase?: string;
  backupFile?: string;
  /** Rows copied per table. */
  copied: Record<string, number>;
}

const LOCAL: RunTarget = { runIn: "local" };
const stamp = (d: Date) => d.toISOString().replace(/\D/g, "").slice(0, 14);

/** `<db>_<what>_<YYYYMMDDHHMMSS>`, `db` cut so the name fits PostgreSQL's 63 bytes. */
export function datedName(db: string, what: string, now: Date): string {
  const suffix = `_${what}_${stamp(now)}`;
  return db.slice(0, 63 - suffix.length) + suffix;
}

/** The same URL pointed at another database. */
export function urlWithDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = "/" + encodeURIComponent(db);
  return u.toString();
}

const adminConn = (conn: Conn) => withDatabase(conn, conn.database === "postgres" ? "template1" : "postgres");

/** Checks the options before anything runs; every problem named with its flag. */
function checkOptions(o: RebuildOptions): void {
  const problems: string[] = [];
  if (!!o.schemaFrom === !!o.migrations)
    problems.push("pass exactly one schema source: `--schema-from URL` or `--migrations DIR --tool T`");
  if (!o.dryRun && !o.backupDir) problems.push("`--backup-dir` is required (where the safety backup goes)");
  if (o.startApp && !o.stopApp)
    problems.push("`--start-app` needs `--stop-app` (it restarts what that stopped)");
  if (problems.length) throw new ConfigError(problems.join("; "), problems);
  const live = parseDatabaseUrl(o.databaseUrl);
  if (o.schemaFrom) {
    const src = parseDatabaseUrl(o.schemaFrom, "`--schema-from`");
    if (src.host === live.host && src.env.PGPORT === live.env.PGPORT && src.database === live.database)
      throw new ConfigError(
        "`--schema-from` is the live database itself: pass the development database's URL",
      );
  }
}

/**
 * Rebuilds the live database with a new schema and carries its data over, changing nothing on it until
 * the copy is proven: schema into a new `<db>_rebuild_<stamp>` on the same server; plan (what is not
 * carried, what stops it) before anything else; app stopped; `safety` backup; table-by-table COPY from
 * one snapshot; sequences; row counts and constraints checked; then the names swapped in one
 * transaction, the old database kept as `<db>_before_rebuild_<stamp>`. Any failure or signal before the
 * swap drops the new database and leaves the live one as it was.
 */
export async function rebuildDatabase(o: RebuildOptions): Promise<RebuildResult> {
  checkOptions(o);
  const log = o.log ?? silentLogger();
  const conn = parseDatabaseUrl(o.databaseUrl);
  log.addSecret(conn.password);
  if (o.schemaFrom) log.addSecret(parseDatabaseUrl(o.schemaFrom, "`--schema-from`").password);
  const db = conn.database;
  const admin = adminConn(conn);
  return catchingSignals(async (interrupted, abort) => {
    const release = await holdAdvisoryLock(LOCAL, admin, `safe-deploy:restore:${db}`);
    if (!release)
      throw new CannotRunError(
        `a restore or rebuild of database "${db}" is running right now; wait for it to finish, check what it did, then run again`,
      );
    const state = { step: "schema", swapped: false };
    try {
      return await steps(o, conn, log, state, interrupted, abort);
    } catch (e) {
      const sig = interrupted();
      if (!sig || state.swapped) throw e;
      throw new CannotRunError(
        `rebuild interrupted by ${sig} at step "${state.step}": database "${db}" is as it was and the new database was dropped; run the rebuild again`,
      );
    } finally {
      await release().catch(() => {});
    }
  });
}

async function steps(
  o: RebuildOptions,
  conn: Conn,
  log: Logger,
  state: { step: string; swapped: boolean },
  interrupted: () => NodeJS.Signals | undefined,
  abort: AbortSignal,
): Promise<RebuildResult> {
  const db = conn.database;
  const now = o.now ?? new Date();
  const admin = adminConn(conn);
  const at = async (step: RebuildStep) => {
    await o.onStep?.(step, abort);
    if (interrupted()) throw new CannotRunError(`interrupted by ${interrupted()}`);
  };
  const adminClient = await connect(urlWithDatabase(o.databaseUrl, admin.database), "safe-deploy rebuild");
  let props: Parameters<typeof createLike>[1] | undefined;
  try {
    const { rows } = await adminClient.query(
      `SELECT pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collate,
         d.datctype AS ctype, d.datconnlimit AS "connLimit", to_jsonb(d) ->> 'datlocprovider' AS "locProvider",
         to_jsonb(d) ->> 'daticulocale' AS iculocale FROM pg_database d WHERE d.datname = $1`,
      [db],
    );
    props = rows[0];
  } finally {
    await adminClient.end();
  }
  if (!props)
    throw new CannotRunError(
      `database "${db}" does not exist on ${conn.host}:${conn.env.PGPORT}: there is nothing to rebuild (create it with \`safe-deploy migrate up\`, or restore a backup)`,
    );

  const scratch = datedName(db, "rebuild", now);
  const previous = datedName(db, "before_rebuild", now);
  const scratchConn = withDatabase(conn, scratch);
  const scratchUrl = urlWithDatabase(o.databaseUrl, scratch);
  let appStopped = false;
  let live: Client | undefined;
  let target: Client | undefined;
  log.step(
    `schema: building the new schema in database "${scratch}" (undo: nothing to undo, "${db}" is untouched)`,
  );
  await runSql(LOCAL, admin, createLike(scratch, props), "creating the new database");
  try {
    await at("schema");
    if (o.schemaFrom) {
      const source = parseDatabaseUrl(o.schemaFrom, "`--schema-from`");
      await dumpInto(source, scratchConn, ["--schema-only"], "`--schema-from`: pg_dump --schema-only");
      // The migration tool's own table says which migrations the schema holds: it must come from the
      // schema's source, or the tool would run the newer migrations again on the rebuilt database.
      const client = await connect(o.schemaFrom, "safe-deploy rebuild");
      const { rows } = await client
        .query<{ t: string }>(
          `SELECT format('"%s"."%s"', schemaname, tablename) AS t FROM pg_tables WHERE tablename = ANY($1)`,
          [MIGRATION_TABLES],
        )
        .finally(() => client.end());
      if (rows.length)
        await dumpInto(
          source,
          scratchConn,
          ["--data-only", ...rows.flatMap((r) => ["-t", r.t])],
          "`--schema-from`: pg_dump of the migration table",
        );
    } else {
      const m = o.migrations!;
      await migrate({ action: "up", tool: m.tool, dir: m.dir, workDir: m.workDir, databaseUrl: scratchUrl });
    }
    state.step = "plan";
    live = await connect(o.databaseUrl, "safe-deploy rebuild");
    target = await connect(scratchUrl, "safe-deploy rebuild");
    const sourceTables = await readCatalog(live);
    const targetTables = await readCatalog(target);
    const plan = planRebuild(
      sourceTables,
      targetTables,
      await nonEmpty(
        target,
        targetTables.map((t) => t.name),
      ),
    );
    for (const c of plan.nullChecks) {
      const { rows } = await live.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${qualified(c.table)} WHERE ${ident(c.column)} IS NULL`,
      );
      if (Number(rows[0].n) > 0)
        plan.blockers.push(
          `column ${c.table}.${c.column} is NOT NULL in the new schema but ${rows[0].n} live rows hold NULL (COPY writes them as NULL, a DEFAULT does not apply): fill them on the live database first (UPDATE ... WHERE ${c.column} IS NULL) or keep the column nullable`,
        );
    }
    const blobs = await largeObjects(live);
    if (blobs) plan.notCarried.push(`${blobs} large objects (pg_largeobject): COPY carries table rows only`);
    const lines = formatPlan(plan);
    o.onPlan?.(lines);
    await at("plan");
    if (plan.blockers.length)
      throw new CheckFailedError(
        `rebuild refused, nothing changed on "${db}":\n  ${plan.blockers.join("\n  ")}`,
      );
    if (o.dryRun) return { plan, dryRun: true, database: db, copied: {} };
    if (o.confirm && !(await o.confirm(lines)))
      throw new ConfigError(`rebuild cancelled; nothing changed on "${db}"`);

    if (o.stopApp) {
      state.step = "stop-app";
      log.step(`stopping the app: ${o.stopApp}`);
      const r = await runShell(o.stopApp, { cwd: process.cwd(), env: {}, secrets: [conn.password] });
      appStopped = true;
      if (r.code !== 0)
        throw new CannotRunError(
          `\`--stop-app\` exited with ${r.code}: ${r.output.trim().split("\n").slice(-3).join("; ")}; nothing changed on "${db}"`,
        );
    }
    const { rows: others } = await live.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name NOT LIKE 'safe-deploy%'",
    );
    if (Number(others[0].n) > 0)
      log.warn(
        `${others[0].n} other sessions are connected to "${db}": rows they write from now on are not carried over, and the swap ends them. Is the app stopped?`,
      );

    state.step = "backup";
    log.step(`backup: safety backup of "${db}" into ${o.backupDir} (undo: nothing changed yet)`);
    const backup = await createBackup({
      databaseUrl: o.databaseUrl,
      dir: o.backupDir!,
      label: "safety",
      compression: "zstd",
    });
    log.success(`backup: ${backup.file}`);
    await at("backup");

    state.step = "copy";
    log.step(
      `copy: ${plan.copy.length} tables into "${scratch}" (undo: nothing changed on "${db}"; Ctrl-C drops "${scratch}")`,
    );
    const constraints = await readConstraints(target);
    await dropConstraints(target, constraints);
    const triggers = await disableTriggers(target);
    const snap = await openSnapshot(LOCAL, conn);
    const copied: Record<string, number> = {};
    let sourceCounts: Record<string, number>;
    try {
      sourceCounts = await snap.rowCounts();
      for (const [i, t] of plan.copy.entries()) {
        copied[t.table] = await copyTable(conn, scratchConn, snap.snapshot, t);
        log.info(`copy: ${t.table}: ${copied[t.table]} rows`);
        if (i === 0) await at("copy");
      }
      if (!plan.copy.length) await at("copy");
    } finally {
      await snap.close();
    }
    for (const l of await setSequences(target, await sequenceValues(live))) log.info(l);

    state.step = "validate";
    log.step(`validate: row counts and constraints of "${scratch}" (undo: nothing changed on "${db}")`);
    const problems: string[] = [];
    const counts = await countTables(
      target,
      plan.copy.map((c) => c.table),
    );
    for (const t of plan.copy) {
      const want = sourceCounts[t.table] ?? 0;
      if (counts[t.table] !== want)
        problems.push(`table ${t.table}: ${want} rows live, ${counts[t.table]} in the new database`);
    }
    await addConstraintsNotValid(target, constraints);
    problems.push(...(await validateConstraints(target)));
    await enableTriggers(target, triggers);
    for (const v of await refreshMaterializedViews(target)) log.info(`materialized view ${v} refreshed`);
    const present = await relationNames(target);
    const grants = (await relationGrants(live)).filter((g) => present.has(g.rel));
    for (const g of grants) await target.query(g.sql);
    if (grants.length)
      log.info(
        `grants: ${grants.length} carried over from "${db}" (other roles' rights on schemas, tables, views, sequences)`,
      );
    if (problems.length)
      throw new CheckFailedError(
        `the new database does not hold the live data as it should; nothing changed on "${db}" (the new database was dropped):\n  ${problems.join("\n  ")}`,
      );
    log.success(`validate: ${plan.copy.length} tables, row counts equal, every constraint valid`);
    await target.end();
    target = undefined;
    await live.end();
    live = undefined;
    await at("validate");

    state.step = "swap";
    log.step(`swap: "${scratch}" becomes "${db}", the old one is kept as "${previous}"`);
    await carryOver(LOCAL, admin, { db, fresh: scratch, what: "the new database" });
    await at("swap");
    const late = await swapDatabase(LOCAL, admin, { db, fresh: scratch, previous, what: "the new database" });
    state.swapped = true;
    if (late.length)
      log.warn(
        `swap: ended ${late.length} session(s) still connected to "${db}" (${late.map(describeSession).join(", ")}); ` +
          `what they wrote after the copy is only in the kept database "${previous}"`,
      );
    log.success(
      `swap: done. Undo: \`safe-deploy backup restore ${backup.file} --database-url <live URL>\`, or rename back: ` +
        `ALTER DATABASE "${db}" RENAME TO "${db}_rebuilt"; ALTER DATABASE "${previous}" RENAME TO "${db}";`,
    );
    return { plan, dryRun: false, database: db, previousDatabase: previous, backupFile: backup.file, copied };
  } finally {
    await target?.end().catch(() => {});
    await live?.end().catch(() => {});
    if (!state.swapped)
      await runSql(
        LOCAL,
        admin,
        `DROP DATABASE IF EXISTS ${ident(scratch)} WITH (FORCE);`,
        "dropping the new database",
      ).catch((e: Error) =>
        log.error(`could not drop "${scratch}": ${e.message}; drop it by hand (DROP DATABASE "${scratch}")`),
      );
    if (appStopped && o.startApp) {
      log.step(`starting the app: ${o.startApp}`);
      const r = await runShell(o.startApp, { cwd: process.cwd(), env: {}, secrets: [conn.password] }).catch(
        (e: Error) => ({ code: 127, output: e.message }),
      );
      if (r.code !== 0)
        log.error(`\`--start-app\` exited with ${r.code}: ${r.output.trim()}; start the app by hand`);
    } else if (appStopped) log.warn("the app was stopped by `--stop-app`: start it again");
  }
}

/** The tables where node-pg-migrate, Prisma and Alembic record what they applied. */
const MIGRATION_TABLES = ["pgmigrations", "_prisma_migrations", "alembic_version"];

/** `pg_dump ARGS` of `source` piped into psql on `target` (owners and grants left out: they name the source's roles). */
async function dumpInto(source: Conn, target: Conn, args: string[], what: string): Promise<void> {
  const dump = spawnPg(LOCAL, "pg_dump", [...args, "--no-owner", "--no-privileges"], source);
  const load = spawnPg(LOCAL, "psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1"], target);
  dump.stdin!.end();
  load.stdout!.resume();
  const wd = watch(dump);
  const wl = watch(load);
  await pipeline(dump.stdout!, load.stdin!).catch(() => {});
  const [cd, cl] = await Promise.all([wd.done, wl.done]);
  if (cd !== 0) throw pgFailure(what, wd.stderr(), source, LOCAL);
  if (cl !== 0) throw pgFailure("loading the schema into the new database", wl.stderr(), target, LOCAL);
}
