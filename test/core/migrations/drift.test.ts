import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runDrift } from "../../../src/cli/commands/drift";
import { diffSchemas, formatDrift } from "../../../src/core/migrations/drift";
import { migrate } from "../../../src/core/migrations/runner";
import { main } from "../../../src/cli/index";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
const DIR = "test/fixtures/migrations/npm";

describe("drift", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it("diffSchemas and formatDrift name what is missing, extra and different", () => {
    const items = diffSchemas(
      { table: { "public.a": "" }, column: { "public.a.x": "integer NOT NULL" } },
      { table: { "public.b": "" }, column: { "public.a.x": "bigint NOT NULL" } },
    );
    assert.equal(
      formatDrift(items),
      [
        "- table public.a (the migrations create it; live lacks it)",
        "+ table public.b (only in live; no migration creates it)",
        "~ column public.a.x\n    migrations: integer NOT NULL\n    live:       bigint NOT NULL",
      ].join("\n"),
    );
  });

  it("no drift on a clean database; manual ALTERs show up as a readable diff with exit 1", async () => {
    const url = await pg.createDatabase("live");
    await migrate({ action: "up", tool: "node-pg-migrate", dir: DIR, workDir: ROOT, databaseUrl: url });
    const lines: string[] = [];
    await runDrift({ migrations: DIR, workDir: ROOT, databaseUrl: url, out: (t) => lines.push(t) });
    assert.match(lines.join("\n"), /no drift: .* at version 1700000003000_users-name/);

    await pg.query("ALTER TABLE users ALTER COLUMN email DROP NOT NULL", [], "live");
    await pg.query("ALTER TABLE users ADD COLUMN hotfix boolean DEFAULT false", [], "live");
    await pg.query("CREATE INDEX manual_idx ON orders (total)", [], "live");
    await pg.query("ALTER TYPE order_state ADD VALUE 'refunded'", [], "live");
    await pg.query("DROP VIEW paid_orders", [], "live");
    lines.length = 0;
    await assert.rejects(
      runDrift({ migrations: DIR, workDir: ROOT, databaseUrl: url, out: (t) => lines.push(t) }),
      /schema drift: 5 difference/,
    );
    const text = lines.join("\n");
    assert.match(
      text,
      /~ column public\.users\.email\n {4}migrations: text NOT NULL\n {4}live: {7}text NULL/,
    );
    assert.match(text, /\+ column public\.users\.hotfix: boolean NULL DEFAULT false/);
    assert.match(text, /\+ index public\.manual_idx: CREATE INDEX manual_idx ON public\.orders/);
    assert.match(
      text,
      /~ enum public\.order_state\n {4}migrations: new, paid\n {4}live: {7}new, paid, refunded/,
    );
    assert.match(text, /- view public\.paid_orders/);
    assert.equal(await main(["drift", "--migrations", DIR, "--work-dir", ROOT, "--database-url", url]), 1);
    const dbs = await pg.query("SELECT datname FROM pg_database WHERE datname LIKE 'safe_deploy_scratch%'");
    assert.deepEqual(dbs, [], "scratch databases are dropped");
  });

  it("an absolute --migrations is used as given; one that does not exist is a usage error naming the flag", async () => {
    const url = await pg.createDatabase("absolute");
    await migrate({ action: "up", tool: "node-pg-migrate", dir: DIR, workDir: ROOT, databaseUrl: url });
    const lines: string[] = [];
    const o = { workDir: ROOT, databaseUrl: url, out: (t: string) => lines.push(t) };
    await runDrift({ ...o, migrations: join(ROOT, DIR) });
    assert.match(lines.join("\n"), /no drift: .* at version 1700000003000_users-name/);
    await assert.rejects(runDrift({ ...o, migrations: join(ROOT, "test/fixtures/nowhere") }), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.match(e.message, /`--migrations` .*nowhere.* does not exist/);
      return true;
    });
    assert.equal(await main(["drift", "--migrations", "/nowhere/mig", "--database-url", url]), 2);
  });
});
