import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, verifyBackup } from "../../../src/core/backup";
import { CannotRunError, CheckFailedError, ConfigError } from "../../../src/core/errors";

let pg: TestPostgres;
let dir: string;
let good: string;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("app");
  await pg.query(
    "CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g",
    [],
    "app",
  );
  dir = mkdtempSync(join(tmpdir(), "sd-bk-f-"));
  good = (await createBackup({ databaseUrl: pg.url("app"), dir: join(dir, "good"), label: "manual" })).file;
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const noFiles = (d: string) =>
  assert.deepEqual(existsSync(d) ? readdirSync(d) : [], [], `nothing left in ${d}`);
const copy = (name: string) => {
  const f = join(dir, name);
  writeFileSync(f, readFileSync(good));
  writeFileSync(f + ".json", readFileSync(good + ".json"));
  return f;
};

test("unreachable database: CannotRunError (exit 3), no file", async () => {
  const d = join(dir, "unreachable");
  await assert.rejects(
    createBackup({ databaseUrl: `postgres://tester:x@127.0.0.1:1/app`, dir: d }),
    (e: Error) => {
      assert.ok(e instanceof CannotRunError);
      assert.match(e.message, /cannot reach database "app" on 127\.0\.0\.1:1/);
      return true;
    },
  );
  noFiles(d);
});

test("wrong password: says so, never echoes it, exit 3, no file", async () => {
  const d = join(dir, "badpw");
  const url = `postgres://${pg.user}:Sup3rSecretWrong@127.0.0.1:${pg.port}/app`;
  await assert.rejects(createBackup({ databaseUrl: url, dir: d }), (e: Error) => {
    assert.ok(e instanceof CannotRunError);
    assert.match(e.message, /password authentication failed/);
    assert.ok(!e.message.includes("Sup3rSecretWrong"));
    return true;
  });
  noFiles(d);
});

test("a role that may not read a table: names the table and the grant, not pg_dump's lost snapshot; no file", async () => {
  await pg.query("CREATE ROLE reader LOGIN PASSWORD 'Reader-pw-1'; GRANT CONNECT ON DATABASE app TO reader");
  const d = join(dir, "denied");
  const url = `postgres://reader:Reader-pw-1@127.0.0.1:${pg.port}/app`;
  await assert.rejects(createBackup({ databaseUrl: url, dir: d }), (e: Error) => {
    assert.ok(e instanceof CannotRunError, String(e));
    assert.match(
      e.message,
      /role "reader" may not read table "\w+" of database "app".*GRANT SELECT ON ALL TABLES/,
    );
    assert.doesNotMatch(e.message, /snapshot/);
    assert.ok(!e.message.includes("Reader-pw-1"));
    return true;
  });
  noFiles(d);
});

test("a second backup of the same database while one runs fails clearly", async () => {
  const holder = new Client({ connectionString: pg.url("app") });
  await holder.connect();
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext('safe-deploy:backup:app'))");
    const d = join(dir, "busy");
    await assert.rejects(
      createBackup({ databaseUrl: pg.url("app"), dir: d }),
      /another backup of database "app" is running/,
    );
    noFiles(d);
  } finally {
    await holder.end();
  }
  // Two real backups at once: one wins, the other fails with the clear message or both succeed in turn.
  const d2 = join(dir, "race");
  const rs = await Promise.allSettled([
    createBackup({ databaseUrl: pg.url("app"), dir: d2, label: "manual" }),
    createBackup({ databaseUrl: pg.url("app"), dir: d2, label: "pre-deploy" }),
  ]);
  for (const r of rs) {
    if (r.status === "rejected")
      assert.match(String(r.reason.message), /another backup of database "app" is running/);
  }
  assert.ok(rs.some((r) => r.status === "fulfilled"));
});

test("the server kills the dump half-way: no half-written file", async () => {
  await pg.createDatabase("big");
  await pg.query(
    "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS s FROM generate_series(1, 600000) g",
    [],
    "big",
  );
  const d = join(dir, "killed");
  const p = createBackup({ databaseUrl: pg.url("big"), dir: d, compression: "none" });
  let killed = 0;
  for (let i = 0; i < 2000 && !killed; i++) {
    const rows = await pg.query<{ n: string }>(
      "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = 'big' AND query LIKE 'COPY %'",
    );
    killed = Number(rows[0].n);
    if (!killed) await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(killed > 0, "caught the dump's COPY");
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof CannotRunError);
    assert.match(e.message, /pg_dump/);
    return true;
  });
  noFiles(d);
});

test("a full disk: clear message, exit 3, no half-written file", async (t) => {
  const mnt = join(dir, "tiny");
  mkdirSync(mnt);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt]);
  } catch (e) {
    t.skip(`cannot mount a tmpfs here (${(e as Error).message.split("\n")[0]})`);
    return;
  }
  try {
    await assert.rejects(
      createBackup({ databaseUrl: pg.url("big"), dir: mnt, compression: "none" }),
      (e: Error) => {
        assert.ok(e instanceof CannotRunError);
        assert.match(e.message, /no space left in .*tiny/);
        return true;
      },
    );
    noFiles(mnt);
  } finally {
    execFileSync("umount", [mnt]);
  }
});

test("one flipped byte: checksum mismatch, exit 1", async () => {
  const f = copy("flipped.pgdump.zst");
  const b = readFileSync(f);
  b[Math.floor(b.length / 2)] ^= 0x01;
  writeFileSync(f, b);
  await assert.rejects(verifyBackup(f), (e: Error) => {
    assert.ok(e instanceof CheckFailedError);
    assert.match(e.message, /sha256 .* does not match the manifest/);
    return true;
  });
});

test("a flipped byte the manifest agrees with is still caught by reading the archive", async () => {
  const f = copy("flipped2.pgdump.zst");
  const b = readFileSync(f);
  b[Math.floor(b.length / 2)] ^= 0x40;
  writeFileSync(f, b);
  const m = JSON.parse(readFileSync(f + ".json", "utf8"));
  m.sha256 = (await import("node:crypto")).createHash("sha256").update(b).digest("hex");
  writeFileSync(f + ".json", JSON.stringify(m));
  await assert.rejects(verifyBackup(f), CheckFailedError);
});

test("a good backup read without a working pg_restore: says the tools are missing, never that the file is corrupt", async () => {
  const saved = process.env.PG_BIN;
  process.env.PG_BIN = join(dir, "no-such-bin");
  try {
    await assert.rejects(verifyBackup(good), (e: Error) => {
      assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, /PG_BIN/);
      assert.doesNotMatch(e.message, /decompress|corrupt|not a readable/);
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env.PG_BIN;
    else process.env.PG_BIN = saved;
  }
  // The same file with the tools back: fine.
  await verifyBackup(good);
});

for (const compression of ["zstd", "gzip", "none"] as const) {
  test(`${compression}: a pg_restore that succeeds before reading the archive's last bytes: verified, not called undecompressable`, async () => {
    // Real pg_restore may exit 0 before the feed has written the archive's trailing bytes; a stand-in
    // that reads a little and succeeds makes that broken pipe (or premature close) certain.
    const db = `wide_${compression}`;
    await pg.createDatabase(db);
    await pg.query(
      "CREATE TABLE w AS SELECT g, md5(g::text) || md5((g * 7)::text) AS s FROM generate_series(1, 100000) g",
      [],
      db,
    );
    const wide = (
      await createBackup({ databaseUrl: pg.url(db), dir: join(dir, db), label: "manual", compression })
    ).file;
    const bin = join(dir, `early-exit-bin-${compression}`);
    mkdirSync(bin);
    writeFileSync(join(bin, "pg_restore"), "#!/bin/sh\nhead -c 4096 >/dev/null\nexit 0\n", { mode: 0o755 });
    const saved = process.env.PG_BIN;
    process.env.PG_BIN = bin;
    try {
      const v = await verifyBackup(wide);
      assert.equal(v.manifest.rowCounts["public.w"], 100000);
    } finally {
      if (saved === undefined) delete process.env.PG_BIN;
      else process.env.PG_BIN = saved;
    }
  });
}

test("a truncated file: size mismatch, exit 1", async () => {
  const f = copy("trunc.pgdump.zst");
  truncateSync(f, 100);
  await assert.rejects(verifyBackup(f), /truncated or damaged/);
});

test("a file that is not a backup, with a manifest that matches it: not a readable archive", async () => {
  const f = join(dir, "notabackup.pgdump");
  const data = Buffer.from("hello, I am a text file\n".repeat(50));
  writeFileSync(f, data);
  const sha = (await import("node:crypto")).createHash("sha256").update(data).digest("hex");
  const m = {
    ...JSON.parse(readFileSync(good + ".json", "utf8")),
    sha256: sha,
    sizeBytes: data.length,
    compression: "none",
  };
  writeFileSync(f + ".json", JSON.stringify(m));
  await assert.rejects(verifyBackup(f), (e: Error) => {
    assert.ok(e instanceof CheckFailedError);
    assert.match(e.message, /not a readable pg_dump archive/);
    return true;
  });
});

test("a missing manifest: exit 1, says which file; a missing file: exit 2", async () => {
  const f = join(dir, "lonely.pgdump.zst");
  writeFileSync(f, readFileSync(good));
  await assert.rejects(verifyBackup(f), (e: Error) => {
    assert.ok(e instanceof CheckFailedError);
    assert.match(e.message, /lonely\.pgdump\.zst\.json is missing/);
    return true;
  });
  await assert.rejects(verifyBackup(join(dir, "nope")), ConfigError);
});

test("the good backup verifies", async () => {
  const r = await verifyBackup(good);
  assert.equal(r.manifest.rowCounts["public.t"], 2000);
});

test("two backups of one label in the same second: the second gets its own name, the first is untouched", async () => {
  const d = join(dir, "same-second");
  const now = new Date("2026-11-23T03:45:00Z");
  const a = await createBackup({ databaseUrl: pg.url("app"), dir: d, label: "safety", now });
  const before = readFileSync(a.file);
  const b = await createBackup({ databaseUrl: pg.url("app"), dir: d, label: "safety", now });
  const c = await createBackup({ databaseUrl: pg.url("app"), dir: d, now });
  const d2 = await createBackup({ databaseUrl: pg.url("app"), dir: d, now });
  assert.match(a.file, /backup_20261123_034500_safety\.pgdump\.zst$/);
  assert.match(b.file, /backup_20261123_034500_safety-2\.pgdump\.zst$/);
  assert.match(c.file, /backup_20261123_034500\.pgdump\.zst$/);
  assert.match(d2.file, /backup_20261123_034500_2\.pgdump\.zst$/);
  assert.deepEqual(readFileSync(a.file), before);
  assert.equal((await verifyBackup(b.file)).file, b.file); // throws when it does not verify
  assert.equal(JSON.parse(readFileSync(b.file + ".json", "utf8")).file, b.file.split("/").pop());
});

test("a dump that fails while the backup's snapshot session waits: the error comes at once, no session is left", async () => {
  // The row counts now come from the dump stream (issue 18), so no count runs beside a dump of these
  // tables; the snapshot session that pg_dump joined must still end with the failed dump, not hold on.
  await pg.createDatabase("slow");
  await pg.query("CREATE TABLE a (x int); CREATE TABLE z (x int); INSERT INTO z VALUES (1)", [], "slow");
  const holder = new Client({ connectionString: pg.url("slow") });
  await holder.connect();
  try {
    await holder.query("BEGIN; LOCK TABLE z IN ACCESS EXCLUSIVE MODE");
    const d = join(dir, "slow");
    const p = createBackup({ databaseUrl: pg.url("slow"), dir: d });
    const waiting = async (like: string) => {
      for (let i = 0; i < 4000; i++) {
        const rows = await pg.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE datname = 'slow' AND wait_event_type = 'Lock' AND query LIKE $1",
          [like],
        );
        if (rows.length) return rows[0].pid;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`nothing waited on the lock with a query like ${like}`);
    };
    await pg.query("SELECT pg_terminate_backend($1)", [await waiting("LOCK TABLE%")]);
    // No guard needed beyond the file's timeout: while the test holds the lock, a backup that waits
    // for its session never settles.
    await assert.rejects(p, (e: Error) => {
      assert.ok(e instanceof CannotRunError);
      assert.match(e.message, /pg_dump/);
      return true;
    });
    noFiles(d);
    const left = await pg.query(
      "SELECT pid FROM pg_stat_activity WHERE datname = 'slow' AND pid <> pg_backend_pid() AND pid <> $1",
      [(await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid],
    );
    assert.deepEqual(left, [], "the backup's sessions ended");
  } finally {
    await holder.end();
  }
});
