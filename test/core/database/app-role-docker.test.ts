// The whole path in Docker: the set-up command as the component runs it (`docker exec` into the real
// postgres image), the migrations as the owner afterwards, then the demo app with the app role's URL.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { appRoleCommand, appRoleName, appRoleSql, scramVerifier } from "../../../src/core/database/roles";
import { migrationCommand } from "../../../src/core/migrations/command";
import { demoAppImage } from "../../helpers/app-image";
import {
  createNetwork,
  docker,
  postgresImage,
  removeContainer,
  removeNetwork,
  runContainer,
  waitForHealthy,
  type TestContainer,
} from "../../helpers/docker";

const OWNER = "shop";
const OWNER_PW = "0wner-pw-in-env-only";
const APP_PW = "app-role-pw-1234567890";
const ROLE = appRoleName(OWNER);
let network: string;
let db: TestContainer | undefined;
let app: TestContainer | undefined;
let image: string;

before(async () => {
  image = await demoAppImage();
  network = await createNetwork("approle");
  db = await runContainer({
    image: await postgresImage(),
    network,
    aliases: ["db"],
    env: { POSTGRES_USER: OWNER, POSTGRES_PASSWORD: OWNER_PW, POSTGRES_DB: "shopdb" },
    healthcheck: { test: `pg_isready -h 127.0.0.1 -U ${OWNER} -d shopdb` },
  });
  await waitForHealthy(db.id, 120_000);
});
after(async () => {
  if (app) await removeContainer(app.id);
  if (db) await removeContainer(db.id);
  if (network) await removeNetwork(network);
});

function runSetUp(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", appRoleCommand(OWNER, "shopdb")], {
      env: { PATH: process.env.PATH, SAFE_DEPLOY_DB_CONTAINER: db!.name, PGPASSWORD: OWNER_PW },
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
    child.stdin.end(
      appRoleSql({ owner: OWNER, role: ROLE, database: "shopdb", verifier: scramVerifier(APP_PW, ROLE) }),
    );
  });
}

test("set-up in the container, then owner migrations, then the app answers /health and writes as the app role", async () => {
  const r = await runSetUp();
  assert.equal(r.code, 0, r.out);
  const m = migrationCommand({
    tool: "node-pg-migrate",
    dir: "migrations",
    workDir: "/app",
    runIn: "container",
    image,
    network,
  });
  await promisify(execFile)("/bin/sh", ["-c", m.create], {
    cwd: m.dir,
    env: { ...process.env, ...m.environment, DATABASE_URL: `postgres://${OWNER}:${OWNER_PW}@db:5432/shopdb` },
  });
  app = await runContainer({
    image,
    network,
    env: { DATABASE_URL: `postgres://${ROLE}:${APP_PW}@db:5432/shopdb` },
    ports: [{ container: 3000 }],
  });
  await waitForHealthy(app.id, 120_000);
  const base = `http://127.0.0.1:${app.hostPort}`;
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200, await health.text());
  const post = await fetch(`${base}/notes`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ body: "written by the app role" }),
  });
  assert.equal(post.status, 201, await post.text());
  const who = await docker([
    "exec",
    db!.id,
    "psql",
    "-U",
    OWNER,
    "-d",
    "shopdb",
    "-Atc",
    `SELECT rolsuper FROM pg_roles WHERE rolname = '${ROLE}'`,
  ]);
  assert.equal(who, "f");
  // The same connection the app has cannot reach the host.
  const copy = await promisify(execFile)("docker", [
    "exec",
    "-e",
    `PGPASSWORD=${APP_PW}`,
    db!.id,
    "psql",
    "-h",
    "127.0.0.1",
    "-U",
    ROLE,
    "-d",
    "shopdb",
    "-c",
    "COPY (SELECT 1) TO PROGRAM 'id'",
  ]).then(
    () => "",
    (e: { stderr?: string }) => e.stderr ?? "failed",
  );
  assert.match(copy, /permission denied|pg_execute_server_program/);
});
