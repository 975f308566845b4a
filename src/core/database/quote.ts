// SQL text quoting, in one place for every module that builds SQL as text (psql sessions, pg_dump's
// queries, DO blocks). Values that come from users or servers always go through these.

/** A string as an SQL literal (standard_conforming_strings, on since PostgreSQL 9.1). */
export const literal = (v: string): string => `'${v.replace(/'/g, "''")}'`;

/** An identifier, always quoted. */
export const ident = (v: string): string => `"${v.replace(/"/g, '""')}"`;
