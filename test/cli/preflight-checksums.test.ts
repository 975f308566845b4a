import assert from "node:assert/strict";
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openContext } from "../../src/cli/context";
import type { ConfigMap, StackAccess } from "../../src/core/release/stack-port";
import { migrate } from "../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

const FIX = join(__dirname, "../fixtures/migrations/npm");
const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
let pg: TestPostgres;
const dir = mkdtempSync(join(tmpdir(), "sd-preflight-sums-"));
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("preflight refuses an applied migration whose recorded checksum no longer matches its file (a data fix)", async () => {
  const url = await pg.createDatabase("app");
  writeFileSync(join(dir, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
  cpSync(FIX, join(dir, "migrations"), { recursive: true });
  const mig = { dir: join(dir, "migrations"), workDir: join(__dirname, "../..") };
  await migrate({ tool: "node-pg-migrate", action: "up", ...mig, databaseUrl: url });
  const config: ConfigMap = {
    "safe-deploy:app": plain({ image: "web:any" }),
    "safe-deploy:database": plain({ mode: "external" }),
    "safe-deploy:migrations": plain({ dir: "migrations" }),
    "safe-deploy:databaseUrl": { value: url, secret: true },
  };
  const ctx = await openContext({
    stack: "staging",
    projectDir: dir,
    console: { write: () => {} },
    openStack: async (o) => ({ name: o.stack, getAllConfig: async () => config }) as unknown as StackAccess,
  });
  const sums = async (allowMigrationEdits = false) =>
    (await ctx.ports({ allowDirty: true, allowMigrationEdits }).preflight()).filter((p) =>
      /checksum/.test(p),
    );
  assert.deepEqual(await sums(), []);
  appendFileSync(
    join(dir, "migrations/1700000001000_create-users.sql"),
    "\nUPDATE users SET email = lower(email);\n",
  );
  const [problem, ...more] = await sums();
  assert.deepEqual(more, []);
  assert.match(
    problem,
    /^applied migration\(s\) changed since safe-deploy recorded their checksum: 1700000001000_create-users \(1700000001000_create-users\.sql, edited\)\. .*`safe-deploy migrate accept-edit 1700000001000_create-users` \(or pass --allow-migration-edits\)$/,
  );
  assert.ok(!problem.includes(pg.password));
  assert.deepEqual(await sums(true), []);
});
