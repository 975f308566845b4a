import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "pg";
import {
  cleanupDocker,
  containerLogs,
  createNetwork,
  createVolume,
  docker,
  healthStatus,
  postgresImage,
  publishedPorts,
  removeContainer,
  runContainer,
  TEST_LABEL,
  waitForHealthy,
  waitForPostgres,
} from "./docker";

let image: string;

before(async () => {
  image = await postgresImage();
});
after(cleanupDocker);

const DATA = "/var/lib/postgresql/data";

async function query<T = Record<string, unknown>>(url: string, sql: string): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

test("the PostgreSQL image honours POSTGRES_* on a volume, answers on 127.0.0.1 and keeps data across restarts", async () => {
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const volume = await createVolume("pgdata");
  const network = await createNetwork();
  const start = (pw: string) =>
    runContainer({
      image,
      env: { POSTGRES_USER: "app", POSTGRES_PASSWORD: pw, POSTGRES_DB: "appdb" },
      ports: [{ container: 5432 }],
      network,
      aliases: ["db"],
      volumes: [{ source: volume, target: DATA }],
      healthcheck: { test: "pg_isready -U app -d appdb" },
    });
  const url = (port: number, pw = password) => `postgres://app:${pw}@127.0.0.1:${port}/appdb`;

  const first = await start(password);
  assert.ok(first.hostPort && first.hostPort > 0);
  assert.equal(
    await docker(["inspect", "--format", `{{index .Config.Labels "${TEST_LABEL}"}}`, first.id]),
    "1",
  );
  const bindings = await docker(["port", first.id, "5432/tcp"]);
  assert.match(bindings, /^127\.0\.0\.1:\d+$/, "published on loopback only");

  await waitForPostgres(url(first.hostPort!), 60_000);
  await waitForHealthy(first.id);
  assert.equal(await healthStatus(first.id), "healthy");
  const [who] = await query<{ user: string; db: string; auth: string }>(
    url(first.hostPort!),
    "SELECT current_user AS user, current_database() AS db, " +
      "(SELECT auth_method FROM pg_hba_file_rules WHERE address = 'all' AND type = 'host') AS auth",
  );
  assert.deepEqual(who, { user: "app", db: "appdb", auth: "scram-sha-256" });
  await assert.rejects(
    query(url(first.hostPort!, "wrong-password"), "SELECT 1"),
    /password authentication failed/,
  );

  await query(
    url(first.hostPort!),
    "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'kept')",
  );

  // Another container on the test network reaches it by alias (the entrypoint passes other commands through).
  const viaNetwork = await docker([
    "run",
    "--rm",
    "--label",
    `${TEST_LABEL}=1`,
    "--network",
    network,
    image,
    "psql",
    `postgres://app:${password}@db:5432/appdb`,
    "-tAc",
    "SELECT name FROM items",
  ]);
  assert.equal(viaNetwork, "kept");

  await docker(["restart", first.id]);
  const port = (await publishedPorts(first.id))[5432];
  await waitForPostgres(url(port), 60_000);
  assert.deepEqual(await query(url(port), "SELECT name FROM items"), [{ name: "kept" }]);

  // docker stop's SIGTERM must become a clean shutdown, and a new container reuses the data directory
  // as is: its different POSTGRES_PASSWORD is ignored, like the official image.
  await docker(["stop", first.id]);
  assert.equal(await docker(["inspect", "--format", "{{.State.ExitCode}}", first.id]), "0");
  await removeContainer(first.id);
  const second = await start("ignored-password");
  await waitForPostgres(url(second.hostPort!), 60_000);
  assert.deepEqual(await query(url(second.hostPort!), "SELECT name FROM items"), [{ name: "kept" }]);
  const allLogs = await containerLogs(second.id);
  assert.match(allLogs, /database system was shut down at/);
  assert.doesNotMatch(allLogs, /PostgreSQL init process complete/, "the existing data directory is reused");
  assert.doesNotMatch(allLogs, /automatic recovery/);

  const dump = await docker(["exec", second.id, "pg_dump", "-U", "app", "appdb"]);
  assert.match(dump, /CREATE TABLE public\.items/);
  const owner = await docker(["exec", second.id, "stat", "-c", "%U", DATA]);
  assert.equal(owner, "postgres");
});

test("the PostgreSQL image refuses to initialise without POSTGRES_PASSWORD", async () => {
  const c = await runContainer({ image, env: { POSTGRES_USER: "app" } });
  assert.equal(await docker(["wait", c.id], { timeoutMs: 60_000 }), "1");
  assert.match(await containerLogs(c.id), /POSTGRES_PASSWORD is not set/);
});
