import { literal } from "../database/quote";
import { CannotRunError } from "../errors";
import { pgFailure, spawnPg, watch, type Conn, type RunTarget } from "./runner";

/** What a snapshot session learned before the dump starts. */
export interface SnapshotInfo {
  snapshot: string;
  serverVersion: string;
  serverVersionNum: number;
  /**
   * The session's `bytea_output`: the one output setting pg_dump leaves to the session that a scratch
   * copy would not share (a database or role with `escape` dumps bytea otherwise than its restored copy).
   */
  byteaOutput: string;
  /**
   * Exact row counts of every table in the snapshot, by `count(*)`: a backup whose archive the reader
   * cannot follow, and a rebuild's source (a backup otherwise counts rows in its own dump stream).
   */
  rowCounts(): Promise<Record<string, number>>;
  /**
   * The counts the dump stream cannot give (issue 18: counting every row again on the server beside
   * pg_dump cost a second scan of the whole database): `null` for the tables in `streamed` (their rows
   * are counted in the archive) and for partitioned tables, whose leaf partitions are listed in `parts`.
   */
  countsBesideStream(streamed: string[]): Promise<{
    rows: Record<string, number | null>;
    parts: Record<string, string[]>;
  }>;
  /** Exact row counts of the tables named (partitioned ones over all their partitions), in the snapshot. */
  countTables(tables: string[]): Promise<Record<string, number>>;
  /** Version-1 content checksum of every table in the snapshot (see TABLE_CHECKSUM_QUERY), after the counts. */
  tableChecksums(): Promise<Record<string, string>>;
  /** Ends the transaction and the session (releasing the lock). */
  close(): Promise<void>;
  /**
   * Cancels what the session still runs and ends it: after a failed dump the scan is not needed, and
   * `close` would wait for it (it runs beside pg_dump, about as long, issue 18).
   */
  abort(): Promise<void>;
}

/**
 * The schemas whose tables a backup's manifest counts and sums (n = pg_namespace): the same set on the
 * dump's side and on a restored copy's, or their counts would not compare.
 */
const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;

/** Exact row count of every ordinary and partitioned table, as one JSON line. */
export const ROW_COUNTS_SQL = `SELECT 'ROWS:' || coalesce(json_object_agg(k, n), '{}')::text FROM (
  SELECT n.nspname || '.' || c.relname AS k,
    (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', n.nspname, c.relname),
      false, true, '')))[1]::text::bigint AS n
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA}
  ORDER BY 1) t;`;

const textArray = (xs: string[]) => `ARRAY[${xs.map(literal).join(", ")}]::text[]`;

/** `PARTS:{"schema.parent": ["schema.leaf", ...]}`: each partitioned table's leaf partitions. */
const PARTITION_LEAVES_SQL = `SELECT 'PARTS:' || coalesce(json_object_agg(k, leaves), '{}')::text FROM (
  SELECT n.nspname || '.' || c.relname AS k,
    (SELECT coalesce(json_agg(ln.nspname || '.' || lc.relname), '[]') FROM pg_partition_tree(c.oid) p
      JOIN pg_class lc ON lc.oid = p.relid JOIN pg_namespace ln ON ln.oid = lc.relnamespace WHERE p.isleaf) AS leaves
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'p' AND ${USER_SCHEMA}
  ORDER BY 1) t;`;

/**
 * ROW_COUNTS_SQL (as `SIDE:{...}`) without the tables whose rows the dump stream counts (`streamed`, null here) and
 * without scanning partitioned tables (null; the next line lists each one's leaf partitions, whose
 * counts add up to it), then `PARTS:{"schema.parent": ["schema.leaf", ...]}`.
 */
export function countsBesideStreamSql(streamed: string[]): string {
  return `SELECT 'SIDE:' || coalesce(json_object_agg(k, n), '{}')::text FROM (
  SELECT n.nspname || '.' || c.relname AS k,
    CASE WHEN c.relkind = 'p' OR n.nspname || '.' || c.relname = ANY (${textArray(streamed)}) THEN NULL
      ELSE (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', n.nspname, c.relname),
        false, true, '')))[1]::text::bigint END AS n
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA}
  ORDER BY 1) t;
${PARTITION_LEAVES_SQL}`;
}

/** Exact row counts of the tables `keys` ("schema.table"), as one JSON line `MORE:{...}`. */
export function countTablesSql(keys: string[]): string {
  return ROW_COUNTS_SQL.replace("'ROWS:'", "'MORE:'").replace(
    "ORDER BY 1) t;",
    `AND n.nspname || '.' || c.relname = ANY (${textArray(keys)})\n  ORDER BY 1) t;`,
  );
}

/**
 * The manifest's row counts from the server's part (`rows`, null where the stream counts) and the
 * stream's (`streamed`); a partitioned table is the sum of its leaves. `missing`: the tables neither
 * gives (a leaf the dump has no rows of, such as a foreign table, or a table whose archive framing
 * the stream could not count): the caller counts them on the server.
 */
export function mergeRowCounts(
  rows: Record<string, number | null>,
  parts: Record<string, string[]>,
  streamed: Record<string, number>,
): { counts: Record<string, number>; missing: string[] } {
  const counts: Record<string, number> = {};
  const missing: string[] = [];
  const of = (k: string): number | undefined => {
    const v = rows[k];
    return v === null || v === undefined ? streamed[k] : Number(v);
  };
  for (const k of Object.keys(rows)) {
    if (parts[k]) continue;
    const n = of(k);
    if (n === undefined) missing.push(k);
    else counts[k] = n;
  }
  for (const [k, leaves] of Object.entries(parts)) {
    if (!(k in rows)) continue;
    const ns = leaves.map(of);
    if (ns.some((n) => n === undefined)) missing.push(k);
    else counts[k] = ns.reduce((a: number, b) => a + b!, 0);
  }
  return { counts, missing };
}

/**
 * The row count and content checksum of one table (`format()` it with schema and table), as
 * `COUNT;SUM1:SUM2`: two sums over its rows of 64-bit hashes of the row's text (`hashtextextended`,
 * stable across versions since hash partitioning relies on it; md5 cost 3x as much). Inlined, the
 * subquery rendered each row as text once per sum; the volatile `clock_timestamp()` keeps the planner
 * from inlining it, so each row is rendered once and the server's parallel workers may scan and sum a
 * big table (with `offset 0` instead the sums sat above the limit, every row's text would have gone to
 * the leader, and the planner chose no workers) (issue 18). The sums are those of the first definition
 * (issue 15), so existing manifests still verify.
 */
export const TABLE_SCAN_QUERY =
  "select count(*) || ';' || coalesce(sum(hashtextextended(x, 1)), 0) || ':' || coalesce(sum(hashtextextended(x, 2)), 0) as h " +
  "from (select row(r.*)::text as x, clock_timestamp() as t from %I.%I r) s";

/** The same scan for the content checksum alone (`SUM1:SUM2`). */
export const TABLE_CHECKSUM_QUERY = TABLE_SCAN_QUERY.replace("count(*) || ';' || ", "");

/** One JSON line `PREFIX{"schema.table": value of `perTable`}` over every ordinary and partitioned table. */
const everyTable = (
  prefix: string,
  perTable: string,
) => `SELECT '${prefix}' || coalesce(json_object_agg(k, h), '{}')::text FROM (
  SELECT n.nspname || '.' || c.relname AS k,
    (xpath('/row/h/text()', query_to_xml(format(
      ${literal(perTable)},
      n.nspname, c.relname), false, true, '')))[1]::text AS h
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA}
  ORDER BY 1) t;`;

/**
 * A content checksum of every table, as one JSON line (see TABLE_CHECKSUM_QUERY). Order-independent
 * and streamed (no sort, no 1 GB string for a big table), so it is the same for a restored copy
 * whatever order pg_restore wrote the rows in.
 */
export const TABLE_CHECKSUMS_SQL = everyTable("SUMS:", TABLE_CHECKSUM_QUERY);

/** Row counts and content checksums of every table in one scan each (see TABLE_SCAN_QUERY). */
export const COUNTS_AND_SUMS_SQL = everyTable("SCAN:", TABLE_SCAN_QUERY);

/** Settings that make a row's text the same in any session (the checksums hash that text). */
export const STABLE_TEXT_SQL =
  "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex';";

/** What follows `prefix` on the first line of `t` that starts with it ("" when none does). */
export const line = (t: string, prefix: string) =>
  t
    .split("\n")
    .find((l) => l.startsWith(prefix))
    ?.slice(prefix.length) ?? "";

/** The per-database backup lock's key, as SQL. */
const BACKUP_LOCK = "hashtext('safe-deploy:backup:' || current_database())";

/**
 * Statements that try advisory lock `key` (SQL) for up to 2 s, then print `LOCK:true` or `LOCK:false`:
 * the session of a backup or restore that just ended may still be leaving the server.
 */
const tryLock = (key: string) => [
  `DO $lock$ BEGIN FOR i IN 1..20 LOOP
     IF pg_try_advisory_lock(${key}) THEN PERFORM set_config('safe_deploy.locked', 'true', false); RETURN; END IF;
     PERFORM pg_sleep(0.1); END LOOP;
     PERFORM set_config('safe_deploy.locked', 'false', false); END $lock$;`,
  "SELECT 'LOCK:' || current_setting('safe_deploy.locked');",
];

/**
 * A psql session kept open on `conn`: `send` writes SQL and resolves with the output since then once
 * the marker it echoes after the SQL comes back (or rejects as soon as psql fails, the error naming `what`);
 * `end` closes its input (after `last`, if given) and waits for it to exit.
 */
export function psqlSession(target: RunTarget, conn: Conn, what: string) {
  const psql = spawnPg(target, "psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], conn);
  const w = watch(psql);
  let out = "";
  const waiters: Array<{ marker: string; from: number; resolve: (text: string) => void }> = [];
  const failed = w.done.then((code) => {
    throw pgFailure(what, w.stderr() || `psql exited with ${code}`, conn, target);
  });
  failed.catch(() => {});
  psql.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    for (const x of waiters.splice(0)) {
      if (out.includes(x.marker, x.from)) x.resolve(out.slice(x.from));
      else waiters.push(x);
    }
  });
  psql.stdin!.on("error", () => {});
  let sent = 0;
  return {
    send(sql: string[], marker: string): Promise<string> {
      // Numbered, and the answer is what came after this send: `out` keeps every earlier answer, so a
      // marker or a prefix sent twice (the counts after the counts beside the stream) was found in the
      // earlier one, before this one's answer came.
      const m = `${marker}${++sent}`;
      const from = out.length;
      const got = new Promise<string>((resolve) => waiters.push({ marker: `${m}\n`, from, resolve }));
      psql.stdin!.write([...sql, `\\echo ${m}`, ""].join("\n"));
      return Promise.race([got, failed]);
    },
    async end(last?: string): Promise<void> {
      psql.stdin!.end(last);
      await w.done;
    },
    running: () => psql.exitCode === null && psql.signalCode === null,
  };
}

/**
 * Opens a psql session that takes the per-database backup lock, starts a repeatable-read transaction,
 * exports its snapshot and counts rows in it, then stays open so `pg_dump --snapshot` sees exactly the
 * same data the manifest's row counts describe. A second backup of the same database fails clearly.
 */
export async function openSnapshot(
  target: RunTarget,
  conn: Conn,
  /** A snapshot exported elsewhere (a release slot's, issue 20) to count and sum in, instead of a new one. */
  imported?: string,
): Promise<SnapshotInfo> {
  const { send, end, running } = psqlSession(target, conn, "backup");
  const text = await send(
    [
      ...tryLock(BACKUP_LOCK),
      "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;",
      // The slot's snapshot: the manifest's counts and sums then describe exactly the slot's start point.
      imported ? `SET TRANSACTION SNAPSHOT ${literal(imported)};` : "SELECT 'SNAP:' || pg_export_snapshot();",
      "SELECT 'VER:' || current_setting('server_version_num') || ':' || current_setting('server_version');",
      "SELECT 'PID:' || pg_backend_pid();",
      "SELECT 'BYTEA:' || current_setting('bytea_output');",
    ],
    "__READY__",
  );
  // The lock is given back before psql exits: the server ends a session a moment after its client.
  const close = () => end(`COMMIT;\nSELECT pg_advisory_unlock(${BACKUP_LOCK});\n`);
  if (line(text, "LOCK:") !== "true") {
    // Its read-only transaction ends with the session.
    await end();
    throw new CannotRunError(
      `another backup of database "${conn.database}" is running right now; wait for it to finish and retry`,
    );
  }
  const [num, ...ver] = line(text, "VER:").split(":");
  // Counted while pg_dump streams (issue 18). The content checksums now come from the dump stream
  // itself; this session sums only for a manifest of version 1 (an archive the reader cannot follow).
  let counted: Promise<Record<string, number>> | undefined;
  const rowCounts = () =>
    (counted ??= send([ROW_COUNTS_SQL], "__COUNTED__").then((t) =>
      Object.fromEntries(
        Object.entries(JSON.parse(line(t, "ROWS:") || "{}") as Record<string, number>).map(([k, v]) => [
          k,
          Number(v),
        ]),
      ),
    ));
  const parseCounts = (t: string, prefix: string) =>
    Object.fromEntries(
      Object.entries(JSON.parse(line(t, prefix) || "{}") as Record<string, number | null>).map(([k, v]) => [
        k,
        v === null ? null : Number(v),
      ]),
    );
  const countsBesideStream = async (streamed: string[]) => {
    const t = await send([countsBesideStreamSql(streamed)], "__COUNTED__");
    return {
      rows: parseCounts(t, "SIDE:"),
      parts: JSON.parse(line(t, "PARTS:") || "{}") as Record<string, string[]>,
    };
  };
  const countTables = async (tables: string[]) =>
    parseCounts(await send([countTablesSql(tables)], "__COUNTED_MORE__"), "MORE:") as Record<string, number>;
  let summed: Promise<Record<string, string>> | undefined;
  const sums = () =>
    (summed ??= send([STABLE_TEXT_SQL, TABLE_CHECKSUMS_SQL], "__SUMMED__").then(
      (t) => JSON.parse(line(t, "SUMS:") || "{}") as Record<string, string>,
    ));
  return {
    snapshot: imported || line(text, "SNAP:"),
    serverVersionNum: Number(num),
    serverVersion: ver.join(":"),
    byteaOutput: line(text, "BYTEA:"),
    rowCounts,
    countsBesideStream,
    countTables,
    tableChecksums: sums,
    close,
    // Cancelled from another session: a signal to psql would not reach one run by `docker exec`.
    abort: async () => {
      const pid = Number(line(text, "PID:"));
      if (running() && pid > 0) {
        await runSql(target, conn, `SELECT pg_cancel_backend(${pid});`, "stopping the backup's scan").catch(
          () => {},
        );
      }
      await end();
    },
  };
}

/** Content checksums of every table of a database, outside any snapshot (used to check a restore). */
export async function tableChecksums(target: RunTarget, conn: Conn): Promise<Record<string, string>> {
  const out = await runSql(
    target,
    conn,
    `${STABLE_TEXT_SQL}\n${TABLE_CHECKSUMS_SQL}`,
    "computing table checksums",
  );
  return JSON.parse(line(out, "SUMS:") || "{}") as Record<string, string>;
}

/** Row counts of every table of a database, outside any snapshot (used to check a restore). */
export async function countRows(target: RunTarget, conn: Conn): Promise<Record<string, number>> {
  const psql = spawnPg(
    target,
    "psql",
    ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", ROW_COUNTS_SQL],
    conn,
  );
  const w = watch(psql);
  psql.stdin!.end();
  let out = "";
  psql.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  if ((await w.done) !== 0) throw pgFailure("counting rows", w.stderr(), conn, target);
  const line =
    out
      .split("\n")
      .find((l) => l.startsWith("ROWS:"))
      ?.slice(5) ?? "{}";
  return Object.fromEntries(
    Object.entries(JSON.parse(line) as Record<string, number>).map(([k, v]) => [k, Number(v)]),
  );
}

/**
 * Rows each table of a freshly restored database received, from the server's statistics (`n_tup_ins`;
 * a partitioned table is the sum of its leaves), as `STATS:` and `PARTS:` lines, once the sessions
 * that loaded it have ended (a session's statistics are published as it ends).
 */
export const LOADED_ROWS_SQL = `DO $wait$ BEGIN FOR i IN 1..500 LOOP
  EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid());
  PERFORM pg_sleep(0.01); END LOOP; END $wait$;
SELECT pg_stat_clear_snapshot();
SELECT 'STATS:' || coalesce(json_object_agg(k, n), '{}')::text FROM (
  SELECT n.nspname || '.' || c.relname AS k,
    CASE WHEN c.relkind = 'p' OR s.n_tup_upd <> 0 OR s.n_tup_del <> 0 THEN NULL ELSE s.n_tup_ins END AS n
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
  WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA}
  ORDER BY 1) t;
${PARTITION_LEAVES_SQL}`;

/**
 * The row counts of a database pg_restore has just loaded, to compare with `expected` (its manifest's):
 * the rows the server's statistics say each table received when they are exactly `expected` (no
 * count(*) pass over the whole copy, issue 18), else every table counted (`countRows`), which decides.
 * Statistics can only fall short of the truth here (not yet published, `track_counts` off, a pre-15
 * server dropping a message): a fresh copy's tables get rows only by pg_restore's COPY, all committed.
 */
export async function countLoadedRows(
  target: RunTarget,
  conn: Conn,
  expected: Record<string, number>,
): Promise<{ counts: Record<string, number>; from: "statistics" | "count" }> {
  const out = await runSql(target, conn, LOADED_ROWS_SQL, "reading the restored tables' statistics").catch(
    () => "",
  );
  const stats = JSON.parse(line(out, "STATS:") || "{}") as Record<string, number | null>;
  const parts = JSON.parse(line(out, "PARTS:") || "{}") as Record<string, string[]>;
  const { counts, missing } = mergeRowCounts(stats, parts, {});
  const keys = Object.keys(expected);
  if (
    out &&
    !missing.length &&
    keys.length === Object.keys(counts).length &&
    keys.every((k) => Number(counts[k]) === expected[k])
  ) {
    return { counts: Object.fromEntries(keys.map((k) => [k, Number(counts[k])])), from: "statistics" };
  }
  return { counts: await countRows(target, conn), from: "count" };
}

/** Runs SQL with psql (ON_ERROR_STOP) and returns stdout; throws CannotRunError on failure. */
export async function runSql(target: RunTarget, conn: Conn, sql: string, what: string): Promise<string> {
  const psql = spawnPg(target, "psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], conn);
  const w = watch(psql);
  let out = "";
  psql.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  psql.stdin!.on("error", () => {});
  psql.stdin!.end(sql + "\n");
  if ((await w.done) !== 0) throw pgFailure(what, w.stderr(), conn, target);
  return out;
}

/**
 * Takes the advisory lock `key` in a psql session on `conn` that stays open until the returned
 * function is called; undefined when another session holds it. The lock goes with the session, so a
 * killed process never leaves it behind.
 */
export async function holdAdvisoryLock(
  target: RunTarget,
  conn: Conn,
  key: string,
): Promise<(() => Promise<void>) | undefined> {
  const { send, end } = psqlSession(target, conn, "taking the lock");
  const lock = `hashtext(${literal(key)})`;
  // Given back before psql exits, as the backup's: the server ends a session a moment after its client.
  const text = await send(tryLock(lock), "__LOCK__");
  if (line(text, "LOCK:") !== "true") {
    await end();
    return undefined;
  }
  return () => end(`SELECT pg_advisory_unlock(${lock});\n`);
}
