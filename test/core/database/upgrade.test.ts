// A PostgreSQL major upgrade with the real Docker engine: a PostgreSQL 15 container with data and an
// extra role, upgraded to PostgreSQL 17 (Debian trixie test image) on a new volume (issue 15).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  databaseMajorProblem,
  imageMajor,
  majorUpgradeProblem,
  rolesScript,
  runningMajor,
  serverMajor,
  upgradeDatabase,
  upgradedVolumeName,
} from "../../../src/core/database/upgrade";
import { ConfigError } from "../../../src/core/errors";
import {
  cleanupDocker,
  createVolume,
  docker,
  postgres17Image,
  postgresImage,
  RUN_ID,
  runContainer,
  TEST_LABEL,
  uniqueName,
  waitForHealthy,
  type TestContainer,
} from "../../helpers/docker";

const USER = "shop";
const PW = "s3cret-pw-in-env-only";
const DB = "shopdb";
const url = `postgres://${USER}:${PW}@127.0.0.1:5432/${DB}`;
let old: TestContainer;
let oldVolume: string;
let pg15: string;
let pg17: string;
let backupDir: string;

const psql = (container: string, sql: string, user = USER, password = PW) =>
  docker([
    "exec",
    "-e",
    `PGPASSWORD=${password}`,
    container,
    "psql",
    "-X",
    "-At",
    "-h",
    "127.0.0.1",
    "-U",
    user,
    "-d",
    DB,
    "-c",
    sql,
  ]);

async function startPg(image: string, volume: string): Promise<TestContainer> {
  const c = await runContainer({
    image,
    env: { POSTGRES_USER: USER, POSTGRES_PASSWORD: PW, POSTGRES_DB: DB },
    volumes: [{ source: volume, target: "/var/lib/postgresql/data" }],
    healthcheck: { test: `pg_isready -h 127.0.0.1 -U ${USER} -d ${DB}` },
  });
  await waitForHealthy(c.id, 120_000);
  return c;
}

before(async () => {
  [pg15, pg17] = await Promise.all([postgresImage(), postgres17Image()]);
  backupDir = await mkdtemp(join(tmpdir(), "sd-upgrade-"));
  oldVolume = await createVolume("pgdata");
  old = await startPg(pg15, oldVolume);
  await psql(
    old.name,
    `CREATE ROLE shop_app LOGIN PASSWORD 'app-pw-123';
     CREATE TABLE orders (id serial PRIMARY KEY, note text);
     INSERT INTO orders (note) SELECT 'n' || g FROM generate_series(1, 1234) g;
     CREATE TABLE customers (id int PRIMARY KEY); INSERT INTO customers SELECT generate_series(1, 77);
     GRANT SELECT ON orders TO shop_app;`,
  );
});
after(async () => {
  await cleanupDocker();
  await rm(backupDir, { recursive: true, force: true });
});

test("imageMajor reads the major from the tag, or nothing when the tag does not say", () => {
  const cases: Array<[string, number | undefined]> = [
    ["postgres:15", 15],
    ["postgres:16.4-bookworm", 16],
    ["postgres:17-alpine", 17],
    ["registry.local:5000/pg/postgres:17", 17],
    ["safe-deploy-test/postgres:15-0123abcd4567", 15],
    ["postgres", undefined],
    ["postgres:latest", undefined],
    ["registry.local:5000/postgres", undefined],
    ["postgres@sha256:0123", undefined],
    ["postgres:16@sha256:0123", 16],
  ];
  for (const [image, major] of cases) assert.equal(imageMajor(image), major, image);
});

test("serverMajor reads server_version_num and postgres --version", () => {
  assert.equal(serverMajor("150008\n"), 15);
  assert.equal(serverMajor("170002"), 17);
  assert.equal(serverMajor("90624"), 9);
  assert.equal(serverMajor("postgres (PostgreSQL) 17.2 (Debian 17.2-1)"), 17);
  assert.equal(serverMajor("nonsense"), undefined);
});

test("upgradedVolumeName appends the major once, replacing an earlier one", () => {
  assert.equal(upgradedVolumeName("app-prod-pgdata", 17), "app-prod-pgdata-17");
  assert.equal(upgradedVolumeName("app-prod-pgdata-16", 17), "app-prod-pgdata-17");
});

test("rolesScript drops only the bootstrap superuser's CREATE ROLE", () => {
  const dump =
    'CREATE ROLE shop;\nALTER ROLE shop WITH SUPERUSER;\nCREATE ROLE shop_app;\nCREATE ROLE "Shop";';
  assert.equal(
    rolesScript(dump, "shop"),
    'ALTER ROLE shop WITH SUPERUSER;\nCREATE ROLE shop_app;\nCREATE ROLE "Shop";',
  );
});

test("preflight: a running PostgreSQL 15 and database.image of 17 is a problem naming the upgrade command", async () => {
  const running = await runningMajor({ runIn: "container", container: old.name }, url);
  assert.equal(running, 15);
  const problem = majorUpgradeProblem({ stack: "prod", image: pg17, runningMajor: running });
  assert.match(problem ?? "", /PostgreSQL 17 but the running database is PostgreSQL 15/);
  assert.match(
    problem ?? "",
    new RegExp(`safe-deploy db upgrade --stack prod --to ${pg17.replace(/[.]/g, "\\.")}`),
  );
  assert.equal(majorUpgradeProblem({ stack: "prod", image: pg15, runningMajor: running }), undefined);
  assert.equal(
    majorUpgradeProblem({ stack: "prod", image: "postgres:latest", runningMajor: running }),
    undefined,
  );
  assert.ok(
    majorUpgradeProblem({ stack: "prod", image: "postgres:latest", runningMajor: running, imageMajor: 17 }),
  );
});

test("an existing target volume is refused before any backup, and left as it was", async () => {
  const taken = await createVolume("taken");
  await assert.rejects(
    upgradeDatabase({ container: old.name, databaseUrl: url, toImage: pg17, volumeName: taken, backupDir }),
    (e: Error) =>
      e instanceof ConfigError &&
      /already exists/.test(e.message) &&
      e.message.includes(`docker volume rm ${taken}`),
  );
  assert.equal(await docker(["volume", "ls", "-q", "--filter", `name=^${taken}$`]), taken);
  await assert.rejects(
    upgradeDatabase({ container: old.name, databaseUrl: url, toImage: pg17, volumeName: "-x y", backupDir }),
    (e: Error) => e instanceof ConfigError && /`--volume` "-x y" is not a Docker volume name/.test(e.message),
  );
});

test("15 -> 17: backup with the old server, roles and data restored on a new volume, verified; the old volume untouched", async () => {
  const volumeName = uniqueName("pgdata-17");
  const r = await upgradeDatabase({
    container: old.name,
    databaseUrl: url,
    toImage: pg17,
    volumeName,
    backupDir,
    volumeLabels: { [TEST_LABEL]: "1", [`${TEST_LABEL}.run`]: RUN_ID },
  });
  assert.deepEqual([r.fromMajor, r.toMajor], [15, 17]);
  assert.equal(r.backup.manifest.label, "pre-upgrade");
  assert.equal(
    r.backup.manifest.serverVersionNum >= 150000 && r.backup.manifest.serverVersionNum < 160000,
    true,
  );
  assert.deepEqual(r.rowCounts, { "public.customers": 77, "public.orders": 1234 });
  // No temporary container is left behind.
  assert.equal(await docker(["ps", "-aq", "--filter", `name=${volumeName}-upgrade`]), "");

  // The deploy's container of the new image on the new volume: same data, same roles and passwords.
  const upgraded = await startPg(pg17, volumeName);
  assert.equal(await psql(upgraded.name, "SHOW server_version_num").then((v) => serverMajor(v)), 17);
  assert.equal(await psql(upgraded.name, "SELECT count(*) FROM orders"), "1234");
  assert.equal(await psql(upgraded.name, "SELECT count(*) FROM orders", "shop_app", "app-pw-123"), "1234");

  // A rollback to the release before the upgrade (old image, no volumeName) mounts the old volume
  // again: preflight checks that volume's data, named on the new volume's label, not the running one's.
  assert.equal(
    await docker([
      "volume",
      "inspect",
      "--format",
      '{{index .Labels "safe-deploy.previous-volume"}}',
      volumeName,
    ]),
    oldVolume,
  );
  assert.equal(
    await databaseMajorProblem({ stack: "prod", image: pg15, container: upgraded.name }),
    undefined,
  );
  assert.match(
    (await databaseMajorProblem({ stack: "prod", image: pg17, container: upgraded.name })) ?? "",
    /is PostgreSQL 17 but the running database is PostgreSQL 15/,
  );

  // The old server and its volume are as they were: a rollback can start PostgreSQL 15 on them again.
  assert.equal(await psql(old.name, "SELECT count(*) FROM orders"), "1234");
  assert.equal(
    await docker(["run", "--rm", "-v", `${oldVolume}:/d`, "--entrypoint", "cat", pg15, "/d/PG_VERSION"]),
    "15",
  );
});

test("a write to the old database after the pre-upgrade backup fails the upgrade and removes the new volume", async () => {
  const volumeName = uniqueName("pgdata-late");
  await assert.rejects(
    upgradeDatabase({
      container: old.name,
      databaseUrl: url,
      toImage: pg17,
      volumeName,
      backupDir,
      // An update changes no row count: the content checksums still see it.
      onStep: async (s) => {
        if (s === "restored") await psql(old.name, "UPDATE customers SET id = id + 1000 WHERE id = 1");
      },
    }),
    (e: Error) =>
      /written to during the upgrade \(public\.customers changed/.test(e.message) &&
      /Stop the app/.test(e.message),
  );
  assert.equal(await docker(["volume", "ls", "-q", "--filter", `name=^${volumeName}$`]), "");
  assert.equal(await docker(["ps", "-aq", "--filter", `name=${volumeName}-upgrade`]), "");
  await psql(old.name, "UPDATE customers SET id = id - 1000 WHERE id = 1001");
});

test("SIGTERM during the upgrade: stops, removes the new volume and the temporary container, says nothing was switched", async () => {
  const volumeName = uniqueName("pgdata-sig");
  await assert.rejects(
    upgradeDatabase({
      container: old.name,
      databaseUrl: url,
      toImage: pg17,
      volumeName,
      backupDir,
      onStep: async (s) => {
        if (s === "restored") process.kill(process.pid, "SIGTERM");
      },
    }),
    (e: Error) => /interrupted by SIGTERM: nothing was switched/.test(e.message),
  );
  assert.equal(await docker(["volume", "ls", "-q", "--filter", `name=^${volumeName}$`]), "");
  assert.equal(await docker(["ps", "-aq", "--filter", `name=${volumeName}-upgrade`]), "");
});
