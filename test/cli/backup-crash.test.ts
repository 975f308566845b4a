// Issue 22: `backup create` SIGKILLed at every step of its file work (a fault-injecting layer preloaded
// into the real CLI, test/helpers/kill-at-step.js), against a real PostgreSQL. After each kill, `backup
// list`/`verify`/`restore` must never take a half-written file or manifest for a good backup, and a
// backup is good exactly when its manifest was renamed into place.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../helpers/postgres";
import { listBackups, verifyBackup } from "../../src/core/backup";
import { listTempFiles } from "../../src/core/backup/retention";
import { CheckFailedError } from "../../src/core/errors";

const BIN = join(__dirname, "..", "..", "bin", "safe-deploy");
const PRELOAD = join(__dirname, "..", "helpers", "kill-at-step.js");
const ROWS = 50_000;
let pg: TestPostgres;
let root: string;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("app");
  // About 1 MB compressed: the dump reaches the file in a dozen writes or more.
  await pg.query(
    `CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g`,
    [],
    "app",
  );
  root = mkdtempSync(join(tmpdir(), "sd-bk-crash-"));
});
after(async () => {
  await pg?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(BIN, args, {
    encoding: "utf8",
    env: { ...process.env, DATABASE_URL: pg.url("app"), ...env },
    timeout: 120_000,
  });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

/** `backup create --dir dir` with the kill layer: dies at step `at` ("": never), logging steps to `log`. */
function create(dir: string, at: string, log?: string) {
  return cli(["backup", "create", "--dir", dir], {
    NODE_OPTIONS: `--require ${PRELOAD}`,
    KILL_DIR: dir,
    KILL_AT: at,
    ...(log ? { KILL_LOG: log } : {}),
  });
}

const rowsOfApp = async () =>
  Number((await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], "app"))[0].n);
const databases = async () =>
  (await pg.query<{ d: string }>("SELECT datname AS d FROM pg_database ORDER BY 1")).map((r) => r.d);

test(
  "backup create killed at every step: never a half-written file or manifest taken for a good backup",
  { timeout: 1_800_000 },
  async () => {
    // A run that is not killed lists the steps.
    const probeDir = join(root, "probe");
    const log = join(root, "steps.log");
    const probe = create(probeDir, "", log);
    assert.equal(probe.code, 0, probe.err);
    const steps = readFileSync(log, "utf8").trim().split("\n");
    const published = steps.indexOf("after rename manifest.tmp manifest #1");
    assert.ok(
      published >= 0,
      `the manifest is renamed into place from a temp file; steps were:\n${steps.join("\n")}`,
    );
    const linked = steps.indexOf("after link dump.tmp dump #1");
    assert.ok(linked >= 0 && linked < published, "the dump gets its name before the manifest is written");
    // fsync before the name: a crash of the machine cannot leave a named file with unwritten blocks.
    for (const [synced, named] of [
      ["after sync dump.tmp #1", linked],
      ["after sync manifest.tmp #1", published],
    ] as const) {
      const at = steps.indexOf(synced);
      assert.ok(at >= 0 && at < named, `${synced} comes before ${steps[named]}:\n${steps.join("\n")}`);
    }
    const writes = steps.filter((s) => s.startsWith("after write dump.tmp")).length;
    assert.ok(writes >= 8, `the dump reached the file in several writes (${writes})`);
    // Every step but the later writes (their count varies from run to run): the first two stand for them.
    const points = steps.filter((s) => !/ write dump\.tmp #(\d+)$/.test(s) || /#[12]$/.test(s));
    assert.ok(points.length >= 20, points.join("\n"));

    let triedRestoreOfNamed = false;
    let triedRestoreOfTemp = false;
    for (const [i, step] of points.entries()) {
      const k = steps.indexOf(step);
      const dir = join(root, `k${i}`);
      const r = create(dir, step);
      const at = `killed at ${step}`;
      assert.equal(r.signal, "SIGKILL", `${at}: ${r.err}`);
      const entries = await listBackups(dir);
      const temps = (await listTempFiles(dir)).map((t) => t.name);
      const names = readdirSync(dir);
      // Nothing but backups, their manifests and recognisable temp files.
      for (const n of names)
        assert.ok(
          temps.includes(n) || entries.some((e) => e.name === n || `${e.name}.json` === n),
          `${at}: stray file ${n}`,
        );
      if (k >= published) {
        assert.equal(entries.length, 1, at);
        assert.ok(entries[0].hasManifest, at);
        const v = await verifyBackup(entries[0].file);
        assert.equal(v.manifest.rowCounts["public.t"], ROWS, at);
        continue;
      }
      for (const e of entries) {
        assert.equal(e.hasManifest, false, `${at}: ${e.name} listed with a manifest`);
        const err = await verifyBackup(e.file).then(
          () => assert.fail(`${at}: ${e.name} verified without a manifest`),
          (x: Error) => x,
        );
        assert.ok(
          err instanceof CheckFailedError && /manifest .* is missing/.test(err.message),
          `${at}: ${err.message}`,
        );
      }
      assert.equal(entries.length, k >= linked ? 1 : 0, `${at}: ${entries.map((e) => e.name).join(", ")}`);
      // Restore refuses what verify refuses, and touches nothing.
      const target = entries[0]?.file ?? (temps[0] && !triedRestoreOfTemp ? join(dir, temps[0]) : undefined);
      if (target && (entries[0] ? !triedRestoreOfNamed : !triedRestoreOfTemp)) {
        if (entries[0]) triedRestoreOfNamed = true;
        else triedRestoreOfTemp = true;
        const dbs = await databases();
        const rr = cli(["backup", "restore", target, "--yes"]);
        assert.notEqual(rr.code, 0, `${at}: restore of ${target} succeeded:\n${rr.out}`);
        assert.ok(rr.code === 1 || rr.code === 2, `${at}: exit ${rr.code}: ${rr.err}`);
        assert.equal(await rowsOfApp(), ROWS);
        assert.deepEqual(await databases(), dbs, "no database created or renamed");
      }
    }
    assert.ok(triedRestoreOfNamed && triedRestoreOfTemp, "restore was tried on a named file and a temp file");

    // What a crash leaves never stops the next backup in the same directory.
    const dir = join(root, `k${Math.floor(points.length / 2)}`);
    const again = create(dir, "");
    assert.equal(again.code, 0, again.err);
    const good = (await listBackups(dir)).filter((e) => e.hasManifest);
    assert.equal(good.length, 1);
    await verifyBackup(good[0].file);
  },
);
