import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";

/** The CLI as users run it. */
export const BIN = join(__dirname, "..", "..", "bin", "safe-deploy");

/**
 * Runs the CLI in its own process group and, once `ready(pgid)`, sends SIGINT to the whole group, as
 * Ctrl-C on a terminal does (the client tools it runs get it too). Fails with `what` when the command
 * ended before it was ready. Resolves with its exit code and stderr.
 */
export async function interruptCli(
  args: string[],
  ready: (pgid: number) => boolean | Promise<boolean>,
  what = "caught the command mid-way",
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; err: string }> {
  const child = spawn(BIN, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  let sent = false;
  for (let i = 0; i < 3000 && !sent && child.exitCode === null; i++) {
    if (await ready(child.pid!)) {
      process.kill(-child.pid!, "SIGINT");
      sent = true;
    } else await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(sent, `${what}: ${err}`);
  return { code: await exited, err };
}

/** Whether a `pg_restore` runs in process group `pgid`. */
export function pgRestoreRunning(pgid: number): boolean {
  return spawnSync("ps", ["-o", "comm=", "-g", String(pgid)], { encoding: "utf8" }).stdout.includes(
    "pg_restore",
  );
}
