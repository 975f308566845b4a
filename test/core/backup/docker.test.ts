import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  docker,
  ensureDocker,
  postgresImage,
  removeContainer,
  runContainer,
  type TestContainer,
  waitForPostgresIn,
} from "../../helpers/docker";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { startSshDockerHost } from "../../helpers/ssh";
import { createBackup, restoreBackup, verifyBackup } from "../../../src/core/backup";
import { CannotRunError } from "../../../src/core/errors";

let image: string;
let db: TestContainer;
let pg: TestPostgres;
let dir: string;
const inner = "postgres://app:In5ideSecret@127.0.0.1:5432/app";

before(async () => {
  await ensureDocker();
  image = await postgresImage();
  db = await runContainer({
    image,
    env: { POSTGRES_USER: "app", POSTGRES_PASSWORD: "In5ideSecret", POSTGRES_DB: "app" },
  });
  await waitForPostgresIn(db.name);
  await docker([
    "exec",
    "-e",
    "PGPASSWORD=In5ideSecret",
    db.name,
    "psql",
    "-h",
    "127.0.0.1",
    "-U",
    "app",
    "-d",
    "app",
    "-c",
    "CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, 'ü' || g FROM generate_series(1, 321) g;",
  ]);
  pg = await startPostgres();
  await pg.createDatabase("ext");
  await pg.query("CREATE TABLE e (x int); INSERT INTO e SELECT generate_series(1, 77)", [], "ext");
  dir = mkdtempSync(join(tmpdir(), "sd-bk-docker-"));
});
after(async () => {
  if (db) await removeContainer(db.name);
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("runIn container: pg_dump runs in the db container (its own version) through DOCKER_HOST; restore there too", async () => {
  const target = {
    runIn: "container" as const,
    container: db.name,
    dockerHost: "unix:///var/run/docker.sock",
  };
  const r = await createBackup({ databaseUrl: inner, dir, label: "pre-deploy", target });
  assert.equal(r.manifest.rowCounts["public.t"], 321);
  assert.match(r.manifest.pgDumpVersion, /^pg_dump \(PostgreSQL\) 15\./);
  await verifyBackup(r.file, { restoreTest: true, databaseUrl: inner, target });
  await docker([
    "exec",
    "-e",
    "PGPASSWORD=In5ideSecret",
    db.name,
    "psql",
    "-h",
    "127.0.0.1",
    "-U",
    "app",
    "-d",
    "app",
    "-c",
    "DELETE FROM t",
  ]);
  const res = await restoreBackup(r.file, { databaseUrl: inner, target });
  const n = await docker([
    "exec",
    "-e",
    "PGPASSWORD=In5ideSecret",
    db.name,
    "psql",
    "-At",
    "-h",
    "127.0.0.1",
    "-U",
    "app",
    "-d",
    "app",
    "-c",
    "SELECT count(*) FROM t",
  ]);
  assert.equal(n.trim(), "321");
  assert.match(res.previousDatabase ?? "", /^app_before_restore_/);
});

test("runIn container through an ssh:// Docker host (production's shape): backup, verify and restore", async () => {
  const ssh = await startSshDockerHost();
  const path = process.env.PATH;
  process.env.PATH = `${ssh.binDir}:${path}`;
  try {
    const target = { runIn: "container" as const, container: db.name, dockerHost: ssh.dockerHost };
    const r = await createBackup({ databaseUrl: inner, dir: join(dir, "ssh"), label: "pre-deploy", target });
    assert.equal(r.manifest.rowCounts["public.t"], 321);
    assert.match(ssh.calls(), /127\.0\.0\.1 docker system dial-stdio/, "the docker CLI went through ssh");
    await verifyBackup(r.file, { restoreTest: true, databaseUrl: inner, target });
    const res = await restoreBackup(r.file, { databaseUrl: inner, target });
    assert.match(res.previousDatabase ?? "", /^app_before_restore_/);
    // a host that does not answer is exit 3, naming it
    await assert.rejects(
      createBackup({
        databaseUrl: inner,
        dir: join(dir, "ssh-down"),
        target: { ...target, dockerHost: "ssh://nobody@127.0.0.1:1" },
      }),
      (e: Error) => e instanceof CannotRunError,
    );
  } finally {
    process.env.PATH = path;
    await ssh.close();
  }
});

test("runIn container with a missing container: exit 3 naming it", async () => {
  await assert.rejects(
    createBackup({
      databaseUrl: inner,
      dir: join(dir, "x"),
      target: { runIn: "container", container: "sd-test-no-such-ctr" },
    }),
    (e: Error) => e instanceof CannotRunError && /sd-test-no-such-ctr/.test(e.message),
  );
});

test("external database: pg_dump in a throwaway container of an image (host network)", async () => {
  const r = await createBackup({
    databaseUrl: pg.url("ext"),
    dir: join(dir, "ext"),
    label: "manual",
    target: { runIn: "container", image },
  });
  assert.deepEqual(r.manifest.rowCounts, { "public.e": 77 });
  await verifyBackup(r.file, { restoreTest: true, databaseUrl: pg.url("ext") });
});

test("CLI: `--run-in container --image` dumps an external database; neither --container nor --image is exit 2", async () => {
  const { runBackupCreate } = await import("../../../src/cli/commands/backup");
  const file = await runBackupCreate(
    { dir: join(dir, "cli-image"), databaseUrl: pg.url("ext"), runIn: "container", image },
    () => {},
  );
  const v = await verifyBackup(file);
  assert.deepEqual(v.manifest.rowCounts, { "public.e": 77 });
  await assert.rejects(
    runBackupCreate({ dir: join(dir, "cli-none"), databaseUrl: pg.url("ext"), runIn: "container" }, () => {}),
    (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 2, e.message);
      assert.match(
        e.message,
        /`--run-in container` needs `--container NAME` .* or, for an external database, `--image IMAGE`/,
      );
      return true;
    },
  );
});

test("a local pg_dump older than the server is refused, naming the container option", async () => {
  const fake = join(dir, "oldbin");
  mkdirSync(fake);
  writeFileSync(join(fake, "pg_dump"), '#!/bin/sh\necho "pg_dump (PostgreSQL) 14.11"\n');
  chmodSync(join(fake, "pg_dump"), 0o755);
  symlinkSync(join(PG_BIN, "psql"), join(fake, "psql"));
  const before = process.env.PG_BIN;
  process.env.PG_BIN = fake;
  try {
    await assert.rejects(createBackup({ databaseUrl: pg.url("ext"), dir: join(dir, "old") }), (e: Error) => {
      assert.ok(e instanceof CannotRunError);
      assert.match(e.message, /pg_dump \(PostgreSQL\) 14\.11 is older than the server/);
      assert.match(e.message, /--run-in container/);
      return true;
    });
  } finally {
    if (before === undefined) delete process.env.PG_BIN;
    else process.env.PG_BIN = before;
  }
});
