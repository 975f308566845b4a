import { before, test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import type { RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";

// A rollback runs an older commit's program from a temporary worktree that is removed afterwards; the
// CLI sets SAFE_DEPLOY_DATA_DIR to the project so the backups that program takes are not removed with it.
const DATA = "/srv/project-data";
let byName: (n: string) => RecordedResource;

before(async () => {
  process.env.SAFE_DEPLOY_DATA_DIR = DATA;
  const loaded = await loadProgram({
    stack: "staging",
    config: { app: { image: "web:1" }, backup: { dir: "./backups/staging" } },
    secrets: { dbPassword: "pw-123456" },
  });
  byName = loaded.rec.byName;
});

test("relative backup dirs resolve against SAFE_DEPLOY_DATA_DIR, migrations against the program's own tree", () => {
  assert.equal(byName("staging-backup").inputs.dir, resolve(DATA, "backups/staging"));
  const mig = byName("staging-migration-migrate").inputs;
  assert.ok(
    !String(mig.dir ?? mig.create ?? "").includes(DATA),
    "migrations must come from the program's tree",
  );
});
