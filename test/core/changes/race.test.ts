import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { replayChanges, slotName } from "../../../src/core/changes";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { connOf, local, restoreInto, slotAndDump } from "./fixture";

// Writes racing the slot's creation and the dump's start (issue 20): the dump and the stream meet at
// one point, so after restore + replay every committed write is there exactly once.
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  dir = mkdtempSync(join(tmpdir(), "sd-changes-race-"));
  await pg.createDatabase("app");
  await pg.query(
    `CREATE TABLE events (writer int NOT NULL, n int NOT NULL, PRIMARY KEY (writer, n));
     CREATE TABLE counters (writer int PRIMARY KEY, v int NOT NULL);
     INSERT INTO counters SELECT g, 0 FROM generate_series(1, 3) g;`,
    [],
    "app",
  );
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A writer committing one event and one counter increment per transaction until told to stop. */
function writer(id: number) {
  let stop = false;
  let committed = 0;
  const c = new Client({ connectionString: pg.url("app") });
  const done = (async () => {
    await c.connect();
    try {
      while (!stop) {
        await c.query("BEGIN");
        await c.query("INSERT INTO events VALUES ($1, $2)", [id, committed + 1]);
        await c.query("UPDATE counters SET v = v + 1 WHERE writer = $1", [id]);
        await c.query("COMMIT");
        committed++;
      }
    } finally {
      await c.end();
    }
  })();
  return {
    committed: () => committed,
    stop: async () => {
      stop = true;
      await done;
      return committed;
    },
  };
}

test("writes racing the slot creation and the dump start are neither lost nor doubled", async () => {
  const writers = [1, 2, 3].map(writer);
  // Let them get going, so transactions are in flight when the slot looks for its consistent point.
  while (writers.some((w) => w.committed() < 20)) await new Promise((r) => setTimeout(r, 10));
  const dump = join(dir, "race.dump");
  const slot = slotName("race", "r1");
  const s = await slotAndDump(pg, "app", slot, dump);
  const atSlot = writers.map((w) => w.committed());
  while (writers.some((w, i) => w.committed() < atSlot[i] + 20)) await new Promise((r) => setTimeout(r, 10));
  const totals = await Promise.all(writers.map((w) => w.stop()));

  const into = await restoreInto(pg, dump, "app_rollback");
  const dumped = await pg.query<{ n: string }>("SELECT count(*) AS n FROM events", [], "app_rollback");
  assert.ok(Number(dumped[0].n) > 0, "the dump should hold the writes before the slot");
  const r = await replayChanges({
    target: local,
    live: connOf(pg, "app"),
    slot,
    startLsn: s.startLsn,
    into,
    reportDir: dir,
  });
  assert.ok(r.transactions > 0 && r.applied === r.transactions * 2);

  for (const [i, total] of totals.entries()) {
    const rows = await pg.query<{ n: number }>(
      "SELECT n FROM events WHERE writer = $1 ORDER BY n",
      [i + 1],
      "app_rollback",
    );
    assert.deepEqual(
      rows.map((x) => x.n),
      Array.from({ length: total }, (_, k) => k + 1),
      `writer ${i + 1}: every committed event once`,
    );
    const [{ v }] = await pg.query<{ v: number }>(
      "SELECT v FROM counters WHERE writer = $1",
      [i + 1],
      "app_rollback",
    );
    assert.equal(v, total, `writer ${i + 1}: a doubled or lost increment`);
  }
});
