import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Conn, RunTarget } from "../backup/runner";
import { psqlSession, runSql } from "../backup/session";
import { CannotRunError, SafeDeployError } from "../errors";
import {
  currentLsn,
  readChanges,
  type Change,
  type Row,
  type StreamRelation,
  type StreamTransaction,
} from "./decode";
import { ident, literal } from "../database/quote";
import { errorText, lsnValue, outLine, qualified } from "./sql";

/**
 * Bookkeeping tables of migration tools. A transaction that writes to one is a migration's (the tools
 * here record a migration in the same transaction as its DDL and DML), so none of its changes are
 * replayed, and these tables themselves never are: the restored database keeps its own history.
 */
export const MIGRATION_TABLES = [
  "pgmigrations", // node-pg-migrate
  "alembic_version", // Alembic
  "flyway_schema_history", // Flyway
  "knex_migrations", // Knex
  "schema_migrations", // Rails, golang-migrate, dbmate
  "goose_db_version", // goose
  "_prisma_migrations", // Prisma
  "safe_deploy.migration_xacts", // marked by `migrate up` (migrations/marker.ts): any tool's DDL transactions
];

/** The schema of safe-deploy's own tables in the app's database. */
const OWN_SCHEMA = "safe_deploy";

/** Options of `replayChanges`. */
export interface ReplayOptions {
  target: RunTarget;
  /** db holding the slot */
  live: Conn;
  slot: string;
  /** Replay transactions that committed at or after this LSN (the slot's start, or the `upToLsn` of a previous pass). */
  startLsn: string;
  /** restored db, old schema */
  into: Conn;
  /** Where the report of changes that do not map (tables absent in the old schema) is written. */
  reportDir: string;
  /**
   * Transaction ids whose changes are not replayed: the migration's own DML (a backfill) that the old
   * schema must not receive as if a user wrote it. `txid_current()` values (64-bit) or 32-bit xids.
   *
   * How the migration's writes are told apart (issue 20): pgoutput says which transaction a change
   * belongs to (its xid), not who wrote it. Every transaction that writes to a migration tool's
   * bookkeeping table (`migrationTables`) is taken as a migration and skipped whole, which needs no
   * help from the runner for tools that record a migration in its own transaction (node-pg-migrate,
   * Alembic, Flyway, Knex, Rails, goose). Its limits: a migration run outside a transaction (e.g.
   * `CREATE INDEX CONCURRENTLY` with a backfill beside it, node-pg-migrate's `noTransaction`), or a tool
   * that records it in a separate transaction (golang-migrate, Prisma), is not recognised: pass the
   * xids of such transactions here (the runner can record `txid_current()` in them). An LSN window
   * would not do: the old release keeps serving users while the migration runs, and their writes in
   * that window must be replayed. A user's later update of a row the migration changed still carries
   * the migration's values: pgoutput sends the whole new row, not the columns the user set.
   */
  excludeXids?: ReadonlyArray<number | string | bigint>;
  /** Tables (`name` or `schema.name`) marking a migration's transaction; default MIGRATION_TABLES. */
  migrationTables?: readonly string[];
  /** Called with the number of transactions applied so far. */
  onProgress?: (n: number) => void;
  /** Polled between transactions: a signal means stop cleanly (nothing half-applied). */
  interrupted?: () => NodeJS.Signals | undefined;
  /** Stop at this LSN instead of the WAL position when the replay starts. */
  uptoLsn?: string;
}

/** What a replay did. */
export interface ReplayResult {
  transactions: number;
  /** Row changes read from the stream (excluded ones not counted). */
  changes: number;
  /** Row changes applied to `into`. */
  applied: number;
  /** Row changes written to the report instead. */
  reported: number;
  /** Path of the JSON report (every unmapped row), when anything was reported. */
  reportJson?: string;
  /** Path of the SQL that re-inserts the reported rows on the new schema. */
  reportSql?: string;
  /** The stream was replayed up to here. */
  upToLsn: string;
  /** `schema.sequence` names set past the replayed rows. */
  sequencesAdvanced: string[];
  /** Transactions skipped as the migration's own (see `excludeXids`). */
  excluded: number;
}

/** A replay that stopped: the restored database is half-way and must be discarded; the live one is untouched. */
export class ReplayError extends SafeDeployError {
  constructor(
    message: string,
    readonly interrupted?: NodeJS.Signals,
  ) {
    super(message, 3);
  }
}

/** The old schema: columns of each table that can be written, and its sequences. */
interface OldSchema {
  tables: Record<string, string[]>;
  sequences: Array<{ seq: string; owner: string | null; column: string | null }>;
}

const SCHEMA_SQL = `SELECT 'SCHEMA:' || json_build_object(
  'tables', (SELECT coalesce(json_object_agg(n.nspname || '.' || c.relname,
      (SELECT coalesce(json_agg(a.attname ORDER BY a.attnum), '[]') FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')), '{}')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'),
  'sequences', (SELECT coalesce(json_agg(json_build_object('seq', n.nspname || '.' || c.relname,
      'owner', tn.nspname || '.' || t.relname, 'column', a.attname) ORDER BY n.nspname, c.relname), '[]')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    LEFT JOIN pg_class t ON t.oid = d.refobjid
    LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema'))
)::text;`;

const LIVE_SEQUENCES_SQL = `SELECT 'SEQS:' || coalesce(json_object_agg(schemaname || '.' || sequencename, last_value::text), '{}')
  FROM pg_sequences WHERE last_value IS NOT NULL;`;

/** `schema.table` → `"schema"."table"`. */
const quoteName = (k: string) => {
  const i = k.indexOf(".");
  return qualified(k.slice(0, i), k.slice(i + 1));
};

const value = (v: string | null) => (v === null ? "NULL" : literal(v));

/** Writes a value into the SQL: inline as a literal, or as a `$n` parameter of a prepared statement. */
type Param = (v: string | null) => string;

/** Short description of a key for error messages: `(id)=(5)`. */
const keyText = (key: Row) => `(${Object.keys(key).join(", ")})=(${Object.values(key).join(", ")})`;

/**
 * SQL of one change against a table whose columns are `cols` (all of them, unchecked, when writing
 * the report). Values go through `param` (default: inline literals).
 */
export function changeSql(
  c: Exclude<Change, { kind: "truncate" }>,
  cols: readonly string[] | undefined,
  param: Param = value,
): string {
  const rel = c.relation;
  const table = qualified(rel.schema, rel.name);
  const has = (k: string) => !cols || cols.includes(k);
  const full = rel.replicaIdentity === "f";
  const missingKey = Object.keys(c.kind === "insert" ? {} : c.key).filter((k) => !has(k));
  if (missingKey.length) {
    throw new CannotRunError(
      `a ${c.kind} of ${rel.schema}.${rel.name} is matched by column ${missingKey.join(", ")}, which the restored (old) schema does not have`,
    );
  }
  if (c.kind === "insert") {
    const names = Object.keys(c.row).filter(has);
    if (!names.length) return `INSERT INTO ${table} DEFAULT VALUES;`;
    return `INSERT INTO ${table} (${names.map(ident).join(", ")}) OVERRIDING SYSTEM VALUE VALUES (${names
      .map((k) => param(c.row[k]))
      .join(", ")});`;
  }
  // WHERE matching the key; IS NOT DISTINCT FROM for a FULL identity (it may hold NULLs), which
  // matches whole rows, and two identical rows are one change's either: take one.
  const keyWhere = () => {
    const w =
      Object.entries(c.key)
        .map(([k, v]) => `${ident(k)} ${full ? "IS NOT DISTINCT FROM" : "="} ${param(v)}`)
        .join(" AND ") || "false";
    return full ? `ctid = (SELECT ctid FROM ${table} WHERE ${w} LIMIT 1)` : w;
  };
  const check = (from: string) =>
    `SELECT pg_temp.sd_one(count(*), ${param(`${c.kind} of ${rel.schema}.${rel.name} ${keyText(c.key)}`)}) FROM ${from};`;
  if (c.kind === "delete") {
    if (!cols) return `DELETE FROM ${table} WHERE ${keyWhere()};`;
    return `WITH c AS (DELETE FROM ${table} WHERE ${keyWhere()} RETURNING 1) ${check("c")}`;
  }
  // A key column keeps its value (the key image says so): not set, as an identity column
  // GENERATED ALWAYS may not be.
  const sets = Object.keys(c.row).filter((k) => has(k) && !(k in c.key && c.key[k] === c.row[k]));
  const setText = () => sets.map((k) => `${ident(k)} = ${param(c.row[k])}`).join(", ");
  if (!cols) return `UPDATE ${table} SET ${setText()} WHERE ${keyWhere()};`;
  if (!sets.length) return check(`${table} WHERE ${keyWhere()}`);
  const setSql = setText();
  return `WITH c AS (UPDATE ${table} SET ${setSql} WHERE ${keyWhere()} RETURNING 1) ${check("c")}`;
}

/**
 * Turns changes into EXECUTEs of statements prepared once per shape (table, kind, columns), so the
 * server parses and plans each shape once, not each row.
 */
export class PreparedChanges {
  private readonly names = new Map<string, string>();

  /** The statements for one change: its PREPARE the first time that shape is seen, then its EXECUTE. */
  statements(c: Exclude<Change, { kind: "truncate" }>, cols: readonly string[]): string[] {
    const args: Array<string | null> = [];
    const template = changeSql(c, cols, (v) => {
      args.push(v);
      return `$${args.length}`;
    });
    const out: string[] = [];
    let name = this.names.get(template);
    if (!name) {
      name = `sd_replay_${this.names.size}`;
      this.names.set(template, name);
      out.push(`PREPARE ${name} AS ${template}`);
    }
    out.push(args.length ? `EXECUTE ${name}(${args.map(value).join(", ")});` : `EXECUTE ${name};`);
    return out;
  }
}

/** A change that went to the report, as written to its JSON. */
interface Reported {
  xid: number;
  commitLsn: string;
  commitTime: string;
  op: Change["kind"];
  table: string;
  row?: Row;
  key?: Row;
}

const relKey = (r: StreamRelation) => `${r.schema}.${r.name}`;

/** Session setup: the row-count check every update and delete goes through. */
const SETUP_SQL = `SET client_min_messages = warning;
CREATE FUNCTION pg_temp.sd_one(n bigint, what text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
  IF n <> 1 THEN
    RAISE EXCEPTION 'replay conflict: the % matched % rows in the restored database, not 1', what, n;
  END IF;
END $f$;`;

/** Changes of this many rows (or more, whole transactions) go to the target in one transaction. */
const BATCH_CHANGES = 2000;

/**
 * Replays the slot's committed changes since `startLsn` into `into` (restored, old schema), in commit
 * order, whole transactions only: several consecutive source transactions share one target
 * transaction (a batch, applied all or nothing), so an error or an interrupt leaves `into` at a
 * transaction boundary of the source. Tables the old schema has get the columns it has; other
 * tables' changes go to the report (JSON + SQL for the new schema). Sequences end past the replayed
 * rows. Reads the stream up to the WAL position at the start (`upToLsn`): a second pass from there
 * replays what was written meanwhile. The slot is only peeked, so a failed replay can run again.
 */
export async function replayChanges(o: ReplayOptions): Promise<ReplayResult> {
  const upToLsn = o.uptoLsn ?? (await currentLsn(o.target, o.live));
  const schema = JSON.parse(
    outLine(await runSql(o.target, o.into, SCHEMA_SQL, "reading the restored database's tables"), "SCHEMA:"),
  ) as OldSchema;
  const start = lsnValue(o.startLsn);
  const exclude = new Set((o.excludeXids ?? []).map((x) => Number(BigInt(x) & 0xffffffffn)));
  const migration = new Set(
    (o.migrationTables ?? MIGRATION_TABLES).map((t) => (t.includes(".") ? t : `public.${t}`)),
  );
  const result: ReplayResult = {
    transactions: 0,
    changes: 0,
    applied: 0,
    reported: 0,
    upToLsn,
    sequencesAdvanced: [],
    excluded: 0,
  };
  await mkdir(o.reportDir, { recursive: true });
  const base = join(o.reportDir, `${o.slot}-${upToLsn.replace("/", "-")}`);
  let report: { json: WriteStream; sql: WriteStream; first: boolean } | undefined;
  const toReport = (t: StreamTransaction, c: Change, table: string, sql: string) => {
    report ??= (() => {
      const r = {
        json: createWriteStream(`${base}.json.partial`),
        sql: createWriteStream(`${base}.sql.partial`),
        first: true,
      };
      r.json.write(
        `{"slot": ${JSON.stringify(o.slot)}, "startLsn": "${o.startLsn}", "upToLsn": "${upToLsn}",\n "changes": [\n`,
      );
      r.sql.write(
        `-- Writes made after the deploy to tables the restored schema does not have (slot ${o.slot}).\n` +
          "-- Run on a database with the release's schema to re-apply them.\nBEGIN;\n",
      );
      return r;
    })();
    const entry: Reported = {
      xid: t.xid,
      commitLsn: t.commitLsn,
      commitTime: t.commitTime.toISOString(),
      op: c.kind,
      table,
      ...(c.kind === "insert" || c.kind === "update" ? { row: c.row } : {}),
      ...(c.kind === "update" || c.kind === "delete" ? { key: c.key } : {}),
    };
    report.json.write(`${report.first ? "  " : ",\n  "}${JSON.stringify(entry)}`);
    report.first = false;
    report.sql.write(sql + "\n");
    result.reported++;
  };

  const what = `replaying the writes made since the deploy into database "${o.into.database}"`;
  const session = psqlSession(o.target, o.into, what);
  const prepared = new PreparedChanges();
  let batch: string[] = [];
  let batchChanges = 0;
  let batchFirst: StreamTransaction | undefined;
  let batchLast: StreamTransaction | undefined;
  let flushed = 0;
  let pending = 0;
  // The batch the server is applying while the next one is read and built (reading and applying
  // overlap; at most one batch waits in psql behind it).
  let applying: Promise<void> | undefined;
  const settle = async () => {
    const a = applying;
    applying = undefined;
    await a;
  };
  const flush = async () => {
    if (!batch.length) return;
    // `\;` makes psql send the whole batch as one query: one round trip, not one per statement.
    const text = `${["BEGIN", ...batch.map((x) => x.replace(/;$/, ""))].join("\\;\n")}\\;\nCOMMIT;`;
    const [first, last, n, marker] = [batchFirst!, batchLast!, pending, `__BATCH_${flushed++}__`];
    batch = [];
    batchChanges = 0;
    pending = 0;
    batchFirst = batchLast = undefined;
    await settle();
    const job = session.send([text], marker).then(
      () => {
        result.transactions += n;
        o.onProgress?.(result.transactions);
      },
      (e: unknown) => {
        const signal = o.interrupted?.();
        if (signal) throw stopped(signal);
        throw new ReplayError(
          `${what} stopped: a change of the transactions committed from ${first.commitTime.toISOString()} ` +
            `(xid ${first.xid}, LSN ${first.commitLsn}) to ${last.commitTime.toISOString()} ` +
            `(xid ${last.xid}) cannot be applied to the old schema: ${reason(e)}. None of that batch was ` +
            `applied; the live database and the change stream are untouched. Discard database "${o.into.database}", ` +
            "then either fix the cause (e.g. the row the new release wrote that conflicts) and roll back again " +
            "(the stream is kept, so the replay runs again), or roll back without replaying and take the writes " +
            "made since the deploy from the kept live database by hand",
        );
      },
    );
    job.catch(() => {});
    applying = job;
  };
  const stopped = (signal: NodeJS.Signals) =>
    new ReplayError(
      `${what} stopped by ${signal} after ${result.transactions} transactions, at a transaction boundary: ` +
        `discard database "${o.into.database}" (the live database and the change stream are untouched) and ` +
        "roll back again to replay from the start",
      signal,
    );

  let done = false;
  try {
    await session.send([SETUP_SQL], "__SETUP__");
    for await (const t of readChanges({ target: o.target, conn: o.live, slot: o.slot, uptoLsn: upToLsn })) {
      const signal = o.interrupted?.();
      if (signal) {
        await settle();
        throw stopped(signal);
      }
      if (lsnValue(t.commitLsn) < start) continue;
      const tables = t.changes
        .flatMap((c) => (c.kind === "truncate" ? c.relations : [c.relation]))
        .map(relKey);
      if (exclude.has(t.xid) || tables.some((k) => migration.has(k))) {
        result.excluded++;
        continue;
      }
      const sql: string[] = [];
      for (const c of t.changes) {
        // safe-deploy's own bookkeeping (locks, checksums, the migration marker) belongs to the
        // database it was written in: the restored one keeps its own, like a tool's version table.
        if (c.kind !== "truncate" && c.relation.schema === OWN_SCHEMA) continue;
        result.changes++;
        if (c.kind === "truncate") {
          const kept = c.relations.filter((r) => relKey(r) in schema.tables);
          const opts = `${c.restartIdentity ? " RESTART IDENTITY" : ""}${c.cascade ? " CASCADE" : ""}`;
          if (kept.length)
            sql.push(`TRUNCATE ${kept.map((r) => qualified(r.schema, r.name)).join(", ")}${opts};`);
          for (const r of c.relations.filter((x) => !kept.includes(x))) {
            toReport(t, c, relKey(r), `TRUNCATE ${qualified(r.schema, r.name)}${opts};`);
          }
          if (kept.length) result.applied++;
          continue;
        }
        const cols = schema.tables[relKey(c.relation)];
        if (!cols) {
          toReport(t, c, relKey(c.relation), changeSql(c, undefined));
          continue;
        }
        try {
          sql.push(...prepared.statements(c, cols));
        } catch (e) {
          throw new ReplayError(
            `${what} stopped at the transaction xid ${t.xid} (LSN ${t.commitLsn}): ${reason(e)}. Nothing of it was applied; discard database "${o.into.database}" (the live one and the stream are untouched) and roll back without replaying`,
          );
        }
        result.applied++;
      }
      batchFirst ??= t;
      batchLast = t;
      batch.push(...sql);
      batchChanges += sql.length;
      pending++;
      if (batchChanges >= BATCH_CHANGES) await flush();
    }
    const signal = o.interrupted?.();
    if (signal) {
      await settle();
      throw stopped(signal);
    }
    await flush();
    await settle();
    result.sequencesAdvanced = await advanceSequences(o, schema, migration, session.send);
    done = true;
  } catch (e) {
    // Ctrl-C reaches the client tools too (same process group): psql cancels its query and fails.
    const signal = o.interrupted?.();
    if (signal && !(e instanceof ReplayError && e.interrupted)) {
      await applying?.catch(() => {});
      throw stopped(signal);
    }
    throw e;
  } finally {
    await applying?.catch(() => {});
    await session.end().catch(() => {});
    if (report) {
      await Promise.all(
        [report.json, report.sql].map(
          (s, i) => new Promise((r) => s.end(i === 0 ? "\n]}\n" : "COMMIT;\n", () => r(undefined))),
        ),
      );
      if (done) {
        await rename(`${base}.json.partial`, `${base}.json`);
        await rename(`${base}.sql.partial`, `${base}.sql`);
        result.reportJson = `${base}.json`;
        result.reportSql = `${base}.sql`;
      } else {
        // The replay is run again from the start: a half report would only mislead.
        await rm(`${base}.json.partial`, { force: true });
        await rm(`${base}.sql.partial`, { force: true });
      }
    }
  }
  return result;
}

/** The database's own words from a failed psql run (the line with ERROR and its DETAIL). */
function reason(e: unknown): string {
  const text = errorText(e);
  return text
    .replace(/^.*? failed: /s, "")
    .replace(/\s+/g, " ")
    .replace(/[.\s]+$/, "");
}

/**
 * Sets each sequence of the old schema past the replayed rows: to the live value when the live
 * database has it too (the release may have written more), and past the largest value of the column
 * that owns it. Never moves one back.
 */
async function advanceSequences(
  o: ReplayOptions,
  schema: OldSchema,
  migration: ReadonlySet<string>,
  send: (sql: string[], marker: string) => Promise<string>,
): Promise<string[]> {
  if (!schema.sequences.length) return [];
  const live = JSON.parse(
    outLine(await runSql(o.target, o.live, LIVE_SEQUENCES_SQL, "reading the live sequences"), "SEQS:") ||
      "{}",
  ) as Record<string, string>;
  const sql: string[] = [];
  for (const s of schema.sequences) {
    if (s.owner && migration.has(s.owner)) continue;
    const q = quoteName(s.seq);
    const tag = literal(`SEQ:${s.seq}`);
    if (live[s.seq] !== undefined) {
      const v = literal(live[s.seq]);
      sql.push(
        `SELECT ${tag} FROM (SELECT setval(${literal(q)}, ${v}::bigint) FROM ${q} WHERE NOT is_called OR last_value < ${v}::bigint) x;`,
      );
    }
    if (s.owner && s.column) {
      sql.push(
        `SELECT ${tag} FROM (SELECT setval(${literal(q)}, m) FROM (SELECT max(${ident(s.column)})::bigint AS m FROM ${quoteName(s.owner)}) t, ${q} ` +
          `WHERE m IS NOT NULL AND (NOT is_called OR last_value < m)) x;`,
      );
    }
  }
  const out = await send(["BEGIN;", ...sql, "COMMIT;"], "__SEQUENCES__");
  return [
    ...new Set(
      out
        .split("\n")
        .filter((l) => l.startsWith("SEQ:"))
        .map((l) => l.slice(4)),
    ),
  ];
}
