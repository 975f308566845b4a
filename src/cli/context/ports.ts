// The real parts behind the orchestrator's ports (src/core/release/orchestrator.ts): config file, deploy
// lock, database backup and restore, soak, notifications, git worktrees, checkpoints and the logs.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import writeFileAtomic from "write-file-atomic";
import { createBackup } from "../../core/backup";
import { CannotRunError, CheckFailedError } from "../../core/errors";
import { runGate } from "../../core/health";
import { notifiersFrom, notifyAll } from "../../core/notify";
import { CheckpointStore } from "../../core/release/checkpoints";
import { acquireDeployLocks } from "../../core/release/db-lock";
import type { DeployPorts, NotifyType } from "../../core/release/orchestrator";
import { stackFile } from "./config";
import { readSchemaVersion } from "./database";
import { git } from "./git";
import { preflight } from "./preflight";
import type { ReleaseContext } from "./types";

const run = promisify(execFile);

/** A temporary worktree of `commit` with the project's dependencies (linked when the lockfile is the same). */
async function checkout(
  projectDir: string,
  commit: string,
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = join(await mkdtemp(join(tmpdir(), "safe-deploy-rollback-")), "program");
  await git(projectDir, ["worktree", "add", "--detach", dir, commit]);
  const remove = async () => {
    await git(projectDir, ["worktree", "remove", "--force", dir]).catch(() => undefined);
    await rm(dirname(dir), { recursive: true, force: true });
    await git(projectDir, ["worktree", "prune"]).catch(() => undefined);
  };
  try {
    for (const sub of [".", ...(await subPackages(dir))]) {
      const lock = (d: string) => readFile(join(d, sub, "package-lock.json"), "utf8").catch(() => "");
      const [theirs, ours] = await Promise.all([lock(dir), lock(projectDir)]);
      if (!theirs) continue;
      if (theirs === ours && existsSync(join(projectDir, sub, "node_modules"))) {
        await symlink(join(projectDir, sub, "node_modules"), join(dir, sub, "node_modules"), "dir");
      } else {
        await run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: join(dir, sub), maxBuffer: 64 << 20 });
      }
    }
  } catch (e) {
    await remove();
    throw new CannotRunError(`preparing the program of ${commit.slice(0, 12)}: ${(e as Error).message}`);
  }
  return { dir, remove };
}

/** Directories with their own package-lock.json one level below `examples/` (the demo app's migrations tool). */
async function subPackages(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const top of ["examples"]) {
    const entries = await readdir(join(dir, top), { withFileTypes: true }).catch(() => []);
    for (const e of entries)
      if (e.isDirectory() && existsSync(join(dir, top, e.name, "package.json"))) out.push(join(top, e.name));
  }
  return out;
}

/** The real ports of `ctx` for one command (`up` passes its flags). */
export function realPorts(
  ctx: ReleaseContext,
  o: { allowDirty?: boolean; allowMigrationEdits?: boolean; notifyDeadlineMs?: number; lockRenewMs?: number },
): DeployPorts {
  const { config, secrets, projectDir } = ctx;
  const file = stackFile(projectDir, ctx.stackName);
  const needDb = async () => {
    const db = await ctx.database();
    if (!db) {
      throw new CannotRunError(
        `cannot reach the database of stack "${ctx.stackName}": its container is not known yet (no deploy has finished)`,
      );
    }
    return db;
  };
  const hung = new Set<string>();
  const notifiers = notifiersFrom({
    logsDir: ctx.logsDir,
    slackWebhookUrl: secrets.slackWebhookUrl,
    webhookUrl: secrets.webhookUrl,
    webhookSecret: secrets.webhookSecret,
    smtpUrl: secrets.smtpUrl,
    email: config.notifications.email,
  });
  return {
    stack: ctx.stack,
    releases: ctx.ledger,
    config: {
      read: () => readFile(file, "utf8"),
      write: (text, dir) => writeFileAtomic(stackFile(dir ?? projectDir, ctx.stackName), text),
      snapshot: async () => {
        const original = await readFile(file, "utf8");
        return () => writeFileAtomic(file, original);
      },
    },
    lock: async (stack, command) => {
      // File lock (this checkout's state), then the database's (every clone); issue 15.
      const db = await ctx.database();
      const locks = await acquireDeployLocks(
        { stateDir: ctx.stateDir, stack, command: `safe-deploy ${command}`, warn: (m) => ctx.log.warn(m) },
        db && { url: db.url, target: db.target },
        {
          checkout: projectDir,
          commit: await git(projectDir, ["rev-parse", "HEAD"]).catch(() => ""),
          info: (m) => ctx.log.info(m),
        },
      );
      const handle = locks.file;
      // A long deploy keeps its lock alive; a dead one lets it expire. A renewal that fails is said once
      // (the lock was forced away, or the state directory became unwritable): another deploy may start.
      let told = false;
      const renew = () =>
        handle.renew().catch((e: unknown) => {
          if (told) return;
          told = true;
          const why = e instanceof Error ? e.message : String(e);
          const when = e instanceof CheckFailedError ? "" : ` (it expires at ${handle.info.expiresAt})`;
          ctx.log.warn(
            `could not renew the deploy lock of stack ${stack}${when}: ${why}. Another deploy of ${stack} could ` +
              `start alongside this one`,
          );
        });
      const timer = setInterval(() => void renew(), o.lockRenewMs ?? 10 * 60_000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await locks.release();
      };
    },
    preflight: () => preflight(ctx, !!o.allowDirty, !!o.allowMigrationEdits),
    database: {
      schemaVersion: async () => {
        const db = await ctx.database();
        return db ? readSchemaVersion(db, config) : undefined;
      },
      safetyBackup: async () => {
        const db = await needDb();
        const r = await createBackup({
          databaseUrl: db.url,
          dir: ctx.backupDir,
          label: "safety",
          compression: config.backup.compression,
          target: db.target,
        });
        ctx.log.info(`safety backup: ${r.file}`);
        return r.file;
      },
      restore: async (backupFile, safety) => {
        const db = await needDb();
        // Issue 20: the writes made after the backup are replayed from its change stream before the swap.
        const { restoreKeepingWrites, describeKept } = await import("../../core/release/changes");
        const k = await restoreKeepingWrites(backupFile, {
          databaseUrl: db.url,
          target: db.target,
          safetyFile: safety,
          reportDir: ctx.backupDir,
          changeStream: config.rollback.changeStream,
        });
        const r = k.restore;
        ctx.log.info(
          r.previousDatabase
            ? `restored ${backupFile}; the database as it was is kept as ${r.previousDatabase}`
            : `restored ${backupFile} into the new database ${r.database} (it did not exist)`,
        );
        if (k.replay) ctx.log.info(describeKept(k));
        else ctx.log.warn(describeKept(k));
        return k.replay ?? { lost: k.lost ?? "no change stream" };
      },
    },
    changes: {
      of: async (backupFile) => {
        if (!config.rollback.changeStream) return undefined;
        const { streamOf } = await import("../../core/release/changes");
        return streamOf(backupFile);
      },
      keep: async (releaseId, stream) => {
        const keepUntil = new Date(Date.now() + config.rollback.keepChangesMinutes * 60_000).toISOString();
        const { startWatcher } = await import("./changes");
        startWatcher(ctx, stream.slot, keepUntil);
        ctx.log.info(
          `change stream ${stream.slot} of ${releaseId} kept until ${keepUntil} for 'safe-deploy rollback --to' ` +
            `(dropped earlier at ${config.rollback.maxRetainedWalMB} MB of retained WAL)`,
        );
        return keepUntil;
      },
      sweep: async () => {
        const { pruneSlots } = await import("./changes");
        await pruneSlots(ctx, true);
      },
    },
    verify: async (url) => {
      const h = config.health;
      if (h.soakAttempts === 0) return;
      const target = config.health.url ?? `${url.replace(/\/$/, "")}${h.path}`;
      const r = await runGate({
        url: target,
        expectStatus: h.expectStatus,
        retries: h.soakAttempts,
        successThreshold: h.soakAttempts,
        delaySeconds: h.soakDelaySeconds,
        timeoutSeconds: h.timeoutSeconds,
      });
      if (!r.ok) throw new Error(`soak after cutover failed: ${r.message}`);
      ctx.log.info(`soak: ${target} answered healthy ${h.soakAttempts} time(s) in a row`);
    },
    notify: async (type: NotifyType, message, fields) => {
      const results = await notifyAll(
        notifiers.filter((n) => !hung.has(n.name)),
        {
          type,
          message,
          stack: ctx.stackName,
          commit: fields.commit,
          release: fields.release,
          time: new Date(),
          details: Object.fromEntries(
            Object.entries(fields).filter(([k]) => k !== "commit" && k !== "release"),
          ),
        },
        // notifyAll warns of each failed channel once, on the console and in the log file.
        { logger: ctx.log, deadlineMs: o.notifyDeadlineMs },
      );
      // A channel still silent at the deadline is skipped for the rest of the run: each later
      // notification (failure, rollback) would wait the whole deadline again, with the lock held.
      for (const r of results) {
        if (r.ok || r.attempts > 0) continue;
        hung.add(r.name);
        ctx.log.warn(
          `notifications via ${r.name} are skipped for the rest of this run: it did not answer in time`,
        );
      }
    },
    git: {
      head: () => git(projectDir, ["rev-parse", "HEAD"]),
      checkout: (commit) => checkout(projectDir, commit),
    },
    archiveCheckpoint: async (id, state) => {
      const store = new CheckpointStore(ctx.stateDir, ctx.stackName);
      const file = await store.write(id, state);
      // Pruned here, with the releases: the folder is synced to the backup bucket with --delete.
      const removed = await store.prune(await ctx.ledger.list());
      if (removed.length) ctx.fileLog.info(`checkpoints pruned: ${removed.join(", ")}`);
      return file;
    },
    log: {
      step: (m) => ctx.log.step(m),
      info: (m) => ctx.fileLog.info(m),
      warn: (m) => ctx.log.warn(m),
      error: (m) => ctx.log.error(m),
    },
  };
}
