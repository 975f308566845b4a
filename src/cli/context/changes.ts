// Release change streams (issue 20) as the CLI keeps them: the watcher a good deploy starts, the prune
// every command that reaches the database runs, and the list `status` shows. There is no daemon: a
// detached `safe-deploy changes watch` per kept slot, and any later command dropping expired slots.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseDatabaseUrl } from "../../core/backup/runner";
import { dropReleaseSlot, listReleaseSlots, type SlotInfo } from "../../core/changes/slot";
import { slotsToDrop, type SlotVerdict } from "../../core/release/changes";
import type { ReleaseContext } from "./types";

/** The package's `bin/safe-deploy`, found above this file (sources or the bundle in dist/). */
function cliPath(): string | undefined {
  for (let d = __dirname; d !== dirname(d); d = dirname(d)) {
    const bin = join(d, "bin", "safe-deploy");
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

/**
 * Starts `safe-deploy changes watch` for `slot`, detached (it outlives this command): it drops the slot
 * at `until`, or earlier with a WARNING notification at `rollback.maxRetainedWalMB`. Killed or never
 * started (a reboot), the next command that reaches the database drops the slot once expired.
 */
export function startWatcher(ctx: ReleaseContext, slot: string, until: string): void {
  const bin = cliPath();
  if (!bin || process.env.SAFE_DEPLOY_NO_WATCHER === "1") {
    ctx.fileLog.info(`no watcher started for ${slot}: the next safe-deploy command drops it after ${until}`);
    return;
  }
  const args = ["changes", "watch", "--stack", ctx.stackName, "--project-dir", ctx.projectDir];
  args.push("--state-dir", ctx.stateDir, "--slot", slot, "--until", until);
  const child = spawn(bin, args, { detached: true, stdio: "ignore", cwd: ctx.projectDir });
  child.on("error", (e) => ctx.log.warn(`the watcher of ${slot} did not start: ${e.message}`));
  child.unref();
}

/** This tool's slots on the stack's database (none when it is not reachable yet). */
export async function stackSlots(ctx: ReleaseContext): Promise<SlotInfo[]> {
  const db = await ctx.database();
  if (!db) return [];
  const conn = parseDatabaseUrl(db.url);
  return (await listReleaseSlots(db.target, conn)).filter((s) => s.database === conn.database);
}

/**
 * Drops the stack's expired slots and, with `orphans` (only under the deploy lock: a running deploy's
 * slot is not recorded yet), every slot no good release keeps. Returns what it dropped.
 */
export async function pruneSlots(ctx: ReleaseContext, orphans: boolean): Promise<SlotVerdict[]> {
  const db = await ctx.database();
  if (!db) return [];
  const conn = parseDatabaseUrl(db.url);
  const slots = await listReleaseSlots(db.target, conn);
  const drop = slotsToDrop(slots, conn.database, await ctx.ledger.list(), new Date(), orphans);
  for (const d of drop) {
    await dropReleaseSlot(db.target, conn, d.slot);
    ctx.log.info(
      `dropped the change stream slot ${d.slot} (${d.why === "expired" ? "its keep window ended" : "no good release keeps it"})`,
    );
  }
  return drop;
}
