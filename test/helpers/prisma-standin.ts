import { chmod, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A STAND-IN for the `prisma` CLI, not Prisma: Prisma's engine cannot be downloaded here. It plays
 * `prisma migrate deploy --schema S` as Prisma documents it: the URL from the datasource's
 * `directUrl`/`url = env("NAME")` of S, every `<dir of S>/migrations/NAME/migration.sql` not yet
 * finished applied in name order and recorded in `_prisma_migrations`, "Applying migration `NAME`"
 * printed for each. `migrate status` only connects and prints. `PRISMA_STANDIN_URL_ENV` (test only)
 * plays a `prisma.config.ts` that reads its URL from another variable, which safe-deploy cannot see.
 */
export function prismaStandIn(pgModule: string = require.resolve("pg")): string {
  return `#!/usr/bin/env node
// STAND-IN for prisma (test/helpers/prisma-standin.ts): not the real CLI.
const fs = require("fs");
const path = require("path");
const { Client } = require(${JSON.stringify(pgModule)});
const args = process.argv.slice(2);
if (args[0] !== "migrate" || !["deploy", "status"].includes(args[1])) process.exit(2);
const schemaFile = args[args.indexOf("--schema") + 1];
const schema = fs.readFileSync(schemaFile, "utf8");
const setting = (k) => (new RegExp("^\\\\s*" + k + "\\\\s*=\\\\s*env\\\\(\\"([^\\"]+)\\"\\\\)", "m").exec(schema) || [])[1];
const urlVar = process.env.PRISMA_STANDIN_URL_ENV || setting("directUrl") || setting("url") || "DATABASE_URL";
const dir = path.join(path.dirname(schemaFile), "migrations");
(async () => {
  if (!process.env[urlVar]) throw new Error("Environment variable not found: " + urlVar + ".");
  const c = new Client({ connectionString: process.env[urlVar] });
  await c.connect();
  if (args[1] === "status") {
    console.log("Database schema is up to date!");
    return c.end();
  }
  await c.query(\`CREATE TABLE IF NOT EXISTS _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL,
    finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0)\`);
  const names = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isDirectory()).sort();
  let applied = 0;
  for (const name of names) {
    const done = await c.query(
      "SELECT 1 FROM _prisma_migrations WHERE migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL",
      [name],
    );
    if (done.rowCount) continue;
    console.log("Applying migration \`" + name + "\`");
    await c.query(fs.readFileSync(path.join(dir, name, "migration.sql"), "utf8"));
    await c.query(
      "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES (md5(random()::text), 'x', clock_timestamp(), $1, 1)",
      [name],
    );
    applied++;
  }
  console.log(applied ? "All migrations have been successfully applied." : "No pending migrations to apply.");
  await c.end();
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
`;
}

/** A project in Prisma's layout (`prisma/schema.prisma`, `prisma/migrations/NAME/migration.sql`) with the stand-in as node_modules/.bin/prisma. */
export async function prismaProject(
  datasource: string,
  migrations: Record<string, string>,
): Promise<{ work: string; migrations: string; add: (name: string, sql: string) => Promise<void> }> {
  const work = await mkdtemp(join(tmpdir(), "sd-prisma-"));
  const bin = join(work, "node_modules", ".bin");
  const dir = join(work, "prisma", "migrations");
  await mkdir(bin, { recursive: true });
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(work, "prisma", "schema.prisma"),
    `datasource db {\n  provider = "postgresql"\n${datasource}}\n`,
  );
  await writeFile(join(dir, "migration_lock.toml"), 'provider = "postgresql"\n');
  await writeFile(join(bin, "prisma"), prismaStandIn());
  await chmod(join(bin, "prisma"), 0o755);
  const add = async (name: string, sql: string) => {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, "migration.sql"), sql);
  };
  for (const [name, sql] of Object.entries(migrations)) await add(name, sql);
  return { work, migrations: dir, add };
}
