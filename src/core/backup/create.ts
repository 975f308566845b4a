import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, open, rename, unlink } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { CannotRunError, ConfigError } from "../errors";
import { manifestPath, type Manifest } from "./manifest";
import { backupFileName, checkLabel, type Compression } from "./names";
import {
  dockerArgs,
  dockerEnv,
  pgFailure,
  localPgBin,
  parseDatabaseUrl,
  spawnPg,
  watch,
  type RunTarget,
} from "./runner";
import { mergeRowCounts, openSnapshot } from "./session";
import { createReleaseSlot, type ReleaseSlot } from "../changes/slot";
import { archiveTableSums, compressor, DUMP_TEXT_ENV, fileSink, hasher } from "./streams";
import { execFileSync } from "node:child_process";

/** Options of one backup. */
export interface CreateOptions {
  databaseUrl: string;
  dir: string;
  label?: string;
  compression?: Compression;
  target?: RunTarget;
  /** Clock for the name (tests). */
  now?: Date;
  /** Called as the dump streams, with the bytes pg_dump has written so far (a progress display). */
  onProgress?: (bytes: number) => void;
  /**
   * The release's change stream (issue 20): create this logical slot and dump from its exported
   * snapshot, so the dump and the slot meet at one LSN. A server or role that cannot have one (wal_level,
   * REPLICATION right) gives a backup as before, with the reason in `BackupResult.changesSkipped`.
   */
  changeSlot?: string;
  /** How long creating the slot may wait for transactions already running (default 60 s). */
  changeSlotWaitMs?: number;
  /**
   * `rollback.requireNoLoss`: no stream, no backup. The create fails (before any migration runs)
   * instead of going on with a rollback that would lose the writes made after the deploy.
   */
  requireChanges?: boolean;
}

/** A finished backup: the file, its manifest path and the manifest. */
export interface BackupResult {
  file: string;
  manifestFile: string;
  manifest: Manifest;
  /** Why no change stream was opened though one was asked for (the error, first line). */
  changesSkipped?: string;
}

/** Major version of a `pg_dump --version` line, e.g. "pg_dump (PostgreSQL) 15.8 (Debian...)" -> 15. */
export function toolMajor(versionLine: string): number {
  const m = /\)\s+(\d+)(?:\.(\d+))?/.exec(versionLine);
  return m ? Number(m[1]) : NaN;
}

/** The version line of the pg_dump that runs for `target`. */
function pgDumpVersion(target: RunTarget): string {
  if (target.runIn === "container") {
    try {
      return execFileSync("docker", dockerArgs(target, [], "pg_dump", ["--version"]), {
        encoding: "utf8",
        env: dockerEnv(target),
        stdio: ["ignore", "pipe", "pipe"],
      }).trim();
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      const err = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim();
      const where = target.container ? `container "${target.container}"` : `image "${target.image}"`;
      throw new CannotRunError(
        `cannot run pg_dump in ${where}${target.dockerHost ? ` on ${target.dockerHost}` : ""}: ${err}`,
      );
    }
  }
  const bin = localPgBin();
  try {
    return execFileSync(bin ? `${bin}/pg_dump` : "pg_dump", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    throw new CannotRunError("pg_dump not found on this machine; install postgresql-client or set PG_BIN");
  }
}

/** Writes `path` atomically: temp file, fsync, rename (0600). */
async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = join(resolve(path, ".."), `.${basename(path)}.tmp-${randomBytes(4).toString("hex")}`);
  const fh = await open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * Takes one backup: pg_dump (custom format, from a snapshot whose exact row counts go in the manifest)
 * -> compression -> sha256 -> a temp file in `dir` -> fsync -> atomic rename; then `NAME.json`.
 * Nothing is held in memory; on any failure the temp file is removed, so no half-written backup exists.
 */
export async function createBackup(o: CreateOptions): Promise<BackupResult> {
  const target: RunTarget = o.target ?? { runIn: "local" };
  const compression = o.compression ?? "zstd";
  const label = o.label === undefined ? undefined : checkLabel(o.label);
  const conn = parseDatabaseUrl(o.databaseUrl);
  const dir = resolve(o.dir);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ENOTDIR") {
      throw new ConfigError(
        `backup directory ${dir} (or a parent) exists and is not a directory: pass another \`--dir\` (\`backup.dir\` in the stack config)`,
      );
    }
    throw new CannotRunError(`cannot create the backup directory ${dir}: ${(e as Error).message}`);
  }

  const dumpVersion = pgDumpVersion(target);
  let slot: ReleaseSlot | undefined;
  let changesSkipped: string | undefined;
  if (o.changeSlot) {
    try {
      // Refused (no stream then) on a server below wal_level=logical, or while a table has no primary
      // key or replica identity: with the publication, PostgreSQL would refuse the app's UPDATE/DELETE there.
      slot = await createReleaseSlot(target, conn, o.changeSlot, { waitMs: o.changeSlotWaitMs });
    } catch (e) {
      changesSkipped = String((e as Error)?.message ?? e).split("\n")[0];
      if (o.requireChanges)
        throw new CannotRunError(
          `rollback.requireNoLoss: no backup was taken, since a rollback of this deploy could lose writes: ` +
            `${changesSkipped}. Fix that, or set \`rollback.requireNoLoss: false\` to deploy anyway`,
        );
    }
  }
  let snap: Awaited<ReturnType<typeof openSnapshot>>;
  try {
    snap = await openSnapshot(target, conn, slot?.snapshot);
  } catch (e) {
    await slot?.abort().catch(() => {});
    throw e;
  }
  let tmp: string | undefined;
  let done = false;
  try {
    const serverMajor = Math.floor(snap.serverVersionNum / 10000);
    if (toolMajor(dumpVersion) < serverMajor) {
      throw new CannotRunError(
        `local ${dumpVersion} is older than the server (PostgreSQL ${snap.serverVersion}) and cannot dump it; ` +
          'run pg_dump inside the database container (`runIn: "container"` / `--run-in container --container NAME`) ' +
          `or, for an external database, in a throwaway container of its version (\`--run-in container --image postgres:${serverMajor}\`), ` +
          `or install PostgreSQL ${serverMajor} client tools`,
      );
    }
    const now = o.now ?? new Date();
    let name = backupFileName(now, compression, label);
    let file = join(dir, name);
    tmp = join(dir, `.${name}.tmp-${randomBytes(4).toString("hex")}`);
    const fh = await open(tmp, "wx", 0o600);
    const h = hasher();
    const dump = spawnPg(target, "pg_dump", ["-Fc", "-Z0", `--snapshot=${snap.snapshot}`, "--no-sync"], {
      ...conn,
      env: { ...conn.env, ...DUMP_TEXT_ENV },
    });
    const dw = watch(dump);
    dump.stdin!.end();
    // Each table's checksum and row count are taken from the dump as it streams (issue 18): summed and
    // counted by the server beside pg_dump, every row was read a second time, competing for the same
    // cores. The server counts only what the archive does not carry (see countsBesideStream).
    const sums = archiveTableSums();
    const besides = sums.toc.then((tables) => (tables ? snap.countsBesideStream(tables) : undefined));
    besides.catch(() => {});
    // pg_dump cannot join a snapshot whose session already failed (say, on a table the role may not
    // read): that session's own error is the cause, not pg_dump's "invalid snapshot identifier".
    const dumpFailure = async (code: number) => {
      const stderr = dw.stderr();
      if (/invalid snapshot identifier/.test(stderr)) {
        const cause = await besides.then(
          () => undefined,
          (e: unknown) => e,
        );
        if (cause) return cause;
      }
      return pgFailure("pg_dump", stderr || `pg_dump exited with ${code}`, conn, target);
    };
    if (o.onProgress) {
      let bytes = 0;
      dump.stdout!.on("data", (c: Buffer) => o.onProgress!((bytes += c.length)));
    }
    const comp = compressor(compression);
    try {
      await pipeline(dump.stdout!, sums.stream, comp.stream, h.stream, fileSink(fh));
      await comp.done;
      const code = await dw.done;
      if (code !== 0) throw await dumpFailure(code);
    } catch (e) {
      // Killed here, pg_dump exits non-zero whatever happened: only one that had ended by itself failed.
      const dumpEnded = dump.exitCode !== null || dump.signalCode !== null;
      dump.kill("SIGKILL");
      const err = e as NodeJS.ErrnoException;
      if (err.code === "ENOSPC") {
        throw new CannotRunError(
          `no space left in ${dir} while writing the backup; free space or use another \`--dir\``,
        );
      }
      if (err instanceof CannotRunError) throw err;
      const code = await dw.done;
      if (dumpEnded && code !== 0) throw await dumpFailure(code);
      throw new CannotRunError(`writing the backup to ${dir} failed: ${err.message}`);
    } finally {
      await fh.close().catch(() => {});
    }
    const read = sums.result();
    const side = await besides;
    let rowCounts: Record<string, number>;
    if (read.unreadable || !side) rowCounts = await snap.rowCounts();
    else {
      const { counts, missing } = mergeRowCounts(side.rows, side.parts, read.rowCounts);
      rowCounts = missing.length ? { ...counts, ...(await snap.countTables(missing)) } : counts;
    }
    // An archive the reader cannot follow (a pg_dump newer than it knows): summed by the server as
    // before, in the snapshot still held, as a version 1 manifest.
    const tableChecksums = read.unreadable ? await snap.tableChecksums() : read.sums;
    // Known before the file is named: a failure here leaves no backup without its manifest.
    const byteaOutput = read.unreadable ? undefined : snap.byteaOutput;
    // link, not rename: never replaces an existing backup. Two backups in one second with one label
    // (a safety backup right after a manual one) get `-2`, `-3`... rather than failing the second.
    for (let n = 2; ; n++) {
      try {
        await link(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw linkFailure(e, dir);
        if (n > 20)
          throw new CannotRunError(`${file} already exists; wait a second or use another \`--label\``);
        name = backupFileName(now, compression, label ? `${label.slice(0, 36)}-${n}` : String(n));
        file = join(dir, name);
      }
    }
    await unlink(tmp);
    tmp = undefined;
    await fsyncDir(dir);
    const manifest: Manifest = {
      version: read.unreadable ? 1 : 2,
      file: name,
      sha256: h.hash.digest("hex"),
      sizeBytes: h.bytes(),
      ...(read.bytes ? { archiveBytes: read.bytes } : {}),
      ...(read.unreadable ? {} : { tableBytes: read.tableBytes }),
      createdAt: now.toISOString(),
      database: conn.database,
      serverVersion: snap.serverVersion,
      serverVersionNum: snap.serverVersionNum,
      pgDumpVersion: dumpVersion,
      format: "custom",
      compression,
      ...(label ? { label } : {}),
      rowCounts,
      tableChecksums,
      ...(read.unreadable || !read.encoding ? {} : { encoding: read.encoding }),
      ...(byteaOutput === "escape" ? { byteaOutput } : {}),
      ...(slot ? { changes: { slot: slot.slot, startLsn: slot.startLsn } } : {}),
    };
    const mf = manifestPath(file);
    await writeFileAtomic(mf, JSON.stringify(manifest, null, 2) + "\n");
    await fsyncDir(dir);
    done = true;
    return { file, manifestFile: mf, manifest, ...(changesSkipped ? { changesSkipped } : {}) };
  } finally {
    if (tmp) await unlink(tmp).catch(() => {});
    try {
      await (done ? snap.close() : snap.abort());
    } finally {
      // A failed or cancelled backup leaves no slot: nothing could ever replay it, and it holds WAL.
      if (slot) await (done ? slot.close() : slot.abort());
    }
  }
}

/**
 * What a failed hard link of a finished backup into `dir` means: a filesystem without hard links
 * (FAT, exFAT, many network shares answer EPERM or ENOTSUP) is named with the fix; any other error
 * is returned as it is.
 */
export function linkFailure(e: unknown, dir: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") return e;
  return new ConfigError(
    `${dir} is on a filesystem that refuses hard links (${code}): safe-deploy links each finished backup into place, so that it never replaces another file; choose a backup directory on a local Linux filesystem (ext4, xfs, btrfs, tmpfs)`,
  );
}
