import type { TestPostgres } from "../../helpers/postgres";

/** A database with what a round trip most often loses: schemas, unicode, bytea, jsonb, arrays, sequences, views, functions, triggers, large objects. */
export const RICH_SQL = `
CREATE SCHEMA shop;
CREATE SCHEMA "Odd Schema";
CREATE TABLE shop.customers (
  id bigserial PRIMARY KEY, name text NOT NULL, photo bytea, prefs jsonb, tags text[], scores int[],
  updated_at timestamptz, updated_count int NOT NULL DEFAULT 0);
CREATE TABLE "Odd Schema"."Ünïcödé tåble" (k text PRIMARY KEY, v text);
CREATE SEQUENCE shop.invoice_no START 1000;
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_count := OLD.updated_count + 1; NEW.updated_at := '2020-01-01'; RETURN NEW; END $$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON shop.customers FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE VIEW shop.vip AS SELECT id, name FROM shop.customers WHERE prefs->>'vip' = 'true';
INSERT INTO shop.customers (name, photo, prefs, tags, scores) SELECT
  'cliente ñandú 漢字 🎉 ' || g, decode(md5(g::text) || '00ff', 'hex'),
  jsonb_build_object('vip', g % 3 = 0, 'n', g, 'nested', jsonb_build_array(g, 'x')),
  ARRAY['a' || g, 'b,"q"', NULL], ARRAY[g, g * 2]
  FROM generate_series(1, 500) g;
UPDATE shop.customers SET name = name || '!' WHERE id <= 10;
INSERT INTO "Odd Schema"."Ünïcödé tåble" VALUES ('ключ', 'значение'), ('tab	and
newline', E'back\\\\slash');
SELECT nextval('shop.invoice_no') FROM generate_series(1, 42);
SELECT lo_from_bytea(0, convert_to(repeat('large object ☃ ', 1000), 'UTF8'));
SELECT lo_from_bytea(0, decode('00010203ff', 'hex'));
`;

/** Fingerprint of a database: per-table data checksums, sequences and large objects. */
export async function fingerprint(pg: TestPostgres, db: string): Promise<Record<string, unknown>> {
  const tables = await pg.query<{ s: string; t: string }>(
    `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
    [],
    db,
  );
  const out: Record<string, unknown> = {};
  for (const { s, t } of tables) {
    const q = `"${s}"."${t}"`;
    const [r] = await pg.query<{ n: string; h: string }>(
      `SELECT count(*) AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS h FROM ${q} x`,
      [],
      db,
    );
    out[`${s}.${t}`] = r;
  }
  out.sequence = (await pg.query(`SELECT last_value, is_called FROM shop.invoice_no`, [], db))[0];
  out.customersSeq = (await pg.query(`SELECT last_value, is_called FROM shop.customers_id_seq`, [], db))[0];
  out.largeObjects = await pg.query(
    `SELECT oid::text, md5(lo_get(oid)) AS h FROM pg_largeobject_metadata ORDER BY oid`,
    [],
    db,
  );
  out.view = await pg.query(`SELECT count(*)::int AS n FROM shop.vip`, [], db);
  return out;
}

/**
 * The database of `fixtures/backup_20261206_070000_v1.pgdump.zst`, a backup with a version 1 manifest
 * (server-side checksums) made by the code before issue 18's dump-stream checksums; kept to prove such
 * backups still verify. Fixed values only, so the checksums do not depend on when it is restored.
 */
export const V1_FIXTURE_SQL = `
CREATE SCHEMA shop;
CREATE TABLE shop.items (id int PRIMARY KEY, name text, price numeric(10,2), at timestamptz, b bytea, f float8);
INSERT INTO shop.items SELECT g, 'artículo ' || g, g * 1.25, '2026-01-01 00:00+00'::timestamptz + g * interval '1 hour',
  int4send(g), g / 7.0 FROM generate_series(1, 200) g;
CREATE TABLE public.notes (k text, v jsonb);
INSERT INTO public.notes VALUES ('a', '{"x": 1}'), ('b', '[1, "dos"]'), ('tab	and newline
', NULL);
CREATE TABLE public.empty (x int);
`;
