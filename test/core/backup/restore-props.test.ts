import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup } from "../../../src/core/backup";
import { archiveDatabase, localeError } from "../../../src/core/backup/restore";
import { CannotRunError } from "../../../src/core/errors";

// What an archive holds about the database itself survives a restore (issue 15).
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-props-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SRC = "Src db";

/** Everything about a database but its name and data. */
async function props(server: TestPostgres, db: string) {
  const [p] = await server.query(
    `SELECT pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding, d.datcollate,
       d.datctype, d.datlocprovider, d.daticulocale, d.datconnlimit, d.datacl::text AS acl,
       shobj_description(d.oid, 'pg_database') AS comment,
       (SELECT string_agg(coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '*') || ':' || array_to_string(s.setconfig, ','), ' ' ORDER BY 1)
          FROM pg_db_role_setting s WHERE s.setdatabase = d.oid) AS settings
     FROM pg_database d WHERE d.datname = $1`,
    [db],
  );
  return p;
}

async function makeSource(server: TestPostgres) {
  for (const r of ["app_owner", "app_reader"]) await server.query(`CREATE ROLE ${r} LOGIN`);
  await server.query(
    `CREATE DATABASE "${SRC}" OWNER app_owner TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C' CONNECTION LIMIT 7`,
  );
  for (const q of [
    `REVOKE CONNECT, TEMPORARY ON DATABASE "${SRC}" FROM PUBLIC`,
    `GRANT CONNECT ON DATABASE "${SRC}" TO app_reader`,
    `ALTER DATABASE "${SRC}" SET work_mem = '8MB'`,
    `ALTER DATABASE "${SRC}" SET search_path = app, public`,
    `ALTER ROLE app_reader IN DATABASE "${SRC}" SET statement_timeout = '5s'`,
    `COMMENT ON DATABASE "${SRC}" IS 'orders; the ''main'' one'`,
  ])
    await server.query(q);
  await server.query("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)", [], SRC);
}

test("a database created by restore is the one in the archive: locale, ICU, grants, settings, limit, comment", async () => {
  await makeSource(pg);
  const want = await props(pg, SRC);
  assert.equal(want.datlocprovider, "i", "the source differs from the server's default");
  const r = await createBackup({ databaseUrl: pg.url(SRC), dir, label: "manual" });

  // Under a new name on the same server.
  await restoreBackup(r.file, { databaseUrl: pg.url("copy of src") });
  assert.deepEqual(await props(pg, "copy of src"), want);

  // Onto a fresh server (disaster recovery): its roles recreated, nothing else.
  const fresh = await startPostgres();
  try {
    for (const role of ["app_owner", "app_reader"]) await fresh.query(`CREATE ROLE ${role} LOGIN`);
    await restoreBackup(r.file, { databaseUrl: fresh.url(SRC) });
    assert.deepEqual(await props(fresh, SRC), want);
    const [{ n }] = await fresh.query<{ n: number }>("SELECT count(*)::int AS n FROM t", [], SRC);
    assert.equal(n, 100);
  } finally {
    await fresh.close();
  }
});

test("a restore over the live database keeps its comment (and grants, settings, limit, locale)", async () => {
  const want = await props(pg, SRC);
  assert.ok(want.comment, "the first test made the source");
  const r = await createBackup({ databaseUrl: pg.url(SRC), dir, label: "manual" });
  const res = await restoreBackup(r.file, { databaseUrl: pg.url(SRC) });
  assert.ok(res.previousDatabase);
  assert.deepEqual(await props(pg, SRC), want);
});

test("archiveDatabase: the database's own statements, renamed; localeError names the locale and the fix", () => {
  const script = [
    "SET statement_timeout = 0;",
    "--",
    "-- Name: lost; Type: DATABASE; Schema: -; Owner: app",
    "--",
    "",
    "CREATE DATABASE lost WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'xx_YY.UTF-8';",
    "ALTER DATABASE lost OWNER TO app;",
    "\\connect -reuse-previous=on \"dbname='lost'\"",
    "SET lock_timeout = 0;",
    "-- Name: DATABASE lost; Type: COMMENT; Schema: -; Owner: app",
    "COMMENT ON DATABASE lost IS 'two",
    "lines; DATABASE lost';",
    "-- Name: t; Type: TABLE; Schema: public; Owner: app",
    "CREATE TABLE public.t (id integer);",
    "-- Name: DATABASE lost; Type: ACL; Schema: -; Owner: app",
    "REVOKE CONNECT,TEMPORARY ON DATABASE lost FROM PUBLIC;",
    "-- Name: lost; Type: DATABASE PROPERTIES; Schema: -; Owner: app",
    "ALTER DATABASE lost CONNECTION LIMIT = 3;",
    "ALTER ROLE r IN DATABASE lost SET work_mem TO '8MB';",
  ].join("\n");
  const a = archiveDatabase(script, "lost", "lost_restoring_1");
  assert.equal(a.owner, "app");
  assert.equal(
    a.create,
    "CREATE DATABASE \"lost_restoring_1\" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'xx_YY.UTF-8';",
  );
  assert.deepEqual(a.after, [
    'ALTER DATABASE "lost_restoring_1" OWNER TO app;',
    "COMMENT ON DATABASE \"lost_restoring_1\" IS 'two\nlines; DATABASE lost';",
    'REVOKE CONNECT,TEMPORARY ON DATABASE "lost_restoring_1" FROM PUBLIC;',
    'ALTER DATABASE "lost_restoring_1" CONNECTION LIMIT = 3;',
    "ALTER ROLE r IN DATABASE \"lost_restoring_1\" SET work_mem TO '8MB';",
  ]);
  assert.equal(archiveDatabase(script.replace(/lost/g, '"Lost db"'), "Lost db", "x").after.length, 5);

  const e = localeError(
    new CannotRunError('creating the database failed: ERROR:  invalid locale name: "xx_YY.UTF-8"'),
    "lost",
    "/b/backup.pgdump.zst",
    a.create!,
  ) as Error;
  assert.ok(e instanceof CannotRunError);
  assert.match(e.message, /LOCALE 'xx_YY\.UTF-8'.*lacks that locale.*locale-gen.*nothing was changed/);
  const other = new CannotRunError("disk full");
  assert.equal(localeError(other, "lost", "f", a.create!), other);
});

test("a locale the server lacks: the restore fails naming it and the fix, nothing created", async () => {
  // The source server gets a de_DE.UTF-8 compiled into a private LOCPATH; the target has only C locales.
  const locales = mkdtempSync(join(tmpdir(), "sd-locale-"));
  chmodSync(locales, 0o755);
  execFileSync("localedef", ["-i", "de_DE", "-f", "UTF-8", join(locales, "de_DE.UTF-8")]);
  process.env.LOCPATH = locales;
  const source = await startPostgres().finally(() => delete process.env.LOCPATH);
  try {
    await source.query("CREATE DATABASE german LOCALE 'de_DE.UTF-8' TEMPLATE template0");
    await source.query("CREATE TABLE t (id int)", [], "german");
    const r = await createBackup({ databaseUrl: source.url("german"), dir: join(dir, "german") });
    const before = await pg.query("SELECT datname FROM pg_database ORDER BY 1");
    await assert.rejects(restoreBackup(r.file, { databaseUrl: pg.url("german") }), (e: Error) => {
      assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, /database "german" .*LOCALE 'de_DE\.UTF-8'.*lacks that locale.*locale-gen/);
      assert.match(e.message, /nothing was changed$/);
      return true;
    });
    assert.deepEqual(await pg.query("SELECT datname FROM pg_database ORDER BY 1"), before);
  } finally {
    await source.close();
    rmSync(locales, { recursive: true, force: true });
  }
});
