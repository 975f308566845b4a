// Issue 17, seed 004: the app under pm2 beside PostgreSQL in Docker. The database keeps its Docker graph
// (pinned image, named volume); the app reaches it on its published port.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { plaintextPart, type RecordedResource } from "../helpers/mocks";
import { loadProgram, valueOf } from "../helpers/program";

const PW = "S33d-004-pw";
let resources: RecordedResource[];
let byName: (n: string) => RecordedResource;
let program: typeof import("../../src/index");

before(async () => {
  const loaded = await loadProgram({
    config: {
      app: {
        target: "pm2",
        name: "backend-vlad",
        port: 3335,
        pm2: { root: "/srv/backend", script: "dist/main.js" },
      },
      database: { mode: "container", name: "peludosclick", hostPort: 55432 },
    },
    secrets: { dbPassword: PW },
  });
  ({ resources, byName } = loaded.rec);
  program = loaded.program;
});

test("the database container and its volume stay; no app container; the pm2 release waits for the migration", () => {
  const containers = resources
    .filter((r) => r.type === "docker:index/container:Container")
    .map((r) => r.name);
  assert.deepEqual(containers, ["staging-database-db"]);
  assert.ok(resources.some((r) => r.type === "docker:index/volume:Volume"));
  assert.ok(byName("staging-backup").dependencies.includes(byName("staging-database-db").urn));
  assert.ok(byName("staging-app-release").dependencies.includes(byName("staging-migration-migrate").urn));
});

test("the app's DATABASE_URL is the published port on 127.0.0.1, secret; the database name is in the outputs", async () => {
  const env = JSON.parse(byName("staging-app-release").inputs.environment.SAFE_DEPLOY_APP_ENV);
  assert.match(env.DATABASE_URL, /^postgres:\/\/app:S33d-004-pw@127\.0\.0\.1:55432\/peludosclick/);
  for (const r of resources) assert.ok(!JSON.stringify(plaintextPart(r.wireInputs)).includes(PW), r.name);
  assert.deepEqual(Object.keys(await valueOf(program.containers)), ["database"]);
});
