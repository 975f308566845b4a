import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { APP_CONTEXT, demoAppImage, dockerBuild } from "../../../test/helpers/app-image";
import {
  cleanupDocker,
  createNetwork,
  docker,
  postgresImage,
  removeContainer,
  runContainer,
  waitForHealthy,
  waitForPostgres,
  type TestContainer,
} from "../../../test/helpers/docker";

// The demo app as the staging stack runs it: its real image (built from examples/app/Dockerfile on a
// local Debian base) next to the PostgreSQL test image on a network of their own.
let net: string;
let db: TestContainer;
let app: TestContainer;
let appImage: string;
let base: string;
const tmp: string[] = [];

before(async () => {
  appImage = await demoAppImage();
  net = await createNetwork("app");
  db = await runContainer({
    image: await postgresImage(),
    env: { POSTGRES_USER: "app", POSTGRES_PASSWORD: "img-test-pw", POSTGRES_DB: "app" },
    network: net,
    aliases: ["db"],
    ports: [{ container: 5432 }],
  });
  await waitForPostgres(`postgres://app:img-test-pw@127.0.0.1:${db.hostPort}/app`);
  // Migrations run inside the new image, as `migrations.runIn: container` does.
  await docker([
    "run",
    "--rm",
    "--network",
    net,
    "-e",
    "DATABASE_URL=postgres://app:img-test-pw@db:5432/app",
    appImage,
    "node",
    "node_modules/.bin/node-pg-migrate",
    "up",
    "-m",
    "migrations",
  ]);
  app = await runContainer({
    image: appImage,
    env: { DATABASE_URL: "postgres://app:img-test-pw@db:5432/app", APP_VERSION: "img-test" },
    network: net,
    ports: [{ container: 3000 }],
  });
  base = `http://127.0.0.1:${app.hostPort}`;
});
after(async () => {
  await cleanupDocker();
  await Promise.all(tmp.map((d) => rm(d, { recursive: true, force: true })));
});

test("the built image serves /health and the notes routes, and its own HEALTHCHECK turns healthy", async () => {
  await waitForHealthy(app.id, 90_000);
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { version: string }).version, "img-test");
  const created = await fetch(`${base}/notes`, {
    method: "POST",
    body: JSON.stringify({ body: "from the image" }),
    headers: { "content-type": "application/json" },
  });
  assert.equal(created.status, 201);
  const list = await (await fetch(`${base}/notes`)).json();
  assert.ok(JSON.stringify(list).includes("from the image"));
  assert.equal(await docker(["inspect", "-f", "{{.Config.User}}", app.id]), "nobody");
});

test("/health answers 503 once its database is gone", async () => {
  await removeContainer(db.id);
  const res = await fetch(`${base}/health`);
  assert.equal(res.status, 503);
  assert.ok(!(await res.text()).includes("img-test-pw"));
});

test("a build that cannot succeed fails with docker's reason (no node_modules, no network)", async () => {
  const ctx = await mkdtemp(join(tmpdir(), "sd-ctx-"));
  tmp.push(ctx);
  await cp(APP_CONTEXT, ctx, { recursive: true, filter: (src) => !src.includes("node_modules") });
  await assert.rejects(
    dockerBuild(ctx, "safe-deploy-test/app:must-fail"),
    /docker build of .* failed:[\s\S]*npm/,
  );
});
