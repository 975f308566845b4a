import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { randomBytes } from "node:crypto";
import { literal } from "../database/quote";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { knownManifestVersion, manifestPath, type Manifest } from "./manifest";
import {
  parseDatabaseUrl,
  spawnPg,
  watch,
  withDatabase,
  type Conn,
  type RunTarget,
  pgFailure,
} from "./runner";
import { countRows, runSql, tableChecksums } from "./session";
import { catchingSignals } from "./interrupt";
import { archiveTableSums, decompressor, DUMP_TEXT_ENV, hasher } from "./streams";

/** What `verify` checked. */
export interface VerifyResult {
  file: string;
  manifest: Manifest;
  /** Set by a restore test: row counts of the scratch restore (equal to the manifest's). */
  restoredRowCounts?: Record<string, number>;
  /** Set by a restore test of a backup whose manifest has them: tables whose content checksum matched. */
  checksummedTables?: number;
  /** Set by a restore test: roles that own objects in the backup but do not exist on the server. */
  missingRoles?: string[];
}

/** Reads and sanity-checks `FILE.json`; a missing or malformed manifest is a failed check. */
export async function readManifest(file: string): Promise<Manifest> {
  let text: string;
  try {
    // Stryker disable next-line StringLiteral: without an encoding readFile gives a Buffer, which JSON.parse reads as UTF-8 too
    text = await readFile(manifestPath(file), "utf8");
  } catch {
    throw new CheckFailedError(
      `${basename(file)}: its manifest ${basename(manifestPath(file))} is missing, so the checksum cannot be ` +
        "checked; this is not a complete safe-deploy backup",
    );
  }
  let m: Manifest;
  try {
    m = JSON.parse(text);
  } catch {
    throw new CheckFailedError(`${basename(manifestPath(file))} is not valid JSON`);
  }
  if (
    !knownManifestVersion(m?.version) ||
    typeof m.sha256 !== "string" ||
    typeof m.compression !== "string" ||
    !m.rowCounts
  ) {
    throw new CheckFailedError(`${basename(manifestPath(file))} is not a safe-deploy backup manifest`);
  }
  return m;
}

/** Streams `file` through sha256 and compares it with the manifest. */
export async function checkChecksum(file: string, m: Manifest): Promise<void> {
  const h = hasher();
  await pipeline(createReadStream(file), h.stream, new Writable({ write: (_c, _e, cb) => cb() }));
  const sha = h.hash.digest("hex");
  if (h.bytes() !== m.sizeBytes) {
    throw new CheckFailedError(
      `${basename(file)} is ${h.bytes()} bytes but its manifest says ${m.sizeBytes}: the file is truncated or damaged`,
    );
  }
  if (sha !== m.sha256) {
    throw new CheckFailedError(
      `${basename(file)}: sha256 ${sha} does not match the manifest's ${m.sha256}: corrupt`,
    );
  }
}

/**
 * Feeds the decompressed archive to `pg_restore` with `args` (to a database, or `-f /dev/null` to read
 * every block); resolves when both sides succeeded.
 */
export async function restoreStream(
  file: string,
  m: Manifest,
  target: RunTarget,
  conn: Conn,
  args: string[],
  what: string,
): Promise<void> {
  const dec = decompressor(m.compression);
  const pr = spawnPg(target, "pg_restore", args, conn);
  const w = watch(pr);
  pr.stdout!.resume();
  let streamErr: unknown;
  await pipeline(createReadStream(file), dec.stream, pr.stdin!).catch((e) => (streamErr = e));
  const decErr = await dec.done.then(
    () => undefined,
    (e: Error) => e,
  );
  const code = await w.done;
  if (code !== 0) throw restoreFailure(code, w.stderr(), decErr, file, what, conn, target);
  // pg_restore succeeded: if it stopped reading before the archive's last bytes (the end of the last
  // block; it may exit before the feed has written them), the broken pipe that leaves the decompressor
  // or the feed, or the "premature close" of its stdin (node closes it when the process exits, which
  // may come before the write's EPIPE), is no damage of the file, whose bytes the checksum has vouched for.
  if (decErr && !brokenPipe(decErr))
    throw new CheckFailedError(`${basename(file)} cannot be decompressed: ${decErr.message}`);
  if (streamErr && !brokenPipe(streamErr) && !readerClosed(streamErr))
    throw new CheckFailedError(`${basename(file)}: reading failed: ${(streamErr as Error).message}`);
}

/**
 * Runs `pg_restore` with `args` on the archive `archive`, a file it reads itself (so `-j` may restore
 * several tables at once); `file` is the backup it came from, named in errors.
 */
export async function restoreArchiveFile(
  archive: string,
  file: string,
  target: RunTarget,
  conn: Conn,
  args: string[],
  what: string,
): Promise<void> {
  const pr = spawnPg(target, "pg_restore", [...args, archive], conn);
  const w = watch(pr);
  pr.stdin!.end();
  pr.stdout!.resume();
  const code = await w.done;
  if (code !== 0) throw restoreFailure(code, w.stderr(), undefined, file, what, conn, target);
}

/** The error for a pg_restore that exited with `code`: its cause named, with the fix. */
function restoreFailure(
  code: number,
  err: string,
  decErr: Error | undefined,
  file: string,
  what: string,
  conn: Conn,
  target: RunTarget,
): Error {
  // pg_restore that could not start, log in or reach its container: not the file's fault, whatever
  // the broken pipe did to the decompressor.
  const cannotRun =
    code === 127 ||
    /could not connect|connection to server|authentication failed|no password supplied|No such container|Cannot connect to the Docker daemon|error during connect|command not found|executable file not found/i.test(
      err,
    );
  if (cannotRun) return pgFailure(what, err || `pg_restore exited with ${code}`, conn, target);
  const role = /could not execute query: ERROR:\s+role "((?:[^"]|"")+)" does not exist/.exec(err);
  if (role) {
    return new CannotRunError(
      `${what}: role "${role[1]}" owns objects in ${basename(file)} but does not exist on this server ` +
        `(roles live outside a database's backup): create it, e.g. \`CREATE ROLE "${role[1]}" LOGIN PASSWORD '...'\`, and run the restore again`,
    );
  }
  if (decErr && !brokenPipe(decErr))
    return new CheckFailedError(`${basename(file)} cannot be decompressed: ${decErr.message}`);
  if (
    /input file does not appear to be a valid archive|could not read (from )?input file|input file is too short|unexpected end of file|did not find magic string|corrupt/i.test(
      err,
    )
  ) {
    return new CheckFailedError(
      `${basename(file)} is not a readable pg_dump archive: ${err.trim().split("\n")[0]}`,
    );
  }
  return pgFailure(what, err || `pg_restore exited with ${code}`, conn, target);
}

const brokenPipe = (e: unknown) => (e as NodeJS.ErrnoException).code === "EPIPE";
const readerClosed = (e: unknown) => (e as NodeJS.ErrnoException).code === "ERR_STREAM_PREMATURE_CLOSE";

/** Options of `verify`. */
export interface VerifyOptions {
  restoreTest?: boolean;
  /** Server for the restore test (a scratch database is created there and dropped). */
  databaseUrl?: string;
  target?: RunTarget;
  /**
   * Read every block with pg_restore (default true). A restore skips it: restoring into a new
   * database reads every block anyway, and a bad one fails there before anything is swapped.
   */
  readArchive?: boolean;
  /** Told as each long step starts (reading the archive, restoring, comparing): progress on a terminal. */
  onStep?: (step: string) => void;
}

/** Compares two row-count maps; returns one line per difference. */
export function rowCountDifferences(
  expected: Record<string, number>,
  actual: Record<string, number>,
): string[] {
  const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
  return keys
    .filter((k) => expected[k] !== actual[k])
    .map((k) => `${k}: backup had ${expected[k] ?? "no table"}, restore has ${actual[k] ?? "no table"}`);
}

/**
 * Verifies a backup: the manifest is there, the sha256 and size match, the archive decompresses and
 * every block is readable by pg_restore; with `restoreTest`, restores it into a scratch database and
 * compares every table's row count with the manifest, then drops the scratch database.
 */
export async function verifyBackup(file: string, o: VerifyOptions = {}): Promise<VerifyResult> {
  try {
    if (!(await stat(file)).isFile()) throw new Error();
  } catch {
    throw new ConfigError(`backup file ${file} does not exist (check the FILE argument)`);
  }
  const m = await readManifest(file);
  await checkChecksum(file, m);
  const target: RunTarget = o.target ?? { runIn: "local" };
  if (o.readArchive !== false) {
    // pg_restore runs where the target says (in the database container, version-matched), not always here.
    const none = parseDatabaseUrl("postgres://verify@127.0.0.1/verify");
    o.onStep?.(`reading every block of the archive (${m.sizeBytes} bytes)`);
    await restoreStream(file, m, target, none, ["-f", "/dev/null"], "reading the archive");
  }
  if (!o.restoreTest) return { file, manifest: m };
  if (!o.databaseUrl) {
    throw new ConfigError("`--restore-test` needs a server: pass `--database-url` or set DATABASE_URL");
  }
  const url = o.databaseUrl;
  // Caught so a stop half-way still drops the scratch database below.
  return catchingSignals(async (interrupted) => {
    try {
      return await restoreTest(file, m, url, target, o.onStep ?? (() => {}));
    } catch (e) {
      const sig = interrupted();
      if (!sig) throw e;
      throw new CannotRunError(
        `restore test interrupted by ${sig}: the scratch database was dropped; ${basename(file)} is not verified`,
      );
    }
  });
}

/** Restores into a scratch database, compares row counts with the manifest, drops the scratch database. */
async function restoreTest(
  file: string,
  m: Manifest,
  url: string,
  target: RunTarget,
  step: (s: string) => void,
): Promise<VerifyResult> {
  const admin = withDatabase(parseDatabaseUrl(url), "postgres");
  const scratch = `safe_deploy_verify_${randomBytes(4).toString("hex")}`;
  await runSql(target, admin, `CREATE DATABASE "${scratch}";`, "creating the scratch database");
  try {
    const conn = withDatabase(admin, scratch);
    step(`restoring into the scratch database ${scratch}`);
    await restoreStream(
      file,
      m,
      target,
      conn,
      ["--exit-on-error", "--no-owner", "--no-acl", "-d", scratch],
      "restore test",
    );
    step(`comparing ${Object.keys(m.rowCounts).length} tables with the backup's manifest`);
    // The scratch database lacks the original's settings: its re-dump writes bytea as the backup's did
    // (only a version 2 manifest has byteaOutput: create.ts writes version 1 when it cannot read the dump).
    if (m.byteaOutput === "escape") {
      await runSql(
        target,
        admin,
        `ALTER DATABASE "${scratch}" SET bytea_output = 'escape';`,
        "setting bytea_output on the scratch database",
      );
    }
    const counts = await countRows(target, conn);
    const diff = rowCountDifferences(m.rowCounts, counts);
    if (diff.length)
      throw new CheckFailedError(`restore test of ${basename(file)} lost rows:\n  ${diff.join("\n  ")}`);
    // Equal counts can hide changed rows (issue 15): compare content where the manifest has checksums.
    let checksummedTables: number | undefined;
    if (m.tableChecksums) {
      const sums = await tableChecksumsLike(m, target, conn);
      const changed = Object.keys({ ...m.tableChecksums, ...sums })
        .sort()
        .filter((k) => m.tableChecksums![k] !== sums[k]);
      if (changed.length) {
        throw new CheckFailedError(
          `restore test of ${basename(file)}: the content of ${changed.length} table(s) differs from the backup's ` +
            `checksums although the row counts match: ${changed.join(", ")}`,
        );
      }
      checksummedTables = Object.keys(sums).length;
    }
    const missingRoles = await rolesMissing(file, m, target, admin);
    return { file, manifest: m, restoredRowCounts: counts, checksummedTables, missingRoles };
  } finally {
    await runSql(
      target,
      admin,
      `DROP DATABASE IF EXISTS "${scratch}" WITH (FORCE);`,
      "dropping the scratch database",
    );
  }
}

/**
 * The content checksums of the database `conn` names, made the way `m`'s were, to compare with them:
 * version 2 by dumping its data (`pg_dump -Z0 --data-only`, in the archive's encoding) through the
 * reader the backup used; version 1 by the server-side sums.
 */
export async function tableChecksumsLike(
  m: Manifest,
  target: RunTarget,
  conn: Conn,
): Promise<Record<string, string>> {
  if (m.version === 1) return tableChecksums(target, conn);
  const args = [
    "-Fc",
    "-Z0",
    // Stryker disable next-line StringLiteral: the sums are of the data blocks; a schema in the archive is skipped
    "--data-only",
    ...(m.encoding ? ["-E", m.encoding] : []),
  ];
  const dump = spawnPg(target, "pg_dump", args, { ...conn, env: { ...conn.env, ...DUMP_TEXT_ENV } });
  const w = watch(dump);
  dump.stdin!.end();
  const sums = archiveTableSums();
  const streamed = pipeline(dump.stdout!, sums.stream, new Writable({ write: (_c, _e, cb) => cb() }));
  const code = await w.done;
  await streamed.catch(() => {});
  if (code !== 0) throw pgFailure("dumping the restored tables to checksum them", w.stderr(), conn, target);
  const read = sums.result();
  if (read.unreadable) {
    throw new CannotRunError(
      `cannot checksum the restored tables: the archive its pg_dump wrote could not be read (${read.unreadable}); ` +
        "run the check with the pg_dump the backup was made with (`--run-in container`)",
    );
  }
  return read.sums;
}

/** One role of a GRANT/REVOKE's list: quoted (a quote in it doubled), or a plain name. */
const GRANTEE = /"((?:[^"]|"")+)"|([^\s,]+)/g;

/**
 * Roles a restore with owners and grants needs, from `pg_restore -s -f -` output: each entry's owner
 * and every role its GRANT/REVOKE statements name (not PUBLIC).
 */
export function neededRoles(script: string): string[] {
  const roles = new Set<string>();
  // `s`: pg_dump writes names raw, and a U+2028 or U+2029 in one is a line end to `.` without it.
  for (const l of script.split("\n")) {
    const owner = /^-- Name: .*; Type: .*; Schema: .*; Owner: (.+)/s.exec(l)?.[1].trim();
    if (owner && owner !== "-") roles.add(owner);
    const g =
      /^(?:GRANT|REVOKE) .* (?:TO|FROM) ((?:"(?:[^"]|"")+"|[^\s;"]+)(?:, (?:"(?:[^"]|"")+"|[^\s;"]+))*)(?: WITH GRANT OPTION)?;$/s.exec(
        l,
      );
    if (g) {
      for (const [, quoted, plain] of g[1].matchAll(GRANTEE))
        if (plain !== "PUBLIC") roles.add(plain ?? quoted.replace(/""/g, '"'));
    }
  }
  return [...roles].sort();
}

/**
 * Roles that own objects in the backup or are granted rights in it but are not on the server (a
 * restore with owners and grants would fail on them; the restore test runs `--no-owner --no-acl`).
 */
async function rolesMissing(file: string, m: Manifest, target: RunTarget, admin: Conn): Promise<string[]> {
  const dec = decompressor(m.compression);
  const pr = spawnPg(target, "pg_restore", ["-s", "-f", "-"], admin);
  const w = watch(pr);
  // Stryker disable next-line StringLiteral: a text before pg_restore's first line ("--") makes no header or GRANT of it
  let out = "";
  pr.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  // Schema only: pg_restore stops after the table of contents, the rest of the file meets a closed pipe.
  await pipeline(createReadStream(file), dec.stream, pr.stdin!).catch(() => {});
  await dec.done.catch(() => {});
  if ((await w.done) !== 0) throw pgFailure("listing the backup's contents", w.stderr(), admin, target);
  const owners = neededRoles(out);
  if (!owners.length) return [];
  const found = await runSql(
    target,
    admin,
    `SELECT rolname FROM pg_roles WHERE rolname IN (${owners.map(literal).join(", ")});`,
    "looking up the backup's roles",
  );
  // One name a line (psql -At), then an empty one, which no role is named.
  const have = new Set(found.split("\n"));
  return owners.filter((o) => !have.has(o));
}
