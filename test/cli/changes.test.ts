import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { runChanges } from "../../src/cli/commands/changes";
import { runStatus } from "../../src/cli/commands/status";
import type { CommandDeps } from "../../src/cli/shared";
import { parseDatabaseUrl } from "../../src/core/backup";
import { createReleaseSlot, slotName } from "../../src/core/changes/slot";
import { Ledger } from "../../src/core/release/ledger";
import type { ConfigMap, StackAccess } from "../../src/core/release/stack-port";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

// Issue 20, part B item 5: no slot outlives its use. `status` lists the stack's slots with the WAL they
// hold and drops expired ones; `changes prune` drops orphans; `changes watch` (what a good deploy starts)
// drops its slot at the window's end, or at rollback.maxRetainedWalMB with a WARNING notification.
let pg: TestPostgres;
let project: string;
let url: string;

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  url = await pg.createDatabase("app");
  await pg.query("CREATE TABLE t (id serial PRIMARY KEY, body text)", [], "app");
  project = mkdtempSync(join(tmpdir(), "sd-changes-"));
  writeFileSync(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
});
after(async () => {
  await pg?.close();
  rmSync(project, { recursive: true, force: true });
});

function deps(lines: string[]): CommandDeps {
  const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
  const config: ConfigMap = {
    "safe-deploy:app": plain({ image: "web:v1" }),
    "safe-deploy:database": plain({ mode: "external" }),
    "safe-deploy:databaseUrl": { value: url, secret: true },
    "safe-deploy:rollback": plain({ maxRetainedWalMB: 16 }),
  };
  const stack: Partial<StackAccess> = {
    name: "staging",
    getAllConfig: async () => config,
    outputs: async () => ({ containers: { value: "{}", secret: false } }),
  };
  return {
    openStack: async () => stack as StackAccess,
    out: (l) => lines.push(l),
    console: new PassThrough(),
    terminal: { input: new PassThrough(), output: new PassThrough(), isTTY: false },
  };
}

const ledger = () => new Ledger(join(project, ".safe-deploy"), "staging");
const slots = async () =>
  (await pg.query<{ slot_name: string }>("SELECT slot_name FROM pg_replication_slots ORDER BY 1")).map(
    (r) => r.slot_name,
  );
async function slot(id: string): Promise<string> {
  const s = await createReleaseSlot({ runIn: "local" }, parseDatabaseUrl(url), slotName("staging", id));
  await s.close();
  return s.slot;
}
async function goodRelease(s: string, keepUntil: string) {
  const r = await ledger().create({ stack: "staging", commit: "c".repeat(40), config: {} });
  await ledger().update(r.id, { changes: { slot: s, startLsn: "0/0", keepUntil } });
  return ledger().markResult(r.id, "good");
}

test("status lists the kept slot with its WAL and drops the expired one; prune drops the orphan, not the kept one", async () => {
  const kept = await slot("kept");
  const expired = await slot("expired");
  const orphan = await slot("orphan");
  const r = await goodRelease(kept, "2999-01-01T00:00:00.000Z");
  await goodRelease(expired, "2000-01-01T00:00:00.000Z");
  const lines: string[] = [];
  await runStatus({ stack: "staging", projectDir: project }, deps(lines));
  const out = lines.join("\n");
  assert.match(
    out,
    new RegExp(`change stream ${kept}: [0-9.]+ MB of WAL retained, kept for ${r.id} until 2999-01-01`),
  );
  assert.match(
    out,
    new RegExp(`change stream ${orphan}: .*kept by no release \\('safe-deploy changes prune' drops it\\)`),
  );
  assert.ok(!out.includes(expired));
  assert.deepEqual(await slots(), [kept, orphan].sort());
  assert.ok(!out.includes(pg.password));

  const pruned = await runChanges({ action: "prune", stack: "staging", projectDir: project }, deps([]));
  assert.deepEqual(pruned, [`dropped ${orphan} (orphan)`]);
  assert.deepEqual(await slots(), [kept]);
  const listed = await runChanges({ action: "list", stack: "staging", projectDir: project }, deps([]));
  assert.match(listed.join("\n"), new RegExp(`^${kept}: [0-9.]+ MB of WAL retained, kept for ${r.id}`));
  await pg.query("SELECT pg_drop_replication_slot($1)", [kept]);
});

test("the watcher drops its slot when the window ends", async () => {
  const s = await slot("window");
  const until = new Date(Date.now() - 1000).toISOString();
  const out = await runChanges(
    { action: "watch", stack: "staging", projectDir: project, slot: s, until },
    deps([]),
  );
  assert.deepEqual(out, [`change stream ${s}: keep window ended, dropped`]);
  assert.deepEqual(await slots(), []);
});

test("the watcher drops a slot holding rollback.maxRetainedWalMB of WAL, with a WARNING notification", async () => {
  const s = await slot("big");
  // About 24 MB of WAL behind the slot (the limit here is 16 MB).
  await pg.query(
    "INSERT INTO t (body) SELECT repeat(md5(g::text), 30) FROM generate_series(1, 20000) g",
    [],
    "app",
  );
  await pg.query("SELECT pg_switch_wal()");
  const out = await runChanges(
    { action: "watch", stack: "staging", projectDir: project, slot: s, until: "2999-01-01T00:00:00Z" },
    deps([]),
  );
  assert.deepEqual(out, [`change stream ${s}: dropped at the WAL limit`]);
  assert.deepEqual(await slots(), []);
  const notes = readFileSync(join(project, "logs/notifications.log"), "utf8");
  assert.match(
    notes,
    /WARNING.*change stream safe_deploy_staging_big dropped: it held \d+ MB of WAL, the limit rollback\.maxRetainedWalMB is 16 MB/,
  );
});
