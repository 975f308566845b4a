import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

// `backup restore` of one database's backup into another (issue 15).
const BIN = join(__dirname, "..", "..", "bin", "safe-deploy");
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-into-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]) {
  const r = spawnSync(BIN, args, {
    encoding: "utf8",
    env: { ...process.env, DATABASE_URL: "" },
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const rows = async (db: string) =>
  (await pg.query<{ v: string }>("SELECT string_agg(v, ',' ORDER BY v) AS v FROM t", [], db))[0].v;

test("a backup of A with `--yes --database-url B` is refused (exit 2 naming `--into`); `--into B` restores it", async () => {
  await pg.createDatabase("a");
  await pg.createDatabase("b");
  await pg.query("CREATE TABLE t (v text); INSERT INTO t VALUES ('from-a')", [], "a");
  await pg.query("CREATE TABLE t (v text); INSERT INTO t VALUES ('b-own')", [], "b");
  const c = cli(["backup", "create", "--dir", dir, "--database-url", pg.url("a")]);
  assert.equal(c.code, 0, c.err);
  const file = c.out.trim().split("\n").pop()!;

  const refused = cli(["backup", "restore", file, "--yes", "--database-url", pg.url("b")]);
  assert.equal(refused.code, 2, refused.err);
  assert.match(refused.err, /is a backup of database "a", not of "b".*`--into b`/);
  assert.ok(!refused.err.includes(pg.password));
  assert.equal(await rows("b"), "b-own");

  const done = cli(["backup", "restore", file, "--yes", "--database-url", pg.url("b"), "--into", "b"]);
  assert.equal(done.code, 0, done.err);
  assert.match(done.out, /is a backup of database "a"; it goes into "b"/);
  assert.equal(await rows("b"), "from-a");

  // `--into` names the database on the `--database-url` server, whatever database the URL names.
  const copy = cli([
    "backup",
    "restore",
    file,
    "--yes",
    "--database-url",
    pg.url("postgres"),
    "--into",
    "a_copy",
  ]);
  assert.equal(copy.code, 0, copy.err);
  assert.equal(await rows("a_copy"), "from-a");
});

test("restore over a database with a client connected: the output says how many sessions were ended and whose", async () => {
  await pg.createDatabase("busy");
  await pg.query("CREATE TABLE t (v text); INSERT INTO t VALUES ('x')", [], "busy");
  const c = cli(["backup", "create", "--dir", dir, "--database-url", pg.url("busy")]);
  assert.equal(c.code, 0, c.err);
  const file = c.out.trim().split("\n").pop()!;
  const client = new Client({ connectionString: pg.url("busy"), application_name: "busy-app" });
  client.on("error", () => {});
  await client.connect();
  try {
    const r = cli(["backup", "restore", file, "--yes", "--database-url", pg.url("busy")]);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^ended 1 session\(s\) before the safety backup: "busy-app" as "tester" from 127\.0\.0\.1$/m,
    );
  } finally {
    await client.end().catch(() => {});
  }
});
