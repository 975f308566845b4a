// SQL text helpers shared by the change stream modules.
import { ident } from "../database/quote";

/** `schema.table`, both quoted. */
export const qualified = (schema: string, name: string): string => `${ident(schema)}.${ident(name)}`;

/** The rest of the first line of psql output `t` that starts with `prefix` ("" when none does). */
export const outLine = (t: string, prefix: string): string =>
  t
    .split("\n")
    .find((l) => l.startsWith(prefix))
    ?.slice(prefix.length) ?? "";

/** An LSN (`X/Y`, hex) as a number to compare. */
export const lsnValue = (lsn: string): bigint => {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn);
  if (!m) throw new Error(`not an LSN: ${lsn}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
};

/** An LSN in PostgreSQL's own spelling (no leading zeros), e.g. `0/16B3748`. */
export const lsnText = (v: bigint): string =>
  `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

/**
 * The message of anything thrown. Inside Pulumi's provider host the engine's error classes are copied
 * by value and their instances fail `instanceof Error`, so this reads `message` wherever it is.
 */
export const errorText = (e: unknown): string =>
  e && typeof e === "object" && "message" in e ? String((e as { message: unknown }).message) : String(e);

/**
 * JSON array of `schema.table` for the ordinary tables without primary key or replica identity:
 * while a publication FOR ALL TABLES exists, PostgreSQL refuses UPDATE and DELETE on them.
 */
export const NO_IDENTITY_SQL = `SELECT coalesce(json_agg(n.nspname || '.' || c.relname ORDER BY n.nspname, c.relname), '[]')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
      AND (c.relreplident = 'n'
        OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
        OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))`;
