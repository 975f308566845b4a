// What makes a backup one to rely on (issue 22, mutation testing of src/core/backup/create.ts): the
// manifest's every field, the file's checksum and size, the data synced before the name appears and
// the directory after, no temp file on any path, the names of backups taken in one second, and the
// failures that must leave no file. One server (wal_level=logical, for the change stream), in process;
// the file layer is observed by wrapping node:fs/promises, which create.ts calls through.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { withEnv } from "../../helpers/env";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, toolMajor } from "../../../src/core/backup/create";
import { CannotRunError, ConfigError } from "../../../src/core/errors";

const fsp = require("node:fs/promises") as typeof import("node:fs/promises");

let pg: TestPostgres;
let dir: string;
const NOW = new Date("2026-11-23T03:45:00.123Z");

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  await pg.createDatabase("shop");
  await pg.query(
    `CREATE TABLE items (id int PRIMARY KEY, name text);
     INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 50) g;
     CREATE TABLE ev (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
     CREATE TABLE ev_a PARTITION OF ev FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
     CREATE TABLE ev_b PARTITION OF ev FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
     INSERT INTO ev VALUES (1, '2020-05-01'), (2, '2020-06-01'), (3, '2021-02-01');`,
    [],
    "shop",
  );
  dir = mkdtempSync(join(tmpdir(), "sd-create-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
/** Names in `d` that are not finished backups or their manifests (temp files). */
const leftovers = (d: string) => readdirSync(d).filter((n) => n.startsWith("."));

/** Runs `f` with PG_BIN set to `bin`. */
const withPgBin = <T>(bin: string, f: () => Promise<T>) => withEnv({ PG_BIN: bin }, f);

/** An errno error as node's fs raises it (`EIO: i/o error, write`). */
const TEXTS = { EIO: "i/o error", ENOSPC: "no space left on device", EPERM: "operation not permitted" };
const fsError = (code: keyof typeof TEXTS, op: string) =>
  Object.assign(new Error(`${code}: ${TEXTS[code]}, ${op}`), { code });

/** Fails every write to a temp file (the dump or its manifest before their rename) with `code`. */
const failTempWrites = (code: "EIO" | "ENOSPC") => (op: string, path: string) =>
  op === "write" && path.includes(".tmp-") ? fsError(code, "write") : undefined;

/** A PG_BIN whose pg_dump is `script` (psql and pg_restore the real ones). */
function fakeBin(name: string, script: string): string {
  const bin = join(dir, name);
  mkdirSync(bin);
  for (const t of ["psql", "pg_restore"]) symlinkSync(join(PG_BIN, t), join(bin, t));
  writeFileSync(join(bin, "pg_dump"), `#!/bin/sh\n${script}\n`);
  chmodSync(join(bin, "pg_dump"), 0o755);
  return bin;
}

type FsCall = { op: string; path: string };

/**
 * Records the file calls create.ts makes (open, sync, link, rename, unlink), with the path each
 * handle was opened on; `fail(op, path)` may return an error to throw instead (a fault injected).
 */
async function recordingFs<T>(
  f: () => Promise<T>,
  fail: (op: string, path: string) => NodeJS.ErrnoException | undefined = () => undefined,
): Promise<{ result?: T; error?: Error; calls: FsCall[] }> {
  const calls: FsCall[] = [];
  const probe = await fsp.open(__filename, "r");
  const proto = Object.getPrototypeOf(probe) as Record<string, unknown>;
  await probe.close();
  const paths = new WeakMap<object, string>();
  const saved = {
    open: fsp.open,
    link: fsp.link,
    rename: fsp.rename,
    unlink: fsp.unlink,
    sync: proto.sync,
    write: proto.write,
    writeFile: proto.writeFile,
  };
  const m = fsp as unknown as Record<string, unknown>;
  const wrap =
    (op: string, orig: (...a: never[]) => Promise<unknown>) =>
    async (...a: never[]) => {
      const path = String(a[1] ?? a[0]);
      calls.push({ op, path });
      const e = fail(op, path);
      if (e) throw e;
      return orig(...a);
    };
  m.open = async (...a: Parameters<typeof fsp.open>) => {
    const fh = await saved.open(...a);
    paths.set(fh, String(a[0]));
    calls.push({ op: "open", path: String(a[0]) });
    return fh;
  };
  m.link = wrap("link", saved.link as never);
  m.rename = wrap("rename", saved.rename as never);
  m.unlink = wrap("unlink", saved.unlink as never);
  for (const op of ["sync", "write", "writeFile"] as const) {
    const orig = saved[op] as (...a: unknown[]) => Promise<unknown>;
    proto[op] = async function (this: object, ...a: unknown[]) {
      const path = paths.get(this) ?? "?";
      if (op === "sync") calls.push({ op, path });
      const e = fail(op, path);
      if (e) throw e;
      return orig.apply(this, a);
    };
  }
  try {
    return { result: await f(), calls };
  } catch (e) {
    return { error: e as Error, calls };
  } finally {
    Object.assign(m, { open: saved.open, link: saved.link, rename: saved.rename, unlink: saved.unlink });
    Object.assign(proto, { sync: saved.sync, write: saved.write, writeFile: saved.writeFile });
  }
}

test("toolMajor reads the major version of a pg_dump version line", () => {
  assert.equal(toolMajor("pg_dump (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)"), 15);
  assert.equal(toolMajor("pg_dump (PostgreSQL) 9.6.24"), 9);
  assert.equal(toolMajor("pg_dump (PostgreSQL) 17devel"), 17);
  assert.ok(Number.isNaN(toolMajor("pg_dump 15.8")));
});

test("a backup's manifest describes exactly its file and the database at the snapshot; both 0600 in a 0700 directory", async () => {
  const d = join(dir, "plain");
  mkdirSync(d, { mode: 0o755 });
  chmodSync(d, 0o755);
  const progress: number[] = [];
  const r = await createBackup({
    databaseUrl: pg.url("shop"),
    dir: d,
    label: "manual",
    compression: "gzip",
    now: NOW,
    onProgress: (b) => progress.push(b),
  });
  assert.equal(statSync(d).mode & 0o777, 0o700, "an existing directory is closed to others");
  assert.equal(r.file, join(d, "backup_20261123_034500_manual.pgdump.gz"));
  assert.equal(r.manifestFile, `${r.file}.json`);
  assert.equal(statSync(r.file).mode & 0o777, 0o600);
  assert.equal(statSync(r.manifestFile).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(readFileSync(r.manifestFile, "utf8")), r.manifest);
  assert.ok(readFileSync(r.manifestFile, "utf8").endsWith("}\n"));
  const m = r.manifest;
  const ver = await pg.query<{ n: string; v: string }>(
    "SELECT current_setting('server_version_num') AS n, current_setting('server_version') AS v",
  );
  assert.equal(m.version, 2);
  assert.equal(m.file, "backup_20261123_034500_manual.pgdump.gz");
  assert.equal(m.sha256, sha256(r.file));
  assert.equal(m.sizeBytes, statSync(r.file).size);
  assert.ok(m.archiveBytes! > m.sizeBytes / 4, "the archive's own size, before compression");
  assert.equal(progress.at(-1), m.archiveBytes, "progress counts every byte pg_dump wrote");
  assert.ok(progress.every((b, i) => i === 0 || b > progress[i - 1]));
  assert.deepEqual(Object.keys(m.tableBytes ?? {}).sort(), ["public.ev_a", "public.ev_b", "public.items"]);
  assert.equal(m.createdAt, "2026-11-23T03:45:00.123Z");
  assert.equal(m.database, "shop");
  assert.equal(m.serverVersion, ver[0].v);
  assert.equal(m.serverVersionNum, Number(ver[0].n));
  assert.match(m.pgDumpVersion, /^pg_dump \(PostgreSQL\) 15\.\d+[^\n]*\S$/);
  assert.equal(m.format, "custom");
  assert.equal(m.compression, "gzip");
  assert.equal(m.label, "manual");
  assert.deepEqual(m.rowCounts, { "public.ev": 3, "public.ev_a": 2, "public.ev_b": 1, "public.items": 50 });
  assert.deepEqual(Object.keys(m.tableChecksums ?? {}).sort(), [
    "public.ev_a",
    "public.ev_b",
    "public.items",
  ]);
  assert.equal(m.encoding, "UTF8");
  assert.equal(m.byteaOutput, undefined);
  assert.equal(m.changes, undefined);
  assert.equal(r.changesSkipped, undefined);
  assert.deepEqual(leftovers(d), []);
  const sessions = await pg.query(
    "SELECT 1 FROM pg_stat_activity WHERE datname = 'shop' AND backend_type = 'client backend'",
  );
  assert.deepEqual(sessions, [], "the snapshot session ended");
});

test("a backup directory that does not exist yet is made, parents too, closed to others", async () => {
  const d = join(dir, "new", "nested");
  const r = await createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW });
  assert.equal(statSync(d).mode & 0o777, 0o700);
  assert.equal(r.file, join(d, "backup_20261123_034500.pgdump.zst"));
});

test("a backup that cannot start (another one holds the database) leaves no change stream slot", async () => {
  const { openSnapshot } = await import("../../../src/core/backup/session");
  const { parseDatabaseUrl } = await import("../../../src/core/backup/runner");
  const held = await openSnapshot({ runIn: "local" }, parseDatabaseUrl(pg.url("shop")));
  try {
    await assert.rejects(
      createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "held"), changeSlot: "safe_deploy_held" }),
      /another backup of database "shop" is running right now/,
    );
  } finally {
    await held.close();
  }
  assert.deepEqual(await pg.query("SELECT slot_name FROM pg_replication_slots"), []);
});

test("a role that may not read a table: the error names the table and the grant; no file", async () => {
  await pg.query("CREATE ROLE reader LOGIN PASSWORD 'reader-pw'");
  await pg.query("GRANT SELECT ON items TO reader", [], "shop");
  const url = pg.url("shop").replace(/\/\/[^@]+@/, "//reader:reader-pw@");
  const d = join(dir, "denied");
  await assert.rejects(createBackup({ databaseUrl: url, dir: d }), (e: Error) => {
    assert.ok(e instanceof CannotRunError);
    assert.match(e.message, /role "reader" may not read table "ev(_a)?" of database "shop"/);
    assert.ok(!e.message.includes("reader-pw"));
    return true;
  });
  assert.deepEqual(readdirSync(d), []);
});

test("the data is synced before the file gets its name, the manifest before its rename, the directory after each", async () => {
  const d = join(dir, "synced");
  const { result, calls, error } = await recordingFs(() =>
    createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW }),
  );
  assert.equal(error, undefined);
  const r = result!;
  const seq = calls
    .filter((c) => ["sync", "link", "rename", "unlink"].includes(c.op))
    .map(
      (c) =>
        `${c.op} ${c.path === d ? "DIR" : c.path.startsWith(`${d}/.`) ? (c.path.includes(".json.tmp-") ? "MTMP" : "TMP") : c.path}`,
    );
  assert.deepEqual(seq, [
    "sync TMP",
    `link ${r.file}`,
    "unlink TMP",
    "sync DIR",
    "sync MTMP",
    `rename ${r.manifestFile}`,
    "sync DIR",
  ]);
  assert.ok(!r.manifest.label);
  assert.equal(r.file, join(d, "backup_20261123_034500.pgdump.zst"));
  assert.equal(r.manifest.compression, "zstd");
});

test("the manifest is written under a temp name and renamed: a failed rename leaves no manifest and no backup is taken for good", async () => {
  const d = join(dir, "norename");
  const { error } = await recordingFs(
    () => createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW }),
    (op) => (op === "rename" ? fsError("EIO", "rename") : undefined),
  );
  assert.ok(error, "the create fails");
  const names = readdirSync(d);
  assert.ok(!names.some((n) => n.endsWith(".json")), `no manifest: ${names.join(", ")}`);
});

test("a disk that fills while the backup is written: says so and which flag, no temp file left", async () => {
  const d = join(dir, "full");
  const { error } = await recordingFs(
    () => createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW }),
    failTempWrites("ENOSPC"),
  );
  assert.ok(error instanceof CannotRunError, String(error));
  assert.equal(
    error.message,
    `no space left in ${d} while writing the backup; free space or use another \`--dir\``,
  );
  assert.deepEqual(readdirSync(d), []);
});

test("another write failure names the directory and the cause, and leaves nothing", async () => {
  const d = join(dir, "eio");
  const { error } = await recordingFs(
    () => createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW }),
    failTempWrites("EIO"),
  );
  assert.ok(error instanceof CannotRunError, String(error));
  assert.equal(error.message, `writing the backup to ${d} failed: EIO: i/o error, write`);
  assert.deepEqual(readdirSync(d), []);
});

test("backups in one second: the next free name, -2, -3...; a label cut to fit; after 20 a clear refusal", async () => {
  const d = join(dir, "same");
  const a = await createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW });
  const b = await createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW });
  assert.equal(a.file, join(d, "backup_20261123_034500.pgdump.zst"));
  assert.equal(b.file, join(d, "backup_20261123_034500_2.pgdump.zst"));
  assert.equal(b.manifest.file, "backup_20261123_034500_2.pgdump.zst");
  assert.equal(b.manifest.sha256, sha256(b.file));
  const long = "a".repeat(40);
  await createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW, label: long });
  const c = await createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW, label: long });
  assert.equal(c.file, join(d, `backup_20261123_034500_${"a".repeat(36)}-2.pgdump.zst`));
  assert.equal(c.manifest.label, long);
  for (let n = 3; n <= 20; n++) writeFileSync(join(d, `backup_20261123_034500_${n}.pgdump.zst`), "");
  await assert.rejects(createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW }), (e: Error) => {
    assert.ok(e instanceof CannotRunError);
    assert.equal(
      e.message,
      `${join(d, "backup_20261123_034500_20.pgdump.zst")} already exists; wait a second or use another \`--label\``,
    );
    return true;
  });
  assert.deepEqual(leftovers(d), []);
  const n21 = await createBackup({
    databaseUrl: pg.url("shop"),
    dir: d,
    now: new Date(NOW.getTime() + 1000),
  });
  assert.equal(n21.file, join(d, "backup_20261123_034501.pgdump.zst"));
});

test("a backup directory that cannot be one: ConfigError naming `--dir`; any other failure: CannotRunError naming the directory", async () => {
  const file = join(dir, "a-file");
  writeFileSync(file, "x");
  for (const d of [file, join(file, "sub")]) {
    await assert.rejects(createBackup({ databaseUrl: pg.url("shop"), dir: d }), (e: Error) => {
      assert.ok(e instanceof ConfigError, e.message);
      assert.equal(
        e.message,
        `backup directory ${d} (or a parent) exists and is not a directory: pass another \`--dir\` (\`backup.dir\` in the stack config)`,
      );
      return true;
    });
  }
  const tooLong = join(dir, "x".repeat(300));
  await assert.rejects(createBackup({ databaseUrl: pg.url("shop"), dir: tooLong }), (e: Error) => {
    assert.ok(e instanceof CannotRunError, e.message);
    assert.match(e.message, new RegExp(`^cannot create the backup directory ${tooLong}: ENAMETOOLONG`));
    return true;
  });
});

test("pg_dump missing, older than the server, or failing: each says what to do, and no file is left", async () => {
  const d = join(dir, "tools");
  await withPgBin(join(dir, "no-such-bin"), async () => {
    await assert.rejects(createBackup({ databaseUrl: pg.url("shop"), dir: d }), (e: Error) => {
      assert.ok(e instanceof CannotRunError);
      assert.equal(e.message, "pg_dump not found on this machine; install postgresql-client or set PG_BIN");
      return true;
    });
  });
  const [{ v }] = await pg.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  const old = fakeBin("old", 'echo "pg_dump (PostgreSQL) 14.9"');
  await withPgBin(old, async () => {
    await assert.rejects(createBackup({ databaseUrl: pg.url("shop"), dir: d }), (e: Error) => {
      assert.ok(e instanceof CannotRunError);
      assert.equal(
        e.message,
        `local pg_dump (PostgreSQL) 14.9 is older than the server (PostgreSQL ${v}) and cannot dump it; ` +
          'run pg_dump inside the database container (`runIn: "container"` / `--run-in container --container NAME`) ' +
          "or, for an external database, in a throwaway container of its version (`--run-in container --image postgres:15`), " +
          "or install PostgreSQL 15 client tools",
      );
      return true;
    });
  });
  const failing = fakeBin(
    "failing",
    `case "$1" in --version) exec "${PG_BIN}/pg_dump" --version;; esac\necho "pg_dump: error: something broke" >&2\nexit 1`,
  );
  await withPgBin(failing, async () => {
    await assert.rejects(createBackup({ databaseUrl: pg.url("shop"), dir: d }), (e: Error) => {
      assert.ok(e instanceof CannotRunError);
      assert.equal(e.message, "pg_dump failed: pg_dump: error: something broke");
      return true;
    });
  });
  const silent = fakeBin(
    "silent",
    `case "$1" in --version) exec "${PG_BIN}/pg_dump" --version;; esac\nexit 4`,
  );
  await withPgBin(silent, async () => {
    await assert.rejects(createBackup({ databaseUrl: pg.url("shop"), dir: d }), (e: Error) => {
      assert.ok(e instanceof CannotRunError);
      assert.equal(e.message, "pg_dump failed: pg_dump exited with 4");
      return true;
    });
  });
  assert.deepEqual(readdirSync(d), []);
  const left = await pg.query(
    "SELECT 1 FROM pg_stat_activity WHERE datname = 'shop' AND backend_type = 'client backend'",
  );
  assert.deepEqual(left, [], "no snapshot session left");
  // The backup lock went with the failed backups: a new one runs.
  await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "after-tools") });
});

test("pg_dump run in a container: its version asked there; a container that cannot run it is named", async () => {
  // A stand-in docker CLI that runs the tool here (exec -i -e K... NAME TOOL ARGS), or fails for "gone".
  const bin = join(dir, "dockerbin");
  mkdirSync(bin);
  writeFileSync(
    join(bin, "docker"),
    `#!/bin/sh\ncase " $* " in *" gone "*) echo "Error response from daemon: No such container: gone" >&2; exit 1;; esac\n` +
      `shift; shift\nwhile [ "$1" = "-e" ]; do shift; shift; done\n` +
      `shift\ntool="$1"; shift\nexec "${PG_BIN}/$tool" "$@"\n`,
  );
  chmodSync(join(bin, "docker"), 0o755);
  const savedPath = process.env.PATH;
  process.env.PATH = `${bin}:${savedPath}`;
  try {
    const r = await createBackup({
      databaseUrl: pg.url("shop"),
      dir: join(dir, "container"),
      target: { runIn: "container", container: "db1" },
    });
    assert.match(r.manifest.pgDumpVersion, /^pg_dump \(PostgreSQL\) 15\.[^\n]*\S$/);
    assert.equal(r.manifest.rowCounts["public.items"], 50);
    for (const [target, where] of [
      [
        { runIn: "container" as const, container: "gone", dockerHost: "ssh://u@h" },
        'container "gone" on ssh://u@h',
      ],
      [{ runIn: "container" as const, container: "gone" }, 'container "gone"'],
      [{ runIn: "container" as const, image: "gone" }, 'image "gone"'],
    ] as const) {
      await assert.rejects(
        createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "container"), target }),
        (e: Error) => {
          assert.ok(e instanceof CannotRunError);
          assert.equal(
            e.message,
            `cannot run pg_dump in ${where}: Error response from daemon: No such container: gone`,
          );
          return true;
        },
      );
    }
    await assert.rejects(
      createBackup({
        databaseUrl: pg.url("shop"),
        dir: join(dir, "container"),
        target: { runIn: "container" },
      }),
      (e: Error) => e instanceof ConfigError && /`container` \(or `image`/.test(e.message),
    );
  } finally {
    process.env.PATH = savedPath;
  }
});

test("a release's change stream: the slot is in the manifest; refused, the reason is given, or the create fails when required", async () => {
  const r = await createBackup({
    databaseUrl: pg.url("shop"),
    dir: join(dir, "slot"),
    changeSlot: "safe_deploy_create_edges",
  });
  try {
    assert.equal(r.manifest.changes?.slot, "safe_deploy_create_edges");
    assert.match(r.manifest.changes?.startLsn ?? "", /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.equal(r.changesSkipped, undefined);
  } finally {
    await pg.query("SELECT pg_drop_replication_slot('safe_deploy_create_edges')");
  }
  await pg.query("CREATE TABLE nokey (x int)", [], "shop");
  try {
    const s = await createBackup({
      databaseUrl: pg.url("shop"),
      dir: join(dir, "slot"),
      changeSlot: "safe_deploy_create_edges2",
    });
    assert.match(
      s.changesSkipped ?? "",
      /^creating the change stream slot "safe_deploy_create_edges2" on database "shop": public\.nokey has no primary key or replica identity/,
    );
    assert.ok(!(s.changesSkipped ?? "").includes("\n"));
    assert.equal(s.manifest.changes, undefined);
    const files = readdirSync(join(dir, "slot")).length;
    await assert.rejects(
      createBackup({
        databaseUrl: pg.url("shop"),
        dir: join(dir, "slot"),
        changeSlot: "safe_deploy_create_edges2",
        requireChanges: true,
      }),
      (e: Error) => {
        assert.ok(e instanceof CannotRunError);
        assert.equal(
          e.message,
          `rollback.requireNoLoss: no backup was taken, since a rollback of this deploy could lose writes: ${s.changesSkipped}. ` +
            "Fix that, or set `rollback.requireNoLoss: false` to deploy anyway",
        );
        return true;
      },
    );
    assert.equal(readdirSync(join(dir, "slot")).length, files, "no file added");
  } finally {
    await pg.query("DROP TABLE nokey", [], "shop");
  }
  // A backup that fails after the slot was made leaves no slot (it holds WAL, and nothing could replay it).
  const failing = fakeBin(
    "failing-slot",
    `case "$1" in --version) exec "${PG_BIN}/pg_dump" --version;; esac\necho "pg_dump: error: boom" >&2\nexit 1`,
  );
  await withPgBin(failing, async () => {
    await assert.rejects(
      createBackup({
        databaseUrl: pg.url("shop"),
        dir: join(dir, "slot2"),
        changeSlot: "safe_deploy_create_edges3",
      }),
      /pg_dump failed: pg_dump: error: boom/,
    );
  });
  const slots = await pg.query("SELECT slot_name FROM pg_replication_slots");
  assert.deepEqual(slots, []);
});

test("a database that writes bytea as escape says so in the manifest (its restored copy must dump the same way)", async () => {
  await pg.createDatabase("esc");
  await pg.query(
    "CREATE TABLE b (id int PRIMARY KEY, v bytea); INSERT INTO b VALUES (1, '\\x00ff')",
    [],
    "esc",
  );
  await pg.query("ALTER DATABASE esc SET bytea_output = 'escape'");
  const r = await createBackup({ databaseUrl: pg.url("esc"), dir: join(dir, "esc") });
  assert.equal(r.manifest.byteaOutput, "escape");
  assert.equal(r.manifest.rowCounts["public.b"], 1);
});

test("an archive the stream reader cannot follow: a version 1 manifest, counts and checksums from the server", async () => {
  const bin = fakeBin("z1", `exec "${PG_BIN}/pg_dump" "$@" -Z1`);
  const r = await withPgBin(bin, () => createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "v1") }));
  assert.equal(r.manifest.version, 1);
  assert.equal(r.manifest.encoding, undefined);
  assert.equal(r.manifest.tableBytes, undefined);
  assert.equal(r.manifest.byteaOutput, undefined);
  assert.deepEqual(r.manifest.rowCounts, {
    "public.ev": 3,
    "public.ev_a": 2,
    "public.ev_b": 1,
    "public.items": 50,
  });
  assert.deepEqual(Object.keys(r.manifest.tableChecksums ?? {}).sort(), [
    "public.ev",
    "public.ev_a",
    "public.ev_b",
    "public.items",
  ]);
  assert.equal(r.manifest.sha256, sha256(r.file));
});

test("a write error while pg_dump still runs is reported as the write error, not as the pg_dump this backup stopped", async () => {
  // pg_dump's output is complete, then it lingers (exec: the same process, killed by the backup).
  const bin = fakeBin(
    "lingering",
    `case "$1" in --version) exec "${PG_BIN}/pg_dump" --version;; esac\n"${PG_BIN}/pg_dump" "$@"\nexec sleep 20 >&- 2>&-`,
  );
  const d = join(dir, "eio-running");
  const { error } = await withPgBin(bin, () =>
    recordingFs(() => createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW }), failTempWrites("EIO")),
  );
  assert.ok(error instanceof CannotRunError, String(error));
  assert.equal(error.message, `writing the backup to ${d} failed: EIO: i/o error, write`);
  assert.deepEqual(readdirSync(d), []);
});

test("a link that fails otherwise than on an existing name: that error, no -2 name tried, nothing left", async () => {
  const d = join(dir, "link-eio");
  const { error, calls } = await recordingFs(
    () => createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW }),
    (op) => (op === "link" ? fsError("EIO", "link") : undefined),
  );
  assert.equal(error?.message, "EIO: i/o error, link");
  assert.equal(calls.filter((c) => c.op === "link").length, 1);
  assert.deepEqual(readdirSync(d), []);
});

test("a directory whose filesystem refuses hard links (FAT, exFAT, some shares): named with the fix, exit 2, nothing left", async () => {
  const d = join(dir, "link-eperm");
  const { error } = await recordingFs(
    () => createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW }),
    (op) => (op === "link" ? fsError("EPERM", "link") : undefined),
  );
  assert.ok(error instanceof ConfigError, String(error));
  assert.equal(
    error.message,
    `${d} is on a filesystem that refuses hard links (EPERM): safe-deploy links each finished backup into place, so that it never replaces another file; choose a backup directory on a local Linux filesystem (ext4, xfs, btrfs, tmpfs)`,
  );
  assert.deepEqual(readdirSync(d), []);
});

test("no file handle is left open on the backup directory, its file or its manifest", async () => {
  const d = join(dir, "fds");
  const open = () =>
    readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(d);
      } catch {
        return false;
      }
    });
  await createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW });
  assert.deepEqual(open(), []);
  await recordingFs(
    () => createBackup({ databaseUrl: pg.url("shop"), dir: d, now: NOW }),
    failTempWrites("EIO"),
  );
  assert.deepEqual(open(), []);
});

test("the dump is taken from the snapshot: a write made after it is neither counted nor dumped", async () => {
  // pg_dump starts only after the row that a client inserts here, once the snapshot was exported.
  const bin = fakeBin(
    "late-write",
    `case "$1" in --version) exec "${PG_BIN}/pg_dump" --version;; esac\n` +
      `"${PG_BIN}/psql" -X -q -c "INSERT INTO items VALUES (777, 'late')" >/dev/null\nexec "${PG_BIN}/pg_dump" "$@"`,
  );
  try {
    const r = await withPgBin(bin, () =>
      createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "late") }),
    );
    assert.equal(r.manifest.rowCounts["public.items"], 50);
    const now = await pg.query<{ n: string }>("SELECT count(*) AS n FROM items", [], "shop");
    assert.equal(now[0].n, "51", "the write happened during the backup");
  } finally {
    await pg.query("DELETE FROM items WHERE id = 777", [], "shop");
  }
});

test("the server reads each dumped table once (pg_dump's COPY): the counts come from the stream", async () => {
  // Read once the backup's sessions have ended: a session's statistics are published as it ends.
  const scans = async () => {
    for (let i = 0; ; i++) {
      const [{ n }] = await pg.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'shop' AND pid <> pg_backend_pid()",
        [],
        "shop",
      );
      if (n === "0") break;
      if (i > 1000) throw new Error("sessions on database shop did not end");
      await new Promise((r) => setTimeout(r, 10));
    }
    const rows = await pg.query<{ relname: string; seq_scan: string }>(
      "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname IN ('items', 'ev_a', 'ev_b') ORDER BY 1",
      [],
      "shop",
    );
    return rows.map((r) => Number(r.seq_scan));
  };
  const before = await scans();
  await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "scans") });
  const after = await scans();
  assert.deepEqual(
    after.map((x, i) => x - before[i]),
    [1, 1, 1],
    `${before} -> ${after}`,
  );
});

test("a backup refused by another one's lock, with no change stream asked: the lock's message", async () => {
  const { openSnapshot } = await import("../../../src/core/backup/session");
  const { parseDatabaseUrl } = await import("../../../src/core/backup/runner");
  const held = await openSnapshot({ runIn: "local" }, parseDatabaseUrl(pg.url("shop")));
  try {
    await assert.rejects(
      createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "held2") }),
      /^CannotRunError: another backup of database "shop" is running right now/,
    );
  } finally {
    await held.close();
  }
});

test("a partition the dump holds no rows of (a foreign table): its parent is counted on the server", async () => {
  const csvDir = mkdtempSync(join(tmpdir(), "sd-create-csv-"));
  chmodSync(csvDir, 0o755);
  writeFileSync(join(csvDir, "far.csv"), "100\n101\n");
  chmodSync(join(csvDir, "far.csv"), 0o644);
  await pg.createDatabase("fdw");
  await pg.query(
    `CREATE EXTENSION file_fdw; CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
     CREATE TABLE fp (id int) PARTITION BY RANGE (id);
     CREATE TABLE fp_near PARTITION OF fp FOR VALUES FROM (0) TO (100);
     CREATE FOREIGN TABLE fp_far PARTITION OF fp FOR VALUES FROM (100) TO (200)
       SERVER files OPTIONS (filename '${join(csvDir, "far.csv")}', format 'csv');
     INSERT INTO fp_near VALUES (1), (2), (3);`,
    [],
    "fdw",
  );
  try {
    const r = await createBackup({ databaseUrl: pg.url("fdw"), dir: join(dir, "fdw") });
    assert.deepEqual(r.manifest.rowCounts, { "public.fp": 5, "public.fp_near": 3 });
  } finally {
    rmSync(csvDir, { recursive: true, force: true });
  }
});

test("pg_dump failing because the snapshot's session died: the session's error is the cause; any other pg_dump error is pg_dump's", async () => {
  // The whole archive is written, then the backup's snapshot session is ended from outside, then
  // pg_dump says what it was told to (SD_TEST_DUMP_ERROR) and fails.
  const bin = fakeBin(
    "lost-snapshot",
    `case "$1" in --version) exec "${PG_BIN}/pg_dump" --version;; esac\n` +
      `out=$(mktemp)\n"${PG_BIN}/pg_dump" "$@" > "$out" || exit 9\n` +
      `[ -n "$SD_TEST_KEEP_SESSION" ] || "${PG_BIN}/psql" -X -q -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'safe-deploy-backup' AND pid <> pg_backend_pid()" >/dev/null\n` +
      `cat "$out"; rm -f "$out"\necho "pg_dump: error: $SD_TEST_DUMP_ERROR" >&2\nexit 1`,
  );
  const cases: Array<[string, RegExp, string?]> = [
    ['query failed: ERROR:  invalid snapshot identifier: "0000-1"', /^backup failed: .*terminat/s],
    ["something else broke", /^pg_dump failed: pg_dump: error: something else broke$/],
    // The session is fine: pg_dump's own words stand.
    ["invalid snapshot identifier", /^pg_dump failed: pg_dump: error: invalid snapshot identifier$/, "1"],
  ];
  for (const [said, expected, keep] of cases) {
    process.env.SD_TEST_DUMP_ERROR = said;
    if (keep) process.env.SD_TEST_KEEP_SESSION = keep;
    try {
      await withPgBin(bin, async () => {
        await assert.rejects(
          createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "lost") }),
          (e: Error) => {
            assert.ok(e instanceof CannotRunError, String(e));
            assert.match(e.message, expected);
            return true;
          },
        );
      });
    } finally {
      delete process.env.SD_TEST_DUMP_ERROR;
      delete process.env.SD_TEST_KEEP_SESSION;
    }
  }
  assert.deepEqual(readdirSync(join(dir, "lost")), []);
});

test("the change stream's slot waits for running transactions no longer than asked, then the backup goes on without it", async () => {
  const holder = new Client({ connectionString: pg.url("shop") });
  await holder.connect();
  try {
    await holder.query("BEGIN; INSERT INTO items VALUES (888, 'open')");
    const r = await createBackup({
      databaseUrl: pg.url("shop"),
      dir: join(dir, "slot-wait"),
      changeSlot: "safe_deploy_create_wait",
      changeSlotWaitMs: 400,
    });
    assert.match(r.changesSkipped ?? "", /: waited 0 s for transactions that were already running to end/);
    assert.equal(r.manifest.changes, undefined);
    assert.equal(r.manifest.rowCounts["public.items"], 50);
  } finally {
    await holder.query("ROLLBACK");
    await holder.end();
  }
  assert.deepEqual(await pg.query("SELECT slot_name FROM pg_replication_slots"), []);
});
