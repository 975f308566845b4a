import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, it } from "node:test";
import { promisify } from "node:util";
import { migrationCommand } from "../../../src/core/migrations/command";
import { demoAppImage } from "../../helpers/app-image";
import {
  createNetwork,
  docker,
  postgresImage,
  removeContainer,
  removeNetwork,
  runContainer,
  type TestContainer,
} from "../../helpers/docker";

let network: string;
let db: TestContainer;
let image: string;
before(async () => {
  image = await demoAppImage();
  network = await createNetwork("migrate");
  db = await runContainer({
    image: await postgresImage(),
    network,
    aliases: ["db"],
    env: { POSTGRES_PASSWORD: "pw-in-env-only", POSTGRES_DB: "app" },
    healthcheck: { test: "pg_isready -h 127.0.0.1 -U postgres -d app" },
  });
  for (let i = 0; i < 120; i++) {
    if ((await docker(["inspect", "-f", "{{.State.Health.Status}}", db.id])) === "healthy") return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("test database container did not become healthy");
});
after(async () => {
  if (db) await removeContainer(db.id);
  if (network) await removeNetwork(network);
});

it("container mode runs the tool in a one-off container of the app image on the stack's network", async () => {
  const c = migrationCommand({
    tool: "node-pg-migrate",
    dir: "migrations",
    workDir: "/app",
    runIn: "container",
    image,
    network,
  });
  assert.ok(!c.create.includes("pw-in-env-only"));
  const url = "postgres://postgres:pw-in-env-only@db:5432/app";
  await promisify(execFile)("/bin/sh", ["-c", c.create], {
    cwd: c.dir,
    env: { ...process.env, ...c.environment, DATABASE_URL: url },
  });
  const out = await docker([
    "exec",
    db.id,
    "psql",
    "-U",
    "postgres",
    "-d",
    "app",
    "-Atc",
    "SELECT count(*) FROM pgmigrations",
  ]);
  assert.ok(Number(out) >= 3, `expected the example app's migrations applied, got ${out}`);
  const leftovers = await docker([
    "ps",
    "-aq",
    "--filter",
    "label=safe-deploy.role=migration",
    "--filter",
    `network=${network}`,
  ]);
  assert.equal(leftovers, "", "the one-off container is removed");
});
