import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The demo app's directory, where `node-pg-migrate -m migrations` resolves its migrations from. */
export const APP_DIR = resolve(__dirname, "..");

/** Migration names in the order node-pg-migrate applies them (file names without `.sql`). */
export const MIGRATIONS = readdirSync(join(APP_DIR, "migrations"))
  .filter((f) => f.endsWith(".sql"))
  .sort()
  .map((f) => f.replace(/\.sql$/, ""));

/**
 * Runs the real node-pg-migrate CLI from the app's own node_modules, the way `npm run migrate` and the
 * staging stack's Migration command do: DATABASE_URL only in the environment, never in argv.
 */
export async function migrate(
  databaseUrl: string,
  ...args: string[]
): Promise<{ stdout: string; stderr: string }> {
  const bin = join(APP_DIR, "node_modules", ".bin", "node-pg-migrate");
  if (!existsSync(bin)) {
    throw new Error(
      `${bin} is missing: the demo app has its own packages, run \`npm ci --prefix examples/app\``,
    );
  }
  try {
    return await run(bin, [...args, "-m", "migrations"], {
      cwd: APP_DIR,
      env: { ...process.env, DATABASE_URL: databaseUrl },
      timeout: 60_000,
    });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message?: string };
    throw new Error(`node-pg-migrate ${args.join(" ")} failed: ${err.stderr || err.stdout || err.message}`);
  }
}
