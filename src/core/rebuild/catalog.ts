import type { Client } from "pg";
import { ident } from "../database/quote";
import type { Table } from "./plan";

/** `"schema"."name"` from `schema.name` (names hold no dot of their own here: the catalog query quotes none). */
export function qualified(table: string): string {
  const dot = table.indexOf(".");
  return `${ident(table.slice(0, dot))}.${ident(table.slice(dot + 1))}`;
}

const USER_TABLES = `c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

/** Every user table (extension-owned ones left out) with its columns in order. */
export async function readCatalog(client: Client): Promise<Table[]> {
  const { rows } = await client.query<{
    t: string;
    col: string;
    type: string;
    notnull: boolean;
    hasdef: boolean;
    gen: boolean;
    ident: boolean;
    owner: string;
  }>(
    `SELECT n.nspname || '.' || c.relname AS t, pg_get_userbyid(c.relowner) AS owner, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS notnull, a.atthasdef AS hasdef, a.attgenerated <> '' AS gen, a.attidentity <> '' AS ident
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE ${USER_TABLES}
     ORDER BY 1, a.attnum`,
  );
  const tables = new Map<string, Table>();
  for (const r of rows) {
    let t = tables.get(r.t);
    if (!t) tables.set(r.t, (t = { name: r.t, columns: [], owner: r.owner }));
    t.columns.push({
      name: r.col,
      type: r.type,
      notNull: r.notnull,
      hasDefault: r.hasdef,
      generated: r.gen,
      identity: r.ident,
    });
  }
  return [...tables.values()];
}

/** Row counts of the given tables (exact). */
export async function countTables(client: Client, tables: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of tables) {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified(t)}`);
    out[t] = Number(rows[0].n);
  }
  return out;
}

/** The tables (of `tables`) that hold rows. */
export async function nonEmpty(client: Client, tables: string[]): Promise<Record<string, number>> {
  const counts = await countTables(client, tables);
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}

/** A CHECK or FOREIGN KEY constraint, as `ALTER TABLE ... ADD CONSTRAINT` needs it. */
export interface Constraint {
  table: string;
  name: string;
  /** `pg_get_constraintdef` without a trailing NOT VALID. */
  def: string;
  kind: "c" | "f";
}

/**
 * The CHECK and FOREIGN KEY constraints of the user tables. They are taken off during the copy (foreign
 * keys would need the tables in dependency order, checks would stop the copy at the first bad row
 * without naming them all) and put back NOT VALID, then validated one by one.
 */
export async function readConstraints(client: Client): Promise<Constraint[]> {
  const { rows } = await client.query<{ t: string; name: string; def: string; kind: "c" | "f" }>(
    `SELECT n.nspname || '.' || c.relname AS t, k.conname AS name, pg_get_constraintdef(k.oid) AS def, k.contype AS kind
     FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE k.contype IN ('c', 'f') AND k.conparentid = 0 AND ${USER_TABLES}
     ORDER BY k.contype DESC, 1, 2`,
  );
  return rows.map((r) => ({
    table: r.t,
    name: r.name,
    kind: r.kind,
    def: r.def.replace(/\s+NOT VALID$/, ""),
  }));
}

/** Drops `cs` (foreign keys first, since a check never depends on one). */
export async function dropConstraints(client: Client, cs: Constraint[]): Promise<void> {
  for (const c of [...cs].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "f" ? -1 : 1)))
    await client.query(`ALTER TABLE ${qualified(c.table)} DROP CONSTRAINT ${ident(c.name)}`);
}

/** Adds `cs` back NOT VALID (cheap: no scan), so each is then validated on its own and named when it fails. */
export async function addConstraintsNotValid(client: Client, cs: Constraint[]): Promise<void> {
  for (const c of cs)
    await client.query(
      `ALTER TABLE ${qualified(c.table)} ADD CONSTRAINT ${ident(c.name)} ${c.def} NOT VALID`,
    );
}

/** Validates every NOT VALID constraint of the user tables; returns one line per constraint the data breaks. */
export async function validateConstraints(client: Client): Promise<string[]> {
  const { rows } = await client.query<{ t: string; name: string }>(
    `SELECT n.nspname || '.' || c.relname AS t, k.conname AS name
     FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT k.convalidated AND k.contype IN ('c', 'f') AND ${USER_TABLES} ORDER BY 1, 2`,
  );
  const failed: string[] = [];
  for (const r of rows) {
    try {
      await client.query(`ALTER TABLE ${qualified(r.t)} VALIDATE CONSTRAINT ${ident(r.name)}`);
    } catch (e) {
      failed.push(`constraint ${r.name} on ${r.t}: ${(e as Error).message}`);
    }
  }
  return failed;
}

/** The enabled user triggers, disabled for the copy so they neither change nor add rows. */
export async function disableTriggers(client: Client): Promise<Array<{ table: string; name: string }>> {
  const { rows } = await client.query<{ t: string; name: string }>(
    `SELECT n.nspname || '.' || c.relname AS t, g.tgname AS name
     FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT g.tgisinternal AND g.tgenabled = 'O' AND ${USER_TABLES}`,
  );
  for (const r of rows) await client.query(`ALTER TABLE ${qualified(r.t)} DISABLE TRIGGER ${ident(r.name)}`);
  return rows.map((r) => ({ table: r.t, name: r.name }));
}

/** Enables what `disableTriggers` disabled. */
export async function enableTriggers(
  client: Client,
  ts: Array<{ table: string; name: string }>,
): Promise<void> {
  for (const t of ts) await client.query(`ALTER TABLE ${qualified(t.table)} ENABLE TRIGGER ${ident(t.name)}`);
}

/** Sequences by `schema.name` with the value last handed out (null when never used). */
export async function sequenceValues(client: Client): Promise<Record<string, number | null>> {
  const { rows } = await client.query<{ s: string; v: string | null }>(
    "SELECT schemaname || '.' || sequencename AS s, last_value::text AS v FROM pg_sequences",
  );
  return Object.fromEntries(rows.map((r) => [r.s, r.v === null ? null : Number(r.v)]));
}

/**
 * Sets each sequence of the target past what it has to hand out next: the highest value of the column
 * that owns it, or the source's sequence of the same name when that one is further on (ids handed out
 * and rolled back, deleted rows). Returns one line per sequence set.
 */
export async function setSequences(client: Client, source: Record<string, number | null>): Promise<string[]> {
  const { rows } = await client.query<{ s: string; t: string | null; col: string | null }>(
    `SELECT sn.nspname || '.' || s.relname AS s, tn.nspname || '.' || t.relname AS t, a.attname AS col
     FROM pg_class s JOIN pg_namespace sn ON sn.oid = s.relnamespace
       LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass
         AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
       LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
     WHERE s.relkind = 'S' AND sn.nspname NOT IN ('pg_catalog', 'information_schema')`,
  );
  const lines: string[] = [];
  for (const r of rows) {
    let max: number | null = null;
    if (r.t && r.col) {
      const q = await client.query<{ m: string | null }>(
        `SELECT max(${ident(r.col)})::text AS m FROM ${qualified(r.t)}`,
      );
      max = q.rows[0].m === null ? null : Number(q.rows[0].m);
    }
    const from = source[r.s] ?? null;
    const value = Math.max(max ?? -Infinity, from ?? -Infinity);
    if (!Number.isFinite(value)) continue;
    await client.query("SELECT setval($1::regclass, $2, true)", [qualified(r.s), value]);
    lines.push(
      `sequence ${r.s} set to ${value}${from !== null && from >= (max ?? -Infinity) ? " (the live value)" : " (max of its column)"}`,
    );
  }
  return lines;
}

/**
 * Fills the materialized views the schema step left empty (`pg_dump --schema-only` creates them WITH NO
 * DATA; reading one would fail). One that reads another is retried after it, so the order sorts itself out.
 */
export async function refreshMaterializedViews(client: Client): Promise<string[]> {
  const { rows } = await client.query<{ v: string }>(
    "SELECT schemaname || '.' || matviewname AS v FROM pg_matviews WHERE NOT ispopulated ORDER BY 1",
  );
  let left = rows.map((r) => r.v);
  const done: string[] = [];
  for (let pass = 0; left.length && pass <= rows.length; pass++) {
    const failed: string[] = [];
    for (const v of left) {
      try {
        await client.query(`REFRESH MATERIALIZED VIEW ${qualified(v)}`);
        done.push(v);
      } catch {
        failed.push(v);
      }
    }
    if (failed.length === left.length) break;
    left = failed;
  }
  if (left.length) await client.query(`REFRESH MATERIALIZED VIEW ${qualified(left[0])}`);
  return done;
}

/** How many large objects the database holds (they live outside every table, so a COPY never carries them). */
export async function largeObjects(client: Client): Promise<number> {
  const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM pg_largeobject_metadata");
  return Number(rows[0].n);
}

/**
 * `GRANT` statements giving other roles what they hold on the relations (tables, views, sequences) of
 * this database, and on its schemas (keyed by the schema's name): `pg_dump --no-privileges` leaves them out, and an app that connects as a role other
 * than the owner would lose its access at the swap. Keyed by `schema.name`.
 */
export async function relationGrants(client: Client): Promise<Array<{ rel: string; sql: string }>> {
  const { rows } = await client.query<{ rel: string; sql: string }>(
    `SELECT n.nspname || '.' || c.relname AS rel,
       format('GRANT %s ON %s %I.%I TO %s%s', a.privilege_type, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
         n.nspname, c.relname, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
         CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS sql
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND a.grantee <> c.relowner
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
     UNION ALL
     SELECT n.nspname, format('GRANT %s ON SCHEMA %I TO %s%s', a.privilege_type, n.nspname,
         CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
         CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
     FROM pg_namespace n, aclexplode(n.nspacl) a
     WHERE a.grantee <> n.nspowner AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
     ORDER BY 1, 2`,
  );
  return rows;
}

/** Every relation of this database by `schema.name` (what a grant can be applied to). */
export async function relationNames(client: Client): Promise<Set<string>> {
  const { rows } = await client.query<{ rel: string }>(
    `SELECT n.nspname || '.' || c.relname AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     UNION ALL SELECT nspname FROM pg_namespace`,
  );
  return new Set(rows.map((r) => r.rel));
}
