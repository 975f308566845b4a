import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkChecksum,
  neededRoles,
  readManifest,
  rowCountDifferences,
  verifyBackup,
} from "../../../src/core/backup/verify";
import type { Manifest } from "../../../src/core/backup/manifest";

// Issue 22: verify.ts's checks in the test process, without a server: the manifest's shape, the
// checksum and size, the row-count comparison, the roles a restore needs, and how a pg_restore's
// failure is told (a stand-in pg_restore under PG_BIN prints what a real one does and exits with its
// code; the archive itself goes through the real zstd).
let dir: string;
let bin: string;
const savedPgBin = process.env.PG_BIN;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "sd-verify-"));
  bin = join(dir, "bin");
  mkdirSync(bin);
  // Reads its input (unless told not to), says STANDIN_ERR on stderr, exits with STANDIN_CODE.
  writeFileSync(
    join(bin, "pg_restore"),
    '#!/bin/sh\n[ -n "$STANDIN_NOREAD" ] || cat > /dev/null\nprintf "%s" "$STANDIN_ERR" >&2\nexit "${STANDIN_CODE:-0}"\n',
  );
  chmodSync(join(bin, "pg_restore"), 0o755);
});
after(() => {
  if (savedPgBin === undefined) delete process.env.PG_BIN;
  else process.env.PG_BIN = savedPgBin;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Writes a backup file and its manifest (matching it unless told otherwise). */
function backup(name: string, bytes: Buffer, m: Partial<Manifest> = {}): { file: string; m: Manifest } {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  const manifest = {
    version: 2,
    file: name,
    sha256: sha(bytes),
    sizeBytes: bytes.length,
    compression: "none",
    rowCounts: { "public.t": 1 },
    ...m,
  } as Manifest;
  writeFileSync(`${file}.json`, JSON.stringify(manifest));
  return { file, m: manifest };
}

const fails = (code: number, pattern: RegExp) => (e: Error & { exitCode?: number }) => {
  assert.equal(e.exitCode, code, e.message);
  assert.match(e.message, pattern);
  return true;
};

test("readManifest: a missing, unparsable or foreign manifest is a failed check that names it; a good one is returned", async () => {
  const file = join(dir, "backup_20260101_000000.pgdump");
  writeFileSync(file, "x");
  await assert.rejects(
    readManifest(file),
    fails(
      1,
      /^backup_20260101_000000\.pgdump: its manifest backup_20260101_000000\.pgdump\.json is missing, so the checksum cannot be checked; this is not a complete safe-deploy backup$/,
    ),
  );
  writeFileSync(`${file}.json`, "{ not json");
  await assert.rejects(
    readManifest(file),
    fails(1, /^backup_20260101_000000\.pgdump\.json is not valid JSON$/),
  );
  const good = { version: 2, sha256: "ab", compression: "zstd", rowCounts: {} };
  for (const bad of [
    { ...good, version: 3 },
    { ...good, version: undefined },
    { ...good, sha256: 5 },
    { ...good, compression: undefined },
    { ...good, rowCounts: undefined },
    null,
    [],
  ]) {
    writeFileSync(`${file}.json`, JSON.stringify(bad));
    await assert.rejects(
      readManifest(file),
      fails(1, /^backup_20260101_000000\.pgdump\.json is not a safe-deploy backup manifest$/),
      JSON.stringify(bad),
    );
  }
  for (const ok of [good, { ...good, version: 1 }]) {
    writeFileSync(`${file}.json`, JSON.stringify(ok));
    assert.deepEqual(await readManifest(file), ok);
  }
});

test("checkChecksum: a truncated file and a changed byte are each told, a matching one passes", async () => {
  const bytes = randomBytes(100_000);
  const { file, m } = backup("backup_20260101_000001.pgdump", bytes);
  await checkChecksum(file, m);
  await assert.rejects(
    checkChecksum(file, { ...m, sizeBytes: m.sizeBytes + 1 }),
    fails(
      1,
      /^backup_20260101_000001\.pgdump is 100000 bytes but its manifest says 100001: the file is truncated or damaged$/,
    ),
  );
  const other = sha(Buffer.from("other"));
  await assert.rejects(
    checkChecksum(file, { ...m, sha256: other }),
    fails(
      1,
      new RegExp(
        `^backup_20260101_000001\\.pgdump: sha256 ${m.sha256} does not match the manifest's ${other}: corrupt$`,
      ),
    ),
  );
});

test("rowCountDifferences: one line per table that differs, sorted, a missing table named", () => {
  assert.deepEqual(rowCountDifferences({ a: 1, b: 2 }, { a: 1, b: 2 }), []);
  assert.deepEqual(rowCountDifferences({}, {}), []);
  assert.deepEqual(
    rowCountDifferences({ "s.b": 2, "s.a": 1, "s.c": 0 }, { "s.c": 0, "s.a": 1, "s.d": 0, "s.b": 3 }),
    ["s.b: backup had 2, restore has 3", "s.d: backup had no table, restore has 0"],
  );
  assert.deepEqual(rowCountDifferences({ "s.z": 5, "s.a": 0 }, {}), [
    "s.a: backup had 0, restore has no table",
    "s.z: backup had 5, restore has no table",
  ]);
});

test("neededRoles: owners and every role a GRANT or REVOKE names, quoted ones unquoted, PUBLIC and '-' left out", () => {
  const script = [
    "-- Name: t; Type: TABLE; Schema: public; Owner: app",
    "-- Name: v; Type: VIEW; Schema: public; Owner: -",
    "-- Name: w; Type: VIEW; Schema: public; Owner:  ",
    '-- Name: u; Type: TABLE; Schema: shop; Owner: "Odd ""Role"""',
    "-- Name: x; Type: TABLE; Schema: shop; Owner: reporting ",
    "GRANT SELECT ON TABLE public.t TO reader;",
    'GRANT ALL ON TABLE public.t TO "Data Team", PUBLIC, auditor WITH GRANT OPTION;',
    "REVOKE ALL ON SCHEMA public FROM PUBLIC;",
    "REVOKE SELECT ON TABLE public.t FROM old_role;",
    "GRANT SELECT ON TABLE public.t TO reader; -- not a statement line",
    "  GRANT SELECT ON TABLE public.t TO indented;",
    "-- Name: t; Type: TABLE; Owner: nowhere",
  ].join("\n");
  assert.deepEqual(neededRoles(script), [
    '"Odd ""Role"""',
    "Data Team",
    "app",
    "auditor",
    "old_role",
    "reader",
    "reporting",
  ]);
  assert.deepEqual(neededRoles(""), []);
});

test("verifyBackup: a missing file or a directory is a usage error (exit 2); --restore-test without a server says which flag", async () => {
  await assert.rejects(
    verifyBackup(join(dir, "backup_20260101_000009.pgdump")),
    fails(2, /^backup file .*backup_20260101_000009\.pgdump does not exist \(check the FILE argument\)$/),
  );
  mkdirSync(join(dir, "backup_20260101_000010.pgdump"));
  await assert.rejects(verifyBackup(join(dir, "backup_20260101_000010.pgdump")), fails(2, /does not exist/));
  const { file, m } = backup("backup_20260101_000002.pgdump", Buffer.from("archive"));
  assert.deepEqual(await verifyBackup(file, { readArchive: false }), { file, manifest: m });
  await assert.rejects(
    verifyBackup(file, { readArchive: false, restoreTest: true }),
    fails(2, /^`--restore-test` needs a server: pass `--database-url` or set DATABASE_URL$/),
  );
  // The checksum is checked before anything else runs: a changed file never reaches pg_restore.
  writeFileSync(file, "archivX");
  process.env.PG_BIN = join(dir, "no-bin");
  await assert.rejects(verifyBackup(file), fails(1, /does not match the manifest's/));
});

/** Runs verifyBackup (reading the archive) with the stand-in pg_restore set up as told. */
async function verifyWith(
  file: string,
  standin: { code?: number; err?: string; noRead?: boolean },
  steps?: string[],
) {
  process.env.PG_BIN = bin;
  process.env.STANDIN_CODE = String(standin.code ?? 0);
  process.env.STANDIN_ERR = standin.err ?? "";
  if (standin.noRead) process.env.STANDIN_NOREAD = "1";
  else delete process.env.STANDIN_NOREAD;
  try {
    return await verifyBackup(file, steps ? { onStep: (s) => steps.push(s) } : {});
  } finally {
    delete process.env.STANDIN_CODE;
    delete process.env.STANDIN_ERR;
    delete process.env.STANDIN_NOREAD;
  }
}

test("reading the archive: pg_restore's failures are told apart (cannot run, missing role, not an archive, damaged compression)", async () => {
  const plain = backup("backup_20260101_000003.pgdump", randomBytes(300_000));
  const steps: string[] = [];
  const ok = await verifyWith(plain.file, {}, steps);
  assert.equal(ok.manifest.sha256, plain.m.sha256);
  assert.deepEqual(steps, ["reading every block of the archive (300000 bytes)"]);
  // pg_restore that stops reading and succeeds: the broken pipe is no damage of the file.
  await verifyWith(plain.file, { noRead: true });

  await assert.rejects(
    verifyWith(plain.file, {
      code: 1,
      err: "pg_restore: error: could not connect to server: No such file\n",
    }),
    fails(3, /^reading the archive: cannot reach /),
  );
  await assert.rejects(
    verifyWith(plain.file, { code: 127 }),
    fails(3, /^reading the archive failed: pg_restore exited with 127$/),
  );
  await assert.rejects(
    verifyWith(plain.file, {
      code: 1,
      err: 'pg_restore: error: could not execute query: ERROR:  role "app ""x""" does not exist\nCommand was: ALTER TABLE\n',
    }),
    fails(
      3,
      /^reading the archive: role "app ""x""" owns objects in backup_20260101_000003\.pgdump but does not exist on this server \(roles live outside a database's backup\): create it, e\.g\. `CREATE ROLE "app ""x""" LOGIN PASSWORD '\.\.\.'`, and run the restore again$/,
    ),
  );
  for (const err of [
    "pg_restore: error: input file does not appear to be a valid archive\nsecond line",
    "pg_restore: error: could not read input file: end of file",
    "pg_restore: error: could not read from input file: end of file",
    "pg_restore: error: input file is too short (read 3, expected 5)",
    "pg_restore: error: did not find magic string in file header",
    "pg_restore: error: unexpected end of file",
    "pg_restore: error: corrupt TOC",
  ]) {
    await assert.rejects(
      verifyWith(plain.file, { code: 1, err }),
      fails(
        1,
        new RegExp(
          `^backup_20260101_000003\\.pgdump is not a readable pg_dump archive: ${err.split("\n")[0].replace(/[()]/g, "\\$&")}$`,
        ),
      ),
    );
  }
  await assert.rejects(
    verifyWith(plain.file, { code: 1, err: "pg_restore: error: something else\n" }),
    fails(3, /^reading the archive failed: pg_restore: error: something else$/),
  );

  // A zstd backup whose frame is damaged (its manifest agreeing): zstd's failure is the one told,
  // whether pg_restore then succeeds or complains about its input; unless pg_restore could not run.
  const z = execFileSync("zstd", ["-q", "-c"], { input: randomBytes(300_000) });
  z[z.length >> 1] ^= 0xff;
  const damaged = backup("backup_20260101_000004.pgdump.zst", z, { compression: "zstd" });
  for (const standin of [{}, { code: 1, err: "pg_restore: error: could not read input file: end of file" }]) {
    await assert.rejects(
      verifyWith(damaged.file, standin),
      fails(1, /^backup_20260101_000004\.pgdump\.zst cannot be decompressed: zstd failed: \S/),
    );
  }
  await assert.rejects(
    verifyWith(damaged.file, { code: 1, err: "pg_restore: error: connection to server on socket failed" }),
    fails(3, /^reading the archive failed: pg_restore: error: connection to server on socket failed$/),
  );
  // A good zstd backup that pg_restore stops reading early and succeeds on: verified.
  const good = backup(
    "backup_20260101_000005.pgdump.zst",
    execFileSync("zstd", ["-q", "-c"], { input: randomBytes(2_000_000), maxBuffer: 1 << 24 }),
    { compression: "zstd" },
  );
  await verifyWith(good.file, { noRead: true });
  await verifyWith(good.file, {});
});
