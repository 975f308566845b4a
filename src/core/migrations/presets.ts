/** Migration tools safe-deploy knows how to drive. */
export type Tool = "node-pg-migrate" | "prisma" | "alembic" | "command";

/** The five verbs of `safe-deploy migrate`. */
export type Action = "check" | "current" | "history" | "up" | "down";

/** Quotes a value for `/bin/sh`. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The project's own tool first, without npx: slim images (and Debian's nodejs) ship node without npm.
 * Single-quoted inside `docker run ... sh -c`, so $PWD is the working directory where it runs.
 */
export const LOCAL_BIN = 'PATH="$PWD/node_modules/.bin:$PATH"';

/**
 * Loads TypeScript migrations through tsx (the project's own) when the directory holds `.ts` files:
 * without it Node stops at the first type annotation (`Unexpected token '{'`, `Unknown file extension
 * ".ts"`), issue 21. node-pg-migrate's own `--tsx` registers only tsx's ESM hooks, which fails on `.ts`
 * migrations in a CommonJS package (ERR_REQUIRE_CYCLE_MODULE); `--import tsx` registers both. Decided by
 * the shell where the command runs (deploy host or container), where the files are: a JavaScript-only
 * project needs no tsx and gets nothing.
 */
export function tsxNodeOptions(dir: string): string {
  const glob = `${shellQuote(dir.replace(/\/$/, ""))}/*.ts`;
  return `NODE_OPTIONS="$(for f in ${glob}; do [ -e "$f" ] && echo --import=tsx; break; done) $NODE_OPTIONS"`;
}

/** Custom command set for `tool: "command"`; `{target}` in a command is replaced by the quoted target. */
export interface CustomCommands {
  up: string;
  down?: string;
  current?: string;
  history?: string;
  check?: string;
}

/**
 * The shell command a tool runs for one action, or undefined when safe-deploy answers it itself from the
 * tool's table (node-pg-migrate has no `current`/`history`/`check`). Never holds a secret: every tool
 * reads DATABASE_URL from the environment.
 */
export function toolCommand(
  tool: Tool,
  action: Action,
  opts: { dir: string; target?: string; custom?: Partial<CustomCommands> },
): string | undefined {
  const t = opts.target;
  const q = (s: string) => shellQuote(s);
  switch (tool) {
    case "node-pg-migrate": {
      const base = `${LOCAL_BIN} ${tsxNodeOptions(opts.dir)} node-pg-migrate`;
      const flags = `-m ${q(opts.dir)} --single-transaction --no-verbose`;
      if (action === "up") return `${base} up ${t ? q(t) + " " : ""}${flags}`;
      if (action === "down") return `${base} down ${t ? q(t) : "1"} ${flags}`;
      return undefined;
    }
    case "alembic": {
      if (action === "up") return `alembic upgrade ${t ? (/^\d+$/.test(t) ? `+${t}` : q(t)) : "head"}`;
      if (action === "down") return `alembic downgrade ${t ? (/^\d+$/.test(t) ? `-${t}` : q(t)) : "-1"}`;
      if (action === "current") return "alembic current";
      if (action === "history") return "alembic history";
      return "alembic check";
    }
    case "prisma": {
      const schema = `--schema ${q(opts.dir.replace(/\/$/, "") + "/../schema.prisma")}`;
      if (action === "up") {
        if (t)
          throw new Error(
            "prisma applies every pending migration: `up` takes no N or REV with `--tool prisma`",
          );
        return `${LOCAL_BIN} prisma migrate deploy ${schema}`;
      }
      if (action === "down")
        throw new Error("prisma has no down migrations: restore the pre-deploy backup instead");
      return `${LOCAL_BIN} prisma migrate status ${schema}`;
    }
    case "command": {
      const c = opts.custom?.[action];
      if (!c)
        throw new Error(
          `no \`${action}\` command configured for \`--tool command\`: pass the shell command that runs it with \`--command\` (\`{target}\` is replaced by N or REV)`,
        );
      return c.replace(/\{target\}/g, t ? q(t) : "");
    }
  }
}

/** SQL returning the tool's latest applied migration (one row, column `version`), or undefined. */
export function versionQuery(tool: Tool): { table: string; sql: string } | undefined {
  switch (tool) {
    case "node-pg-migrate":
      return {
        table: "pgmigrations",
        sql: "SELECT name AS version FROM pgmigrations ORDER BY run_on DESC, id DESC LIMIT 1",
      };
    case "alembic":
      return { table: "alembic_version", sql: "SELECT version_num AS version FROM alembic_version LIMIT 1" };
    case "prisma":
      return {
        table: "_prisma_migrations",
        sql: "SELECT migration_name AS version FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY finished_at DESC LIMIT 1",
      };
    case "command":
      return undefined;
  }
}
