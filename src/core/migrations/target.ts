// Issue 21: a tool that reads its URL from somewhere else than the variable safe-deploy sets (Alembic's
// default env.py reads `sqlalchemy.url` from alembic.ini; Prisma's schema names its own `env("...")`)
// migrates another database while safe-deploy reports on the one it named. Checked before a step where
// the tool can say (it then stops before harm), and after every step from the target's version table.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { ConfigError } from "../errors";
import { redact } from "../log/redact";
import { alembicTarget, databaseAddress, type AlembicRun } from "./alembic";
import type { Tool } from "./presets";

/** A datasource setting of schema.prisma: `env("NAME")` or a literal URL. */
export interface PrismaUrlSetting {
  key: "url" | "directUrl";
  env?: string;
  literal?: string;
}

/**
 * `url` and `directUrl` of schema.prisma's `datasource` block. `prisma migrate` connects through
 * `directUrl` when it is set (the pooled `url` is for the app), else `url`.
 */
export function prismaDatasource(schema: string): PrismaUrlSetting[] {
  const block =
    /datasource\s+\w+\s*\{([\s\S]*?)\}/.exec(schema.replace(/(^|\s)\/\/[^"\n]*$/gm, "$1"))?.[1] ?? "";
  const out: PrismaUrlSetting[] = [];
  for (const key of ["url", "directUrl"] as const) {
    const m = new RegExp(`^\\s*${key}\\s*=\\s*(.+?)\\s*$`, "m").exec(block);
    if (!m) continue;
    const env = /^env\(\s*"([^"]+)"\s*\)$/.exec(m[1])?.[1];
    out.push(env ? { key, env } : { key, literal: m[1].replace(/^"|"$/g, "") });
  }
  return out;
}

/** What {@link checkToolTarget} needs. */
export interface TargetCheck {
  tool: Tool;
  /** Where the tool runs. */
  cwd: string;
  /** The migrations directory, resolved. */
  dir: string;
  /** The database safe-deploy was told to act on. */
  databaseUrl: string;
  /** The variables safe-deploy sets for the tool (DATABASE_URL, `migrations.databaseUrlEnv`, PGOPTIONS...). */
  env: Record<string, string>;
  /** The revisions the target's alembic_version holds (Alembic), for env.py files that do not print their URL. */
  targetRevisions?: string[];
}

const URL_ENV_FIX =
  "or set `migrations.databaseUrlEnv` (`--database-url-env`) to the variable the tool reads: safe-deploy then sets it to the database named";

/**
 * Stops (ConfigError, exit 2) before the tool runs when it would connect elsewhere:
 * Alembic through `alembic current --verbose` (read-only; it prints the URL env.py connects to),
 * Prisma from schema.prisma's datasource. Node-pg-migrate reads DATABASE_URL; a custom command is the
 * user's own.
 */
export async function checkToolTarget(o: TargetCheck): Promise<void> {
  const named = databaseAddress(o.databaseUrl);
  if (o.tool === "alembic") {
    const run: AlembicRun = { workDir: o.cwd, env: o.env };
    const t = await alembicTarget(run);
    if (t.code !== 0) {
      const ini = await readFile(resolve(o.cwd, process.env.ALEMBIC_CONFIG ?? "alembic.ini"), "utf8").catch(
        () => "",
      );
      const iniUrl = /^sqlalchemy\.url\s*=\s*(\S+)/m.exec(ini)?.[1];
      throw new ConfigError(
        `alembic could not read the current revision (\`alembic current\` exit ${t.code}: ${redact(t.error ?? "")}), so nothing was migrated${iniUrl ? `; alembic.ini's sqlalchemy.url is ${redact(iniUrl)}` : ""}. ` +
          `If env.py takes its URL from \`sqlalchemy.url\` in alembic.ini or another variable rather than DATABASE_URL, it may point at another database: make env.py read DATABASE_URL (\`url = os.environ["DATABASE_URL"]\`), ${URL_ENV_FIX}`,
      );
    }
    const elsewhere = t.url
      ? databaseAddress(t.url) !== named
      : [...t.revisions].sort().join(",") !== [...(o.targetRevisions ?? [])].sort().join(",");
    if (elsewhere)
      throw new ConfigError(
        `alembic would act on ${t.url ? redact(t.url) : `a database at revision ${t.revisions.join(",") || "(none)"}`}, not on the database named (${named}${t.url ? "" : `, at revision ${o.targetRevisions?.join(",") || "(none)"}`}): ` +
          `its env.py does not take the URL from DATABASE_URL (Alembic's default env.py reads \`sqlalchemy.url\` in alembic.ini). Nothing was migrated. ` +
          `Make env.py read DATABASE_URL (\`url = os.environ["DATABASE_URL"]\`), ${URL_ENV_FIX}`,
      );
    return;
  }
  if (o.tool === "prisma") {
    const schemaFile = resolve(o.dir, "..", "schema.prisma");
    const text = await readFile(schemaFile, "utf8").catch(() => undefined);
    if (text === undefined) return; // the tool says it better: "Could not find a schema.prisma file"
    const settings = prismaDatasource(text);
    // `prisma migrate` connects through directUrl when there is one.
    const used = settings.find((s) => s.key === "directUrl") ?? settings.find((s) => s.key === "url");
    if (!used) return;
    if (used.literal !== undefined)
      throw new ConfigError(
        `${schemaFile}: the datasource \`${used.key}\` is a literal URL (${redact(used.literal)}), so prisma migrates that database, not the one named (${named}). Nothing was migrated. Write \`${used.key} = env("DATABASE_URL")\`, ${URL_ENV_FIX}`,
      );
    if (used.env && !(used.env in o.env))
      throw new ConfigError(
        `${schemaFile}: the datasource \`${used.key}\` reads env("${used.env}"), which safe-deploy does not set, so prisma would migrate whatever ${used.env} names (from the environment or .env), not the database named (${named}). Nothing was migrated. ` +
          `Set \`migrations.databaseUrlEnv: ${used.env}\` (\`--database-url-env ${used.env}\`) so safe-deploy sets it, or read env("DATABASE_URL") in schema.prisma`,
      );
  }
}

/** Migrations the tool's output says it applied (Alembic at INFO level, node-pg-migrate, Prisma). */
export function claimedApplied(tool: Tool, output: string): string[] {
  const all = (re: RegExp) => [...output.matchAll(re)].map((m) => m[1].replace(/,$/, ""));
  if (tool === "alembic") return all(/Running upgrade .*? -> (\S+)/g);
  if (tool === "node-pg-migrate") return all(/^### MIGRATION (\S+) \(UP\) ###$/gm);
  if (tool === "prisma") return all(/^Applying migration `([^`]+)`/gm);
  return [];
}

/**
 * The message when the tool exited 0 but the named database's version table did not move as it
 * should have: it said it applied migrations, or some were pending and still are.
 */
export function notMovedMessage(o: {
  tool: Tool;
  named: string;
  table: string;
  before?: string;
  after?: string;
  claimed: string[];
  stillPending: string[];
  elsewhere?: string;
}): string {
  const said = o.claimed.length
    ? `${o.tool} reported applying ${o.claimed.join(", ")}`
    : `${o.tool} exited 0 with ${o.stillPending.length} migration(s) pending (${o.stillPending.slice(0, 5).join(", ")}${o.stillPending.length > 5 ? ", ..." : ""})`;
  const setting =
    o.tool === "alembic"
      ? "env.py takes its URL from elsewhere than DATABASE_URL (Alembic's default env.py reads `sqlalchemy.url` in alembic.ini)"
      : o.tool === "prisma"
        ? 'schema.prisma\'s datasource reads another variable than DATABASE_URL (`url = env("...")`, or `directUrl`)'
        : "the tool reads its URL from another variable or a config file";
  return (
    `${said}, but ${o.table} in the database named (${o.named}) did not move: still at ${o.before ?? "(none)"}. ` +
    `The migrations ran against another database${o.elsewhere ? ` (${o.elsewhere})` : ""}: ${setting}. ` +
    `Check that database, then make the tool read DATABASE_URL, ${URL_ENV_FIX}`
  );
}
