import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { runRehearse } from "../../../src/cli/commands/rehearse";
import { main } from "../../../src/cli/index";
import { splitPassword } from "../../../src/core/migrations/rehearsal";
import { migrate } from "../../../src/core/migrations/runner";
import { interruptCli, pgRestoreRunning } from "../../helpers/interrupt";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
const DIR = "test/fixtures/migrations/npm-loss";

describe("rehearse --backup", () => {
  let pg: TestPostgres;
  let tmp: string;
  let backup: string;
  before(async () => {
    pg = await startPostgres();
    tmp = await mkdtemp(join(tmpdir(), "sd-rehearse-"));
    const url = await pg.createDatabase("prod");
    await migrate({
      action: "up",
      target: "3",
      tool: "node-pg-migrate",
      dir: DIR,
      workDir: ROOT,
      databaseUrl: url,
    });
    backup = join(tmp, "prod.dump");
    const { url: bare, env } = splitPassword(url);
    await promisify(execFile)("/usr/lib/postgresql/15/bin/pg_dump", ["-Fc", "-f", backup, bare], {
      env: { ...process.env, ...env },
    });
  });
  after(async () => {
    await pg?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("restores a real backup, applies the pending migration and reports time, locks and row changes", async () => {
    const lines: string[] = [];
    await runRehearse({
      backup,
      migrations: DIR,
      workDir: ROOT,
      databaseUrl: pg.url("postgres"),
      out: (t) => lines.push(t),
    });
    const text = lines.join("\n");
    assert.match(
      text,
      /^1700000004000_delete-orders: \d+\.\d\d s\n {2}locks waited: none\n {2}locks held: /m,
    );
    assert.match(text, /public\.orders: 50 -> 40 \(-10\)/);
    assert.equal(
      (await pg.query<{ n: string }>("SELECT count(*) AS n FROM orders", [], "prod"))[0].n,
      "50",
      "production untouched",
    );
    const left = await pg.query("SELECT datname FROM pg_database WHERE datname LIKE 'safe_deploy_%'");
    assert.deepEqual(left, [], "scratch database dropped");
  });

  it("a safe-deploy backup (zstd, with its manifest) is restored through the backup engine", async () => {
    const { createBackup } = await import("../../../src/core/backup/create");
    const b = await createBackup({
      databaseUrl: pg.url("prod"),
      dir: join(tmp, "engine"),
      compression: "zstd",
    });
    const lines: string[] = [];
    await runRehearse({
      backup: b.file,
      migrations: DIR,
      workDir: ROOT,
      databaseUrl: pg.url("postgres"),
      out: (t) => lines.push(t),
    });
    assert.match(lines.join("\n"), /public\.orders: 50 -> 40 \(-10\)/);
  });

  it("a critical table losing rows fails with exit 1", async () => {
    const lines: string[] = [];
    await assert.rejects(
      runRehearse({
        backup,
        migrations: DIR,
        workDir: ROOT,
        databaseUrl: pg.url("postgres"),
        criticalTables: "orders",
        out: (t) => lines.push(t),
      }),
      /critical tables lose rows \(public\.orders lost 20\.0% \(50 -> 40\)\)/,
    );
    assert.match(lines.join("\n"), /row loss: public\.orders/);
    const args = [
      "rehearse",
      "--backup",
      backup,
      "--migrations",
      DIR,
      "--work-dir",
      ROOT,
      "--database-url",
      pg.url("postgres"),
    ];
    assert.equal(await main([...args, "--critical-tables", "orders", "--max-row-loss-percent", "25"]), 0);
    assert.equal(await main([...args, "--critical-tables", "orders"]), 1);
    // A misspelt critical table would guard nothing: exit 2 naming it, even within the allowed loss.
    await assert.rejects(
      runRehearse({
        backup,
        migrations: DIR,
        workDir: ROOT,
        databaseUrl: pg.url("postgres"),
        criticalTables: "order",
        maxRowLossPercent: "25",
        out: () => {},
      }),
      (e: Error & { exitCode?: number }) => {
        assert.equal(e.exitCode, 2);
        assert.match(
          e.message,
          /^critical table public\.order does not exist.*public\.orders, public\.users/,
        );
        return true;
      },
    );
  });

  it("a migration failing on the restored data fails with exit 1", async () => {
    const args = [
      "rehearse",
      "--backup",
      backup,
      "--migrations",
      "test/fixtures/migrations/npm-broken",
      "--work-dir",
      ROOT,
    ];
    // npm-broken disagrees with the history recorded in the backup, so node-pg-migrate refuses to run.
    assert.equal(await main([...args, "--database-url", pg.url("postgres")]), 1);
    assert.equal(
      await main(["rehearse", "--backup", join(tmp, "missing.dump"), "--database-url", pg.url("postgres")]),
      2,
    );
    // The default `--migrations migrations` missing under `--work-dir`: exit 2 naming the flag, before
    // any restore, not a failed rehearsal (exit 1) with the tool's ENOENT.
    await assert.rejects(
      runRehearse({ backup, workDir: ROOT, databaseUrl: pg.url("postgres"), out: () => {} }),
      (e: Error) => {
        assert.equal(e.name, "ConfigError");
        assert.match(e.message, /^`--migrations` migrations \(.*\/migrations\) does not exist/);
        return true;
      },
    );
  });

  it("Ctrl-C half-way drops the scratch database and exits 3, not a failed migration (exit 1)", async () => {
    const url = await pg.createDatabase("bigprod");
    await migrate({
      action: "up",
      target: "3",
      tool: "node-pg-migrate",
      dir: DIR,
      workDir: ROOT,
      databaseUrl: url,
    });
    await pg.query(
      "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS s FROM generate_series(1, 400000) g",
      [],
      "bigprod",
    );
    const big = join(tmp, "bigprod.dump");
    const { url: bare, env } = splitPassword(url);
    await promisify(execFile)("/usr/lib/postgresql/15/bin/pg_dump", ["-Fc", "-f", big, bare], {
      env: { ...process.env, ...env },
    });
    const scratches = async () =>
      (
        await pg.query<{ datname: string }>(
          "SELECT datname FROM pg_database WHERE datname LIKE 'safe_deploy_%'",
        )
      ).map((r) => r.datname);
    const { code, err } = await interruptCli(
      [
        "rehearse",
        "--backup",
        big,
        "--migrations",
        DIR,
        "--work-dir",
        ROOT,
        "--database-url",
        pg.url("postgres"),
      ],
      async (pgid) => (await scratches()).length > 0 && pgRestoreRunning(pgid),
      "caught the rehearsal while pg_restore ran into its scratch database",
    );
    assert.equal(code, 3, err);
    assert.match(err, /rehearsal interrupted by SIGINT: the scratch database was dropped/);
    assert.deepEqual(await scratches(), [], "no scratch database left behind");
  });
});
