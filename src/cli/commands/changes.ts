import type { Command } from "commander";
import { contextOptions, projectDirOption, stateDirOption, stdout, type CommandDeps } from "../shared";

/** Options of `safe-deploy changes list|prune|watch` (issue 20: the release change streams). */
export interface ChangesOpts {
  action: "list" | "prune" | "watch";
  stack: string;
  projectDir?: string;
  stateDir?: string;
  /** watch: the slot to watch. */
  slot?: string;
  /** watch: ISO time when the slot's keep window ends. */
  until?: string;
  /** watch: seconds between two looks at the slot (default 60). */
  pollSeconds?: number;
}

/**
 * `changes list` prints the stack's slots with the WAL each holds; `changes prune` drops, under the deploy
 * lock, every slot no good release keeps and the expired ones; `changes watch` is what a good deploy
 * starts, detached, for its slot. Returns the lines printed.
 */
export async function runChanges(o: ChangesOpts, deps: CommandDeps = {}): Promise<string[]> {
  const { ConfigError } = await import("../../core/errors");
  const out = deps.out ?? stdout;
  const lines: string[] = [];
  const say = (l: string) => (lines.push(l), out(l));
  if (o.action === "watch" && (!o.slot || !o.until || Number.isNaN(Date.parse(o.until)))) {
    throw new ConfigError(
      "`changes watch` needs `--slot NAME` and `--until ISO-TIME` (a deploy starts it with both)",
    );
  }
  const { openContext } = await import("../context");
  const ctx = await openContext({ ...contextOptions(o, deps), logName: "changes.log" });
  const { pruneSlots, stackSlots } = await import("../context/changes");
  if (o.action === "list") {
    const kept = new Map((await ctx.ledger.list()).flatMap((r) => (r.changes ? [[r.changes.slot, r]] : [])));
    const slots = await stackSlots(ctx);
    if (!slots.length) say(`no change stream slots of stack ${ctx.stackName}`);
    for (const s of slots) {
      const r = kept.get(s.slot);
      say(
        `${s.slot}: ${(s.retainedBytes / 2 ** 20).toFixed(1)} MB of WAL retained, ` +
          (r
            ? `kept for ${r.id} until ${r.changes!.keepUntil}`
            : "kept by no good release (`changes prune` drops it)"),
      );
    }
    return lines;
  }
  if (o.action === "prune") {
    const unlock = await ctx.ports().lock(ctx.stackName, "changes prune");
    try {
      const dropped = await pruneSlots(ctx, true);
      if (!dropped.length) say(`no change stream slot of stack ${ctx.stackName} to drop`);
      for (const d of dropped)
        say(`dropped ${d.slot} (${d.why === "expired" ? "keep window ended" : "orphan"})`);
    } finally {
      await unlock();
    }
    return lines;
  }
  const { watchSlot } = await import("../../core/release/changes");
  const { dropReleaseSlot } = await import("../../core/changes/slot");
  const { parseDatabaseUrl } = await import("../../core/backup/runner");
  const ports = ctx.ports();
  const end = await watchSlot({
    slot: o.slot!,
    until: new Date(o.until!),
    maxBytes: ctx.config.rollback.maxRetainedWalMB * 2 ** 20,
    list: () => stackSlots(ctx),
    drop: async () => {
      const db = await ctx.database();
      if (db) await dropReleaseSlot(db.target, parseDatabaseUrl(db.url), o.slot!);
    },
    warn: (m) => ports.notify("WARNING", m, {}),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    now: () => new Date(),
    pollMs: (o.pollSeconds ?? 60) * 1000,
  });
  say(
    `change stream ${o.slot}: ${end === "gone" ? "already dropped" : end === "expired" ? "keep window ended, dropped" : "dropped at the WAL limit"}`,
  );
  return lines;
}

/** Registers `changes list|prune|watch --stack S`. */
export function register(program: Command): void {
  const changes = program
    .command("changes")
    .description("The release change streams that let a rollback keep later writes: list, prune, watch");
  const common = (c: Command) =>
    c.requiredOption("--stack <name>", "the stack").addOption(projectDirOption()).addOption(stateDirOption());
  common(changes.command("list").description("The stack's replication slots and the WAL each holds")).action(
    async (o: Omit<ChangesOpts, "action">) => void (await runChanges({ ...o, action: "list" })),
  );
  common(
    changes
      .command("prune")
      .description("Drop (under the deploy lock) every slot no good release keeps, and the expired ones"),
  ).action(async (o: Omit<ChangesOpts, "action">) => void (await runChanges({ ...o, action: "prune" })));
  common(
    changes
      .command("watch")
      .description(
        "Keep one slot until --until, dropping it earlier at rollback.maxRetainedWalMB (a deploy starts it)",
      )
      .requiredOption("--slot <name>", "the slot")
      .requiredOption("--until <time>", "ISO time when its keep window ends")
      .option("--poll-seconds <n>", "seconds between two looks at the slot", (v) => Number(v), 60),
  ).action(async (o: Omit<ChangesOpts, "action">) => void (await runChanges({ ...o, action: "watch" })));
}
