import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startPostgres, type TestPostgres } from "../../../test/helpers/postgres";
import { deriveTitle } from "../src/notes.js";
import { APP_DIR, MIGRATIONS, migrate } from "./support";

let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
});

type Column = { column_name: string; data_type: string; is_nullable: string; column_default: string | null };

async function columns(db: string): Promise<Record<string, Omit<Column, "column_name">>> {
  const rows = await pg.query<Column>(
    `SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name = 'notes' ORDER BY ordinal_position`,
    [],
    db,
  );
  return Object.fromEntries(rows.map(({ column_name, ...rest }) => [column_name, rest]));
}

async function indexes(db: string): Promise<string[]> {
  const rows = await pg.query<{ indexname: string }>(
    "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'notes' ORDER BY 1",
    [],
    db,
  );
  return rows.map((r) => r.indexname);
}

async function applied(db: string): Promise<string[]> {
  const rows = await pg.query<{ name: string }>("SELECT name FROM pgmigrations ORDER BY run_on, id", [], db);
  return rows.map((r) => r.name);
}

test("there are at least three SQL migrations, each with an Up and a Down section", async () => {
  assert.ok(MIGRATIONS.length >= 3, `found ${MIGRATIONS.length}`);
  for (const name of MIGRATIONS) {
    const sql = await readFile(join(APP_DIR, "migrations", `${name}.sql`), "utf8");
    assert.match(sql, /^-- Up Migration$/m, name);
    assert.match(sql, /^-- Down Migration$/m, name);
  }
});

test("`up` applies every migration with the real CLI and leaves the expected schema", async () => {
  const db = await pg.createDatabase("all_up");
  await migrate(db, "up");
  assert.deepEqual(await applied("all_up"), MIGRATIONS);
  assert.deepEqual(await columns("all_up"), {
    id: { data_type: "bigint", is_nullable: "NO", column_default: null },
    body: { data_type: "text", is_nullable: "NO", column_default: null },
    created_at: { data_type: "timestamp with time zone", is_nullable: "NO", column_default: "now()" },
    title: { data_type: "text", is_nullable: "NO", column_default: "'Untitled'::text" },
  });
  assert.deepEqual(await indexes("all_up"), ["notes_created_at_id_idx", "notes_pkey"]);
  const checks = await pg.query<{ conname: string }>(
    "SELECT conname FROM pg_constraint WHERE conrelid = 'notes'::regclass AND contype = 'c' ORDER BY 1",
    [],
    "all_up",
  );
  // The temporary NOT NULL helper check is gone; both length checks are validated.
  assert.deepEqual(
    checks.map((c) => c.conname),
    ["notes_body_length", "notes_title_length"],
  );
  // Running `up` again is a no-op, as every deploy does.
  await migrate(db, "up");
  assert.deepEqual(await applied("all_up"), MIGRATIONS);
});

test("the title migration backfills rows written before it ran, exactly as the app derives titles", async () => {
  const db = await pg.createDatabase("backfill");
  await migrate(db, "up", String(MIGRATIONS.length - 1));
  assert.deepEqual(await applied("backfill"), MIGRATIONS.slice(0, -1));
  assert.ok(!("title" in (await columns("backfill"))), "title exists before its migration ran");

  const bodies = [
    "Groceries\nmilk, eggs",
    "   \nthe first line is blank",
    "  padded title \t\r\nrest",
    "x".repeat(100),
    "é".repeat(90) + "\nmore",
    "single line",
  ];
  for (const body of bodies) await pg.query("INSERT INTO notes (body) VALUES ($1)", [body], "backfill");

  await migrate(db, "up");
  assert.deepEqual(await applied("backfill"), MIGRATIONS);
  const rows = await pg.query<{ body: string; title: string }>(
    "SELECT body, title FROM notes ORDER BY id",
    [],
    "backfill",
  );
  assert.deepEqual(
    rows.map((r) => r.title),
    ["Groceries", "Untitled", "padded title", "x".repeat(80), "é".repeat(80), "single line"],
  );
  for (const r of rows) assert.equal(r.title, deriveTitle(r.body), `app and migration disagree on ${r.body}`);

  // The previous release inserts without a title: the default keeps it working.
  const [old] = await pg.query<{ title: string }>(
    "INSERT INTO notes (body) VALUES ('from the old release') RETURNING title",
    [],
    "backfill",
  );
  assert.equal(old.title, "Untitled");
  await assert.rejects(
    pg.query("INSERT INTO notes (body, title) VALUES ('b', NULL)", [], "backfill"),
    /null value in column "title"/,
  );
  await assert.rejects(
    pg.query("INSERT INTO notes (body, title) VALUES ('b', '')", [], "backfill"),
    /notes_title_length/,
  );
});

test("every down migration reverts its up, one at a time, keeping the data of earlier ones", async () => {
  const db = await pg.createDatabase("down");
  await migrate(db, "up");
  await pg.query("INSERT INTO notes (title, body) VALUES ('t', 'kept across downs')", [], "down");

  await migrate(db, "down");
  assert.deepEqual(await applied("down"), MIGRATIONS.slice(0, 2));
  assert.deepEqual(Object.keys(await columns("down")), ["id", "body", "created_at"]);
  assert.deepEqual(await pg.query("SELECT body FROM notes", [], "down"), [{ body: "kept across downs" }]);

  await migrate(db, "down");
  assert.deepEqual(await applied("down"), MIGRATIONS.slice(0, 1));
  assert.deepEqual(await indexes("down"), ["notes_pkey"]);

  await migrate(db, "down");
  assert.deepEqual(await applied("down"), []);
  const tables = await pg.query(
    "SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'notes'",
    [],
    "down",
  );
  assert.equal(tables.length, 0);

  // And the whole chain applies again from scratch.
  await migrate(db, "up");
  assert.deepEqual(await applied("down"), MIGRATIONS);
});
