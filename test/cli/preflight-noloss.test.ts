import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runUp } from "../../src/cli/commands/up";
import { openContext } from "../../src/cli/context";
import { noLossVerdict } from "../../src/cli/context/preflight";
import { ConfigError } from "../../src/core/errors";
import type { ConfigMap, StackAccess } from "../../src/core/release/stack-port";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

// Issue 20, part B item 3: the preflight says whether a rollback of this deploy could keep the writes
// made after it; `rollback.requireNoLoss` refuses the deploy instead (exit 2).
const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
let replica: TestPostgres;
let logical: TestPostgres;
const dir = mkdtempSync(join(tmpdir(), "sd-preflight-noloss-"));

before(async () => {
  [replica, logical] = await Promise.all([startPostgres(), startPostgres({ walLevel: "logical" })]);
  writeFileSync(join(dir, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
  writeFileSync(join(dir, ".gitignore"), "backups/\nlogs/\n.safe-deploy/\n");
  const git = (...a: string[]) => execFileSync("git", ["-C", dir, ...a]);
  git("init", "-q", "-b", "main");
  git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "init");
});
after(async () => {
  await Promise.all([replica?.close(), logical?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const configFor = (url: string, rollback: Record<string, unknown>): ConfigMap => ({
  "safe-deploy:app": plain({ image: "web:any" }),
  "safe-deploy:database": plain({ mode: "external" }),
  "safe-deploy:rollback": plain(rollback),
  "safe-deploy:databaseUrl": { value: url, secret: true },
});

async function preflightOf(url: string, rollback: Record<string, unknown>) {
  const shown: string[] = [];
  const ctx = await openContext({
    stack: "staging",
    projectDir: dir,
    console: { write: (s: string) => shown.push(s) },
    openStack: async (o) =>
      ({ name: o.stack, getAllConfig: async () => configFor(url, rollback) }) as unknown as StackAccess,
  });
  const problems = await ctx.ports({ allowDirty: true }).preflight();
  return { problems, shown: shown.join("") };
}

test("a server at wal_level=replica: the deploy goes on and says a rollback would lose the writes after it", async () => {
  const url = await replica.createDatabase("app");
  const { problems, shown } = await preflightOf(url, {});
  assert.deepEqual(problems, []);
  assert.match(
    shown,
    /no-loss rollback is not possible: a rollback with restore would lose every write made after this deploy \(.*wal_level/,
  );
  assert.ok(!shown.includes(replica.password));
});

test("requireNoLoss refuses that deploy, naming the fix; `up` exits 2 and pulumi up never runs", async () => {
  const url = await replica.createDatabase("app2");
  const { problems } = await preflightOf(url, { requireNoLoss: true });
  assert.equal(problems.length, 1);
  assert.match(
    problems[0],
    /^rollback\.requireNoLoss: a rollback of this deploy could lose writes, so it is refused: .*wal_level.*logical/,
  );
  assert.match(problems[0], /set `rollback\.requireNoLoss: false` to deploy anyway$/);
  let ups = 0;
  await assert.rejects(
    runUp(
      { stack: "staging", projectDir: dir, allowDirty: true },
      {
        out: () => {},
        console: { write: () => {} },
        openStack: async (o) =>
          ({
            name: o.stack,
            getAllConfig: async () => configFor(url, { requireNoLoss: true }),
            up: async () => void ups++,
          }) as unknown as StackAccess,
      },
    ),
    (e: unknown) => e instanceof ConfigError && e.exitCode === 2 && /requireNoLoss/.test(e.message),
  );
  assert.equal(ups, 0);
  const notes = readFileSync(join(dir, "logs/notifications.log"), "utf8");
  assert.match(notes, /refused at preflight: rollback\.requireNoLoss/);
});

test("a ready server: nothing said; a table without primary key is named (its updates cannot be replayed)", async () => {
  const url = await logical.createDatabase("app");
  assert.deepEqual(await preflightOf(url, { requireNoLoss: true }), { problems: [], shown: "" });
  await logical.query("CREATE TABLE events (at timestamptz, what text)", [], "app");
  const { problems, shown } = await preflightOf(url, {});
  assert.deepEqual(problems, []);
  assert.match(shown, /no-loss rollback is not possible: .*public\.events.*REPLICA IDENTITY FULL/);
  const refused = await preflightOf(url, { requireNoLoss: true });
  assert.match(refused.problems[0], /^rollback\.requireNoLoss: .*public\.events/);
});

test("noLossVerdict: problems refuse only with requireNoLoss; tables named once", () => {
  const none = { problems: [], tablesWithoutIdentity: [] };
  assert.deepEqual(noLossVerdict(none, true), { problems: [] });
  const t = { problems: [], tablesWithoutIdentity: ["public.a", "s.b"] };
  assert.match(noLossVerdict(t, false).warning!, /partial.*public\.a, s\.b.*REPLICA IDENTITY FULL/);
  assert.equal(noLossVerdict(t, true).problems.length, 1);
  // A problem already naming the table is not repeated.
  const named = { problems: ["public.a has no primary key: add one"], tablesWithoutIdentity: ["public.a"] };
  assert.equal(noLossVerdict(named, false).warning!.match(/public\.a/g)!.length, 1);
});
