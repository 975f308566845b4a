// Issue 20, part B: a release's change stream in the product. The pre-deploy backup opens a logical slot
// at its snapshot (src/core/backup/create.ts); a rollback with restore replays the slot's writes into the
// restored copy before the swap; slots never outlive a failed deploy, and a good release's is kept for
// `rollback.keepChangesMinutes`, dropped at `rollback.maxRetainedWalMB` (docs/operations.md "Rollback").
import { basename } from "node:path";
import { restoreBackup, type RestoreOptions, type RestoreResult } from "../backup/restore";
import { parseDatabaseUrl, withDatabase } from "../backup/runner";
import { readManifest } from "../backup/verify";
import { replayChanges } from "../changes/replay";
import { dropReleaseSlot, listReleaseSlots, type SlotInfo } from "../changes/slot";
import { CannotRunError } from "../errors";
import type { ReleaseRecord } from "./ledger";

/** The change stream a backup opened: its slot and the LSN where the dump ends and the slot begins. */
export interface ChangeStream {
  slot: string;
  startLsn: string;
}

/** The change stream recorded in `backupFile`'s manifest, if it has one. */
export async function streamOf(backupFile: string): Promise<ChangeStream | undefined> {
  const m = await readManifest(backupFile).catch(() => undefined);
  return m?.changes;
}

/** What a rollback with restore did with the writes made after the backup (release record, notifications). */
export interface ReplaySummary {
  slot: string;
  transactions: number;
  /** Row changes applied to the restored database. */
  applied: number;
  /** Row changes that did not map to the old schema, written to the report files. */
  reported: number;
  reportJson?: string;
  reportSql?: string;
}

/** A restore, and either the replay that kept the later writes or why they were not kept. */
export interface KeptWrites {
  restore: RestoreResult;
  replay?: ReplaySummary;
  /** Why the writes made after the backup were not replayed (they are only in the kept old database). */
  lost?: string;
}

/** One line for logs and notifications: how many writes were replayed and where the rest went. Pure. */
export function describeKept(k: Pick<KeptWrites, "replay" | "lost">): string {
  if (k.replay) {
    const r = k.replay;
    const rest = r.reported
      ? `; ${r.reported} did not fit the old schema and are in ${r.reportJson ?? "the report"}` +
        `${r.reportSql ? ` (re-insert with ${r.reportSql})` : ""}`
      : "; nothing went to a report";
    return `${r.applied} write(s) made after the backup replayed (${r.transactions} transaction(s))${rest}`;
  }
  return `writes made after the backup were NOT replayed: ${k.lost ?? "no change stream"}`;
}

/**
 * Restores `file` as `restoreBackup` does and, when its manifest names a change stream whose slot still
 * exists, replays the slot's writes into the restored copy before the swap (writers stopped). A replay
 * that fails or is interrupted drops the copy: the live database is untouched and the slot kept (it is
 * only peeked), so the rollback can run again. After the swap the slot is dropped.
 */
export async function restoreKeepingWrites(
  file: string,
  o: RestoreOptions & { reportDir: string; changeStream: boolean },
): Promise<KeptWrites> {
  const target = o.target ?? { runIn: "local" };
  const conn = parseDatabaseUrl(o.databaseUrl);
  const stream = o.changeStream ? await streamOf(file) : undefined;
  const noStream = (why: string) => async (): Promise<KeptWrites> => {
    const restore = await restoreBackup(file, o);
    const kept = restore.previousDatabase
      ? ` only in the kept database ${restore.previousDatabase}`
      : " lost";
    return { restore, lost: `${why}; they are${kept}` };
  };
  if (!stream) {
    return noStream(
      o.changeStream
        ? `${basename(file)} has no change stream (taken without one, or the server did not allow it)`
        : "rollback.changeStream is off",
    )();
  }
  const slots = await listReleaseSlots(target, conn);
  if (!slots.some((s) => s.slot === stream.slot && s.database === conn.database)) {
    return noStream(
      `its slot ${stream.slot} no longer exists (dropped after its keep window or at rollback.maxRetainedWalMB)`,
    )();
  }
  let replay: ReplaySummary | undefined;
  let restore: RestoreResult;
  try {
    restore = await restoreBackup(file, {
      ...o,
      beforeSwap: async (into, interrupted) => {
        const r = await replayChanges({
          target,
          live: conn,
          slot: stream.slot,
          startLsn: stream.startLsn,
          into,
          reportDir: o.reportDir,
          interrupted,
        });
        replay = {
          slot: stream.slot,
          transactions: r.transactions,
          applied: r.applied,
          reported: r.reported,
          ...(r.reportJson ? { reportJson: r.reportJson } : {}),
          ...(r.reportSql ? { reportSql: r.reportSql } : {}),
        };
      },
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (replay || /interrupted by/.test(msg)) throw e;
    throw new CannotRunError(
      `replaying the writes made since ${basename(file)} (slot ${stream.slot}) into the restored copy failed: ${msg}. ` +
        `The live database "${conn.database}" is untouched and the slot kept: fix the cause and run the rollback ` +
        "again, or restore without keeping those writes with `rollback.changeStream: false` " +
        `('safe-deploy backup restore ${file}' keeps them only in the old database it keeps)`,
    );
  }
  // Its writes are in the restored database now; the old one (holding the slot) is kept under another name.
  await dropReleaseSlot(target, withDatabase(conn, restore.previousDatabase ?? conn.database), stream.slot);
  return { restore, replay };
}

/** A slot to drop, and why (for the log and the `changes prune` output). */
export interface SlotVerdict {
  slot: string;
  why: "expired" | "orphan";
}

/**
 * Which of this tool's slots on the stack's database to drop (pure): a good release's slot once its
 * `keepUntil` passed ("expired"); with `orphans`, every slot no good release keeps (a failed or
 * cancelled deploy's, a killed backup's). Orphans only under the deploy lock: a deploy running now
 * has a slot no record names yet.
 */
export function slotsToDrop(
  slots: readonly Pick<SlotInfo, "slot" | "database">[],
  database: string,
  releases: readonly Pick<ReleaseRecord, "result" | "changes">[],
  now: Date,
  orphans: boolean,
): SlotVerdict[] {
  const kept = new Map<string, string>();
  for (const r of releases)
    if (r.result === "good" && r.changes) kept.set(r.changes.slot, r.changes.keepUntil);
  const out: SlotVerdict[] = [];
  for (const s of slots) {
    if (s.database !== database) continue;
    const until = kept.get(s.slot);
    if (until !== undefined) {
      if (Date.parse(until) <= now.getTime()) out.push({ slot: s.slot, why: "expired" });
    } else if (orphans) out.push({ slot: s.slot, why: "orphan" });
  }
  return out;
}

/** How a watch ended: the slot was gone already, its window ended, or it reached the WAL limit. */
export type WatchEnd = "gone" | "expired" | "wal-limit";

/**
 * Watches one kept slot until its window ends (then drops it) or it holds `maxBytes` of WAL (then drops
 * it and sends a WARNING: a manual rollback to before that release can no longer keep the later writes).
 * Ports injected, so the loop is tested without waiting.
 */
export async function watchSlot(o: {
  slot: string;
  until: Date;
  maxBytes: number;
  list(): Promise<Pick<SlotInfo, "slot" | "retainedBytes">[]>;
  drop(): Promise<void>;
  warn(message: string): Promise<void>;
  sleep(ms: number): Promise<void>;
  now(): Date;
  pollMs?: number;
}): Promise<WatchEnd> {
  const poll = o.pollMs ?? 60_000;
  for (;;) {
    const s = (await o.list()).find((x) => x.slot === o.slot);
    if (!s) return "gone";
    if (s.retainedBytes >= o.maxBytes) {
      await o.drop();
      await o.warn(
        `change stream ${o.slot} dropped: it held ${(s.retainedBytes / 2 ** 20).toFixed(0)} MB of WAL, the limit ` +
          `rollback.maxRetainedWalMB is ${(o.maxBytes / 2 ** 20).toFixed(0)} MB. A rollback to before this release now ` +
          "loses the writes made since it; raise the limit (or shorten rollback.keepChangesMinutes) if that is wrong",
      );
      return "wal-limit";
    }
    const left = o.until.getTime() - o.now().getTime();
    if (left <= 0) {
      await o.drop();
      return "expired";
    }
    await o.sleep(Math.min(poll, left));
  }
}
