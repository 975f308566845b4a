// The SQL that node-pg-migrate's JavaScript/TypeScript migrations would run, without a database: each
// file's `up` is called with node-pg-migrate's own MigrationBuilder, as `node-pg-migrate up --dry-run`
// does, and its SQL steps are collected per file (issue 21: such folders got no lint at all).
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

/** One migration file rendered: its SQL and whether the runner wraps it in a transaction, or why not. */
export interface RenderedMigration {
  file: string;
  sql?: string;
  /** False when the migration calls `pgm.noTransaction()`. */
  transaction?: boolean;
  /** Why the file could not be rendered offline (it queries the database, it throws, it has no `up`). */
  error?: string;
}

/** The extensions node-pg-migrate runs as code (its .sql files are linted as they are). */
export const CODE_MIGRATION = /\.(js|cjs|mjs|ts)$/;

/** Marks the error of a migration that reads the database while it runs. */
const OFFLINE = "it queries the database while it runs (pgm.db.query / pgm.db.select)";

/**
 * Runs in a child process (`node --import tsx`): user code is loaded there, not in safe-deploy's own
 * process, and TypeScript migrations load the way node-pg-migrate loads them with tsx. Shorthands
 * accumulate across files in order, as in node-pg-migrate's `loadMigrations`.
 */
const SCRIPT = `
const { MigrationBuilder } = await import(process.env.SD_NPGM_URL);
const { pathToFileURL } = await import("node:url");
const files = JSON.parse(process.env.SD_NPGM_FILES);
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const refuse = () => { throw new Error(${JSON.stringify(OFFLINE)}); };
const db = { query: refuse, select: refuse };
let shorthands = {};
const out = [];
for (const file of files) {
  try {
    const ns = await import(pathToFileURL(file).href);
    // A CommonJS-compiled file may show its exports only on \`default\` when imported from here.
    const actions = typeof ns.up === "function" || !ns.default ? ns : ns.default;
    shorthands = { ...shorthands, ...actions.shorthands };
    const up = actions.up;
    if (typeof up !== "function") { out.push({ file, error: "it exports no up function" }); continue; }
    const pgm = new MigrationBuilder(db, { ...shorthands }, false, quiet);
    if (up.length === 2) await new Promise((resolve) => up(pgm, resolve));
    else await up(pgm);
    out.push({ file, sql: pgm.getSqlSteps().join("\\n"), transaction: pgm.isUsingTransaction() });
  } catch (e) {
    out.push({ file, error: String((e && e.message) || e).split("\\n")[0] });
  }
}
process.stdout.write(JSON.stringify(out));
`;

/**
 * Renders node-pg-migrate code migrations (`files`, absolute paths, in run order) to their up SQL. `cwd`
 * is the project directory (where the migrations resolve their own imports). Throws only when the
 * renderer itself cannot start; a file that fails is returned with its `error`.
 */
export async function renderNodePgMigrate(files: string[], cwd: string): Promise<RenderedMigration[]> {
  if (files.length === 0) return [];
  const tsx = pathToFileURL(require.resolve("tsx")).href;
  const npgm = pathToFileURL(require.resolve("node-pg-migrate")).href;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", tsx, "--input-type=module", "--eval", SCRIPT],
    {
      cwd,
      // Absolute: the child runs in the project directory, not ours.
      env: { ...process.env, SD_NPGM_URL: npgm, SD_NPGM_FILES: JSON.stringify(files.map((f) => resolve(f))) },
      maxBuffer: 256 * 1024 * 1024,
      timeout: 120_000,
    },
  ).catch((e: Error & { stderr?: string }) => {
    throw new Error(
      `could not render the node-pg-migrate migrations to SQL: ${(e.stderr || e.message).trim().split("\n")[0]}`,
    );
  });
  return (JSON.parse(stdout) as RenderedMigration[]).map((m, i) => ({ ...m, file: files[i] }));
}
