// A PostgreSQL major upgrade as a guarded operation (issue 15): a server refuses a data directory of
// another major, so the data moves by dump and restore into a new volume; the old volume is kept.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { createBackup, type BackupResult } from "../backup/create";
import { catchingSignals } from "../backup/interrupt";
import { restoreBackup } from "../backup/restore";
import { parseDatabaseUrl, type Conn, type RunTarget } from "../backup/runner";
import { countRows, runSql } from "../backup/session";
import { rowCountDifferences, tableChecksumsLike } from "../backup/verify";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import type { Logger } from "../log/logger";
import { redact } from "../log/redact";
import { ident } from "./quote";

const run = promisify(execFile);

/**
 * Major version named by an image's tag: `postgres:16` -> 16, `postgres:16.4-bookworm` -> 16,
 * `registry:5000/pg/postgres:17-alpine` -> 17. Undefined when the tag does not say (`latest`, a
 * digest, no tag): the caller then asks the image itself (`postgres --version`). Pure.
 */
export function imageMajor(image: string): number | undefined {
  const noDigest = image.split("@")[0];
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  if (colon <= slash) return undefined;
  const m = /^(\d+)(?:[.\-_]|$)/.exec(noDigest.slice(colon + 1));
  return m ? Number(m[1]) : undefined;
}

/** Major of `SHOW server_version_num` (150008 -> 15, 90624 -> 9) or of `postgres --version`. Pure. */
export function serverMajor(version: string): number | undefined {
  const s = version.trim();
  if (/^\d{5,6}$/.test(s)) return Math.floor(Number(s) / 10000);
  const m = /\(PostgreSQL\)\s+(\d+)/.exec(s) ?? /^(\d+)(?:\.\d+)*$/.exec(s);
  return m ? Number(m[1]) : undefined;
}

/** The fixed Docker name of a stack's first database volume: `<project>-<stack>-pgdata`. Pure. */
export function dataVolumeName(project: string, stack: string): string {
  return `${project}-${stack}-pgdata`.replace(/[^A-Za-z0-9_.-]/g, "-").replace(/^[^A-Za-z0-9]+/, "");
}

/**
 * The data volume for a major reached by an upgrade: `<base>-<major>` (`app-prod-pgdata-17`). The first
 * major keeps the base name, so stacks that never upgrade keep the volume they have. Pure.
 */
export function upgradedVolumeName(base: string, major: number): string {
  return `${base.replace(/-\d+$/, "")}-${major}`;
}

/**
 * Why a deploy must not go on: the configured image's major differs from the running server's, and a
 * new server cannot start on the old data directory (it would leave the database down). Undefined when
 * they match or either is unknown. Preflight calls it with the running container's version. Pure.
 */
export function majorUpgradeProblem(o: {
  stack: string;
  /** `database.image` in the stack config. */
  image: string;
  /** Major of the running server (`SHOW server_version_num`, or the image's `postgres --version`). */
  runningMajor: number | undefined;
  /** Major of `image` when the tag does not say it (asked from the image). */
  imageMajor?: number;
}): string | undefined {
  const configured = o.imageMajor ?? imageMajor(o.image);
  if (o.runningMajor === undefined || configured === undefined || configured === o.runningMajor)
    return undefined;
  return (
    `database.image ${o.image} is PostgreSQL ${configured} but the running database is PostgreSQL ${o.runningMajor}: ` +
    `a server cannot start on another major's data directory, so this deploy would leave the database down. ` +
    `Run \`safe-deploy db upgrade --stack ${o.stack} --to ${o.image}\` (backup, restore into a new volume, verified), ` +
    `or set database.image back to a PostgreSQL ${o.runningMajor} image`
  );
}

/** Runs `docker ...` (DOCKER_HOST from `dockerHost`); trimmed stdout, or CannotRunError with stderr. */
async function docker(
  args: string[],
  what: string,
  dockerHost?: string,
  env: Record<string, string> = {},
): Promise<string> {
  try {
    const { stdout } = await run("docker", args, {
      env: { ...process.env, ...env, ...(dockerHost ? { DOCKER_HOST: dockerHost } : {}) },
      timeout: 10 * 60_000,
      maxBuffer: 64 << 20,
    });
    return stdout.trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new CannotRunError(`${what} failed: ${redact((err.stderr || err.message).trim())}`);
  }
}

/** Major of the server in `container` (`SHOW server_version_num` over `docker exec`). */
export async function runningMajor(target: RunTarget, databaseUrl: string): Promise<number> {
  const out = await runSql(
    target,
    parseDatabaseUrl(databaseUrl),
    "SHOW server_version_num;",
    "reading the server version",
  );
  const major = serverMajor(out);
  if (major === undefined) throw new CannotRunError(`unexpected server_version_num "${out.trim()}"`);
  return major;
}

/** Major of the data directory `container` runs on (`$PGDATA/PG_VERSION`, no credentials needed). */
export async function dataDirectoryMajor(container: string, dockerHost?: string): Promise<number> {
  const out = await docker(
    ["exec", container, "sh", "-c", 'cat "${PGDATA:-/var/lib/postgresql/data}/PG_VERSION"'],
    `reading PG_VERSION in container ${container}`,
    dockerHost,
  );
  const major = serverMajor(out);
  if (major === undefined)
    throw new CannotRunError(`unexpected PG_VERSION "${out}" in container ${container}`);
  return major;
}

const DATA_DIR = "/var/lib/postgresql/data";

/** What Docker (and the config schema's `database.volumeName`) accepts as a volume name. */
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Label on an upgraded volume naming the volume the upgrade started from (where a rollback goes). */
export const PREVIOUS_VOLUME_LABEL = "safe-deploy.previous-volume";

/** The named volume `container` has at the data directory, or undefined (a bind mount, none). */
async function mountedVolume(container: string, dockerHost?: string): Promise<string | undefined> {
  const format = `{{range .Mounts}}{{if eq .Destination "${DATA_DIR}"}}{{.Name}}{{end}}{{end}}`;
  const out = await docker(["inspect", "--format", format, container], "docker inspect", dockerHost);
  return out || undefined;
}

/** Major of the data in `volume` (its PG_VERSION, read with `image`), or null when it holds none. */
async function volumeMajor(volume: string, image: string, dockerHost?: string): Promise<number | null> {
  const out = await docker(
    [
      "run",
      "--rm",
      "--network",
      "none",
      "-v",
      `${volume}:/d:ro`,
      "--entrypoint",
      "sh",
      image,
      "-c",
      "cat /d/PG_VERSION 2>/dev/null || true",
    ],
    `reading PG_VERSION in volume ${volume}`,
    dockerHost,
  );
  return serverMajor(out) ?? null;
}

/**
 * {@link majorUpgradeProblem} for a live stack, before a deploy: the major of the data the deploy will
 * mount (`volumeName` when set and not the running container's volume, as after `db upgrade`; else the
 * running container's) against `image`'s (its tag, else `postgres --version` in it). Also refuses a
 * `volumeName` that does not exist or holds no data: the deploy would start an empty database. Undefined
 * before the first deploy (no container) or when Docker cannot be read (preflight reports Docker itself).
 */
export async function databaseMajorProblem(o: {
  stack: string;
  image: string;
  container: string | undefined;
  /** `database.volumeName` as configured (undefined: the default, the container's own). */
  volumeName?: string;
  dockerHost?: string;
}): Promise<string | undefined> {
  if (!o.container) return undefined;
  const container = o.container;
  const mounted = await mountedVolume(container, o.dockerHost).catch(() => undefined);
  // No volumeName on a stack whose database runs on an upgraded volume: a rollback to the release before
  // the upgrade, which mounts the volume the upgrade started from (recorded on the new volume's label).
  const previous =
    !o.volumeName && mounted
      ? await docker(
          ["volume", "inspect", "--format", `{{index .Labels "${PREVIOUS_VOLUME_LABEL}"}}`, mounted],
          "docker volume inspect",
          o.dockerHost,
        ).catch(() => "")
      : "";
  const volumeName = o.volumeName ?? (previous || undefined);
  let dataMajor: number | undefined;
  if (volumeName && mounted && volumeName !== mounted) {
    const exists = await docker(
      ["volume", "inspect", volumeName],
      "docker volume inspect",
      o.dockerHost,
    ).then(
      () => true,
      () => false,
    );
    const containerImage = await docker(
      ["inspect", "--format", "{{.Image}}", container],
      "docker inspect",
      o.dockerHost,
    ).catch(() => "");
    const major =
      exists && containerImage
        ? await volumeMajor(volumeName, containerImage, o.dockerHost).catch(() => undefined)
        : null;
    if (major === null)
      return (
        `database.volumeName ${volumeName} ${exists ? "holds no PostgreSQL data" : "does not exist"} while the database runs on ${mounted}: ` +
        `this deploy would start an empty database. Set database.volumeName back to ${mounted} (or remove the key if that is the default), ` +
        `or move the data with \`safe-deploy db upgrade --stack ${o.stack} --to IMAGE\``
      );
    dataMajor = major;
  } else {
    dataMajor = await dataDirectoryMajor(container, o.dockerHost).catch(() => undefined);
  }
  if (dataMajor === undefined) return undefined;
  const configured =
    imageMajor(o.image) ?? (await imageServerMajor(o.image, o.dockerHost).catch(() => undefined));
  return majorUpgradeProblem({
    stack: o.stack,
    image: o.image,
    runningMajor: dataMajor,
    imageMajor: configured,
  });
}

/**
 * Preflight's guard: throws {@link databaseMajorProblem}'s problem as a ConfigError (exit 2), before the
 * lock and the release record, since nothing about this deploy can start until the data is moved.
 */
export async function refuseMajorChange(o: Parameters<typeof databaseMajorProblem>[0]): Promise<void> {
  const problem = await databaseMajorProblem(o);
  if (problem) throw new ConfigError(problem);
}

/** Major of the server an image runs (`docker run --rm IMAGE postgres --version`). */
export async function imageServerMajor(image: string, dockerHost?: string): Promise<number> {
  const out = await docker(
    ["run", "--rm", "--network", "none", "--entrypoint", "postgres", image, "--version"],
    `asking image ${image} for its PostgreSQL version`,
    dockerHost,
  );
  const major = serverMajor(out);
  if (major === undefined)
    throw new ConfigError(
      `\`--to\` ${image} does not look like a PostgreSQL image (postgres --version said "${out}")`,
    );
  return major;
}

/** The roles of the old server (`pg_dumpall --roles-only`), without the bootstrap superuser's CREATE. */
export function rolesScript(dump: string, superuser: string): string {
  const quoted = ident(superuser);
  // The new server's initdb made the bootstrap user already; its ALTER ROLE (password, attributes) stays.
  return dump
    .split("\n")
    .filter((l) => l !== `CREATE ROLE ${superuser};` && l !== `CREATE ROLE ${quoted};`)
    .join("\n");
}

async function dumpRoles(target: RunTarget, conn: Conn): Promise<string> {
  const env = { ...conn.env, PGDATABASE: "postgres" };
  return new Promise((resolve, reject) => {
    const child = spawn(
      "docker",
      [
        "exec",
        ...Object.keys(env).flatMap((k) => ["-e", k]),
        target.container!,
        "pg_dumpall",
        "--roles-only",
      ],
      { env: { ...process.env, ...env, ...(target.dockerHost ? { DOCKER_HOST: target.dockerHost } : {}) } },
    );
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err = (err + d).slice(-4000)));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve(out)
        : reject(
            new CannotRunError(
              `pg_dumpall --roles-only in ${target.container} failed: ${redact(err.trim())}`,
            ),
          ),
    );
  });
}

/** Tables whose value (row count or content checksum) differs between two snapshots, sorted. Pure. */
export function changedTables<T>(before: Record<string, T>, now: Record<string, T>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(now)])]
    .filter((k) => before[k] !== now[k])
    .sort();
}

/** Options of {@link upgradeDatabase}. */
export interface UpgradeOptions {
  /** The running database container (old major). */
  container: string;
  /** URL of the database as seen from inside the container (`postgres://user:pass@127.0.0.1:5432/db`). */
  databaseUrl: string;
  /** The new image (`database.image` to be). */
  toImage: string;
  /** The new data volume (must not exist yet). */
  volumeName: string;
  /** Where the `pre-upgrade` backup goes. */
  backupDir: string;
  dockerHost?: string;
  /** Labels put on the new volume (e.g. the stack's), besides `safe-deploy.upgraded-from`. */
  volumeLabels?: Record<string, string>;
  log?: Logger;
  now?: Date;
  /** Called after each step (`backup`, `restored`): a test hook to act at a known point. */
  onStep?: (step: "backup" | "restored") => Promise<void>;
}

/** What an upgrade did. */
export interface UpgradeResult {
  fromMajor: number;
  toMajor: number;
  /** The backup taken with the old server (label `pre-upgrade`). */
  backup: BackupResult;
  /** The new volume, holding the restored and verified data. */
  volumeName: string;
  /** Row counts per table, as verified on the new server. */
  rowCounts: Record<string, number>;
}

async function waitReady(
  container: string,
  dockerHost: string | undefined,
  deadlineMs: number,
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let last = "";
  while (Date.now() < deadline) {
    // TCP on 127.0.0.1: the entrypoint's init phase listens on the socket only, so this waits it out.
    const ok = await docker(
      ["exec", container, "pg_isready", "-h", "127.0.0.1", "-p", "5432"],
      "pg_isready",
      dockerHost,
    ).then(
      () => true,
      (e: Error) => ((last = e.message), false),
    );
    if (ok) return;
    const state = await docker(
      ["inspect", "--format", "{{.State.Running}}", container],
      "docker inspect",
      dockerHost,
    ).catch(() => "false");
    if (state !== "true") {
      const logs = await docker(["logs", "--tail", "20", container], "docker logs", dockerHost).catch(
        () => "",
      );
      throw new CannotRunError(
        `the temporary ${container} stopped before it was ready: ${redact(logs || last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new CannotRunError(`the temporary ${container} was not ready within ${deadlineMs / 1000} s: ${last}`);
}

/**
 * Moves the database to a new major: (1) a `pre-upgrade` backup with the OLD server; (2) a new volume and
 * a temporary container of the NEW image on it, with no network at all (the tools run in it through
 * `docker exec`); (3) the old server's roles, then the backup restored; (4) every table's row count
 * checked against the manifest and the server's major against the image's; (5) the temporary container
 * removed. The old container and volume are never touched. On any failure the new volume (which holds
 * nothing but this run's partial copy) is removed, and the error says what failed.
 */
export async function upgradeDatabase(o: UpgradeOptions): Promise<UpgradeResult> {
  return catchingSignals(async (interrupted) => {
    try {
      return await upgradeSteps(o, interrupted);
    } catch (e) {
      const sig = interrupted();
      if (!sig) throw e;
      throw new CannotRunError(
        `upgrade interrupted by ${sig}: nothing was switched (the stack config is unchanged), the new volume ` +
          `${o.volumeName} and the temporary container were removed; run \`safe-deploy db upgrade\` again`,
      );
    }
  });
}

async function upgradeSteps(
  o: UpgradeOptions,
  interrupted: () => NodeJS.Signals | undefined,
): Promise<UpgradeResult> {
  const stopIfInterrupted = () => {
    if (interrupted()) throw new CannotRunError(`interrupted by ${interrupted()}`);
  };
  const conn = parseDatabaseUrl(o.databaseUrl);
  const old: RunTarget = { runIn: "container", container: o.container, dockerHost: o.dockerHost };
  const step = (s: string) => o.log?.info(s);
  const fromMajor = await runningMajor(old, o.databaseUrl);
  const toMajor = await imageServerMajor(o.toImage, o.dockerHost);
  if (toMajor < fromMajor)
    throw new ConfigError(
      `\`--to\` ${o.toImage} is PostgreSQL ${toMajor}, older than the running PostgreSQL ${fromMajor}: a downgrade is a restore of a backup taken before the upgrade (\`safe-deploy rollback\`), not an upgrade`,
    );
  if (!VOLUME_NAME.test(o.volumeName))
    throw new ConfigError(
      `\`--volume\` "${o.volumeName}" is not a Docker volume name: letters, digits, _ . - (starting with a letter or digit)`,
    );
  // `volume inspect` matches the exact name (a `--filter name=` is a regular expression).
  const exists = await docker(
    ["volume", "inspect", o.volumeName],
    "docker volume inspect",
    o.dockerHost,
  ).then(
    () => true,
    () => false,
  );
  if (exists)
    throw new ConfigError(
      `volume ${o.volumeName} already exists (an earlier upgrade?): check what it holds, remove it with \`docker volume rm ${o.volumeName}\` if it is not needed, or pass another \`--volume\``,
    );

  step(`upgrade: backup of PostgreSQL ${fromMajor} (label pre-upgrade)`);
  const backup = await createBackup({
    databaseUrl: o.databaseUrl,
    dir: o.backupDir,
    label: "pre-upgrade",
    target: old,
    now: o.now,
  });
  step(`upgrade: backup ${backup.file} (${Object.keys(backup.manifest.rowCounts).length} tables)`);
  await o.onStep?.("backup");
  stopIfInterrupted();
  const roles = rolesScript(await dumpRoles(old, conn), conn.user);

  const from = await mountedVolume(o.container, o.dockerHost).catch(() => undefined);
  const labels = {
    "safe-deploy.upgraded-from": o.container,
    ...(from ? { [PREVIOUS_VOLUME_LABEL]: from } : {}),
    ...o.volumeLabels,
  };
  await docker(
    [
      "volume",
      "create",
      ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
      o.volumeName,
    ],
    `creating volume ${o.volumeName}`,
    o.dockerHost,
  );
  const temp = `${o.volumeName}-upgrade-${randomBytes(3).toString("hex")}`;
  let done = false;
  try {
    step(`upgrade: PostgreSQL ${toMajor} in temporary container ${temp} on ${o.volumeName}`);
    // The password travels in the docker CLI's environment (`-e NAME`), never on its command line.
    await docker(
      [
        "run",
        "-d",
        "--name",
        temp,
        "--network",
        "none",
        "-e",
        "POSTGRES_USER",
        "-e",
        "POSTGRES_PASSWORD",
        "-e",
        "POSTGRES_DB=postgres",
        "-v",
        `${o.volumeName}:/var/lib/postgresql/data`,
        o.toImage,
      ],
      `starting ${o.toImage}`,
      o.dockerHost,
      { POSTGRES_USER: conn.user, POSTGRES_PASSWORD: conn.password },
    );
    await waitReady(temp, o.dockerHost, 120_000);
    const target: RunTarget = { runIn: "container", container: temp, dockerHost: o.dockerHost };
    const admin = {
      ...conn,
      env: { ...conn.env, PGHOST: "127.0.0.1", PGPORT: "5432", PGDATABASE: "postgres" },
    };
    await runSql(target, admin, roles, "creating the old server's roles");
    const newUrl = new URL(o.databaseUrl);
    newUrl.hostname = "127.0.0.1";
    newUrl.port = "5432";
    step(`upgrade: restoring into PostgreSQL ${toMajor}`);
    await restoreBackup(backup.file, { databaseUrl: newUrl.toString(), target });
    const newConn = parseDatabaseUrl(newUrl.toString());
    const version = serverMajor(
      await runSql(target, newConn, "SHOW server_version_num;", "reading the new server version"),
    );
    if (version !== toMajor)
      throw new CheckFailedError(`the new server reports PostgreSQL ${version}, not ${toMajor}`);
    const counts = await countRows(target, newConn);
    const diff = rowCountDifferences(backup.manifest.rowCounts, counts);
    if (diff.length)
      throw new CheckFailedError(
        `row counts differ after the restore into PostgreSQL ${toMajor}: ${diff.join("; ")}`,
      );
    await o.onStep?.("restored");
    stopIfInterrupted();
    // The copy is of the backup's moment: a write to the old database since then would be left behind on
    // the old volume when the deploy switches, so the old tables must still match the backup exactly.
    const oldConn = parseDatabaseUrl(o.databaseUrl);
    const before = backup.manifest.tableChecksums;
    const late = before
      ? changedTables(before, await tableChecksumsLike(backup.manifest, old, oldConn))
      : changedTables(backup.manifest.rowCounts, await countRows(old, oldConn));
    if (late.length)
      throw new CheckFailedError(
        `the database was written to during the upgrade (${late.join(", ")} changed since the pre-upgrade backup): ` +
          "those writes would stay behind on the old volume. Stop the app (or put it in maintenance) and run `safe-deploy db upgrade` again; nothing was switched",
      );
    step(`upgrade: ${Object.keys(counts).length} tables verified on PostgreSQL ${toMajor}`);
    stopIfInterrupted();
    done = true;
    return { fromMajor, toMajor, backup, volumeName: o.volumeName, rowCounts: counts };
  } finally {
    await docker(["rm", "-f", "-v", temp], "removing the temporary container", o.dockerHost).catch(() => {});
    if (!done || interrupted())
      await docker(["volume", "rm", o.volumeName], "removing the new volume", o.dockerHost).catch(() => {});
  }
}
