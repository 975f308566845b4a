// Issue 22 part C: the pure parts of a release's change stream (src/core/release/changes.ts) at their
// edges: the line logs and notifications carry after a rollback, which slots `changes prune` drops, and
// the watch that drops a kept slot at the end of its window or at the WAL limit (ports scripted).
import assert from "node:assert/strict";
import { test } from "node:test";
import { describeKept, slotsToDrop, watchSlot } from "../../../src/core/release/changes";

const MB = 2 ** 20;

test("describeKept: the replay's counts, where the rest went, or why nothing was replayed", () => {
  const replay = { slot: "safe_deploy_a", transactions: 3, applied: 7, reported: 0 };
  assert.equal(
    describeKept({ replay }),
    "7 write(s) made after the backup replayed (3 transaction(s)); nothing went to a report",
  );
  assert.equal(
    describeKept({
      replay: { ...replay, reported: 2, reportJson: "/r/changes.json", reportSql: "/r/changes.sql" },
    }),
    "7 write(s) made after the backup replayed (3 transaction(s)); 2 did not fit the old schema and are in " +
      "/r/changes.json (re-insert with /r/changes.sql)",
  );
  assert.equal(
    describeKept({ replay: { ...replay, reported: 1 } }),
    "7 write(s) made after the backup replayed (3 transaction(s)); 1 did not fit the old schema and are in the report",
  );
  assert.equal(
    describeKept({ lost: "rollback.changeStream is off; they are lost" }),
    "writes made after the backup were NOT replayed: rollback.changeStream is off; they are lost",
  );
  assert.equal(describeKept({}), "writes made after the backup were NOT replayed: no change stream");
});

test("slotsToDrop: a window ending exactly now is over; a good release without a stream keeps nothing", () => {
  const now = new Date("2026-12-06T09:00:00Z");
  const slots = [
    { slot: "safe_deploy_a", database: "app" },
    { slot: "safe_deploy_b", database: "app" },
    { slot: "safe_deploy_c", database: "other" },
  ];
  const releases = [
    {
      result: "good" as const,
      changes: { slot: "safe_deploy_a", startLsn: "0/1", keepUntil: now.toISOString() },
    },
    { result: "good" as const },
    {
      result: "good" as const,
      changes: { slot: "safe_deploy_b", startLsn: "0/1", keepUntil: "2026-12-06T09:00:00.001Z" },
    },
  ];
  assert.deepEqual(slotsToDrop(slots, "app", releases, now, false), [
    { slot: "safe_deploy_a", why: "expired" },
  ]);
  assert.deepEqual(slotsToDrop(slots, "other", releases, now, true), [
    { slot: "safe_deploy_c", why: "orphan" },
  ]);
  assert.deepEqual(slotsToDrop(slots, "other", releases, now, false), []);
});

/** A watch over scripted slot listings and clock readings; records every call in order. */
function scripted(
  listings: Array<Array<{ slot: string; retainedBytes: number }>>,
  times: string[],
  pollMs?: number,
) {
  const calls: string[] = [];
  let l = 0;
  let t = 0;
  const run = () =>
    watchSlot({
      slot: "safe_deploy_r1",
      until: new Date("2026-12-06T10:00:00Z"),
      maxBytes: 100 * MB,
      list: async () => {
        calls.push("list");
        return listings[Math.min(l++, listings.length - 1)];
      },
      drop: async () => {
        calls.push("drop");
      },
      warn: async (m) => {
        calls.push(`warn ${m}`);
      },
      // Bounded: a watch that never ends fails the test instead of spinning (the sleep is instant).
      sleep: async (ms) => {
        calls.push(`sleep ${ms}`);
        if (calls.length > 20) throw new Error(`the watch did not end: ${calls.slice(0, 8).join(", ")}...`);
      },
      now: () => new Date(times[Math.min(t++, times.length - 1)]),
      ...(pollMs === undefined ? {} : { pollMs }),
    });
  return { run, calls };
}

test("watchSlot: a slot already gone ends the watch without dropping or warning", async () => {
  const w = scripted([[{ slot: "safe_deploy_other", retainedBytes: 500 * MB }]], ["2026-12-06T09:00:00Z"]);
  assert.equal(await w.run(), "gone");
  assert.deepEqual(w.calls, ["list"]);
});

test("watchSlot: polls every minute by default, then only the time left, and drops the slot when its window ends", async () => {
  const w = scripted(
    [[{ slot: "safe_deploy_r1", retainedBytes: 100 * MB - 1 }]],
    ["2026-12-06T09:57:30Z", "2026-12-06T09:58:30Z", "2026-12-06T09:59:30Z", "2026-12-06T10:00:00Z"],
  );
  assert.equal(await w.run(), "expired");
  assert.deepEqual(w.calls, [
    "list",
    "sleep 60000",
    "list",
    "sleep 60000",
    "list",
    "sleep 30000",
    "list",
    "drop",
  ]);
  const quick = scripted(
    [[{ slot: "safe_deploy_r1", retainedBytes: 0 }]],
    ["2026-12-06T09:59:00Z", "2026-12-06T10:00:00.001Z"],
    5_000,
  );
  assert.equal(await quick.run(), "expired");
  assert.deepEqual(quick.calls, ["list", "sleep 5000", "list", "drop"]);
});

test("watchSlot: at the WAL limit (exactly) the slot is dropped, then a warning names both sizes and the keys", async () => {
  const w = scripted(
    [
      [
        { slot: "safe_deploy_other", retainedBytes: 900 * MB },
        { slot: "safe_deploy_r1", retainedBytes: 10 * MB },
      ],
      [{ slot: "safe_deploy_r1", retainedBytes: 100 * MB }],
    ],
    ["2026-12-06T09:00:00Z"],
  );
  assert.equal(await w.run(), "wal-limit");
  assert.deepEqual(w.calls, [
    "list",
    "sleep 60000",
    "list",
    "drop",
    "warn change stream safe_deploy_r1 dropped: it held 100 MB of WAL, the limit rollback.maxRetainedWalMB is " +
      "100 MB. A rollback to before this release now loses the writes made since it; raise the limit (or shorten " +
      "rollback.keepChangesMinutes) if that is wrong",
  ]);
});
