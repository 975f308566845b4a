// The SQL a restore writes about the database itself (issue 22, mutation testing of
// src/core/backup/restore.ts: `archiveDatabase`, `createLike`, `carryOverSql`), statement by statement:
// a wrong word there is a restored database without its grants, comment, settings or locale, or a
// CREATE DATABASE the server refuses after the safety backup was taken. The pure parts run in process;
// carryOverSql's output is read from one small server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { archiveDatabase, carryOverSql, createLike } from "../../../src/core/backup/restore";
import { CannotRunError } from "../../../src/core/errors";

/** What `pg_restore -C -s -f -` prints around the database's entries (the lines archiveDatabase must skip). */
const header = (name: string, type: string, owner = "app", schema = "-") => [
  "--",
  `-- Name: ${name}; Type: ${type}; Schema: ${schema}; Owner: ${owner}`,
  "--",
  "",
];

test("archiveDatabase: only the database's own entries, each statement whole, renamed where it names the database", () => {
  const script = [
    "SET statement_timeout = 0;",
    "SELECT pg_catalog.set_config('search_path', '', false);",
    ...header("shop", "DATABASE"),
    "CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8';",
    "",
    "",
    "ALTER DATABASE shop OWNER TO app;",
    "",
    "\\connect shop",
    "",
    "SET lock_timeout = 0;",
    "CREATE TABLE public.after_connect (id integer);",
    ...header("DATABASE shop", "COMMENT"),
    "COMMENT ON DATABASE shop IS 'ends a line;",
    "",
    "-- not a comment: inside the literal",
    "SET inside = the literal;';",
    ...header("t", "TABLE", "app", "public"),
    "CREATE TABLE public.t (id integer);",
    ...header("TABLE t", "COMMENT", "app", "public"),
    "COMMENT ON TABLE public.t IS 'DATABASE shop';",
    ...header("t", "ACL"),
    "GRANT SELECT ON TABLE public.t TO r;",
    ...header("DATABASE shop", "ACL"),
    "REVOKE ALL ON DATABASE shop FROM PUBLIC;",
    'GRANT CONNECT ON DATABASE shop TO "DATABASE shopper";',
    "-- TOC entry 3390 (class 1262 OID 16384)",
    ...header("DATABASE shop", "SECURITY LABEL"),
    "SECURITY LABEL FOR dummy ON DATABASE shop IS 'classified: CREATE DATABASE shop';",
    ...header("shop", "DATABASE PROPERTIES"),
    "ALTER DATABASE shop SET search_path TO 'app', 'public';",
    "ALTER ROLE \"DATABASE shopper\" IN DATABASE shop SET work_mem TO '8MB';",
    "ALTER ROLE \"DATABASE shop\" IN DATABASE shop SET work_mem TO '9MB';",
    ...header("u", "TABLE"),
    "CREATE TABLE public.u (id integer);",
  ].join("\n");
  assert.deepEqual(archiveDatabase(script, "shop", 'shop "new"'), {
    owner: "app",
    create: 'CREATE DATABASE "shop ""new""" WITH TEMPLATE = template0 ENCODING = \'UTF8\';',
    after: [
      'ALTER DATABASE "shop ""new""" OWNER TO app;',
      'COMMENT ON DATABASE "shop ""new""" IS \'ends a line;\n\n-- not a comment: inside the literal\nSET inside = the literal;\';',
      'REVOKE ALL ON DATABASE "shop ""new""" FROM PUBLIC;',
      'GRANT CONNECT ON DATABASE "shop ""new""" TO "DATABASE shopper";',
      'SECURITY LABEL FOR dummy ON DATABASE "shop ""new""" IS \'classified: CREATE DATABASE shop\';',
      'ALTER DATABASE "shop ""new""" SET search_path TO \'app\', \'public\';',
      'ALTER ROLE "DATABASE shopper" IN DATABASE "shop ""new""" SET work_mem TO \'8MB\';',
      // The role's name holds the text too, followed by a quote: not the database.
      'ALTER ROLE "DATABASE shop" IN DATABASE "shop ""new""" SET work_mem TO \'9MB\';',
    ],
  });
});

test("archiveDatabase: a quoted name, a name that prefixes another, no owner, no entries", () => {
  const quoted = [
    ...header('"Shop db"', "DATABASE", " "),
    'CREATE DATABASE "Shop db" WITH TEMPLATE = template0;',
    "ALTER DATABASE \"Shop db\" SET work_mem TO '1MB';",
  ].join("\n");
  assert.deepEqual(archiveDatabase(quoted, "Shop db", "to"), {
    owner: undefined,
    create: 'CREATE DATABASE "to" WITH TEMPLATE = template0;',
    after: ["ALTER DATABASE \"to\" SET work_mem TO '1MB';"],
  });
  const inName = [...header('"a""b"', "DATABASE"), 'ALTER DATABASE "a""b" SET x TO 1;'].join("\n");
  assert.deepEqual(archiveDatabase(inName, 'a"b', "c").after, ['ALTER DATABASE "c" SET x TO 1;']);
  // `DATABASE ab` holds `DATABASE a`: only a match followed by a space, `;` or the line's end renames.
  const prefix = [
    ...header("a", "DATABASE PROPERTIES"),
    'ALTER ROLE "DATABASE ab" IN DATABASE a SET x TO 1;',
  ];
  assert.deepEqual(archiveDatabase(prefix.join("\n"), "a", "b").after, [
    'ALTER ROLE "DATABASE ab" IN DATABASE "b" SET x TO 1;',
  ]);
  assert.deepEqual(
    archiveDatabase([...header("a", "DATABASE"), "DROP DATABASE a;"].join("\n"), "a", "b").after,
    ['DROP DATABASE "b";'],
  );
  assert.deepEqual(
    archiveDatabase([...header("a", "DATABASE"), "COMMENT ON DATABASE a", "IS 'x';"].join("\n"), "a", "b")
      .after,
    ["COMMENT ON DATABASE \"b\"\nIS 'x';"],
  );
  assert.deepEqual(archiveDatabase("", "a", "b"), { after: [] });
  assert.deepEqual(
    archiveDatabase(["SET x = 1;", ...header("t", "TABLE"), "CREATE TABLE t ();"].join("\n"), "a", "b"),
    {
      after: [],
    },
  );
});

test("archiveDatabase: a statement that does not name the database where expected is refused, quoted", () => {
  const long = `ALTER DATABASE ab SET search_path TO ${"x, ".repeat(40)}y;`;
  assert.throws(
    () => archiveDatabase([...header("a", "DATABASE PROPERTIES"), long].join("\n"), "a", "b"),
    (e: Error) => {
      assert.ok(e instanceof CannotRunError, e.message);
      assert.equal(e.message, `cannot read the archive's statement about database "a": ${long.slice(0, 80)}`);
      return true;
    },
  );
});

test("createLike: owner, encoding, locales, provider and limit of the old database, all quoted", () => {
  const base = { owner: 'o"w', encoding: "UTF8", collate: "it's", ctype: "C", connLimit: 7 };
  assert.equal(
    createLike('n"1', base),
    `CREATE DATABASE "n""1" OWNER "o""w" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'it''s' LC_CTYPE 'C' CONNECTION LIMIT 7;`,
  );
  assert.equal(
    createLike("n", { ...base, locProvider: "c", iculocale: null }),
    `CREATE DATABASE "n" OWNER "o""w" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'it''s' LC_CTYPE 'C' LOCALE_PROVIDER libc CONNECTION LIMIT 7;`,
  );
  assert.equal(
    createLike("n", { ...base, locProvider: "i", iculocale: "de-DE", connLimit: -1 }),
    `CREATE DATABASE "n" OWNER "o""w" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'it''s' LC_CTYPE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' CONNECTION LIMIT -1;`,
  );
  assert.equal(
    createLike("n", { ...base, locProvider: "i", iculocale: null }),
    `CREATE DATABASE "n" OWNER "o""w" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'it''s' LC_CTYPE 'C' LOCALE_PROVIDER icu ICU_LOCALE '' CONNECTION LIMIT 7;`,
  );
  // A limit read from JSON as text still gives a number, never text pasted into the SQL.
  assert.match(
    createLike("n", { ...base, connLimit: "3; DROP DATABASE x" as unknown as number }),
    /CONNECTION LIMIT NaN;$/,
  );
});

let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
  await pg.query(`CREATE ROLE "Reader one" LOGIN; CREATE ROLE writer LOGIN`);
  await pg.query(`CREATE DATABASE "it's"`);
  await pg.query("CREATE DATABASE plain");
  for (const q of [
    `REVOKE ALL ON DATABASE "it's" FROM PUBLIC`,
    `GRANT CONNECT ON DATABASE "it's" TO "Reader one"`,
    `GRANT CREATE ON DATABASE "it's" TO writer WITH GRANT OPTION`,
    `GRANT TEMPORARY ON DATABASE "it's" TO PUBLIC`,
    `COMMENT ON DATABASE "it's" IS 'the shop''s'`,
    `ALTER DATABASE "it's" SET work_mem = '8MB'`,
    `ALTER DATABASE "it's" SET search_path = app, "my schema"`,
    `ALTER DATABASE "it's" SET application_name = 'a=b'`,
    `ALTER ROLE "Reader one" IN DATABASE "it's" SET statement_timeout = '5s'`,
    // An empty list (a hardened search_path): stored as `""`, which SET reads as an empty identifier.
    `ALTER ROLE writer IN DATABASE plain SET temp_tablespaces = ''`,
    `ALTER DATABASE plain SET search_path = ''`,
    `ALTER ROLE "Reader one" IN DATABASE plain SET search_path = '', public, "a""b", """"`,
  ])
    await pg.query(q);
});
after(async () => {
  await pg?.close();
});

const carried = async (from: string, to: string) =>
  (await pg.query<{ format: string }>(carryOverSql(from, to))).map((r) => r.format ?? Object.values(r)[0]);

test("carryOverSql: the grants, comment and settings of the old database, for the new one, quoted as pg_dump does", async () => {
  const out = await carried("it's", "New db");
  const grants = out.filter((s) => /^(GRANT|REVOKE)/.test(s));
  assert.deepEqual(grants.slice(0, 1), ['REVOKE ALL ON DATABASE "New db" FROM PUBLIC;']);
  assert.deepEqual(grants.slice(1).sort(), [
    'GRANT CONNECT ON DATABASE "New db" TO "Reader one";',
    'GRANT CONNECT ON DATABASE "New db" TO tester;',
    'GRANT CREATE ON DATABASE "New db" TO tester;',
    'GRANT CREATE ON DATABASE "New db" TO writer WITH GRANT OPTION;',
    'GRANT TEMPORARY ON DATABASE "New db" TO PUBLIC;',
    'GRANT TEMPORARY ON DATABASE "New db" TO tester;',
  ]);
  assert.deepEqual(
    out.filter((s) => !/^(GRANT|REVOKE)/.test(s)),
    [
      `COMMENT ON DATABASE "New db" IS 'the shop''s';`,
      `ALTER DATABASE "New db" SET work_mem TO '8MB';`,
      `ALTER DATABASE "New db" SET search_path TO app, "my schema";`,
      `ALTER DATABASE "New db" SET application_name TO 'a=b';`,
      `ALTER ROLE "Reader one" IN DATABASE "New db" SET statement_timeout TO '5s';`,
    ],
  );
  // Each statement runs as printed.
  await pg.query(`CREATE DATABASE "New db"`);
  await pg.query(out.join("\n"));
  assert.deepEqual(await carried("New db", "x"), await carried("it's", "x"));
});

test("carryOverSql: a database with default grants and no comment gives only its settings, an empty list as ''; an unknown one nothing", async () => {
  const out = await carried("plain", "p2");
  assert.deepEqual(out.sort(), [
    `ALTER DATABASE p2 SET search_path TO '';`,
    `ALTER ROLE "Reader one" IN DATABASE p2 SET search_path TO '', public, "a""b", """";`,
    "ALTER ROLE writer IN DATABASE p2 SET temp_tablespaces TO '';",
  ]);
  // They run (an empty `""` was refused: "zero-length delimited identifier") and give the same settings.
  await pg.query("CREATE DATABASE p2");
  await pg.query(out.join("\n"));
  assert.deepEqual((await carried("p2", "x")).sort(), (await carried("plain", "x")).sort());
  assert.deepEqual(await carried("no such database", "x"), []);
});
