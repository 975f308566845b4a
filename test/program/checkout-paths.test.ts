import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// Issue 14, item 11: a rollback runs the program from a temporary worktree. Absolute checkout paths in
// Command inputs would make the next deploy (from the project again) re-run the migration and every hook.
// The same program is loaded under mocks from this checkout and from a copy elsewhere.
const root = resolve(__dirname, "..", "..");
const copy = mkdtempSync(join(tmpdir(), "sd-other-checkout-"));
type Cmd = { name: string; inputs: Record<string, any> };
let here: Cmd[];
let there: Cmd[];

function commandsOf(checkout: string): Cmd[] {
  const out = execFileSync(
    "node",
    ["--import", "tsx", join(checkout, "test/program/fixtures/print-commands.ts")],
    {
      cwd: checkout,
      encoding: "utf8",
      env: { ...process.env, SAFE_DEPLOY_COMMIT: "0123456789abcdef0123456789abcdef01234567" },
    },
  );
  return JSON.parse(out) as Cmd[];
}

before(() => {
  // The checkout's own files (tracked and new), without node_modules, the way a git worktree has them.
  execFileSync(
    "sh",
    [
      "-c",
      `git ls-files -co --exclude-standard | grep -v node_modules | tar -cf - -T - | tar -C "${copy}" -xf -`,
    ],
    { cwd: root },
  );
  symlinkSync(join(root, "node_modules"), join(copy, "node_modules"));
  here = commandsOf(root);
  there = commandsOf(copy);
});
after(() => rmSync(copy, { recursive: true, force: true }));

test("every Command and the app image build have the same inputs from two checkouts (nothing re-runs after a rollback)", () => {
  assert.deepEqual(here.map((c) => c.name).sort(), [
    "staging-app-image",
    "staging-database-app-role-setup",
    "staging-database-image-pin",
    "staging-hook-announce",
    "staging-hook-collectstatic",
    "staging-hook-smoke",
    "staging-migration-migrate",
  ]);
  assert.deepEqual(there, here);
  const text = JSON.stringify(here);
  assert.ok(!text.includes(root) && !text.includes(copy), "no checkout path in any Command input");
});

test("no Command hands its previous (secret) stdout to the next run's environment", () => {
  for (const c of here.filter((x) => x.name !== "staging-app-image"))
    assert.equal(c.inputs.addPreviousOutputInEnv, false, c.name);
});
