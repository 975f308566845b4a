import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join, sep } from "node:path";
import type { Tool } from "./presets";

/** How bad a finding is: errors fail `safe-deploy lint` (exit 1) and block a deploy; warnings only print. */
export type Severity = "error" | "warning";

/** One problem found in a migration file. */
export interface LintFinding {
  file: string;
  line: number;
  rule: string;
  severity: Severity;
  message: string;
  why: string;
  instead: string;
  /**
   * Hash of the statement's parse tree without positions: the same after reformatting, comments or a
   * move to another line, different once the statement changes (what a baseline entry matches).
   */
  fingerprint?: string;
  /** The migration's name in its tool's version table (file name, Prisma directory, Alembic revision). */
  migration?: string;
  /** The migration's file when `file` is not one (an Alembic revision's `versions/x.py`). */
  source?: string;
}

/** What each rule reports: why it hurts a live database and what to do instead (squawk's rule set, issue 4). */
export const RULES: Record<string, { severity: Severity; why: string; instead: string; versions?: string }> =
  {
    "drop-table": {
      severity: "error",
      why: "the data is gone for good and the running release still reads the table",
      instead: "stop using the table in one release, drop it in a later one after a backup",
    },
    "drop-column": {
      severity: "error",
      why: "the data is gone and the running release may still select or insert the column",
      instead: "stop using the column in one release, drop it in a later one",
    },
    "rename-column": {
      severity: "error",
      why: "the running release still uses the old name and fails until the new one is deployed",
      instead: "add the new column, write to both, backfill, switch reads, then drop the old one",
    },
    "rename-table": {
      severity: "error",
      why: "the running release still uses the old name and fails until the new one is deployed",
      instead: "create the new table (or a view under the old name) and migrate in steps",
    },
    "change-column-type": {
      severity: "error",
      why: "most type changes rewrite the whole table under an ACCESS EXCLUSIVE lock, blocking reads and writes",
      instead: "add a new column of the new type, backfill in batches, switch, then drop the old column",
    },
    "set-not-null": {
      severity: "error",
      why: "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
      instead: "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL",
    },
    "add-column-not-null-without-default": {
      severity: "error",
      why: "fails on a table with rows, and inserts from the running release that omit the column fail",
      instead: "add the column nullable or with a DEFAULT, backfill, then enforce NOT NULL",
    },
    "add-column-rewrites-table": {
      severity: "error",
      why: "a DEFAULT that is not a constant or a known stable function (gen_random_uuid(), random(), nextval, myfunc()), a serial, identity or STORED generated column fills every existing row: the whole table is rewritten under an ACCESS EXCLUSIVE lock",
      instead:
        "add the column nullable without the default, set the default for new rows, backfill in batches",
      versions:
        "before PostgreSQL 11 every non-NULL DEFAULT rewrites the table; from 11 a constant or stable DEFAULT (now(), CURRENT_TIMESTAMP) is stored once in the catalog",
    },
    "add-column-inline-index": {
      severity: "error",
      why: "ADD COLUMN ... UNIQUE / PRIMARY KEY builds the index while holding ACCESS EXCLUSIVE: no reads or writes until it is built",
      instead:
        "add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE (or PRIMARY KEY) USING INDEX",
    },
    "add-column-inline-foreign-key": {
      severity: "error",
      why: "ADD COLUMN ... REFERENCES locks both tables and cannot be NOT VALID",
      instead:
        "add the column, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, and VALIDATE CONSTRAINT in a later transaction",
    },
    "validate-in-same-transaction": {
      severity: "error",
      why: "VALIDATE CONSTRAINT in the transaction that added it NOT VALID: the ADD's lock is held through the whole scan, so NOT VALID gained nothing",
      instead:
        "VALIDATE in a later migration (node-pg-migrate wraps each file in one transaction), or COMMIT between the two",
    },
    "reindex-without-concurrently": {
      severity: "error",
      why: "REINDEX blocks writes to the table (and reads through that index) until it finishes",
      instead: "REINDEX ... CONCURRENTLY, outside a transaction",
      versions: "CONCURRENTLY exists from PostgreSQL 12",
    },
    "detach-partition-without-concurrently": {
      severity: "error",
      why: "DETACH PARTITION takes ACCESS EXCLUSIVE on the parent table: every query on it waits",
      instead: "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY, outside a transaction",
      versions: "CONCURRENTLY exists from PostgreSQL 14; before that, detach in a quiet window",
    },
    "alter-domain-add-constraint": {
      severity: "error",
      why: "ALTER DOMAIN ... ADD CONSTRAINT (or SET NOT NULL) checks every column of every table using the domain, under lock",
      instead:
        "ADD CONSTRAINT ... NOT VALID on the domain (for NOT NULL: CHECK (VALUE IS NOT NULL) NOT VALID), then VALIDATE CONSTRAINT later",
    },
    "drop-not-null": {
      severity: "error",
      why: "the running release (and reports, exports, other services) may assume the column is never NULL",
      instead:
        "make every reader handle NULL first, then drop NOT NULL in a later release (allow it on purpose)",
    },
    "transaction-nesting": {
      severity: "error",
      why: "BEGIN inside a transaction is ignored with a warning, and COMMIT/ROLLBACK ends the runner's (or the outer) transaction early: the rest of the file runs without one and a failure leaves it half-applied",
      instead:
        "no BEGIN/COMMIT in files the runner wraps in a transaction (node-pg-migrate .sql files); one BEGIN ... COMMIT elsewhere",
    },
    "uncommitted-transaction": {
      severity: "error",
      why: "a BEGIN never committed: the session ends and PostgreSQL rolls the whole migration back, or it holds its locks until it does",
      instead: "end the transaction with COMMIT in the same file",
    },
    "duplicate-column-assignment": {
      severity: "error",
      why: "the same column assigned twice (INSERT column list, UPDATE SET, ON CONFLICT DO UPDATE SET): the parser accepts it, PostgreSQL rejects it when run, so the migration fails",
      instead: "assign each column once",
    },
    "view-duplicate-column": {
      severity: "error",
      why: "two output columns of the view have the same name: PostgreSQL rejects CREATE VIEW when run, so the migration fails",
      instead: "give each column its own alias (AS)",
    },
    "create-index-without-concurrently": {
      severity: "error",
      why: "CREATE INDEX blocks every write to the table until the index is built",
      instead: "CREATE INDEX CONCURRENTLY, outside a transaction",
    },
    "drop-index-without-concurrently": {
      severity: "warning",
      why: "DROP INDEX takes an ACCESS EXCLUSIVE lock on the table",
      instead: "DROP INDEX CONCURRENTLY, outside a transaction",
    },
    "concurrently-in-transaction": {
      severity: "error",
      why: "CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block; the migration fails",
      instead:
        "run it in its own migration without a transaction (node-pg-migrate: a .js migration calling pgm.noTransaction())",
    },
    "constraint-missing-not-valid": {
      severity: "error",
      why: "adding a CHECK or FOREIGN KEY validates every row while holding a lock that blocks writes",
      instead: "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a separate statement",
    },
    "add-unique-constraint": {
      severity: "error",
      why: "a UNIQUE or PRIMARY KEY constraint builds its index while blocking writes",
      instead: "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
    },
    truncate: {
      severity: "error",
      why: "TRUNCATE deletes every row and takes an ACCESS EXCLUSIVE lock",
      instead: "delete the rows you mean in batches, or allow it on purpose",
    },
    "update-without-where": {
      severity: "error",
      why: "rewrites every row of the table in one transaction, locking all of them",
      instead: "add a WHERE clause, and backfill large tables in batches",
    },
    "backfill-in-one-statement": {
      severity: "error",
      why: "UPDATE ... WHERE col IS NULL right after ADD COLUMN col matches every row (the column is new, so all NULL): a whole-table backfill in one transaction, locking every row until it ends",
      instead:
        "backfill in batches (WHERE id BETWEEN ... AND ..., one transaction each) from a later migration or a script, then enforce NOT NULL",
    },
    "delete-without-where": {
      severity: "error",
      why: "deletes every row of the table",
      instead: "add a WHERE clause, or use an explicit allow comment if you mean it",
    },
    "drop-schema": {
      severity: "error",
      why: "drops every object in the schema with its data",
      instead: "drop objects one by one in a later release, after a backup",
    },
    "drop-database": {
      severity: "error",
      why: "drops the whole database",
      instead: "never in a migration",
    },
    "vacuum-full": {
      severity: "error",
      why: "VACUUM FULL / CLUSTER rewrite the table under an ACCESS EXCLUSIVE lock (VACUUM (FULL FALSE) is plain VACUUM, not reported)",
      instead: "plain VACUUM, or pg_repack outside the deploy",
    },
    "require-timeouts": {
      severity: "warning",
      why: "a statement waiting for a lock blocks every query queued behind it (without lock_timeout it waits forever), and one that runs too long holds its lock (without statement_timeout, forever)",
      instead:
        "SET lock_timeout = '5s'; SET statement_timeout = '5min'; once at the top of the file. `safe-deploy migrate` sets both through PGOPTIONS, so lint run by migrate or preflight does not report this rule",
    },
    "table-without-primary-key": {
      severity: "warning",
      why: "while a release's change stream is kept (rollback.changeStream), PostgreSQL refuses UPDATE and DELETE on a table with neither a primary key nor a replica identity, and a rollback cannot replay its changes",
      instead:
        "give the table a primary key (or `ALTER TABLE ... REPLICA IDENTITY FULL` in the same migration)",
    },
    "unchecked-dynamic-sql": {
      severity: "warning",
      why: "EXECUTE of a string built at run time (format(), concatenation): lint cannot see what it will run",
      instead: "write the statement out in the migration, or review it by hand and allow it on purpose",
    },
    "parse-error": {
      severity: "error",
      why: "PostgreSQL's parser rejects the file, so the migration would fail",
      instead: "fix the syntax",
    },
  };

type Node = Record<string, unknown>;
interface RawStmt {
  stmt: Node;
  stmt_location?: number;
  stmt_len?: number;
}

/**
 * Whether a `SET lock_timeout/statement_timeout` leaves a limit in force: `RESET`, `TO DEFAULT` (the
 * default is 0) and a value of 0 (in any unit) turn the timeout off, so a locking statement after them
 * waits forever again.
 */
function setsALimit(s: Node): boolean {
  if (s.kind !== "VAR_SET_VALUE") return false;
  const c = (s.args as Node[] | undefined)?.[0]?.A_Const as Node | undefined;
  const text = (c?.sval as Node | undefined)?.sval ?? (c?.fval as Node | undefined)?.fval;
  const value = c?.ival ? Number((c.ival as Node).ival ?? 0) : parseFloat(String(text));
  return value !== 0;
}

let parser: Promise<typeof import("libpg-query")> | undefined;
/** libpg_query compiled to WASM: PostgreSQL's own grammar without native binaries. */
async function loadParser(): Promise<typeof import("libpg-query")> {
  parser ??= import("libpg-query").then(async (m) => {
    await m.loadModule();
    return m;
  });
  return parser;
}

/**
 * node-pg-migrate SQL files hold both directions; only `-- Up Migration` runs on deploy, so only it
 * is linted. Text is cut, not removed, so line numbers stay true.
 */
export function upPart(sql: string): string {
  const up = /^--\s*Up Migration\b.*$/im.exec(sql);
  const down = /^--\s*Down Migration\b.*$/im.exec(sql);
  if (!up && !down) return sql;
  const start = up ? up.index : 0;
  const end = down && down.index > start ? down.index : sql.length;
  return sql.slice(0, start).replace(/[^\n]/g, " ") + sql.slice(start, end);
}

/** Rule ids allowed by `-- safe-deploy: allow RULE` comments in `text`. */
export function allowedRules(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/safe-deploy:\s*allow\s+([a-z0-9-]+)/gi)) out.add(m[1].toLowerCase());
  return out;
}

function unwrap(n: unknown): [string, Node] | undefined {
  if (!n || typeof n !== "object") return undefined;
  const key = Object.keys(n)[0];
  return key ? [key, (n as Node)[key] as Node] : undefined;
}

function constraints(colDef: Node): Node[] {
  const list = (colDef.constraints as unknown[] | undefined) ?? [];
  return list.map((c) => (c as Node).Constraint as Node).filter(Boolean);
}

function relName(rel: unknown): string {
  const r = rel as Node | undefined;
  if (!r) return "";
  return [r.schemaname, r.relname].filter(Boolean).join(".");
}

/** A table's key in `createdTables`: `public.t`, `pg_temp.t` and `t` are the same table to a migration. */
export function tableKey(name: string): string {
  return name.replace(/^(public|pg_temp)\./, "");
}

/** The dotted name of a DROP's object (`List` of `String`s, or one `String`). */
function objectName(o: unknown): string {
  const n = o as Node;
  const items = ((n?.List as Node | undefined)?.items as Node[] | undefined) ?? [n];
  return items.map((i) => String((i?.String as Node | undefined)?.sval ?? "?")).join(".");
}

/** The column of a `col IS NOT NULL` expression, else undefined. */
function notNullColumn(expr: unknown): string | undefined {
  const t = (expr as Node | undefined)?.NullTest as Node | undefined;
  if (!t || t.nulltesttype !== "IS_NOT_NULL") return undefined;
  const fields = (((t.arg as Node)?.ColumnRef as Node)?.fields as Node[] | undefined) ?? [];
  const last = fields[fields.length - 1]?.String as Node | undefined;
  return last ? String(last.sval) : undefined;
}

/**
 * The columns of a WHERE made only of `col IS NULL` tests (joined by AND/OR), else undefined: such a
 * WHERE on a column just added matches every row. Any other condition (`id BETWEEN ...`) is a batch.
 */
function nullTestedColumns(expr: unknown): string[] | undefined {
  const n = (expr as Node | undefined) ?? {};
  const t = n.NullTest as Node | undefined;
  if (t) {
    if (t.nulltesttype !== "IS_NULL") return undefined;
    const fields = (((t.arg as Node)?.ColumnRef as Node)?.fields as Node[] | undefined) ?? [];
    const last = fields[fields.length - 1]?.String as Node | undefined;
    return last ? [String(last.sval)] : undefined;
  }
  const b = n.BoolExpr as Node | undefined;
  if (!b || b.boolop === "NOT_EXPR") return undefined;
  const parts = ((b.args as unknown[]) ?? []).map(nullTestedColumns);
  return parts.every(Boolean) ? (parts.flat() as string[]) : undefined;
}

/**
 * Functions a DEFAULT may call and still be evaluated once at ALTER time (immutable or stable), so
 * PostgreSQL 11+ stores the value in the catalog instead of rewriting the table. Anything else,
 * volatile (random(), gen_random_uuid(), nextval) or unknown (a user's myfunc()), is taken as a rewrite.
 * CURRENT_TIMESTAMP, CURRENT_DATE, LOCALTIMESTAMP, COALESCE, NULLIF, GREATEST and LEAST are not listed:
 * the parser gives them their own nodes, never a FuncCall (the functions inside them are still judged).
 */
const SAFE_DEFAULT_FUNCTIONS = new Set([
  "now",
  "transaction_timestamp",
  "statement_timestamp",
  "current_setting",
  "timezone",
  "date_trunc",
  "make_date",
  "make_time",
  "make_timestamp",
  "make_timestamptz",
  "make_interval",
  "to_timestamp",
  "to_date",
  "lower",
  "upper",
  "btrim",
  "ltrim",
  "rtrim",
  "concat",
  "concat_ws",
  "length",
  "abs",
  "round",
  "array_fill",
  "json_build_object",
  "jsonb_build_object",
  "json_build_array",
  "jsonb_build_array",
  "to_jsonb",
  "to_json",
  "jsonb_object",
  "int4range",
  "int8range",
  "numrange",
  "tstzrange",
  "daterange",
]);

/** Names of the functions called anywhere in an expression tree (the last part of `schema.name`). */
function funcNames(n: unknown, out: string[] = []): string[] {
  if (Array.isArray(n)) for (const x of n) funcNames(x, out);
  else if (n && typeof n === "object")
    for (const [k, v] of Object.entries(n)) {
      if (k === "FuncCall") {
        const parts = ((v as Node).funcname as Node[] | undefined) ?? [];
        out.push(String((parts[parts.length - 1]?.String as Node)?.sval ?? ""));
      }
      funcNames(v, out);
    }
  return out;
}

/** Whether any node of kind `kind` occurs in the tree. */
function hasNode(n: unknown, kind: string): boolean {
  if (Array.isArray(n)) return n.some((x) => hasNode(x, kind));
  if (!n || typeof n !== "object") return false;
  return Object.entries(n).some(([k, v]) => k === kind || hasNode(v, kind));
}

/** Whether a DEFAULT expression is the NULL constant (never rewrites, on any version). */
function isNullConst(expr: unknown): boolean {
  const c = (expr as Node | undefined)?.A_Const as Node | undefined;
  return Boolean(c?.isnull);
}

/** Why adding this column rewrites the table (see `add-column-rewrites-table`), or undefined. */
export function columnRewriteReason(def: Node, pgVersion = DEFAULT_PG_VERSION): string | undefined {
  const type = (((def.typeName as Node)?.names as Node[] | undefined) ?? [])
    .map((n) => String((n.String as Node)?.sval ?? ""))
    .pop();
  if (type && /^(small|big)?serial[248]?$/.test(type)) return `of type ${type}`;
  for (const c of constraints(def)) {
    if (c.contype === "CONSTR_IDENTITY") return "GENERATED AS IDENTITY";
    if (c.contype === "CONSTR_GENERATED") return "GENERATED ALWAYS AS (...) STORED";
    if (c.contype !== "CONSTR_DEFAULT" || isNullConst(c.raw_expr)) continue;
    if (pgVersion < 11) return `with a DEFAULT (PostgreSQL ${pgVersion} < 11 rewrites for any DEFAULT)`;
    // The parser already folds unquoted names; a quoted "NOW"() is another (user's) function.
    const fn = funcNames(c.raw_expr).find((f) => !SAFE_DEFAULT_FUNCTIONS.has(f));
    if (fn) return `with DEFAULT ${fn}(), not known to be immutable or stable`;
    if (hasNode(c.raw_expr, "SubLink")) return "with a subquery in DEFAULT, which PostgreSQL rejects";
  }
  return undefined;
}

/** PostgreSQL major version assumed when none is given (the stack's default database image). */
export const DEFAULT_PG_VERSION = 15;

/** The PostgreSQL major version of a database image (`postgres:16-alpine` -> 16), else undefined. */
export function pgVersionFromImage(image: string): number | undefined {
  // The tag follows the last `:` after the last `/`, before any `@digest` (whose hex is no version).
  const tag = /:([^/:]+)$/.exec(image.split("@")[0])?.[1];
  const m = tag ? /^(\d+)/.exec(tag) : undefined;
  if (!m) return undefined;
  const v = Number(m[1]);
  // postgres:9.6 -> 9; postgis/postgis:14-3.4 -> 14; a bare tag like `latest` says nothing.
  return v >= 9 && v < 100 ? v : undefined;
}

/** Lint settings that do not come from the SQL itself. */
export interface LintConfig {
  /** PostgreSQL major version of the target database (default 15). */
  pgVersion?: number;
  /**
   * The runner sets lock_timeout and statement_timeout itself (`safe-deploy migrate` passes both in
   * PGOPTIONS), so `require-timeouts` is not reported.
   */
  timeoutsSetByRunner?: boolean;
  /**
   * The runner wraps this SQL in a transaction (a node-pg-migrate JS/TS migration without
   * `pgm.noTransaction()`); `.sql` files say so with `-- Up Migration`.
   */
  inTransaction?: boolean;
}

/** What lint learns from earlier migrations of the same directory, in order (e.g. validated CHECKs). */
export interface LintState {
  /** `table.column` proven NOT NULL by a validated CHECK, so SET NOT NULL skips its scan (PG 12+). */
  provenNotNull: Set<string>;
  /** CHECK (col IS NOT NULL) constraints added NOT VALID: `table.constraint` -> `table.column`. */
  notNullChecks: Map<string, string>;
  /**
   * The one `require-timeouts` finding of the directory and how many later migrations lack the SETs too:
   * said once per directory, not on nearly every file (issue 21).
   */
  timeouts?: { finding: LintFinding; base: string; more: number };
  /** Statements lint read (a DO block's inner ones included): 0 means nothing was checked. */
  statements?: number;
}

/** A fresh `LintState`, for a directory's first migration. */
export function newLintState(): LintState {
  return { provenNotNull: new Set(), notNullChecks: new Map(), statements: 0 };
}

/** See {@link LintFinding.fingerprint}: positions are the only part of the tree that formatting moves. */
export function statementFingerprint(stmt: unknown): string {
  // A statement's node, not its RawStmt: `stmt_location`/`stmt_len` are not in it.
  const json = JSON.stringify(stmt, (k, v: unknown) => (k === "location" ? undefined : v));
  return createHash("sha256").update(json).digest("hex").slice(0, 16);
}

/** The name of a target column (`a` of `SET a[1] = ...` only counts when there is no subscript). */
function targetNames(list: unknown): string[] {
  return ((list as unknown[] | undefined) ?? [])
    .map((t) => (t as Node).ResTarget as Node | undefined)
    .filter((t): t is Node => Boolean(t?.name) && !(t?.indirection as unknown[] | undefined)?.length)
    .map((t) => String(t.name));
}

/** The first name listed twice, else undefined. */
function firstDuplicate(names: string[]): string | undefined {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) return n;
    seen.add(n);
  }
  return undefined;
}

/** Output column names of a SELECT as PostgreSQL names them (alias, column, function, else ?column?). */
function selectOutputNames(select: Node): string[] | undefined {
  const s = select.SelectStmt as Node | undefined;
  if (!s || s.op !== "SETOP_NONE" || !s.targetList) return undefined;
  const names: string[] = [];
  for (const t of s.targetList as Node[]) {
    const r = t.ResTarget as Node;
    const val = (r?.val as Node) ?? {};
    if (r?.name) names.push(String(r.name));
    else if (val.ColumnRef) {
      const fields = ((val.ColumnRef as Node).fields as Node[]) ?? [];
      const last = fields[fields.length - 1];
      // `t.*` expands to columns lint cannot see.
      if (!last?.String) return undefined;
      names.push(String((last.String as Node).sval));
    } else if (val.FuncCall) {
      const parts = ((val.FuncCall as Node).funcname as Node[]) ?? [];
      names.push(String((parts[parts.length - 1]?.String as Node)?.sval ?? "?column?"));
    } else names.push("?column?");
  }
  return names;
}

/** Context of one statement: what the file did before it. */
export interface StatementContext {
  inTransaction: boolean;
  /** Tables (keys of `tableKey`) this migration created, temporary ones included: nothing to lock or lose yet. */
  createdTables: Set<string>;
  /** Columns this migration added to existing tables: `tableKey.column`. */
  addedColumns?: Set<string>;
  /** `table.column` proven NOT NULL by a validated CHECK, so SET NOT NULL skips its scan (PG 12+). */
  provenNotNull?: Set<string>;
  /** CHECK (col IS NOT NULL) constraints added NOT VALID: `table.constraint` -> `table.column`. */
  notNullChecks?: Map<string, string>;
  /** Constraints added NOT VALID in this file: `table.constraint` -> the transaction that added them. */
  notValidIn?: Map<string, string>;
  /** The current transaction's key (each statement is its own outside BEGIN). */
  txKey?: string;
  pgVersion?: number;
}

/** Findings (rule ids and messages) of one parsed statement; pure, so table tests cover each rule. */
export function checkStatement(stmt: Node, ctx: StatementContext): Array<{ rule: string; message: string }> {
  const out: Array<{ rule: string; message: string }> = [];
  const u = unwrap(stmt);
  if (!u) return out;
  const [kind, s] = u;
  const pg = ctx.pgVersion ?? DEFAULT_PG_VERSION;
  const isNew = (rel: unknown): boolean => ctx.createdTables.has(tableKey(relName(rel)));
  const concurrentInTx = (what: string) =>
    out.push({ rule: "concurrently-in-transaction", message: `${what} CONCURRENTLY inside a transaction` });
  switch (kind) {
    case "CreateStmt": {
      // A temporary table, or a partition (its parent's key applies), is not published.
      const rel = s.relation as { relpersistence?: string } | undefined;
      if (rel?.relpersistence === "t" || s.partbound) break;
      const elts =
        (s.tableElts as Array<Record<string, { contype?: string; constraints?: unknown[] }>>) ?? [];
      const isKey = (c: unknown) =>
        (c as { Constraint?: { contype?: string } })?.Constraint?.contype === "CONSTR_PRIMARY";
      const keyed = elts.some((e) => isKey(e) || (e.ColumnDef?.constraints ?? []).some(isKey));
      if (!keyed)
        out.push({
          rule: "table-without-primary-key",
          message: `CREATE TABLE ${relName(s.relation)} without a primary key`,
        });
      break;
    }
    case "DropStmt": {
      const t = s.removeType as string;
      const names = ((s.objects as unknown[]) ?? []).map(objectName);
      // A table this migration created (a temporary table, a scratch copy) holds nothing yet.
      const existing = names.filter((n) => !ctx.createdTables.has(tableKey(n)));
      if (t === "OBJECT_TABLE" && existing.length)
        out.push({ rule: "drop-table", message: `DROP TABLE ${existing.join(", ")}` });
      if (t === "OBJECT_SCHEMA")
        out.push({ rule: "drop-schema", message: `DROP SCHEMA ${names.join(", ")}` });
      if (t === "OBJECT_INDEX") {
        if (s.concurrent && ctx.inTransaction) concurrentInTx("DROP INDEX");
        if (!s.concurrent)
          out.push({
            rule: "drop-index-without-concurrently",
            message: `DROP INDEX ${names.join(", ")} without CONCURRENTLY`,
          });
      }
      break;
    }
    case "DropdbStmt":
      out.push({ rule: "drop-database", message: `DROP DATABASE ${String(s.dbname)}` });
      break;
    case "RenameStmt": {
      const t = s.renameType as string;
      if (isNew(s.relation)) break;
      if (t === "OBJECT_COLUMN")
        out.push({
          rule: "rename-column",
          message: `RENAME COLUMN ${String(s.subname)} on ${relName(s.relation)}`,
        });
      if (t === "OBJECT_TABLE")
        out.push({ rule: "rename-table", message: `RENAME TABLE ${relName(s.relation)}` });
      break;
    }
    case "AlterTableStmt": {
      const rel = s.relation;
      const name = relName(rel);
      for (const c of (s.cmds as unknown[]) ?? []) {
        const cmd = (c as Node).AlterTableCmd as Node | undefined;
        if (!cmd) continue;
        const sub = cmd.subtype as string;
        const col = String(cmd.name ?? "");
        if (isNew(rel)) continue;
        if (sub === "AT_DropColumn")
          out.push({ rule: "drop-column", message: `DROP COLUMN ${col} on ${name}` });
        if (sub === "AT_AlterColumnType")
          out.push({ rule: "change-column-type", message: `ALTER COLUMN ${col} TYPE on ${name}` });
        if (sub === "AT_DropNotNull")
          out.push({ rule: "drop-not-null", message: `ALTER COLUMN ${col} DROP NOT NULL on ${name}` });
        if (sub === "AT_ValidateConstraint") {
          const proven = ctx.notNullChecks?.get(`${name}.${col}`);
          if (proven) ctx.provenNotNull?.add(proven);
          const addedIn = ctx.notValidIn?.get(`${name}.${col}`);
          if (addedIn && addedIn === ctx.txKey)
            out.push({
              rule: "validate-in-same-transaction",
              message: `VALIDATE CONSTRAINT ${col} on ${name} in the transaction that added it NOT VALID`,
            });
        }
        if (sub === "AT_SetNotNull" && !(pg >= 12 && ctx.provenNotNull?.has(`${name}.${col}`)))
          out.push({
            rule: "set-not-null",
            message: `SET NOT NULL on ${name}.${col}${pg < 12 ? ` (PostgreSQL ${pg} < 12 scans even with a validated CHECK)` : ""}`,
          });
        if (sub === "AT_DetachPartition") {
          const pc = ((cmd.def as Node)?.PartitionCmd as Node) ?? {};
          const part = relName(pc.name);
          if (pc.concurrent && ctx.inTransaction) concurrentInTx("DETACH PARTITION");
          if (!pc.concurrent)
            out.push({
              rule: "detach-partition-without-concurrently",
              message:
                pg >= 14
                  ? `DETACH PARTITION ${part} from ${name} without CONCURRENTLY`
                  : `DETACH PARTITION ${part} from ${name} (PostgreSQL ${pg} has no CONCURRENTLY: 14+)`,
            });
        }
        if (sub === "AT_AddColumn") {
          const def = ((cmd.def as Node)?.ColumnDef as Node) ?? {};
          const colName = String(def.colname);
          const cs = constraints(def);
          // A column added without a value is NULL in every row: `WHERE col IS NULL` then means all of them.
          if (!cs.some((x) => x.contype === "CONSTR_DEFAULT" && !isNullConst(x.raw_expr)))
            ctx.addedColumns?.add(`${tableKey(name)}.${colName}`);
          const type = (((def.typeName as Node)?.names as Node[] | undefined) ?? [])
            .map((n) => String((n.String as Node)?.sval ?? ""))
            .pop();
          const notNull = cs.some((x) => x.contype === "CONSTR_NOTNULL" || x.contype === "CONSTR_PRIMARY");
          // Identity, serial and generated columns fill every row themselves: NOT NULL cannot fail.
          const filled =
            (type !== undefined && /^(small|big)?serial[248]?$/.test(type)) ||
            cs.some((x) =>
              ["CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"].includes(String(x.contype)),
            );
          if (notNull && !filled)
            out.push({
              rule: "add-column-not-null-without-default",
              message: `ADD COLUMN ${colName} NOT NULL without DEFAULT on ${name}`,
            });
          const rewrite = columnRewriteReason(def, pg);
          if (rewrite)
            out.push({
              rule: "add-column-rewrites-table",
              message: `ADD COLUMN ${colName} ${rewrite} on ${name}`,
            });
          const idx = cs.find((x) => x.contype === "CONSTR_UNIQUE" || x.contype === "CONSTR_PRIMARY");
          if (idx)
            out.push({
              rule: "add-column-inline-index",
              message: `ADD COLUMN ${colName} ${idx.contype === "CONSTR_UNIQUE" ? "UNIQUE" : "PRIMARY KEY"} on ${name}`,
            });
          if (cs.some((x) => x.contype === "CONSTR_FOREIGN"))
            out.push({
              rule: "add-column-inline-foreign-key",
              message: `ADD COLUMN ${colName} REFERENCES on ${name}`,
            });
        }
        if (sub === "AT_AddConstraint") {
          const con = ((cmd.def as Node)?.Constraint as Node) ?? {};
          const t = con.contype as string;
          const checked = t === "CONSTR_CHECK" ? notNullColumn(con.raw_expr) : undefined;
          if (checked && con.conname)
            ctx.notNullChecks?.set(`${name}.${String(con.conname)}`, `${name}.${checked}`);
          if (checked && !con.skip_validation) ctx.provenNotNull?.add(`${name}.${checked}`);
          if (con.skip_validation && con.conname && ctx.txKey)
            ctx.notValidIn?.set(`${name}.${String(con.conname)}`, ctx.txKey);
          if ((t === "CONSTR_FOREIGN" || t === "CONSTR_CHECK") && !con.skip_validation)
            out.push({
              rule: "constraint-missing-not-valid",
              message: `ADD CONSTRAINT ${String(con.conname ?? "")} without NOT VALID on ${name}`.replace(
                "  ",
                " ",
              ),
            });
          if ((t === "CONSTR_UNIQUE" || t === "CONSTR_PRIMARY") && !con.indexname)
            out.push({
              rule: "add-unique-constraint",
              message: `ADD ${t === "CONSTR_UNIQUE" ? "UNIQUE" : "PRIMARY KEY"} constraint on ${name}`,
            });
        }
      }
      break;
    }
    case "AlterDomainStmt": {
      const con = ((s.def as Node)?.Constraint as Node) ?? {};
      const domain = ((s.typeName as Node[]) ?? []).map((n) => String((n.String as Node)?.sval)).join(".");
      if (s.subtype === "C" && !con.skip_validation)
        out.push({
          rule: "alter-domain-add-constraint",
          message: `ALTER DOMAIN ${domain} ADD CONSTRAINT without NOT VALID`,
        });
      // SET NOT NULL has no NOT VALID form: it checks every column of the domain at once.
      if (s.subtype === "O")
        out.push({
          rule: "alter-domain-add-constraint",
          message: `ALTER DOMAIN ${domain} SET NOT NULL`,
        });
      break;
    }
    case "IndexStmt": {
      if (s.concurrent && ctx.inTransaction) concurrentInTx("CREATE INDEX");
      if (!s.concurrent && !isNew(s.relation))
        out.push({
          rule: "create-index-without-concurrently",
          message: `CREATE INDEX ${s.idxname ? `${String(s.idxname)} ` : ""}on ${relName(s.relation)} without CONCURRENTLY`,
        });
      break;
    }
    case "ReindexStmt": {
      const conc = ((s.params as unknown[]) ?? []).some((p) => {
        const d = (p as Node).DefElem as Node | undefined;
        return d?.defname === "concurrently" && !isFalse(d.arg);
      });
      if (conc && ctx.inTransaction) concurrentInTx("REINDEX");
      if (!conc && !isNew(s.relation))
        out.push({
          rule: "reindex-without-concurrently",
          message:
            `REINDEX ${String(s.name ?? relName(s.relation))} without CONCURRENTLY${pg < 12 ? ` (PostgreSQL ${pg} has none: 12+)` : ""}`.replace(
              "REINDEX  ",
              "REINDEX ",
            ),
        });
      break;
    }
    case "TruncateStmt": {
      const names = ((s.relations as Node[]) ?? []).map((r) => r.RangeVar).filter((r) => !isNew(r));
      if (names.length) out.push({ rule: "truncate", message: `TRUNCATE ${names.map(relName).join(", ")}` });
      break;
    }
    case "UpdateStmt": {
      if (isNew(s.relation)) break;
      if (!s.whereClause)
        out.push({ rule: "update-without-where", message: `UPDATE ${relName(s.relation)} without WHERE` });
      const backfilled = nullTestedColumns(s.whereClause)?.filter((c) =>
        ctx.addedColumns?.has(`${tableKey(relName(s.relation))}.${c}`),
      );
      if (backfilled?.length)
        out.push({
          rule: "backfill-in-one-statement",
          message: `UPDATE ${relName(s.relation)} WHERE ${backfilled.join(" / ")} IS NULL right after ADD COLUMN ${backfilled.join(", ")}: every row, in one statement`,
        });
      const dup = firstDuplicate(targetNames(s.targetList));
      if (dup)
        out.push({
          rule: "duplicate-column-assignment",
          message: `UPDATE ${relName(s.relation)} sets ${dup} twice`,
        });
      break;
    }
    case "InsertStmt": {
      const dup = firstDuplicate(targetNames(s.cols));
      if (dup)
        out.push({
          rule: "duplicate-column-assignment",
          message: `INSERT INTO ${relName(s.relation)} lists ${dup} twice`,
        });
      const oc = (s.onConflictClause as Node | undefined) ?? {};
      const dupSet = firstDuplicate(targetNames(oc.targetList));
      if (dupSet)
        out.push({
          rule: "duplicate-column-assignment",
          message: `ON CONFLICT DO UPDATE on ${relName(s.relation)} sets ${dupSet} twice`,
        });
      break;
    }
    case "ViewStmt": {
      const aliases = ((s.aliases as Node[] | undefined) ?? []).map((a) =>
        String((a.String as Node)?.sval ?? ""),
      );
      const names = selectOutputNames((s.query as Node) ?? {});
      const merged = names ? names.map((n, i) => aliases[i] ?? n) : aliases;
      const dup = firstDuplicate(merged);
      if (dup)
        out.push({
          rule: "view-duplicate-column",
          message: `CREATE VIEW ${relName(s.view)} has two columns named ${dup}`,
        });
      break;
    }
    case "DeleteStmt":
      if (!s.whereClause && !isNew(s.relation))
        out.push({
          rule: "delete-without-where",
          message: `DELETE FROM ${relName(s.relation)} without WHERE`,
        });
      break;
    case "VacuumStmt": {
      const full = ((s.options as unknown[]) ?? []).some((o) => {
        const d = (o as Node).DefElem as Node | undefined;
        return d?.defname === "full" && !isFalse(d.arg);
      });
      const rels = ((s.rels as Node[]) ?? []).map((r) => relName((r.VacuumRelation as Node)?.relation));
      if (full) out.push({ rule: "vacuum-full", message: `VACUUM FULL ${rels.join(", ")}`.trim() });
      break;
    }
    case "ClusterStmt":
      out.push({ rule: "vacuum-full", message: `CLUSTER ${relName(s.relation)}`.trim() });
      break;
  }
  return out;
}

/** Whether an option's argument turns it off (`FULL FALSE`, `FULL 0`, `CONCURRENTLY off`). */
function isFalse(arg: unknown): boolean {
  const a = (arg as Node | undefined) ?? {};
  const str = (a.String as Node | undefined)?.sval;
  if (str !== undefined) return /^(false|off|no|0)$/i.test(String(str));
  const b = a.Boolean as Node | undefined;
  if (b) return !b.boolval;
  const i = a.Integer as Node | undefined;
  if (i) return !i.ival;
  return false;
}

/** Statements that take a lock other sessions can queue behind: `require-timeouts` wants timeouts first. */
const LOCKING = new Set([
  "AlterTableStmt",
  "IndexStmt",
  "RenameStmt",
  "DropStmt",
  "TruncateStmt",
  "LockStmt",
  "CommentStmt",
  "CreateEnumStmt",
  "CompositeTypeStmt",
  "CreateRangeStmt",
  "AlterEnumStmt",
  "AlterDomainStmt",
  "ReindexStmt",
  "VacuumStmt",
  "ClusterStmt",
  "CreateTrigStmt",
  "AlterObjectSchemaStmt",
]);

/** `text` cut at each `;` outside quotes, dollar quotes and comments, with each piece's start offset. */
export function splitStatements(text: string): Array<{ text: string; at: number }> {
  const out: Array<{ text: string; at: number }> = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"') {
      const close = text.indexOf(c, i + 1);
      // '' and "" escape a quote: the scan simply re-enters the literal on the next character.
      i = close < 0 ? text.length : close;
    } else if (c === "-" && text[i + 1] === "-") {
      const nl = text.indexOf("\n", i);
      i = nl < 0 ? text.length : nl;
    } else if (c === "/" && text[i + 1] === "*") {
      const close = text.indexOf("*/", i + 2);
      i = close < 0 ? text.length : close + 1;
    } else if (c === "$") {
      const tag = /^\$[A-Za-z_]*\$/.exec(text.slice(i))?.[0];
      if (tag) {
        const close = text.indexOf(tag, i + tag.length);
        i = close < 0 ? text.length : close + tag.length - 1;
      }
    } else if (c === ";") {
      out.push({ text: text.slice(start, i), at: start });
      start = i + 1;
    }
  }
  if (text.slice(start).trim()) out.push({ text: text.slice(start), at: start });
  return out;
}

/** PL/pgSQL keywords that open a block or branch ahead of an SQL statement in the same `;` piece. */
const PLPGSQL_PREFIX =
  /^(?:\s+|--[^\n]*|\/\*[\s\S]*?\*\/|<<\w+>>|DECLARE\b|BEGIN\b|ELSE\b|LOOP\b|(?:IF|ELSIF|ELSEIF|WHEN|EXCEPTION\s+WHEN)\b[\s\S]*?\bTHEN\b|(?:FOR|WHILE|FOREACH)\b[\s\S]*?\bLOOP\b|CASE\b[\s\S]*?(?=\bWHEN\b))/i;

/**
 * The SQL statements of a PL/pgSQL block (a DO body) that lint can check, with their offsets in
 * `body`: each `;` piece without its leading BEGIN / IF ... THEN / LOOP, and the literal of
 * `EXECUTE '...'`. `EXECUTE` of anything else is returned as `dynamic`. Pieces that are not SQL
 * (assignments, RAISE, END IF) are left out; libpg-query here has no PL/pgSQL parser.
 */
export function plpgsqlStatements(body: string): Array<{ sql: string; at: number; dynamic?: boolean }> {
  const out: Array<{ sql: string; at: number; dynamic?: boolean }> = [];
  for (const piece of splitStatements(body)) {
    let t = piece.text;
    let at = piece.at;
    for (let m = PLPGSQL_PREFIX.exec(t); m && m[0].length; m = PLPGSQL_PREFIX.exec(t)) {
      t = t.slice(m[0].length);
      at += m[0].length;
    }
    if (!t.trim()) continue;
    const exec = /^EXECUTE\s+([\s\S]*)$/i.exec(t);
    if (!exec) {
      out.push({ sql: t, at });
      continue;
    }
    const lit =
      /^'((?:[^']|'')*)'\s*(?:USING\b[\s\S]*)?$/i.exec(exec[1].trim()) ??
      /^(\$[A-Za-z_]*\$)([\s\S]*?)\1\s*(?:USING\b[\s\S]*)?$/i.exec(exec[1].trim());
    if (!lit) out.push({ sql: t, at, dynamic: true });
    else out.push({ sql: (lit[2] ?? lit[1]).replace(/''/g, "'"), at });
  }
  return out;
}

/** The body and language of a `DO` statement. */
function doBody(s: Node): { body: string; language: string } {
  let body = "";
  let language = "plpgsql";
  for (const a of (s.args as unknown[]) ?? []) {
    const d = (a as Node).DefElem as Node | undefined;
    const v = String(((d?.arg as Node)?.String as Node)?.sval ?? "");
    if (d?.defname === "as") body = v;
    if (d?.defname === "language") language = v.toLowerCase();
  }
  return { body, language };
}

/**
 * Lints the SQL text of one file; `file` is only used in findings. `state` carries what earlier
 * migrations of the same directory proved (pass the same object to each file, in order).
 */
export async function lintSql(
  sql: string,
  file: string,
  config: LintConfig = {},
  state: LintState = newLintState(),
): Promise<LintFinding[]> {
  const { parseSync } = await loadParser();
  const pgVersion = config.pgVersion ?? DEFAULT_PG_VERSION;
  const text = upPart(sql);
  const buf = Buffer.from(text, "utf8");
  // Byte offset of each line start, so a line number is a binary search, not a re-scan of the file.
  const lineStarts = [0];
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) lineStarts.push(i + 1);
  const lineAt = (byte: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= byte) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const finding = (line: number, rule: string, message: string, fingerprint?: string): LintFinding => {
    const { severity, why, instead } = RULES[rule];
    return { file, line, rule, severity, message, why, instead, fingerprint };
  };
  const textPrint = (t: string) =>
    createHash("sha256").update(t.replace(/\s+/g, " ").trim()).digest("hex").slice(0, 16);
  let stmts: RawStmt[];
  try {
    stmts = ((parseSync(text) as { stmts?: RawStmt[] }).stmts ?? []) as RawStmt[];
  } catch (e) {
    const err = e as { message?: string; sqlDetails?: { cursorPosition?: number } };
    // The parser's cursor counts characters, not bytes: with ñ or € above the error, a byte-based
    // line number pointed at an earlier line.
    const pos = err.sqlDetails?.cursorPosition;
    const byte = pos ? Buffer.byteLength(Array.from(text).slice(0, pos).join("")) : 0;
    return [finding(pos ? lineAt(byte) : 1, "parse-error", String(err.message ?? e), textPrint(text))];
  }
  const out: LintFinding[] = [];
  // node-pg-migrate runs SQL files inside a transaction it opens itself (no noTransaction for .sql).
  const wrapped = config.inTransaction ?? /^--\s*Up Migration\b/im.test(sql);
  let runnerTx = wrapped;
  let explicitTx: number | undefined; // line of an open BEGIN
  let txCounter = 0;
  let stmtCounter = 0;
  const ctx: StatementContext = {
    inTransaction: runnerTx,
    createdTables: new Set<string>(),
    addedColumns: new Set<string>(),
    provenNotNull: state.provenNotNull,
    notNullChecks: state.notNullChecks,
    notValidIn: new Map<string, string>(),
    pgVersion,
  };
  const timeouts = { lock_timeout: false, statement_timeout: false };
  let timeoutsWarned = Boolean(config.timeoutsSetByRunner);
  let begin: string | undefined; // fingerprint of the open BEGIN
  let prevEnd = 0;
  for (const raw of stmts) {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : buf.length;
    // The leading span holds this statement's comments, minus a trailing comment of the previous line.
    let leadStart = start;
    if (prevEnd > 0 && !buf.subarray(prevEnd, start).includes(10)) {
      const nl = buf.indexOf(10, start);
      leadStart = nl < 0 || nl >= end ? start : nl + 1;
    }
    const lead = buf.subarray(leadStart, end).toString("utf8");
    const afterEnd = buf.indexOf(10, end);
    const trailing = buf.subarray(end, afterEnd < 0 ? buf.length : afterEnd).toString("utf8");
    const allow = allowedRules(lead + "\n" + trailing);
    // The rule's former name (before statement_timeout joined it) still allows it.
    if (allow.has("require-lock-timeout")) allow.add("require-timeouts");
    const prefix = /^(\s|--[^\n]*(\n|$)|\/\*[\s\S]*?\*\/)*/.exec(lead)?.[0] ?? "";
    const line = lineAt(leadStart + Buffer.byteLength(prefix));
    prevEnd = end;
    // Hashed only when a finding needs it: most statements have none (npm run bench:lint).
    let current: Node = {};
    const print = () => statementFingerprint(current);
    const report = (at: number, rule: string, message: string) => {
      if (!allow.has(rule)) out.push(finding(at, rule, message, print()));
    };
    const visit = (stmt: Node, line: number, where: string): void => {
      const u = unwrap(stmt);
      if (!u) return;
      const [kind, s] = u;
      stmtCounter++;
      state.statements = (state.statements ?? 0) + 1;
      current = stmt;
      if (kind === "TransactionStmt") {
        const k = s.kind as string;
        const opens = k === "TRANS_STMT_BEGIN" || k === "TRANS_STMT_START";
        const closes = k === "TRANS_STMT_COMMIT" || k === "TRANS_STMT_ROLLBACK";
        if (opens) {
          if (runnerTx || explicitTx !== undefined)
            report(
              line,
              "transaction-nesting",
              `${where}BEGIN inside ${runnerTx ? "the transaction the runner wraps this file in" : "an open transaction"}`,
            );
          else {
            explicitTx = line;
            begin = print();
          }
          txCounter++;
        }
        if (closes) {
          if (explicitTx === undefined && runnerTx)
            report(
              line,
              "transaction-nesting",
              `${where}${k === "TRANS_STMT_COMMIT" ? "COMMIT" : "ROLLBACK"} ends the transaction the runner wraps this file in: the rest runs without one`,
            );
          // After COMMIT the session is outside any transaction, the runner's included.
          explicitTx = undefined;
          runnerTx = false;
          txCounter++;
        }
      }
      ctx.inTransaction = runnerTx || explicitTx !== undefined;
      ctx.txKey = ctx.inTransaction ? `tx${txCounter}` : `stmt${stmtCounter}`;
      if (kind === "VariableSetStmt" && String(s.name) in timeouts)
        timeouts[String(s.name) as keyof typeof timeouts] = setsALimit(s);
      for (const f of checkStatement(stmt, ctx)) report(line, f.rule, where + f.message);
      const rel = s.relation ?? ((s.relations as Node[] | undefined)?.[0]?.RangeVar as Node | undefined);
      const touchesExisting =
        LOCKING.has(kind) &&
        !(kind === "IndexStmt" && s.concurrent) &&
        !(rel && ctx.createdTables.has(tableKey(relName(rel))));
      const missing = Object.entries(timeouts)
        .filter(([, set]) => !set)
        .map(([k]) => k);
      if (touchesExisting && missing.length && !timeoutsWarned && !allow.has("require-timeouts")) {
        timeoutsWarned = true;
        if (state.timeouts) {
          // Said once per directory: the first finding counts the later migrations that lack them too.
          const t = state.timeouts;
          t.more++;
          t.finding.message = `${t.base} (and in ${t.more} later migration(s); said once)`;
        } else {
          const base = `${where}${kind.replace(/Stmt$/, "")} before any SET ${missing.join(" / ")}`;
          const f = finding(line, "require-timeouts", base, print());
          out.push(f);
          state.timeouts = { finding: f, base, more: 0 };
        }
      }
      // CREATE TABLE IF NOT EXISTS may find the table already there, with its rows: not new.
      if (kind === "CreateStmt" && !s.if_not_exists) ctx.createdTables.add(tableKey(relName(s.relation)));
      if (kind === "CreateTableAsStmt" && !s.if_not_exists)
        ctx.createdTables.add(tableKey(relName((s.into as Node | undefined)?.rel)));
      if (kind === "SelectStmt" && s.intoClause)
        ctx.createdTables.add(tableKey(relName((s.intoClause as Node).rel)));
    };
    const u = unwrap(raw.stmt);
    if (u?.[0] !== "DoStmt") {
      visit(raw.stmt, line, "");
      continue;
    }
    // A DO block is one string to PostgreSQL's SQL parser: without this, a DROP inside it passed unseen.
    const { body, language } = doBody(u[1]);
    if (language !== "plpgsql" || !body) continue;
    // A body in '...' with '' escapes is not in the file as the parser returns it: its statements are
    // named at the DO's line (before, the whole block was skipped and a DROP in it passed unseen).
    const bodyAt = buf.indexOf(Buffer.from(body, "utf8"), start);
    for (const p of plpgsqlStatements(body)) {
      // p.at is the statement's first character, or the EXECUTE of a literal: its line.
      const at = bodyAt < 0 ? line : lineAt(bodyAt + Buffer.byteLength(body.slice(0, p.at)));
      if (p.dynamic) {
        report(at, "unchecked-dynamic-sql", `in DO block: ${p.sql.trim().slice(0, 60)}`);
        continue;
      }
      let inner: RawStmt[];
      try {
        inner = ((parseSync(p.sql) as { stmts?: RawStmt[] }).stmts ?? []) as RawStmt[];
      } catch {
        continue;
      }
      // Inside a DO block the whole block is one transaction: BEGIN there is PL/pgSQL, not SQL.
      for (const r of inner)
        if (unwrap(r.stmt)?.[0] !== "TransactionStmt") visit(r.stmt, at, "in DO block: ");
    }
  }
  if (explicitTx !== undefined)
    out.push(
      finding(
        explicitTx,
        "uncommitted-transaction",
        "BEGIN without a COMMIT before the end of the file",
        begin,
      ),
    );
  return out;
}

/** `.sql` files under each path (a file is taken as is), sorted so reports are stable. */
export async function sqlFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const st = await stat(p);
    if (st.isFile()) out.push(p);
    else {
      const names = (await readdir(p, { recursive: true })) as string[];
      for (const n of names.sort()) if (n.endsWith(".sql")) out.push(join(p, n));
    }
  }
  return out;
}

/** What `lintMigrations` read, skipped and found in one directory (or file). */
export interface LintReport {
  findings: LintFinding[];
  /** Migrations in the directory (files, or Alembic revisions). */
  migrations: number;
  /** Migrations skipped because the target database (or the last good release) already applied them. */
  skippedApplied: number;
  /** Findings left out because the lint baseline accepted them. */
  accepted: number;
  /** Statements lint read: 0 with migrations to check means nothing could be checked. */
  statements: number;
  /** Migrations that could not be rendered to SQL offline, with the reason. */
  unchecked: Array<{ file: string; reason: string }>;
}

/** Options of `lintMigrations`. */
export interface LintMigrationsOptions extends LintConfig {
  /**
   * Migration files (relative to the directory, `/`-separated; Alembic: `versions/x.py`) already applied:
   * they are not judged again (issue 21). Undefined: every migration is linted.
   */
  applied?: ReadonlySet<string>;
  /** Drops findings the baseline accepted; returns the rest (see baseline.ts). */
  accept?: (findings: LintFinding[]) => LintFinding[];
  /** Project directory, where a JS/TS migration's own imports resolve (default: the directory's parent). */
  cwd?: string;
}

/** The name a migration is recorded under: Prisma's directory, node-pg-migrate's file name without extension. */
export function migrationName(rel: string): string {
  const prisma = /^([^/]+)\/migration\.sql$/.exec(rel);
  if (prisma) return prisma[1];
  return rel.includes("/") ? rel : rel.replace(/\.[^.]+$/, "");
}

/**
 * Lints one migrations directory (or one file) in run order, sharing what earlier migrations proved:
 * `.sql` files (node-pg-migrate, Prisma's `NAME/migration.sql`, plain), node-pg-migrate's own JS/TS
 * migrations through the SQL their `up` produces, an Alembic directory through offline SQL per revision.
 */
export async function lintMigrations(path: string, o: LintMigrationsOptions = {}): Promise<LintReport> {
  const report: LintReport = {
    findings: [],
    migrations: 0,
    skippedApplied: 0,
    accepted: 0,
    statements: 0,
    unchecked: [],
  };
  const state = newLintState();
  const isApplied = (rel: string) => o.applied?.has(rel) ?? false;
  const st = await stat(path);
  const generated = new Set<LintFinding>();
  let fn = "up()";
  if (st.isDirectory() && (await stat(join(path, "alembic.ini")).catch(() => undefined))) {
    fn = "upgrade()";
    // Revision by revision (adopt-tools' alembic.ts): one that needs a connection is named, the rest linted.
    const { renderAlembicRevisions } = await import("./alembic");
    const revisions = await renderAlembicRevisions(path);
    report.migrations = revisions.length;
    for (const r of revisions) {
      if (isApplied(r.file)) {
        report.skippedApplied++;
        continue;
      }
      const file = join(path, r.file);
      if (r.error !== undefined) {
        report.unchecked.push({ file, reason: r.error });
        continue;
      }
      // In place, not copies: the directory's one require-timeouts finding is updated by later files.
      for (const f of await lintSql(r.sql ?? "", file, o, state)) {
        generated.add(f);
        report.findings.push(Object.assign(f, { migration: r.revision }));
      }
    }
  } else {
    const { CODE_MIGRATION, renderNodePgMigrate } = await import("./node-pg-migrate-sql");
    const root = st.isDirectory() ? path : dirname(path);
    const rels = st.isDirectory()
      ? [
          ...((await readdir(path, { recursive: true })) as string[]).filter((n) => n.endsWith(".sql")),
          // node-pg-migrate runs the directory's own files only, .sql and code alike.
          ...(await readdir(path)).filter((n) => CODE_MIGRATION.test(n) && !n.endsWith(".d.ts")),
        ].sort()
      : [basename(path)];
    report.migrations = rels.length;
    const pending = rels.filter((r) => !isApplied(r.split(sep).join("/")));
    report.skippedApplied = rels.length - pending.length;
    const code = pending.filter((r) => CODE_MIGRATION.test(r) && !r.includes(sep));
    const rendered = new Map(
      (
        await renderNodePgMigrate(
          code.map((r) => join(root, r)),
          o.cwd ?? dirname(root),
        )
      ).map((m) => [m.file, m] as const),
    );
    for (const rel of pending) {
      const file = join(root, rel);
      const migration = migrationName(rel.split(sep).join("/"));
      let found: LintFinding[];
      const r = rendered.get(file);
      if (r?.error !== undefined) {
        report.unchecked.push({ file, reason: r.error });
        continue;
      } else if (r) {
        found = await lintSql(r.sql ?? "", file, { ...o, inTransaction: r.transaction }, state);
        for (const f of found) generated.add(f);
      } else if (rel.endsWith(".sql")) found = await lintSql(await readFile(file, "utf8"), file, o, state);
      else continue;
      for (const f of found) report.findings.push(Object.assign(f, { migration }));
    }
  }
  // Generated SQL has no lines of its own: the finding names the migration file and the function.
  for (const f of generated) Object.assign(f, { line: 1, message: `in ${fn}: ${f.message}` });
  report.statements = state.statements ?? 0;
  if (o.accept) {
    const kept = o.accept(report.findings);
    report.accepted = report.findings.length - kept.length;
    report.findings = kept;
  }
  return report;
}

/**
 * Lints every SQL file under `paths`, in order, sharing what earlier migrations proved (a CHECK
 * validated in one migration lets a later SET NOT NULL pass); a directory holding alembic.ini is
 * linted through offline SQL, node-pg-migrate's JS/TS migrations through the SQL their `up` produces.
 */
export async function lintPaths(paths: string[], config: LintConfig = {}): Promise<LintFinding[]> {
  const out: LintFinding[] = [];
  for (const p of paths) out.push(...(await lintMigrations(p, config)).findings);
  return out;
}

/** `file:line: severity [rule] message` plus why and instead, one finding per block. */
export function formatFindings(findings: LintFinding[]): string {
  return findings
    .map(
      (f) =>
        `${f.file}:${f.line}: ${f.severity} [${f.rule}] ${f.message}\n  why: ${f.why}\n  instead: ${f.instead}`,
    )
    .join("\n");
}

/** Options of `lintGate`. */
export interface LintGateOptions {
  /** The command that will run the migrations, for the messages (`rehearse`, `migrate up`). */
  command: string;
  /** Directory of the migrations (node-pg-migrate/prisma SQL, or Alembic's directory with alembic.ini). */
  dir: string;
  /** Go ahead despite lint errors; the reason is printed, so the log says why. */
  allowLint?: string;
  pgVersion?: number;
  /** Migration files the target database applied (see pending.ts): not judged again. */
  applied?: ReadonlySet<string>;
  /** The target database and its tool: the migrations its version table lists are not judged again. */
  database?: { url: string; tool: Tool };
  /** Lint baseline file (default `.safe-deploy/lint-baseline.json` in the working directory), if it exists. */
  baseline?: string;
  out?: (text: string) => void;
}

/** Refuses (ConfigError, exit 2) an `--allow-lint` without its reason; a command may check it before slow work. */
export async function checkAllowLint(allowLint: string | undefined): Promise<void> {
  const { ConfigError } = await import("../errors");
  if (allowLint !== undefined && !allowLint.trim())
    throw new ConfigError('`--allow-lint` needs the reason, e.g. --allow-lint "table has 20 rows"');
}

/**
 * Lints the migrations a command is about to run and refuses (CheckFailedError, exit 1) on any error
 * unless `allowLint` names a reason. The runner sets the timeouts, so `require-timeouts` is not reported.
 * node-pg-migrate JS/TS migrations are judged by the SQL their `up` produces; baseline findings pass.
 */
export async function lintGate(o: LintGateOptions): Promise<LintFinding[]> {
  const { CheckFailedError } = await import("../errors");
  await checkAllowLint(o.allowLint);
  if (!(await stat(o.dir).catch(() => undefined))?.isDirectory()) return [];
  const { DEFAULT_BASELINE, baselineFilter } = await import("./baseline");
  let applied = o.applied;
  if (!applied && o.database && o.database.tool !== "command") {
    const { appliedFromDatabase } = await import("./pending");
    const { connect } = await import("./runner");
    // A database that does not answer: every migration is judged (the run after the gate says why it
    // cannot migrate); the gate never fails on the connection itself.
    const client = await connect(o.database.url, "safe-deploy lint").catch(() => undefined);
    try {
      const query = async (q: string) =>
        (await client!.query<Record<string, unknown>>(q)).rows.map((r) => String(Object.values(r)[0]));
      if (client) applied = (await appliedFromDatabase(o.database.tool, o.dir, query)).files;
    } finally {
      await client?.end();
    }
  }
  const report = await lintMigrations(o.dir, {
    pgVersion: o.pgVersion,
    timeoutsSetByRunner: true,
    applied,
    accept: await baselineFilter(o.baseline ?? DEFAULT_BASELINE),
  });
  const findings = report.findings;
  const errors = findings.filter((f) => f.severity === "error");
  if (errors.length === 0) return findings;
  const list = errors.map((f) => `  ${f.file}:${f.line} [${f.rule}] ${f.message}`).join("\n");
  if (o.allowLint) {
    (o.out ?? (() => {}))(
      `${o.command}: lint found ${errors.length} error(s), allowed: ${o.allowLint}\n${list}`,
    );
    return findings;
  }
  throw new CheckFailedError(
    `${o.command} refused: lint found ${errors.length} error(s) in the migrations:\n${list}\n` +
      `Fix them (see \`safe-deploy lint ${o.dir}\` and docs/lint-rules.md), allow one with \`-- safe-deploy: allow RULE\` in the file, ` +
      `or pass --allow-lint "REASON" to run them on purpose`,
  );
}
