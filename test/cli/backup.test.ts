import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

const BIN = join(__dirname, "..", "..", "bin", "safe-deploy");
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("app");
  await pg.query("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 30)", [], "app");
  dir = mkdtempSync(join(tmpdir(), "sd-bk-cli-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(BIN, args, {
    encoding: "utf8",
    env: { ...process.env, DATABASE_URL: "", ...env },
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("create prints the path last; list, verify, prune, restore; exit codes 0/1/2/3", () => {
  const env = { DATABASE_URL: pg.url("app") };
  const c = cli(["backup", "create", "--dir", dir, "--label", "manual"], env);
  assert.equal(c.code, 0, c.err);
  const file = c.out.trim().split("\n").pop()!;
  assert.match(file, /^\/.*backup_\d{8}_\d{6}_manual\.pgdump\.zst$/);
  assert.ok(existsSync(file) && existsSync(file + ".json"));
  assert.ok(!c.out.includes(pg.password) && !c.err.includes(pg.password));

  const l = cli(["backup", "list", "--dir", dir, "--json"]);
  assert.equal(l.code, 0);
  assert.equal(JSON.parse(l.out)[0].file, file);

  assert.equal(cli(["backup", "verify", file]).code, 0);
  const rt = cli(["backup", "verify", file, "--restore-test"], env);
  assert.equal(rt.code, 0, rt.err);
  assert.match(rt.out, /row counts match/);

  const p = cli(["backup", "prune", "--dir", dir, "--dry-run"]);
  assert.equal(p.code, 0);
  assert.match(p.out, /would remove 0, kept 1/);

  const noYes = cli(["backup", "restore", file], env);
  assert.equal(noYes.code, 2);
  assert.match(noYes.err, /`--yes`/);
  const r = cli(["backup", "restore", file, "--yes"], env);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /previous database is kept as "app_before_restore_\d{14}"/);
  assert.ok(!r.out.includes("is a backup of database"), "same database: no note");
  // Into another database: said before anything happens, and the copy is a new database.
  const copy = cli(["backup", "restore", file, "--yes", "--database-url", pg.url(), "--into", "app_copy"]);
  assert.equal(copy.code, 0, copy.err);
  assert.match(copy.out, /^note: .* is a backup of database "app"; it goes into "app_copy"\n/);
  assert.match(copy.out, /into the new database "app_copy" \(it did not exist\)/);

  const b = Buffer.from(readFileSync(file));
  b[b.length - 10] ^= 0xff;
  writeFileSync(file, b);
  const bad = cli(["backup", "verify", file]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /does not match the manifest/);
});

test("usage and reachability errors: 2 names the flag, 3 for a dead server, password never echoed", () => {
  const noUrl = cli(["backup", "create", "--dir", dir]);
  assert.equal(noUrl.code, 2);
  assert.match(noUrl.err, /`--database-url`/);
  assert.equal(cli(["backup", "create"]).code, 2, "--dir is required");
  assert.equal(
    cli(["backup", "create", "--dir", dir, "--compression", "lzma"], { DATABASE_URL: pg.url("app") }).code,
    2,
  );
  const dead = cli([
    "backup",
    "create",
    "--dir",
    dir,
    "--database-url",
    "postgres://u:Hunter2Secret@127.0.0.1:1/app",
  ]);
  assert.equal(dead.code, 3);
  assert.ok(!dead.err.includes("Hunter2Secret"));
  const wrong = cli([
    "backup",
    "create",
    "--dir",
    dir,
    "--database-url",
    `postgres://${pg.user}:Hunter2Secret@127.0.0.1:${pg.port}/app`,
  ]);
  assert.equal(wrong.code, 3);
  assert.match(wrong.err, /password authentication failed/);
  assert.ok(!wrong.err.includes("Hunter2Secret"));
  assert.equal(cli(["backup", "list", "--dir", join(dir, "missing")]).code, 2);
  // A libpq keyword string is not a URL: exit 2 naming the flag, its password masked.
  const dsn = cli([
    "backup",
    "create",
    "--dir",
    dir,
    "--database-url",
    `host=127.0.0.1 port=${pg.port} user=app password=Hunter2Secret dbname=app`,
  ]);
  assert.equal(dsn.code, 2);
  assert.match(dsn.err, /--database-url/);
  assert.ok(!dsn.err.includes("Hunter2Secret"), dsn.err);
  // A `%` in the password that is not a percent-encoding: exit 2 with the fix, not "URI malformed".
  const percent = cli([
    "backup",
    "create",
    "--dir",
    dir,
    "--database-url",
    `postgres://${pg.user}:Hunter2%Secret@127.0.0.1:${pg.port}/app`,
  ]);
  assert.equal(percent.code, 2, percent.err);
  assert.match(percent.err, /percent-encode those characters, `%` as %25/);
  assert.ok(!percent.err.includes("Hunter2"), percent.err);
  const days = cli(["backup", "prune", "--dir", dir, "--keep-days", "abc"]);
  assert.equal(days.code, 2);
  assert.match(days.err, /--keep-days must be a whole number/);
  const notDir = join(dir, "a-file");
  writeFileSync(notDir, "x");
  const fileAsDir = cli(["backup", "create", "--dir", notDir], { DATABASE_URL: pg.url("app") });
  assert.equal(fileAsDir.code, 2, fileAsDir.err);
  assert.match(fileAsDir.err, /not a directory: pass another `--dir`/);
});

test("backup databases lists the databases restores keep and drops one only when asked by name", async () => {
  const env = { DATABASE_URL: pg.url("app") };
  const c = cli(["backup", "create", "--dir", dir, "--label", "manual"], env);
  assert.equal(c.code, 0, c.err);
  const file = c.out.trim().split("\n").pop()!;
  assert.equal(cli(["backup", "restore", file, "--yes"], env).code, 0);
  const kept = (
    await pg.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'app\\_before\\_restore\\_%' ORDER BY 1",
    )
  ).map((r) => r.datname);
  assert.ok(kept.length >= 1);
  const list = cli(["backup", "databases", "--json"], env);
  assert.equal(list.code, 0, list.err);
  assert.deepEqual(
    JSON.parse(list.out).map((d: { name: string }) => d.name),
    kept,
  );
  const notKept = cli(["backup", "databases", "--drop", "app", "--yes"], env);
  assert.equal(notKept.code, 2);
  assert.match(notKept.err, /only drops a database a restore or rebuild kept/);
  const noYes = cli(["backup", "databases", "--drop", kept[0]], env);
  assert.equal(noYes.code, 2);
  assert.match(noYes.err, /`--yes`/);
  const dropped = cli(["backup", "databases", "--drop", kept[0], "--yes"], env);
  assert.equal(dropped.code, 0, dropped.err);
  const after = (await pg.query<{ datname: string }>("SELECT datname FROM pg_database")).map(
    (r) => r.datname,
  );
  assert.ok(!after.includes(kept[0]) && after.includes("app"));
});

test("progress: on a terminal create and restore show bytes, rate and elapsed, and the safety backup is announced before the restore; in a pipe or CI no progress", () => {
  const env = { DATABASE_URL: pg.url("app") };
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const tty = (args: string[], extra = "") =>
    spawnSync("script", ["-qfec", `${extra}${[BIN, ...args].map(q).join(" ")}`, "/dev/null"], {
      encoding: "utf8",
      env: { ...process.env, ...env, CI: "" },
      timeout: 120_000,
    });
  const progress = /dumped: \d+\.\d MB, \d+\.\d MB\/s, \d+\.\d s elapsed/;
  const c = tty(["backup", "create", "--dir", dir, "--label", "manual"]);
  assert.equal(c.status, 0, c.stdout);
  assert.match(c.stdout, new RegExp(`backup: ${progress.source}`));
  const file = /(\/\S+_manual\.pgdump\.zst)\s*$/.exec(c.stdout)![1];
  const r = tty(["backup", "restore", file, "--yes"]);
  assert.equal(r.status, 0, r.stdout);
  const started = r.stdout.indexOf(`safety backup of "app" into`);
  assert.ok(started >= 0, r.stdout);
  assert.ok(started < r.stdout.search(progress), "announced before it runs");
  assert.ok(started < r.stdout.indexOf("restored "), "announced before the restore");

  const ci = tty(["backup", "create", "--dir", dir, "--label", "manual"], "CI=true ");
  assert.equal(ci.status, 0, ci.stdout);
  assert.doesNotMatch(ci.stdout, progress);
  const piped = cli(["backup", "restore", file, "--yes"], env);
  assert.equal(piped.code, 0, piped.err);
  assert.doesNotMatch(piped.out + piped.err, progress);
  assert.match(piped.out, /^safety backup of "app" into .*: started$/m);
});

test("progress: verify --restore-test names each long step on a terminal, nothing in a pipe", () => {
  const env = { DATABASE_URL: pg.url("app") };
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const made = cli(["backup", "create", "--dir", dir, "--label", "manual"], env);
  assert.equal(made.code, 0, made.err);
  const file = made.out.trim().split("\n").pop()!;
  const args = ["backup", "verify", file, "--restore-test"];
  const tty = spawnSync("script", ["-qfec", [BIN, ...args].map(q).join(" "), "/dev/null"], {
    encoding: "utf8",
    env: { ...process.env, ...env, CI: "" },
    timeout: 120_000,
  });
  assert.equal(tty.status, 0, tty.stdout);
  const steps = [
    /verify: reading every block/,
    /verify: restoring into the scratch database/,
    /verify: comparing \d+ tables/,
  ];
  for (const s of steps) assert.match(tty.stdout, s);
  const piped = cli(args, env);
  assert.equal(piped.code, 0, piped.err);
  for (const s of steps) assert.doesNotMatch(piped.out + piped.err, s);
});
