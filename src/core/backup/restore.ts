import { randomBytes } from "node:crypto";
import { createReadStream, unlinkSync } from "node:fs";
import { open, statfs, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { ident, literal } from "../database/quote";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { createBackup, type BackupResult } from "./create";
import { catchingSignals } from "./interrupt";
import { manifestPath, type Manifest } from "./manifest";
import { parseDatabaseUrl, spawnPg, watch, withDatabase, type Conn, type RunTarget } from "./runner";
import { countLoadedRows, holdAdvisoryLock, line, runSql } from "./session";
import { decompressor, decompressToFile } from "./streams";
import { restoreArchiveFile, restoreStream, rowCountDifferences, verifyBackup } from "./verify";

/** Options of a restore. */
export interface RestoreOptions {
  databaseUrl: string;
  /** Where the safety backup goes (default: the backup's own directory). */
  safetyDir?: string;
  target?: RunTarget;
  now?: Date;
  /** A safety backup of this database taken moments ago (a rollback's): verified and used instead of a new one. */
  safetyFile?: string;
  /** Told when the safety backup starts (its directory), before anything else is written. */
  onSafetyStart?: (dir: string) => void;
  /** The safety backup's progress: bytes dumped so far. */
  onProgress?: (bytes: number) => void;
  /**
   * Runs on the restored copy once it is checked, with the live database's writers stopped, just before
   * the swap (issue 20: the replay of the writes made after the backup). A throw or Ctrl-C there drops
   * the copy and leaves the live database untouched, as any failure before the swap does.
   */
  beforeSwap?: (restored: Conn, interrupted: () => NodeJS.Signals | undefined) => Promise<void>;
  /**
   * Bytes that must stay free on the backup's disk after the temp copy of the archive a parallel
   * restore decompresses there (default: the env SAFE_DEPLOY_RESTORE_KEEP_FREE, else 1 GiB or the
   * archive's size, whichever is larger). With less room the archive streams into one pg_restore.
   */
  keepFree?: number;
  /** Told how the archive goes into the new database (parallel from a temp file, or streamed, and why). */
  onStep?: (step: string) => void;
}

/** What a restore did. */
export interface RestoreResult {
  database: string;
  /** The database as it was before, kept under this name until removed on purpose (none when it did not exist). */
  previousDatabase?: string;
  /** The safety backup of the database as it was (none when it did not exist). */
  safety?: BackupResult;
  /**
   * Client sessions found connected at the swap, after the safety backup began: whatever they wrote is
   * only in the kept previous database.
   */
  lateSessions?: DbSession[];
  /** Client sessions ended before the safety backup so it holds the old database's last writes. */
  endedSessions?: DbSession[];
}

/** A client connected to a database, as `pg_stat_activity` shows it. */
export interface DbSession {
  pid: number;
  application: string;
  user: string;
  client: string;
}

/** `app "web" as "app_rw" from 10.0.0.5`, for prompts and output. */
export const describeSession = (x: DbSession) =>
  `${x.application ? `"${x.application}"` : "a client"} as "${x.user}" from ${x.client}`;

const sessionsSql = (db: string, action: string) =>
  `SELECT 'SESSIONS:' || coalesce(json_agg(json_build_object('pid', pid, 'application', application_name,
     'user', usename, 'client', coalesce(host(client_addr), 'a local socket')) ORDER BY pid)${action}, '[]')
   FROM pg_stat_activity WHERE datname = ${literal(db)} AND pid <> pg_backend_pid() AND backend_type = 'client backend';`;

// sessionsSql always answers its one line (an empty list is `[]`).
const parseSessions = (out: string): DbSession[] => JSON.parse(line(out, "SESSIONS:"));

/** The client sessions connected to `databaseUrl`'s database now (for the confirmation prompt). */
export async function listSessions(
  databaseUrl: string,
  target: RunTarget = { runIn: "local" },
): Promise<DbSession[]> {
  const conn = parseDatabaseUrl(databaseUrl);
  return parseSessions(
    await runSql(target, adminConn(conn), sessionsSql(conn.database, ""), "listing the database's sessions"),
  );
}

/**
 * Stops writers before the safety backup (issue 15: writes committed during a restore were in neither
 * the safety backup nor the restored copy): a connection limit of 0 keeps clients out (superusers are
 * exempt, so the restore's own superuser still takes the backup), then every session is ended.
 * `ALLOW_CONNECTIONS false` would keep the safety backup's own pg_dump out too.
 */
async function stopWriters(target: RunTarget, admin: Conn, db: string): Promise<DbSession[]> {
  const out = await runSql(
    target,
    admin,
    `DO $$ BEGIN IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
       EXECUTE format('ALTER DATABASE %I WITH CONNECTION LIMIT 0', ${literal(db)}); END IF; END $$;\n${sessionsSql(db, " FILTER (WHERE pg_terminate_backend(pid))")}`,
    "ending the database's sessions before the safety backup",
  );
  return parseSessions(out);
}

/** `<db>_before_restore_YYYYMMDDHHMMSS`, cut to PostgreSQL's 63-byte identifier limit. */
export function previousName(db: string, now: Date): string {
  const stamp = now.toISOString().replace(/\D/g, "").slice(0, 14);
  const suffix = `_before_restore_${stamp}`;
  return db.slice(0, 63 - suffix.length) + suffix;
}

/** What CREATE DATABASE must repeat so the restored copy is the same kind of database as the old one. */
interface DatabaseProperties {
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
  connLimit: number;
  /** PostgreSQL 15+: "c" (libc) or "i" (ICU), and the ICU locale. */
  locProvider?: string;
  iculocale?: string | null;
}

/** The properties of `db`, or undefined when the server has no database of that name. */
async function databaseProperties(
  target: RunTarget,
  admin: Conn,
  db: string,
): Promise<DatabaseProperties | undefined> {
  const out = await runSql(
    target,
    admin,
    `SELECT 'PROPS:' || json_build_object('owner', pg_get_userbyid(d.datdba), 'encoding', pg_encoding_to_char(d.encoding),
       'collate', d.datcollate, 'ctype', d.datctype, 'connLimit', d.datconnlimit,
       'locProvider', to_jsonb(d) ->> 'datlocprovider', 'iculocale', to_jsonb(d) ->> 'daticulocale')
     FROM pg_database d WHERE d.datname = ${literal(db)};`,
    "reading the database's properties",
  );
  // No line when the server has no such database.
  const props = line(out, "PROPS:");
  if (!props) return undefined;
  return JSON.parse(props) as DatabaseProperties;
}

/** What a pg_dump archive says about the database itself: what `pg_restore -C` would run. */
export interface ArchiveDatabase {
  /** The role that owned the database. */
  owner?: string;
  /** CREATE DATABASE (encoding, locale provider, locales), for the new name. */
  create?: string;
  /** Owner, comment, grants (REVOKE CONNECT ...), connection limit, database and per-role settings. */
  after: string[];
}

const DB_ENTRY_TYPES = new Set(["DATABASE", "DATABASE PROPERTIES"]);
const ON_DB_TYPES = new Set(["COMMENT", "ACL", "SECURITY LABEL"]);

/**
 * The statements of `pg_restore -C -s -f -` output (`script`) that belong to the database `from`
 * itself, rewritten for database `to`: its DATABASE, DATABASE PROPERTIES entries and its comment, ACL
 * and security labels. Throws when a statement does not name the database where expected.
 */
export function archiveDatabase(script: string, from: string, to: string): ArchiveDatabase {
  const forms = [ident(from), from];
  const rename = (stmt: string) => {
    for (const f of forms) {
      const at = `DATABASE ${f}`;
      let i = stmt.indexOf(at);
      while (i >= 0 && !/^(\s|;|$)/.test(stmt.slice(i + at.length, i + at.length + 1))) {
        i = stmt.indexOf(at, i + 1);
      }
      if (i >= 0) return stmt.slice(0, i) + `DATABASE ${ident(to)}` + stmt.slice(i + at.length);
    }
    throw new CannotRunError(
      `cannot read the archive's statement about database "${from}": ${stmt.slice(0, 80)}`,
    );
  };
  const out: ArchiveDatabase = { after: [] };
  let inDb = false;
  let buf = "";
  for (const l of script.split("\n")) {
    const h = /^-- Name: (.*); Type: (.*); Schema: .*; Owner: (.*)$/.exec(l);
    if (h) {
      inDb = DB_ENTRY_TYPES.has(h[2]) || (ON_DB_TYPES.has(h[2]) && h[1].startsWith("DATABASE "));
      if (h[2] === "DATABASE") out.owner = h[3].trim() || undefined;
      continue;
    }
    if (!inDb) continue;
    if (
      !buf &&
      (l === "" ||
        l.startsWith("--") ||
        l.startsWith("\\") ||
        /^(SET|SELECT pg_catalog\.set_config)\b/.test(l))
    ) {
      if (l.startsWith("\\")) inDb = false;
      continue;
    }
    buf += (buf ? "\n" : "") + l;
    // A statement ends at a `;` closing a line outside a string literal (comments may span lines).
    if (l.endsWith(";") && (buf.match(/'/g)?.length ?? 0) % 2 === 0) {
      const stmt = rename(buf);
      buf = "";
      if (/^CREATE DATABASE /.test(stmt)) out.create = stmt;
      else out.after.push(stmt);
    }
  }
  return out;
}

/**
 * What the archive says about the database (`pg_restore -C -s -f -`; only the archive's header is
 * read), for the new database `to`. Its owner must exist: checked here, before anything is created.
 */
async function readArchiveDatabase(
  file: string,
  m: Manifest,
  target: RunTarget,
  admin: Conn,
  to: string,
): Promise<ArchiveDatabase> {
  const dec = decompressor(m.compression);
  const pr = spawnPg(target, "pg_restore", ["-C", "-s", "-f", "-"], admin);
  const w = watch(pr);
  let out = "";
  pr.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  // pg_restore stops after the table of contents, so the rest of the file meets a closed pipe.
  await pipeline(createReadStream(file), dec.stream, pr.stdin!).catch(() => {});
  await dec.done.catch(() => {});
  if ((await w.done) !== 0) return { after: [] };
  const a = archiveDatabase(out, m.database, to);
  if (!a.owner) return a;
  const found = await runSql(
    target,
    admin,
    `SELECT 'ROLE:' || count(*) FROM pg_roles WHERE rolname = ${literal(a.owner)};`,
    "looking up the database's owner",
  );
  if (!found.includes("ROLE:1")) {
    throw new CannotRunError(
      `role "${a.owner}", owner of database "${m.database}" in ${basename(file)}, does not exist on this server ` +
        `(roles live outside a database's backup): create it, e.g. \`CREATE ROLE ${ident(a.owner)} LOGIN PASSWORD '...'\`, ` +
        "and run the restore again; nothing was changed",
    );
  }
  return a;
}

/** The error for a CREATE DATABASE the server refused because it lacks the archive's locale. */
export function localeError(e: unknown, db: string, file: string, create: string): unknown {
  const msg = (e as Error).message ?? "";
  if (!/locale|collation|ICU/i.test(msg)) return e;
  const locales = [...create.matchAll(/(LOCALE|LC_COLLATE|LC_CTYPE|ICU_LOCALE) = ('(?:[^']|'')*')/g)]
    .map((x) => `${x[1]} ${x[2]}`)
    .join(", ");
  return new CannotRunError(
    `cannot create database "${db}" as it was in ${basename(file)} (${locales}): this server lacks that locale ` +
      `(${msg.split("\n").pop()}). Install it on the server's machine (e.g. add it to /etc/locale.gen, run ` +
      "`locale-gen` and restart PostgreSQL) or restore onto a server that has it; nothing was changed",
  );
}

/** CREATE DATABASE with the old one's owner, encoding, locale and connection limit (from template0, as pg_dump -C does). */
export function createLike(name: string, p: DatabaseProperties): string {
  const parts = [
    `CREATE DATABASE ${ident(name)} OWNER ${ident(p.owner)} TEMPLATE template0`,
    `ENCODING ${literal(p.encoding)} LC_COLLATE ${literal(p.collate)} LC_CTYPE ${literal(p.ctype)}`,
  ];
  if (p.locProvider === "i") parts.push(`LOCALE_PROVIDER icu ICU_LOCALE ${literal(p.iculocale ?? "")}`);
  else if (p.locProvider === "c") parts.push("LOCALE_PROVIDER libc");
  parts.push(`CONNECTION LIMIT ${Number(p.connLimit)};`);
  return parts.join(" ");
}

/**
 * SQL that, run on the server, prints the statements giving `to` the grants, the comment and the
 * per-database and per-role-in-database settings of `from` (pg_dump keeps them outside a single database's archive).
 * List-valued settings (search_path...) keep their own quoting, as pg_dump does; the others are literals.
 * An empty element (`search_path = ''`, stored as `""`) is given as `''`: SET refuses `""` as an identifier.
 */
export function carryOverSql(from: string, to: string): string {
  const listGucs =
    "'search_path', 'temp_tablespaces', 'session_preload_libraries', 'local_preload_libraries', 'shared_preload_libraries'";
  return `WITH d AS (SELECT oid, datacl FROM pg_database WHERE datname = ${literal(from)})
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC;', ${literal(to)}) FROM d WHERE d.datacl IS NOT NULL
UNION ALL
SELECT format('GRANT %s ON DATABASE %I TO %s%s;', a.privilege_type, ${literal(to)},
    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
  FROM d, aclexplode(d.datacl) a
UNION ALL
SELECT format('COMMENT ON DATABASE %I IS %L;', ${literal(to)}, shobj_description(d.oid, 'pg_database')) FROM d
  WHERE shobj_description(d.oid, 'pg_database') IS NOT NULL
UNION ALL
SELECT CASE WHEN s.setrole = 0 THEN format('ALTER DATABASE %I SET %I TO %s;', ${literal(to)}, x.k, x.v)
    ELSE format('ALTER ROLE %I IN DATABASE %I SET %I TO %s;', pg_get_userbyid(s.setrole), ${literal(to)}, x.k, x.v) END
  FROM d JOIN pg_db_role_setting s ON s.setdatabase = d.oid, unnest(s.setconfig) c(kv),
    LATERAL (SELECT split_part(c.kv, '=', 1) AS k,
      CASE WHEN split_part(c.kv, '=', 1) IN (${listGucs})
        THEN regexp_replace(substr(c.kv, strpos(c.kv, '=') + 1), '(^|, )""(?=,|$)', '\\1''''', 'g')
        ELSE quote_literal(substr(c.kv, strpos(c.kv, '=') + 1)) END AS v) x;`;
}

/**
 * Restores `file` over the database in `databaseUrl`, never touching the original until the copy is
 * proven: verify the file; take a `safety` backup; restore into a new database; compare every table's
 * row count with the manifest; only then terminate connections and swap names. The old database stays
 * under a dated name. On any failure before the swap the new database is dropped and nothing changed.
 * A database the server does not have (a new server, a copy under another name) is created, owned by
 * the role that owned it in the backup, and needs no safety backup.
 */
export async function restoreBackup(file: string, o: RestoreOptions): Promise<RestoreResult> {
  const conn = parseDatabaseUrl(o.databaseUrl);
  const db = conn.database;
  const target = o.target ?? { runIn: "local" };
  return catchingSignals(async (interrupted) => {
    // One restore of a database at a time: a second one would swap in over the first and the name it
    // reports for "the previous database" would hold the other restore's result.
    const release = await holdAdvisoryLock(target, adminConn(conn), `safe-deploy:restore:${db}`);
    if (!release) {
      throw new CannotRunError(
        `another restore of database "${db}" is running right now; wait for it to finish, check what it did, then restore again if still needed`,
      );
    }
    try {
      return await restoreSteps(file, o, conn, target, interrupted);
    } catch (e) {
      const sig = interrupted();
      if (!sig) throw e;
      throw new CannotRunError(
        `restore interrupted by ${sig}: database "${db}" is as it was and no partly restored copy is ` +
          "left; run the restore again",
      );
    } finally {
      await release().catch(() => {});
    }
  });
}

/** The session that creates, renames and drops `conn`'s database: never that database itself. */
const adminConn = (conn: Conn) => withDatabase(conn, conn.database === "postgres" ? "template1" : "postgres");

async function restoreSteps(
  file: string,
  o: RestoreOptions,
  conn: Conn,
  target: RunTarget,
  interrupted: () => NodeJS.Signals | undefined,
): Promise<RestoreResult> {
  const stopIfInterrupted = () => {
    // Stryker disable next-line StringLiteral: restoreBackup replaces the error of an interrupted restore with its own
    if (interrupted()) throw new CannotRunError(`interrupted by ${interrupted()}`);
  };
  const db = conn.database;
  // Manifest and checksum first (cheap); the blocks are read by the restore itself, into a new database.
  const { manifest } = await verifyBackup(file, { readArchive: false });
  // The swap renames the database, which nobody may be connected to, this session included.
  const admin = adminConn(conn);
  const props = await databaseProperties(target, admin, db);
  const inner = (): Promise<RestoreResult> =>
    restoreInto(file, o, conn, target, stopIfInterrupted, manifest, props, interrupted);
  if (!props) return inner();
  let result: RestoreResult | undefined;
  try {
    // With a safety backup already taken (a rollback), writers are stopped only before `beforeSwap`.
    if (o.safetyFile) return (result = await inner());
    // Inside the try: its limit of 0 is set before its sessions query, which may still fail.
    const endedSessions = await stopWriters(target, admin, db);
    result = await inner();
    return { ...result, endedSessions };
  } finally {
    // On every path (failure, Ctrl-C, success) clients may connect again to the old database, which
    // after the swap is kept under its dated name.
    await runSql(
      target,
      admin,
      `ALTER DATABASE ${ident(result?.previousDatabase ?? db)} WITH CONNECTION LIMIT ${Number(props.connLimit)};`,
      // Stryker disable next-line StringLiteral: the label of an error that is swallowed
      "allowing connections again",
    ).catch(() => {});
  }
}

/** The restore after the database's properties are known (and, with a safety backup to take, its writers stopped). */
async function restoreInto(
  file: string,
  o: RestoreOptions,
  conn: Conn,
  target: RunTarget,
  stopIfInterrupted: () => void,
  manifest: Manifest,
  props: DatabaseProperties | undefined,
  interrupted: () => NodeJS.Signals | undefined,
): Promise<RestoreResult> {
  const now = o.now ?? new Date();
  const db = conn.database;
  const admin = adminConn(conn);
  // No such database (a new server after a disaster, or a copy under a new name): nothing to keep safe.
  // The safety backup runs while the archive loads into the new database (issue 18: one after the
  // other, a restore took both summed, each leaving a core mostly idle); they touch different
  // databases. Both must have succeeded before the swap, and a failure of either waits for the other
  // to end, so neither a running pg_dump nor a half-written safety file outlives the restore.
  let dumping = () => {};
  const safetyDumping = new Promise<void>((resolve) => (dumping = resolve));
  const takingSafety: Promise<BackupResult | undefined> = !props
    ? Promise.resolve(undefined)
    : o.safetyFile
      ? verifyBackup(o.safetyFile, { readArchive: false }).then((v) => ({
          file: o.safetyFile!,
          manifestFile: manifestPath(o.safetyFile!),
          // Taken by this run moments ago: its checksum is enough (reading it again costs a full pass).
          manifest: v.manifest,
        }))
      : (o.onSafetyStart?.(o.safetyDir ?? dirname(file)),
        createBackup({
          databaseUrl: o.databaseUrl,
          dir: o.safetyDir ?? dirname(file),
          label: "safety",
          compression: "zstd",
          target,
          onProgress: (bytes) => (dumping(), o.onProgress?.(bytes)),
        }));
  takingSafety.catch(() => {});
  const safetyEnded = () =>
    takingSafety.then(
      () => {},
      () => {},
    );
  const fresh = `${db.slice(0, 40)}_restoring_${randomBytes(4).toString("hex")}`;
  let previous = previousName(db, now);
  try {
    // Two restores of one database in the same second would name their kept copies alike, and the
    // second swap failed on the name after all its work: the next free second is taken instead. A
    // database the server does not have keeps no copy: nothing to look up. Every kept copy of `db`
    // shares the name up to its 14-digit stamp. Inside the try: a failure here waits for the safety dump.
    // Stryker disable next-line UnaryOperator: slice(0, 14), a shorter prefix, only reads more names
    // Stryker disable next-line Regex: escaping every other character (`\s` in LIKE is `s`) only reads more names
    const keptPrefix = previous.slice(0, -14).replace(/[\\_%]/g, "\\$&");
    const taken = new Set(
      !props
        ? // Stryker disable next-line ArrayDeclaration: never read (no kept copies), and no name equals that text
          []
        : (
            await runSql(
              target,
              admin,
              `SELECT datname FROM pg_database WHERE datname LIKE ${literal(`${keptPrefix}%`)};`,
              "reading the kept databases' names",
            )
          ).split("\n"),
    );
    for (let s = 1; taken.has(previous) && s < 3600; s++)
      previous = previousName(db, new Date(now.getTime() + s * 1000));
    // The load starts once the safety dump streams (or is done): most failures of a backup (its
    // directory, pg_dump's version, a lock) come before its first byte, and then nothing is created.
    await Promise.race([safetyDumping, takingSafety]);
    return await loadAndSwap();
  } catch (e) {
    await safetyEnded();
    throw e;
  }

  async function loadAndSwap(): Promise<RestoreResult> {
    // A new database is made as `pg_restore -C` would (issue 15: it took the server's default locale and
    // lost its grants, settings, connection limit and comment), under the temporary name.
    const archived = props ? undefined : await readArchiveDatabase(file, manifest, target, admin, fresh);
    const create = props
      ? createLike(fresh, props)
      : // Stryker disable next-line OptionalChaining: `archived` is read whenever `props` is not
        (archived?.create ??
        // Stryker disable next-line OptionalChaining: `archived` is read whenever `props` is not
        `CREATE DATABASE ${ident(fresh)} TEMPLATE template0${archived?.owner ? ` OWNER ${ident(archived.owner)}` : ""};`);
    await runSql(target, admin, create, "creating the database to restore into").catch((e) => {
      throw localeError(e, db, file, create);
    });
    try {
      await loadArchive(file, manifest, target, withDatabase(conn, fresh), o);
      const loaded = await countLoadedRows(target, withDatabase(conn, fresh), manifest.rowCounts);
      const diff = rowCountDifferences(manifest.rowCounts, loaded.counts);
      if (diff.length) {
        throw new CheckFailedError(
          `restored copy of ${basename(file)} differs from its manifest:\n  ${diff.join("\n  ")}`,
        );
      }
      const safety = await takingSafety;
      stopIfInterrupted();
      if (o.beforeSwap) {
        // Writes after this point would be in neither the copy nor what `beforeSwap` carries over.
        if (props && o.safetyFile) await stopWriters(target, admin, db);
        await o.beforeSwap(withDatabase(conn, fresh), interrupted);
        stopIfInterrupted();
      }
      if (!props) {
        // After the data: a `default_transaction_read_only` or a connection limit of 0 must not stop pg_restore.
        // Nothing to give (pg_restore -C could not read the header) runs empty SQL.
        await runSql(
          target,
          admin,
          archived!.after.join("\n"),
          "giving the restored database the owner, comment, grants and settings it had",
        );
        await runSql(
          target,
          admin,
          `ALTER DATABASE ${ident(fresh)} RENAME TO ${ident(db)};`,
          `naming the restored database "${db}"`,
        );
        return { database: db, safety };
      }
      // What is not in a pg_dump archive restored without -C but belongs to the database: its grants,
      // settings and comment (the comment was lost by every swap before, issue 15).
      await carryOver(target, admin, { db, fresh, what: "the restored copy" });
      stopIfInterrupted();
      const lateSessions = await swapDatabase(target, admin, {
        db,
        fresh,
        previous,
        what: "the restored database",
      });
      return {
        database: db,
        previousDatabase: previous,
        safety,
        ...(lateSessions.length ? { lateSessions } : {}),
      };
    } catch (e) {
      // Not swapped in (a failed swap too: its renames are one transaction): the copy is dropped.
      await runSql(
        target,
        admin,
        `DROP DATABASE IF EXISTS ${ident(fresh)} WITH (FORCE);`,
        // Stryker disable next-line StringLiteral: the label of an error that is swallowed
        "cleaning up",
      ).catch(() => {});
      throw e;
    }
  }
}

/** Gives `fresh` what a pg_dump archive restored without -C lacks but belongs to `db`: its grants, settings and comment. */
export async function carryOver(
  target: RunTarget,
  admin: Conn,
  n: { db: string; fresh: string; what: string },
): Promise<void> {
  const carried = await runSql(
    target,
    admin,
    carryOverSql(n.db, n.fresh),
    "reading the database's grants and settings",
  );
  // Nothing to carry over (no grants, settings or comment) runs empty SQL.
  await runSql(target, admin, carried, `giving ${n.what} the database's grants and settings`);
}

/**
 * Puts `fresh` in `db`'s place and keeps the old database as `previous` (restore and rebuild).
 * Connections to `db` are refused first so no client slips in between terminate and rename (a superuser
 * is not held back by a connection limit); the sessions still connected to `db` are ended and returned:
 * they connected after the safety backup began, so the caller names them, never silent (any left on
 * `fresh` are ended too). The renames are one transaction: stopped between them, the server would be
 * left without the database. On failure `db` takes connections again.
 */
export async function swapDatabase(
  target: RunTarget,
  admin: Conn,
  n: { db: string; fresh: string; previous: string; what: string },
): Promise<DbSession[]> {
  const { db, fresh, previous } = n;
  const out = await runSql(
    target,
    admin,
    [
      `ALTER DATABASE ${ident(db)} WITH ALLOW_CONNECTIONS false;`,
      // Stryker disable next-line StringLiteral: the next statement ends every session of `db` and `fresh`
      sessionsSql(db, " FILTER (WHERE pg_terminate_backend(pid))"),
      `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN (${literal(db)}, ${literal(fresh)}) AND pid <> pg_backend_pid();`,
      // RENAME waits up to 5 s for ended sessions to leave, polling every 100 ms: polling every 10 ms
      // here saves most of that on every swap that ended one.
      // Stryker disable next-line StringLiteral: only the time differs (RENAME waits itself, 5 s)
      `DO $wait$ BEGIN FOR i IN 1..500 LOOP
       EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = ${literal(db)} AND pid <> pg_backend_pid());
       PERFORM pg_sleep(0.01); END LOOP; END $wait$;`,
      "BEGIN;",
      `ALTER DATABASE ${ident(db)} RENAME TO ${ident(previous)};`,
      `ALTER DATABASE ${ident(previous)} WITH ALLOW_CONNECTIONS true;`,
      `ALTER DATABASE ${ident(fresh)} RENAME TO ${ident(db)};`,
      "COMMIT;",
    ].join("\n"),
    `swapping ${n.what} in`,
  ).catch(async (e) => {
    await runSql(
      target,
      admin,
      `ALTER DATABASE ${ident(db)} WITH ALLOW_CONNECTIONS true;`,
      // Stryker disable next-line StringLiteral: the label of an error that is swallowed
      "re-opening",
    ).catch(() => {});
    throw e;
  });
  return parseSessions(out);
}

/** Parallel jobs of a restore from a file (`pg_restore -j`): issue 18's yardstick is `pg_restore -j2`. */
const RESTORE_JOBS = 2;

/**
 * Below this share of the data outside the largest table, the archive is streamed: measured on pgbench
 * scale 50 (one table holds all but 0.01%), decompressing first then `pg_restore -j2` took 14.7-20.9 s
 * against 15.9-16.3 s streamed into one pg_restore (load 7-8): two jobs can only overlap the other tables'
 * data and indexes, while the temp file costs a decompression pass before the first row goes in.
 */
const PARALLEL_SHARE = 0.2;

/** The share of the data (by archive bytes) outside the largest table: what a second job can load alongside it. */
export function parallelShare(tableBytes: Record<string, number>): number {
  const sizes = Object.values(tableBytes);
  const total = sizes.reduce((a, b) => a + b, 0);
  return total ? 1 - Math.max(...sizes) / total : 0;
}

/** Bytes to leave free beside the temp archive: `keepFree`, SAFE_DEPLOY_RESTORE_KEEP_FREE, or the default. */
export function keepFreeBytes(
  keepFree: number | undefined,
  env: string | undefined,
  archiveBytes: number,
): number {
  if (keepFree !== undefined) return keepFree;
  if (env !== undefined && env.trim() !== "") {
    if (!/^\d+$/.test(env.trim())) {
      throw new ConfigError(
        `SAFE_DEPLOY_RESTORE_KEEP_FREE is "${env}": give a number of bytes (e.g. 1073741824), or unset it for the default`,
      );
    }
    return Number(env.trim());
  }
  return Math.max(2 ** 30, archiveBytes);
}

/**
 * How the archive goes into `into` (issue 18: one streamed pg_restore took 1.3x `pg_restore -j2`):
 * decompressed to a temp file beside the backup, then `pg_restore -j2` from it, when pg_restore runs on
 * this machine, a fifth of the data or more lies outside the largest table, and the disk has room for
 * the archive plus `keepFree`; otherwise streamed into one
 * pg_restore, as before. The temp file is removed on every path (success, failure, Ctrl-C, and a second
 * signal that ends the process at once).
 */
async function loadArchive(
  file: string,
  m: Manifest,
  target: RunTarget,
  into: Conn,
  o: Pick<RestoreOptions, "keepFree" | "onStep">,
): Promise<void> {
  const args = ["--exit-on-error", "-d", into.database];
  const streamed = (why: string) => {
    o.onStep?.(`restore: streaming the archive into one pg_restore (${why})`);
    return restoreStream(file, m, target, into, args, "restore");
  };
  const parallel = ["-j", String(RESTORE_JOBS), ...args];
  if (target.runIn !== "local")
    return streamed("pg_restore runs in a container, which cannot read a file here");
  if (m.compression === "none") {
    o.onStep?.(`restore: pg_restore -j${RESTORE_JOBS} from the uncompressed backup itself`);
    return restoreArchiveFile(file, file, target, into, parallel, "restore");
  }
  if (!m.archiveBytes || !m.tableBytes) {
    return streamed("the manifest does not give the archive's size (a backup from before 2026-12-06)");
  }
  const rest = parallelShare(m.tableBytes);
  if (rest < PARALLEL_SHARE) {
    return streamed(
      `${Math.round((1 - rest) * 100)}% of the data is one table, which one pg_restore loads as fast as ${RESTORE_JOBS}`,
    );
  }
  const dir = dirname(file);
  const keep = keepFreeBytes(o.keepFree, process.env.SAFE_DEPLOY_RESTORE_KEEP_FREE, m.archiveBytes);
  let free: number;
  try {
    const s = await statfs(dir);
    free = s.bavail * s.bsize;
  } catch (e) {
    return streamed(`cannot read the free space of ${dir}: ${(e as Error).message}`);
  }
  const mb = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
  if (free < m.archiveBytes + keep) {
    return streamed(
      `${mb(free)} free in ${dir}, the temp archive needs ${mb(m.archiveBytes)} and ${mb(keep)} must stay free ` +
        "(SAFE_DEPLOY_RESTORE_KEEP_FREE)",
    );
  }
  const tmp = join(dir, `.${basename(file)}.restore-${randomBytes(4).toString("hex")}`);
  let fh;
  try {
    fh = await open(tmp, "wx", 0o600);
  } catch (e) {
    return streamed(`cannot write a temp file in ${dir}: ${(e as Error).message}`);
  }
  // A second Ctrl-C ends the process at once (catchingSignals): the temp file goes with it.
  const removeNow = () => {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  };
  process.on("exit", removeNow);
  try {
    try {
      await decompressToFile(m.compression, file, fh.fd);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOSPC") {
        throw new CheckFailedError(`${basename(file)} cannot be decompressed: ${(e as Error).message}`);
      }
      await fh.close();
      fh = undefined;
      await unlink(tmp).catch(() => {});
      return await streamed(`${dir} filled up while decompressing the archive there`);
    }
    await fh.close();
    fh = undefined;
    o.onStep?.(
      `restore: pg_restore -j${RESTORE_JOBS} from a temp copy of the archive in ${dir} (${mb(m.archiveBytes)})`,
    );
    await restoreArchiveFile(tmp, file, target, into, parallel, "restore");
  } finally {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    process.off("exit", removeNow);
  }
}
