import { Command, InvalidArgumentError, Option } from "commander";

/** Flags shared by commands that talk to a database. */
interface DbOpts {
  databaseUrl?: string;
  runIn?: "local" | "container";
  container?: string;
  dockerHost?: string;
  image?: string;
}

/** Options of `backup create`. */
export interface CreateCmdOpts extends DbOpts {
  dir: string;
  label?: string;
  compression?: "zstd" | "gzip" | "none";
}

type Out = (line: string) => void;
const stdout: Out = (l) => process.stdout.write(l + "\n");

async function requireUrl(o: DbOpts): Promise<string> {
  const url = o.databaseUrl ?? process.env.DATABASE_URL;
  if (!url) {
    const { ConfigError } = await import("../../core/errors");
    throw new ConfigError("no database: pass `--database-url` or set DATABASE_URL");
  }
  return url;
}

/** Where the pg tools run, from `--run-in`, `--container`, `--image` and `--docker-host`. */
async function target(o: DbOpts) {
  const runIn = o.runIn ?? "local";
  if (runIn === "container" && !o.container && !o.image) {
    const { ConfigError } = await import("../../core/errors");
    throw new ConfigError(
      "`--run-in container` needs `--container NAME` (the database container) or, for an external database, `--image IMAGE` (a throwaway container of the server's major version, e.g. postgres:16)",
    );
  }
  return { runIn, container: o.container, image: o.image, dockerHost: o.dockerHost } as const;
}

/** `backup create`: prints progress, then the backup's path as the last line. */
export async function runBackupCreate(o: CreateCmdOpts, out: Out = stdout): Promise<string> {
  const { createBackup } = await import("../../core/backup");
  const { byteProgress } = await import("../progress");
  const bar = byteProgress("backup: dumped");
  const r = await createBackup({
    databaseUrl: await requireUrl(o),
    dir: o.dir,
    label: o.label,
    compression: o.compression ?? "zstd",
    target: await target(o),
    onProgress: bar.update,
  });
  bar.done();
  const m = r.manifest;
  const tables = Object.keys(m.rowCounts).length;
  out(
    `backup of "${m.database}" (PostgreSQL ${m.serverVersion}): ${m.sizeBytes} bytes, ${tables} tables, sha256 ${m.sha256}`,
  );
  out(r.file);
  return r.file;
}

/** `backup list`: newest first, as a table or JSON. */
export async function runBackupList(o: { dir: string; json?: boolean }, out: Out = stdout): Promise<void> {
  const { listBackups } = await import("../../core/backup");
  const list = await listBackups(o.dir);
  if (o.json) return out(JSON.stringify(list, null, 2));
  if (!list.length) return out(`no backups in ${o.dir}`);
  for (const e of list) {
    const size = e.sizeBytes === undefined ? "?" : String(e.sizeBytes);
    out(
      `${e.createdAt}  ${(e.label ?? "-").padEnd(10)}  ${size.padStart(12)}  ${e.name}${e.hasManifest ? "" : "  (no manifest)"}`,
    );
  }
}

/** `backup verify`: exit 0 when sound, 1 when corrupt. */
export async function runBackupVerify(
  o: DbOpts & { file: string; restoreTest?: boolean },
  out: Out = stdout,
): Promise<void> {
  const { checkBackupFile } = await import("../backup-file");
  await checkBackupFile(o.file);
  const { verifyBackup } = await import("../../core/backup");
  const { showProgress } = await import("../progress");
  const r = await verifyBackup(o.file, {
    restoreTest: o.restoreTest,
    databaseUrl: o.restoreTest ? await requireUrl(o) : undefined,
    target: await target(o),
    // Steps on a terminal only: a restore test of a large backup runs for minutes.
    onStep: showProgress() ? (s: string) => process.stderr.write(`verify: ${s}\n`) : undefined,
  });
  out(`OK ${o.file}: sha256 matches, archive readable`);
  if (r.restoredRowCounts)
    out(
      `OK restore test: ${Object.keys(r.restoredRowCounts).length} tables, row counts match` +
        (r.checksummedTables === undefined
          ? " (this backup's manifest has no content checksums)"
          : `, content checksums match`),
    );
  if (r.missingRoles?.length)
    out(
      `warning: roles the backup names (owners, grantees) are missing on this server: ${r.missingRoles.join(", ")}; ` +
        "a restore needs them: create them first, e.g. `CREATE ROLE name LOGIN PASSWORD '...'`",
    );
}

/** `backup prune`: retention (never the newest, never safety, keep-min; manifest-less files never count). */
export async function runBackupPrune(
  o: { dir: string; keepDays?: number; keepMin?: number; dryRun?: boolean },
  out: Out = stdout,
): Promise<void> {
  const { pruneBackups } = await import("../../core/backup");
  const r = await pruneBackups(
    o.dir,
    { keepDays: o.keepDays ?? 7, keepMin: o.keepMin ?? 3 },
    { dryRun: o.dryRun },
  );
  const verb = o.dryRun ? "would remove" : "removed";
  const noManifest = "no manifest: not a usable backup";
  const policy = { keepDays: o.keepDays ?? 7, keepMin: o.keepMin ?? 3 };
  if (o.dryRun) for (const e of r.keep) out(`keep ${e.file}  (${keepReason(e, r.keep, policy, new Date())})`);
  for (const e of r.remove)
    out(
      `${verb} ${e.file}  (${e.hasManifest ? `older than ${policy.keepDays} day(s) (--keep-days) and beyond the ${policy.keepMin} kept (--keep-min)` : noManifest})`,
    );
  for (const e of r.unusable.filter((u) => !r.remove.includes(u)))
    out(
      `left ${e.file}  (${noManifest}; ${e.label === "safety" ? "a safety backup" : "may still be being written"})`,
    );
  for (const t of r.staleTemp) out(`${verb} ${t.file}  (temp file of an unfinished backup)`);
  out(
    `${verb} ${r.remove.length + r.staleTemp.length}, kept ${r.keep.length}` +
      (r.unusable.length ? `; ${r.unusable.length} without a manifest` : ""),
  );
}

/**
 * Why retention keeps `e` (one of `kept`, newest first), in the order `choosePrune` decides: a safety
 * backup, the newest, one within `--keep-days`, else one of the `--keep-min` kept. Pure.
 */
export function keepReason(
  e: { createdAt: string; label?: string },
  kept: Array<{ createdAt: string; label?: string }>,
  policy: { keepDays: number; keepMin: number },
  now: Date,
): string {
  if (e.label === "safety")
    return "safety backup: never pruned; once no longer needed remove it and its .json by hand";
  if (kept.every((k) => k.createdAt <= e.createdAt)) return "newest";
  if (Date.parse(e.createdAt) >= now.getTime() - policy.keepDays * 86_400_000)
    return `within --keep-days ${policy.keepDays}`;
  return `one of the --keep-min ${policy.keepMin} kept`;
}

/** `url` pointed at database `into` on the same server (unchanged without `into`). */
function intoUrl(url: string, into?: string): string {
  if (!into) return url;
  try {
    const u = new URL(url);
    u.pathname = `/${encodeURIComponent(into)}`;
    return u.toString();
  } catch {
    return url;
  }
}

type RestoreCmdOpts = DbOpts & {
  file: string;
  yes?: boolean;
  dir?: string;
  into?: string;
  keepWrites?: boolean;
};

/** `backup restore`: asks first unless `--yes`; refuses without a terminal and without `--yes`. */
export async function runBackupRestore(o: RestoreCmdOpts, out: Out = stdout): Promise<void> {
  const { checkBackupFile } = await import("../backup-file");
  await checkBackupFile(o.file);
  const url = intoUrl(await requireUrl(o), o.into);
  const where = await target(o);
  const { ConfigError } = await import("../../core/errors");
  const { restoreBackup, parseDatabaseUrl, readManifest, listSessions, describeSession } =
    await import("../../core/backup");
  const db = parseDatabaseUrl(url).database;
  // A backup of another database replaces the target only when asked by name: a `--yes` (or a
  // prompt answered by habit) once replaced database B with A's backup after a mere note (issue 15).
  const from = (await readManifest(o.file)).database;
  if (from !== db && o.into !== db) {
    throw new ConfigError(
      `${o.file} is a backup of database "${from}", not of "${db}" named by \`--database-url\`: to restore it into ` +
        `"${db}" pass \`--into ${db}\` (or point \`--database-url\` at "${from}"); nothing was changed`,
    );
  }
  const other = from !== db ? ` (a backup of database "${from}")` : "";
  if (other) out(`note: ${o.file} is a backup of database "${from}"; it goes into "${db}"`);
  if (!o.yes) {
    if (!process.stdin.isTTY)
      throw new ConfigError(`restoring replaces database "${db}": pass \`--yes\` to confirm`);
    const { createInterface } = await import("node:readline/promises");
    // Who is about to be disconnected (their writes go into the safety backup, then they are cut off).
    const sessions = await listSessions(url, where).catch(() => []);
    const who = sessions.length
      ? `; ${sessions.length} session(s) will be ended first: ${sessions.map(describeSession).join(", ")}`
      : "";
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question(
      `Replace database "${db}" with ${o.file}${other}${who}? Type the database name: `,
    );
    rl.close();
    if (answer.trim() !== db) throw new ConfigError("restore cancelled");
  }
  // A restore swaps the live database: refused while a deploy from any clone holds the database lock (issue
  // 15). Through `--run-in container` the URL is the container's view, which this machine cannot reach.
  const { acquireDbLock } = await import("../../core/release/db-lock");
  // A database that does not exist yet (a new server after a disaster) has no deploy running against it.
  const lock =
    where.runIn === "local"
      ? await acquireDbLock({ databaseUrl: url, stack: "", command: "safe-deploy backup restore" }).catch(
          (e: Error) => {
            if (/database "[^"]*" .*does not exist/.test(e.message)) return undefined;
            throw e;
          },
        )
      : undefined;
  try {
    await restoreWithReport(o, url, where, db, out, restoreBackup, describeSession);
  } finally {
    await lock?.release();
  }
}

async function restoreWithReport(
  o: RestoreCmdOpts,
  url: string,
  where: Awaited<ReturnType<typeof target>>,
  db: string,
  out: Out,
  restoreBackup: typeof import("../../core/backup").restoreBackup,
  describeSession: typeof import("../../core/backup").describeSession,
): Promise<void> {
  const { byteProgress } = await import("../progress");
  const bar = byteProgress("safety backup: dumped");
  // The bar ends before the restore says how it loads the archive (the bar's line stays whole).
  let barOpen = false;
  const endBar = () => (barOpen ? ((barOpen = false), bar.done()) : undefined);
  const opts = {
    databaseUrl: url,
    target: where,
    safetyDir: o.dir,
    // Said when it starts: a long safety dump is not a hang, and where it goes is known at once.
    onSafetyStart: (dir: string) => out(`safety backup of "${db}" into ${dir}: started`),
    onProgress: (b: number) => ((barOpen = true), bar.update(b)),
    onStep: (step: string) => (endBar(), out(step)),
  };
  const { restoreKeepingWrites, describeKept, streamOf } = await import("../../core/release/changes");
  let kept: string | undefined;
  let r: Awaited<ReturnType<typeof restoreBackup>>;
  if (o.keepWrites) {
    // As a rollback does: the backup's change stream replayed into the restored copy before the swap.
    const { dirname } = await import("node:path");
    const k = await restoreKeepingWrites(o.file, {
      ...opts,
      reportDir: o.dir ?? dirname(o.file),
      changeStream: true,
    });
    r = k.restore;
    kept = describeKept(k);
  } else {
    r = await restoreBackup(o.file, opts);
    const stream = await streamOf(o.file);
    if (stream)
      kept =
        `note: the writes made after this backup were not replayed${r.previousDatabase ? ` (they are only in "${r.previousDatabase}")` : ""}; ` +
        `while its change stream ${stream.slot} exists, \`backup restore --keep-writes\` replays them before the swap`;
  }
  endBar();
  if (r.endedSessions)
    out(
      `ended ${r.endedSessions.length} session(s) before the safety backup` +
        (r.endedSessions.length ? `: ${r.endedSessions.map(describeSession).join(", ")}` : ""),
    );
  if (r.safety) out(`safety backup: ${r.safety.file}`);
  if (r.lateSessions)
    out(
      `warning: ${r.lateSessions.length} session(s) connected after the safety backup began (${r.lateSessions.map(describeSession).join(", ")}); ` +
        `what they wrote is only in the kept database "${r.previousDatabase}", not in the safety backup`,
    );
  out(
    r.previousDatabase
      ? `restored ${o.file} into "${r.database}"; the previous database is kept as "${r.previousDatabase}"`
      : `restored ${o.file} into the new database "${r.database}" (it did not exist)`,
  );
  if (kept) out(kept);
}

/** The databases a restore or rebuild keeps: `<db>_before_restore_<stamp>`, `<db>_before_rebuild_<stamp>`. */
export const KEPT_DATABASE = /^.+_before_(restore|rebuild)_\d{14}$/;

/**
 * `backup databases`: lists the old databases every restore and rebuild keeps (name, size), or drops one
 * named by `--drop` (only such a database; `--yes` or the name typed on a terminal).
 */
export async function runBackupDatabases(
  o: { databaseUrl?: string; drop?: string; yes?: boolean; json?: boolean },
  out: Out = stdout,
): Promise<void> {
  const url = await requireUrl(o);
  const { ConfigError } = await import("../../core/errors");
  const { connect } = await import("../../core/migrations/runner");
  const c = await connect(url, "safe-deploy backup databases");
  try {
    const { rows } = await c.query<{ name: string; bytes: string }>(
      `SELECT datname AS name, pg_database_size(oid)::text AS bytes FROM pg_database
        WHERE datname ~ '_before_(restore|rebuild)_[0-9]{14}$' ORDER BY datname`,
    );
    if (o.drop === undefined) {
      if (o.json)
        return out(
          JSON.stringify(
            rows.map((r) => ({ name: r.name, bytes: Number(r.bytes) })),
            null,
            2,
          ),
        );
      if (!rows.length) return out("no databases kept by a restore or rebuild on this server");
      for (const r of rows) out(`${r.name}  ${r.bytes} bytes`);
      return out(
        `${rows.length} kept database(s); once sure the restore is good, drop one with \`backup databases --drop NAME --yes\``,
      );
    }
    if (!KEPT_DATABASE.test(o.drop))
      throw new ConfigError(
        `\`--drop\` only drops a database a restore or rebuild kept (NAME_before_restore_STAMP or NAME_before_rebuild_STAMP), not "${o.drop}"`,
      );
    if (!rows.some((r) => r.name === o.drop))
      throw new ConfigError(
        `no database "${o.drop}" on this server; \`backup databases\` lists the kept ones: ${rows.map((r) => r.name).join(", ") || "(none)"}`,
      );
    if (!o.yes) {
      if (!process.stdin.isTTY)
        throw new ConfigError(`dropping database "${o.drop}" cannot be undone: pass \`--yes\` to confirm`);
      const { createInterface } = await import("node:readline/promises");
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const answer = await rl.question(`Drop database "${o.drop}" for good? Type its name: `);
      rl.close();
      if (answer.trim() !== o.drop) throw new ConfigError("drop cancelled: nothing was changed");
    }
    await c.query(`DROP DATABASE ${c.escapeIdentifier(o.drop)} WITH (FORCE)`);
    out(`dropped database "${o.drop}"`);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Options of `backup fetch`: where the off-site copies are (as in the stack's `backup.s3`). */
export interface FetchCmdOpts {
  bucket: string;
  prefix?: string;
  region?: string;
  endpoint?: string;
  pathStyle?: boolean;
  dir?: string;
  list?: boolean;
  name?: string;
  /** A backup name whose unsigned manifest (from an older safe-deploy) is accepted with a key set. */
  trustUnsigned?: string;
}

const stderr: Out = (l) => process.stderr.write(l + "\n");

/**
 * `backup fetch`: lists the off-site copies (`--list`), or downloads one (default: the newest) into
 * `--dir`, decrypting with $SAFE_DEPLOY_BACKUP_KEY, checked against its manifest; prints its path last.
 */
export async function runBackupFetch(
  o: FetchCmdOpts,
  out: Out = stdout,
  warn: Out = stderr,
): Promise<string | undefined> {
  const { ConfigError } = await import("../../core/errors");
  // The SDK prints 8 lines on Node < 22 on every run about its releases after January 2027; Node 20 is
  // supported here (package.json engines) and the SDK is pinned by the lockfile. Its own switch, unless set.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const { fetchBackup, inspectOffsite, listOffsite } = await import("../../core/backup/fetch");
  const { parseKey } = await import("../../core/backup/offsite");
  const target = {
    bucket: o.bucket,
    prefix: o.prefix ?? "safe-deploy/",
    region: o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
    endpoint: o.endpoint,
    forcePathStyle: !!o.pathStyle,
  };
  const keyText = process.env.SAFE_DEPLOY_BACKUP_KEY;
  if (o.list && keyText) {
    const all = await inspectOffsite(target, parseKey(keyText), o.trustUnsigned);
    if (!all.length) out(`no backups under s3://${target.bucket}/${target.prefix}`);
    for (const e of all) out(e.refused ? `${e.key}  REFUSED: ${e.refused}` : e.key);
    return undefined;
  }
  if (o.list) {
    warn(
      `SAFE_DEPLOY_BACKUP_KEY is not set: names and manifests under s3://${target.bucket}/${target.prefix} are shown as the store has them, unchecked`,
    );
    const keys = await listOffsite(target);
    if (!keys.length) out(`no backups under s3://${target.bucket}/${target.prefix}`);
    for (const k of keys) out(k);
    return undefined;
  }
  if (!o.dir) throw new ConfigError("`backup fetch` needs `--dir` (where the backup goes) or `--list`");
  const { byteProgress } = await import("../progress");
  const bar = byteProgress("fetching: downloaded");
  const r = await fetchBackup({
    target,
    dir: o.dir,
    name: o.name,
    encryptionKey: keyText ? parseKey(keyText) : undefined,
    trustUnsigned: o.trustUnsigned,
    warn,
    onProgress: bar.update,
  });
  bar.done();
  out(
    `fetched s3://${target.bucket}/${r.key}: ${r.manifest.sizeBytes} bytes, sha256 ${r.manifest.sha256} (matches its manifest)`,
  );
  out(r.file);
  return r.file;
}

const int =
  (name: string, min = 0) =>
  (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be a whole number of ${min} or more (got "${v}")`);
    }
    return n;
  };

function dbFlags(c: Command): Command {
  return c
    .option("--database-url <url>", "PostgreSQL URL (default $DATABASE_URL)")
    .addOption(
      new Option("--run-in <where>", "where pg tools run").choices(["local", "container"]).default("local"),
    )
    .option("--container <name>", "database container, with --run-in container")
    .option("--docker-host <host>", "DOCKER_HOST for --run-in container")
    .option(
      "--image <image>",
      "with --run-in container and no --container: a throwaway container of this image",
    );
}

/** Registers `backup create|list|verify|prune|restore|fetch`. */
export function register(program: Command): void {
  const backup = program
    .command("backup")
    .description("Take, list, verify, prune, restore and fetch backups; list or drop kept databases");
  dbFlags(
    backup
      .command("create")
      .description("Take a backup; prints its path as the last line")
      .requiredOption("--dir <dir>", "backup directory")
      .addOption(new Option("--label <label>", "label").choices(["pre-deploy", "manual", "safety"]))
      .addOption(
        new Option("--compression <c>", "compression").choices(["zstd", "gzip", "none"]).default("zstd"),
      ),
  ).action(async (o: CreateCmdOpts) => {
    await runBackupCreate(o);
  });
  backup
    .command("list")
    .description("List backups, newest first")
    .requiredOption("--dir <dir>", "backup directory")
    .option("--json", "JSON output")
    .action(async (o) => runBackupList(o));
  dbFlags(
    backup
      .command("verify")
      .description("Check checksum and readability; --restore-test restores into a scratch database")
      .argument("<file>", "backup file")
      .option("--restore-test", "restore into a scratch database and compare row counts"),
  ).action(async (file: string, o) => runBackupVerify({ ...o, file }));
  backup
    .command("prune")
    .description("Apply retention")
    .requiredOption("--dir <dir>", "backup directory")
    .option("--keep-days <n>", "keep backups younger than this", int("--keep-days"), 7)
    .option(
      "--keep-min <n>",
      "never keep fewer than this (1 or more: the newest is always kept)",
      int("--keep-min", 1),
      3,
    )
    .option("--dry-run", "only show what would be removed")
    .action(async (o) => runBackupPrune(o));
  dbFlags(
    backup
      .command("restore")
      .description("Restore a backup (safety backup first; the old database is kept)")
      .argument("<file>", "backup file")
      .option("--yes", "do not ask")
      .option("--dir <dir>", "where the safety backup goes (default: the backup's directory)")
      .option(
        "--into <database>",
        "restore into this database on the --database-url server; required when it is not the backup's own",
      )
      .option(
        "--keep-writes",
        "replay the writes made after the backup (its change stream) into the restored copy before the swap, as a rollback does",
      ),
  ).action(async (file: string, o) => runBackupRestore({ ...o, file }));
  backup
    .command("databases")
    .description("List the old databases restores and rebuilds keep (<db>_before_restore_*), or drop one")
    .option("--database-url <url>", "PostgreSQL URL of the server (default $DATABASE_URL)")
    .option("--drop <name>", "drop this kept database")
    .option("--yes", "with --drop: do not ask")
    .option("--json", "JSON output")
    .action(async (o) => runBackupDatabases(o));
  backup
    .command("fetch")
    .description(
      "Bring an off-site copy back (default: the newest), decrypted with $SAFE_DEPLOY_BACKUP_KEY and checked; prints its path last",
    )
    .argument("[name]", "backup file name, e.g. backup_20260101_120000_pre-deploy.pgdump.zst")
    .requiredOption("--bucket <bucket>", "the stack's backup.s3.bucket")
    .option("--prefix <prefix>", "the stack's backup.s3.prefix", "safe-deploy/")
    .option("--region <region>", "the bucket's region (default $AWS_REGION)")
    .option("--endpoint <url>", "an S3-compatible store's endpoint (MinIO, Filebase)")
    .option("--path-style", "path-style addressing (backup.s3.forcePathStyle)")
    .option("--dir <dir>", "where the backup goes")
    .option("--list", "only list the off-site backups, newest first")
    .option(
      "--trust-unsigned <name>",
      "with SAFE_DEPLOY_BACKUP_KEY: accept this backup's unsigned manifest (uploaded by an older safe-deploy); its object must still decrypt with the key",
    )
    .action(async (name: string | undefined, o) => {
      await runBackupFetch({ ...o, name });
    });
}
