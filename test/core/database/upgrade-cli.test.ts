// `safe-deploy db upgrade` and the preflight check against a real PostgreSQL 15 container found by its
// labels; only the Pulumi stack (its config) is a stand-in (issue 15).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDbUpgrade } from "../../../src/cli/commands/db";
import type { ConfigMap, StackAccess } from "../../../src/core/release/stack-port";
import { databaseMajorProblem, refuseMajorChange } from "../../../src/core/database/upgrade";
import { ConfigError } from "../../../src/core/errors";
import {
  cleanupDocker,
  createVolume,
  docker,
  postgres17Image,
  postgresImage,
  removeVolume,
  runContainer,
  waitForHealthy,
  type TestContainer,
} from "../../helpers/docker";

const PW = "db-pw-never-logged-9f";
const stack = `upg${randomBytes(3).toString("hex")}`;
let projectDir: string;
let db: TestContainer;
let pg15: string;
let pg17: string;
let config: ConfigMap;

const fakeStack = async (): Promise<StackAccess> => ({
  name: stack,
  getAllConfig: async () => structuredClone(config),
  setAllConfig: async (c: ConfigMap) => void (config = structuredClone(c)),
  outputs: async () => ({}),
  exportState: async () => assert.fail("not used"),
  importState: async () => assert.fail("not used"),
  up: async () => assert.fail("db upgrade never deploys"),
  refresh: async () => assert.fail("not used"),
  history: async () => [],
  cancel: async () => undefined,
});

before(async () => {
  [pg15, pg17] = await Promise.all([postgresImage(), postgres17Image()]);
  projectDir = await mkdtemp(join(tmpdir(), "sd-upgrade-cli-"));
  await writeFile(join(projectDir, "Pulumi.yaml"), "name: sdup\nruntime: nodejs\n");
  config = {
    "safe-deploy:app": { value: JSON.stringify({ image: "web:1" }), secret: false },
    "safe-deploy:database": {
      value: JSON.stringify({ mode: "container", image: pg15, name: "shopdb", user: "shop" }),
      secret: false,
    },
    "safe-deploy:dbPassword": { value: PW, secret: true },
  };
  db = await runContainer({
    image: pg15,
    env: { POSTGRES_USER: "shop", POSTGRES_PASSWORD: PW, POSTGRES_DB: "shopdb" },
    volumes: [{ source: await createVolume("pgdata"), target: "/var/lib/postgresql/data" }],
    healthcheck: { test: "pg_isready -h 127.0.0.1 -U shop -d shopdb" },
    labels: { "safe-deploy.stack": stack, "safe-deploy.role": "database" },
  });
  await waitForHealthy(db.id, 120_000);
  await docker([
    "exec",
    db.name,
    "psql",
    "-U",
    "shop",
    "-d",
    "shopdb",
    "-c",
    "CREATE TABLE t AS SELECT generate_series(1, 42) AS id",
  ]);
});
after(async () => {
  await cleanupDocker();
  await removeVolume(`sdup-${stack}-pgdata-17`);
  await rm(projectDir, { recursive: true, force: true });
});

test("preflight: database.image of another major than the running container's data is a problem naming `db upgrade`", async () => {
  const p = await databaseMajorProblem({ stack, image: pg17, container: db.name });
  assert.match(p ?? "", new RegExp(`is PostgreSQL 17 but the running database is PostgreSQL 15`));
  assert.match(p ?? "", new RegExp(`safe-deploy db upgrade --stack ${stack} --to `));
  assert.equal(await databaseMajorProblem({ stack, image: pg15, container: db.name }), undefined);
  await assert.rejects(
    refuseMajorChange({ stack, image: pg17, container: db.name }),
    (e: Error) => e instanceof ConfigError && e.exitCode === 2 && /db upgrade --stack/.test(e.message),
  );
  await refuseMajorChange({ stack, image: pg15, container: db.name });
  // Before the first deploy there is no container: nothing to compare.
  assert.equal(await databaseMajorProblem({ stack, image: pg17, container: undefined }), undefined);
});

test("without --yes and no terminal it refuses before any backup, naming --yes", async () => {
  await assert.rejects(
    runDbUpgrade({ stack, to: pg17, projectDir, openStack: fakeStack, out: () => {} }),
    (e: Error) => e instanceof ConfigError && /stop it .* pass `--yes`/.test(e.message),
  );
  assert.equal(await docker(["volume", "ls", "-q", "--filter", `name=^sdup-${stack}-pgdata-17$`]), "");
});

test("the same major is refused: nothing to upgrade", async () => {
  await assert.rejects(
    runDbUpgrade({ stack, to: pg15, projectDir, yes: true, openStack: fakeStack, out: () => {} }),
    (e: Error) => e instanceof ConfigError && /already runs PostgreSQL 15/.test(e.message),
  );
});

test("db upgrade --yes: new volume <project>-<stack>-pgdata-17, config gets image and volumeName, backup pre-upgrade", async () => {
  const lines: string[] = [];
  await runDbUpgrade({
    stack,
    to: pg17,
    projectDir,
    yes: true,
    openStack: fakeStack,
    out: (l) => lines.push(l),
  });
  const volume = `sdup-${stack}-pgdata-17`;
  const database = JSON.parse(config["safe-deploy:database"].value);
  assert.deepEqual(database, {
    mode: "container",
    image: pg17,
    name: "shopdb",
    user: "shop",
    volumeName: volume,
  });
  assert.deepEqual(config["safe-deploy:dbPassword"], { value: PW, secret: true });
  assert.equal(
    await docker(["volume", "inspect", "--format", '{{index .Labels "safe-deploy.stack"}}', volume]),
    stack,
  );
  const backups = await readdir(join(projectDir, "backups", stack)).catch(() =>
    readdir(join(projectDir, "backups")),
  );
  assert.ok(
    backups.some((f) => /pre-upgrade/.test(f)),
    backups.join(","),
  );
  assert.match(lines.join("\n"), /PostgreSQL 15 -> 17: 1 tables verified/);
  assert.doesNotMatch(lines.join("\n"), new RegExp(PW));
});

test("after db upgrade, preflight lets the deploy onto the new volume go on, and refuses a volumeName with no data", async () => {
  const volume = `sdup-${stack}-pgdata-17`;
  // The container still runs 15 on the old volume; the deploy will mount the upgraded one, which is 17.
  assert.equal(
    await databaseMajorProblem({ stack, image: pg17, container: db.name, volumeName: volume }),
    undefined,
  );
  assert.match(
    (await databaseMajorProblem({ stack, image: pg15, container: db.name, volumeName: volume })) ?? "",
    /is PostgreSQL 15 but the running database is PostgreSQL 17/,
  );
  const missing = await databaseMajorProblem({
    stack,
    image: pg17,
    container: db.name,
    volumeName: "sd-test-no-such-volume",
  });
  assert.match(
    missing ?? "",
    /sd-test-no-such-volume does not exist while the database runs on sd-test-pgdata-.* empty database/,
  );
  const empty = await createVolume("empty");
  assert.match(
    (await databaseMajorProblem({ stack, image: pg17, container: db.name, volumeName: empty })) ?? "",
    /holds no PostgreSQL data/,
  );
});
