import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { runMigrate } from "../../src/cli/commands/migrate";
import { main } from "../../src/cli/index";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

const ROOT = join(__dirname, "../..");
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => pg?.close());

it("migrate up/current through the CLI contract, with exit codes for bad usage and failures", async () => {
  const url = await pg.createDatabase("cli");
  const common = [
    "--tool",
    "node-pg-migrate",
    "--dir",
    "test/fixtures/migrations/npm",
    "--work-dir",
    ROOT,
    "--database-url",
    url,
  ];
  assert.equal(await main(["migrate", "up", "2", ...common]), 0);
  const lines: string[] = [];
  await runMigrate({
    action: "current",
    tool: "node-pg-migrate",
    dir: "test/fixtures/migrations/npm",
    workDir: ROOT,
    databaseUrl: url,
    out: (t) => lines.push(t),
  });
  assert.deepEqual(lines, ["1700000002000_create-orders"]);
  assert.equal(await main(["migrate", "sideways", ...common]), 2);
  assert.equal(await main(["migrate", "up", "--tool", "flyway", "--database-url", url]), 2);
  const brokenDir = [
    "--tool",
    "node-pg-migrate",
    "--dir",
    "test/fixtures/migrations/npm-broken",
    "--work-dir",
    ROOT,
  ];
  const url2 = await pg.createDatabase("cli2");
  assert.equal(await main(["migrate", "up", ...brokenDir, "--database-url", url2]), 1);
  assert.equal(await main(["migrate", "current", ...common.slice(0, -1), "postgres://x:y@127.0.0.1:1/z"]), 3);
});

it("an absolute --dir is used as given; a --dir that does not exist is a usage error naming the flag", async () => {
  const url = await pg.createDatabase("absdir");
  const abs = join(ROOT, "test/fixtures/migrations/npm");
  const lines: string[] = [];
  const o = { tool: "node-pg-migrate", workDir: ROOT, databaseUrl: url, out: (t: string) => lines.push(t) };
  // Pending migrations fail the check (exit 1) and are listed, as `prisma migrate status` does.
  await assert.rejects(
    runMigrate({ ...o, action: "check", dir: abs }),
    (e: Error & { exitCode?: number }) =>
      e.exitCode === 1 &&
      e.message ===
        "3 pending: 1700000001000_create-users, 1700000002000_create-orders, 1700000003000_users-name\nfix: apply them with `safe-deploy migrate up`",
  );
  const check = ["migrate", "check", "--tool", "node-pg-migrate", "--dir", abs, "--database-url", url];
  assert.equal(await main(check), 1);
  await runMigrate({ ...o, action: "up", target: "1700000002000_create-orders", dir: abs });
  assert.equal(await main(check), 1);
  await runMigrate({ ...o, action: "up", dir: abs });
  assert.equal(await main(check), 0);
  await runMigrate({ ...o, action: "current", dir: abs });
  assert.deepEqual(lines.slice(-2), [
    "schema version: 1700000002000_create-orders -> 1700000003000_users-name",
    "1700000003000_users-name",
  ]);
  for (const dir of [join(ROOT, "test/fixtures/migrations/nowhere"), "nowhere"])
    await assert.rejects(runMigrate({ ...o, action: "check", dir }), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.match(e.message, /`--dir` .*nowhere.* does not exist/);
      return true;
    });
  const missing = ["--tool", "node-pg-migrate", "--dir", "/nowhere/mig", "--database-url", url];
  assert.equal(await main(["migrate", "check", ...missing]), 2);
});

it("a database URL that cannot be parsed is a usage error (exit 2) saying how to encode it, password masked", async () => {
  const o = { tool: "node-pg-migrate", dir: "test/fixtures/migrations/npm", workDir: ROOT };
  const bad = {
    [`postgres://${pg.user}:Hunter2#Secret@127.0.0.1:${pg.port}/cli`]: /is not a URL.*`#` as %23/,
    [`postgres://${pg.user}:Hunter2%Secret@127.0.0.1:${pg.port}/cli`]: /a `%` that is not followed.*%25/,
  };
  for (const [databaseUrl, pattern] of Object.entries(bad)) {
    await assert.rejects(runMigrate({ ...o, action: "current", databaseUrl }), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes("Secret"), e.message);
      return true;
    });
  }
});

it("`--tool command` without `--command` is exit 2 naming the flag to pass", async () => {
  const url = await pg.createDatabase("nocommand");
  await assert.rejects(
    runMigrate({ action: "up", tool: "command", workDir: ROOT, databaseUrl: url, out: () => {} }),
    (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.match(e.message, /no `up` command configured for `--tool command`: pass .* with `--command`/);
      return true;
    },
  );
});

it("a tool printing the database password on its own, raw or decoded, never shows it", async () => {
  const url = await pg.createDatabase("echo");
  const password = decodeURIComponent(new URL(url).password);
  await assert.rejects(
    runMigrate({
      action: "up",
      tool: "command",
      command: `echo "password is ${password}"; exit 1`,
      workDir: ROOT,
      databaseUrl: url,
      out: () => {},
    }),
    (e: Error) => {
      assert.match(e.message, /password is \*\*\*$/m);
      assert.ok(!e.message.includes(password), e.message);
      return true;
    },
  );
});

it("a tool that is not installed is exit 3 saying where to install it; a bad timeout or a --work-dir without alembic.ini is exit 2 naming the flag", async () => {
  const url = await pg.createDatabase("notool");
  const tmp = await mkdtemp(join(tmpdir(), "sd-notool-"));
  try {
    await mkdir(join(tmp, "migrations"));
    await writeFile(join(tmp, "migrations", "1_a.sql"), "-- Up Migration\nCREATE TABLE a (id int);\n");
    const o = { tool: "node-pg-migrate", dir: "migrations", workDir: tmp, databaseUrl: url, out: () => {} };
    // `npm test` puts the checkout's node_modules/.bin on PATH; the tool must be found nowhere.
    const path = process.env.PATH;
    process.env.PATH = "/usr/bin:/bin";
    try {
      await assert.rejects(runMigrate({ ...o, action: "up" }), (e: Error & { exitCode?: number }) => {
        assert.equal(e.exitCode, 3);
        assert.match(
          e.message,
          /node-pg-migrate up could not start in .* \(exit 127\): .*not found; install it in `--work-dir` \(`npm ci`/,
        );
        return true;
      });
    } finally {
      process.env.PATH = path;
    }
    await assert.rejects(
      runMigrate({ ...o, action: "up", lockTimeout: "5sec" }),
      (e: Error & { exitCode?: number }) => {
        assert.equal(e.exitCode, 2);
        assert.match(e.message, /^`--lock-timeout` must look like 5s, 500ms or 10min, got "5sec"/);
        return true;
      },
    );
    await assert.rejects(
      runMigrate({ ...o, tool: "alembic", dir: undefined, action: "up" }),
      (e: Error & { exitCode?: number }) => {
        assert.equal(e.exitCode, 2);
        assert.match(
          e.message,
          /^no alembic\.ini in .*: pass the directory Alembic runs from as `--work-dir`/,
        );
        return true;
      },
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
