// The guarded deploy and its rollback (issue 6, docs/architecture.md "Rollback: re-apply the previous release").
// Pulumi-free: every outside part is a port, so the CLI wires the real engines and tests wire real
// PostgreSQL/HTTP behind the same ports with a recording fake of the stack.
import { catchingSignals } from "../backup/interrupt";
import { CannotRunError } from "../errors";
import type { Ledger, ReleaseRecord, Stage } from "./ledger";
import { pinReleaseImage } from "./pin-image";
import { describeStep, rollbackPlan, type RollbackStep } from "./plan";
import type { StackAccess, StepEvent } from "./stack-port";

/** What a rollback with restore did with the writes made after the backup (issue 20). */
export type WritesAfterBackup = NonNullable<ReleaseRecord["replay"]>;

/** The notification field about those writes. Pure. */
export function writesField(w: WritesAfterBackup | undefined): Record<string, string> {
  if (!w) return {};
  if (w.lost !== undefined) return { writesAfterBackup: `NOT replayed: ${w.lost}` };
  return {
    writesAfterBackup:
      `${w.applied ?? 0} replayed (${w.transactions ?? 0} transaction(s)), ${w.reported ?? 0} reported` +
      (w.reportJson ? ` in ${w.reportJson}` : "") +
      (w.reportSql ? ` (re-insert with ${w.reportSql})` : ""),
  };
}

/** Notification types of the users' scripts. */
export type NotifyType = "INFO" | "SUCCESS" | "WARNING" | "ERROR" | "ROLLBACK_SUCCESS" | "ROLLBACK_FAILED";

/** Everything the orchestrator needs from outside. */
export interface DeployPorts {
  stack: StackAccess;
  releases: Pick<Ledger, "create" | "update" | "markResult" | "lastGood">;
  /** The stack's `Pulumi.<stack>.yaml`: recorded with each release, written back to re-apply one. */
  config: {
    read(): Promise<string>;
    write(text: string, dir?: string): Promise<void>;
    /** Saves the project's own file; the function returned puts it back (after a re-apply in place). */
    snapshot?(): Promise<() => Promise<void>>;
  };
  /** Takes the per-stack deploy lock; resolves with its release function, rejects naming the holder. */
  lock(stack: string, command: string): Promise<() => Promise<void>>;
  /** Checks before anything changes (config, clean tree, lint, database reachable, disk room): problems. */
  preflight(): Promise<string[]>;
  database: {
    schemaVersion(): Promise<string | undefined>;
    /** Takes a `safety` backup and returns its path. */
    safetyBackup(): Promise<string>;
    /**
     * Restores a backup (itself safe: restore into new db, verify, swap). `safety` is the safety backup
     * just taken, so the restore need not take a second one. Says what became of the writes made after
     * the backup (issue 20: replayed from its change stream, or why not).
     */
    restore(file: string, safety?: string): Promise<void | WritesAfterBackup>;
  };
  /** Release change streams (issue 20); absent: none are kept or dropped. */
  changes?: {
    /** The change stream a backup opened, from its manifest. */
    of(backupFile: string): Promise<{ slot: string; startLsn: string } | undefined>;
    /** Keeps a good release's stream for its window (a watcher drops it then); resolves with the end (ISO). */
    keep(releaseId: string, stream: { slot: string; startLsn: string }): Promise<string>;
    /** Under the deploy lock: drops every slot of the stack no good release keeps, and the expired ones. */
    sweep(): Promise<void>;
  };
  /** Post-cutover verification (soak); throws with every attempt summarised. */
  verify(url: string): Promise<void>;
  notify(type: NotifyType, message: string, fields: Record<string, string>): Promise<void>;
  git: {
    head(): Promise<string>;
    /** A temporary checkout of `commit` for re-applying an older program. */
    checkout(commit: string): Promise<{ dir: string; remove(): Promise<void> }>;
  };
  /** Archives an exported checkpoint for the release; returns its path. */
  archiveCheckpoint(releaseId: string, state: unknown): Promise<string>;
  log: {
    step(msg: string): void;
    info(msg: string): void;
    warn(msg: string): void;
    error(msg: string): void;
  };
  now?: () => Date;
}

/** The stage a failed resource belongs to, from its type and name. Pure. */
export function stageOf(type: string, urn: string): Stage {
  const name = urn.split("::").pop() ?? "";
  if (type.endsWith(":Backup")) return "backup";
  if (type.endsWith(":HealthGate")) return "health";
  if (type === "command:local:Command") {
    if (/-hook-/.test(name)) return "hooks";
    // An image pin (src/components/imagePin.ts) only reads an image id: creating one is no migration.
    return /-image-pin$/.test(name) ? "image" : "migration";
  }
  if (
    type === "docker:index/remoteImage:RemoteImage" ||
    type === "docker:index/registryImage:RegistryImage"
  ) {
    return "image";
  }
  return "containers";
}

/** What an update reported: the stage that failed, whether a migration ran, the backup it took. */
export interface UpdateFacts {
  failedStage?: Stage;
  migrationRan: boolean;
  backupFile?: string;
  imageId?: string;
  /** Why the backup opened no change stream though one was asked for (a rollback would lose writes). */
  changesSkipped?: string;
}

/** Step ops after which a Backup resource holds a dump taken by this update (create, or a replacement). */
const TOOK_BACKUP = new Set(["create", "replace", "create-replacement"]);

/** Folds the step events of one update into the facts a rollback decision needs. Pure. */
export function factsFromEvents(events: readonly StepEvent[]): UpdateFacts {
  const facts: UpdateFacts = { migrationRan: false };
  for (const e of events) {
    const stage = stageOf(e.type, e.urn);
    if (e.kind === "failed") {
      facts.failedStage ??= stage;
      // A migration that failed half-way may have committed some of its steps.
      if (stage === "migration") facts.migrationRan = true;
      continue;
    }
    if (stage === "migration" && e.op !== "same") facts.migrationRan = true;
    // Only a backup this update took: an unchanged (`same`) or settings-only (`update`) Backup step
    // carries the previous release's file, and recording it would make a later rollback restore a
    // database older than the one this release left (issue 15).
    if (stage === "backup" && TOOK_BACKUP.has(e.op) && typeof e.outputs?.file === "string")
      facts.backupFile = e.outputs.file;
    if (stage === "backup" && TOOK_BACKUP.has(e.op) && typeof e.outputs?.changesSkipped === "string")
      facts.changesSkipped = e.outputs.changesSkipped;
    // The app's image only (`<name>-app-image`), not the database's or the proxy's. With a mutable tag
    // its stored id can be stale: after a successful update the stack output `imageId` (what the
    // container really runs) replaces it.
    if (stage === "image" && /-app-image$/.test(e.urn) && typeof e.outputs?.imageId === "string")
      facts.imageId = e.outputs.imageId;
  }
  return facts;
}

/** Removes pending operations an interrupted update left in an exported checkpoint. Pure. */
export function withoutPendingOperations(state: unknown): { state: unknown; cleared: number } {
  const s = state as { deployment?: { pending_operations?: unknown[] } };
  const pending = s?.deployment?.pending_operations ?? [];
  if (!pending.length) return { state, cleared: 0 };
  return {
    state: { ...s, deployment: { ...s.deployment, pending_operations: [] } },
    cleared: pending.length,
  };
}

/** The outcome of `deploy`; `exitCode` follows the command-line contract. */
export interface DeployOutcome {
  exitCode: 0 | 1;
  release: ReleaseRecord;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The guarded deploy: preflight, lock, release record with exported checkpoint, `up`, soak checks,
 * and on failure the automatic rollback. The lock is held through all of it, notification included.
 */
export async function deploy(
  opts: { stack: string; autoRollback: boolean; soak: boolean },
  ports: DeployPorts,
): Promise<DeployOutcome> {
  // Ctrl-C, SIGTERM or SIGHUP must not kill the tool half-way: the release would stay `pending` for
  // good, the lock would stay behind and nobody would be told where things stand. The engine is
  // cancelled, the release recorded, the lock released, and the error says what state things are in.
  return catchingSignals(
    (interrupted, abort) => guardedDeploy(opts, ports, interrupted, abort),
    (s) =>
      ports.log.warn(
        `${s} received: stopping the deploy of ${opts.stack} at the next safe point (the release is recorded and the lock released)`,
      ),
  );
}

async function guardedDeploy(
  opts: { stack: string; autoRollback: boolean; soak: boolean },
  ports: DeployPorts,
  interrupted: () => NodeJS.Signals | undefined,
  abort: AbortSignal,
): Promise<DeployOutcome> {
  const now = ports.now ?? (() => new Date());
  const started = now();
  const durationMs = () => now().getTime() - started.getTime();
  const commit = await ports.git.head();
  // A rollback must be able to find the release before this one: an unreadable ledger stops the deploy
  // before anything changes (the error names the record), not half-way through a failed deploy.
  await ports.releases.lastGood();
  const problems = await ports.preflight();
  if (problems.length) {
    ports.log.error(`preflight failed:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    const r = await ports.releases.create({ stack: opts.stack, commit, config: {}, time: started });
    const release = await ports.releases.markResult(r.id, "bad", {
      failedStage: "preflight",
      error: problems.join("; "),
      durationMs: durationMs(),
    });
    // A deploy from CI that never started is a failed deploy to the team: nobody watches the job.
    await ports.notify("ERROR", `Deploy of ${opts.stack} refused at preflight: ${problems.join("; ")}`, {
      release: release.id,
      commit,
      next: `nothing changed; fix the above and run 'safe-deploy up --stack ${opts.stack}' again`,
    });
    return { exitCode: 1, release };
  }
  const early = interrupted();
  if (early)
    throw new CannotRunError(
      `deploy of ${opts.stack} stopped by ${early} before it started: nothing changed`,
    );
  const unlock = await ports.lock(opts.stack, "up");
  try {
    let release = await ports.releases.create({
      stack: opts.stack,
      commit,
      config: {},
      configFile: await ports.config.read(),
      schemaVersionBefore: await ports.database.schemaVersion(),
      time: started,
    });
    const id = release.id;
    ports.log.step(`release ${id} of stack ${opts.stack} (commit ${commit.slice(0, 12)})`);
    release = await ports.releases.update(id, {
      checkpoint: await ports.archiveCheckpoint(id, await ports.stack.exportState()),
    });
    const beforeUp = interrupted();
    if (beforeUp) {
      await ports.releases.markResult(id, "bad", {
        failedStage: "preflight",
        error: `stopped by ${beforeUp} before pulumi up; nothing changed`,
        durationMs: durationMs(),
      });
      throw new CannotRunError(
        `deploy of ${opts.stack} stopped by ${beforeUp} before pulumi up: nothing changed; release ${id} is ` +
          `recorded as bad (preflight). Deploy again with 'safe-deploy up --stack ${opts.stack}'`,
      );
    }
    await ports.notify("INFO", `Deploy of ${opts.stack} started`, { release: id, commit });

    const events: StepEvent[] = [];
    let url: string | undefined;
    let warnings: string[] = [];
    let failure: unknown;
    const facts0: { imageId?: string } = {};
    try {
      ports.log.step("pulumi up: image, backup, migration, containers, health gate");
      const { outputs } = await ports.stack.up({
        env: { SAFE_DEPLOY_COMMIT: commit },
        signal: abort,
        onEvent: (e) => {
          events.push(e);
          // Stage-by-stage progress: what changed or failed, never the unchanged rest of the graph.
          if (e.kind === "failed" || e.op !== "same") {
            const name = e.urn.split("::").pop();
            ports.log.step(`${stageOf(e.type, e.urn)}: ${e.kind === "failed" ? "FAILED" : e.op} ${name}`);
          }
        },
        onOutput: (line) => ports.log.info(line.trimEnd()),
      });
      url = outputs.url?.value;
      if (outputs.imageId?.value) facts0.imageId = outputs.imageId.value;
      if (outputs.postDeployWarnings?.value)
        warnings = JSON.parse(outputs.postDeployWarnings.value) as string[];
    } catch (e) {
      failure = e;
    }
    const facts = { ...factsFromEvents(events), ...facts0 };
    if (facts.changesSkipped) {
      // The preflight found the stream possible, yet the backup could not open it (a long transaction,
      // a role changed since): said now, kept in the release record and sent with the success.
      const w =
        `no-loss rollback is not possible for this release: the pre-deploy backup opened no change stream ` +
        `(${facts.changesSkipped}); a rollback with restore would lose the writes made after the backup`;
      ports.log.warn(w);
      warnings = [...warnings, w];
    }
    if (!failure && opts.soak && url && !interrupted()) {
      try {
        ports.log.step(`soak: verifying ${url}`);
        await ports.verify(url);
      } catch (e) {
        failure = e;
        facts.failedStage = "soak";
      }
    }
    release = await ports.releases.update(id, {
      backupFile: facts.backupFile,
      imageDigest: facts.imageId,
      schemaVersion: await ports.database.schemaVersion().catch(() => undefined),
      warnings,
    });
    const stopped = interrupted();
    if (stopped) {
      // No automatic rollback: the person asked to stop, and a rollback stopped half-way is worse.
      // Stopped during the soak, whether its check then passed or failed: pulumi up had finished.
      const inSoak = facts.failedStage === "soak" || (!failure && opts.soak && !!url);
      const last = events.at(-1);
      const stage: Stage = inSoak
        ? "soak"
        : (facts.failedStage ?? (last ? stageOf(last.type, last.urn) : "image"));
      const where = inSoak
        ? "during the soak: the new release runs, unverified"
        : `during pulumi up (at ${stage}): the stack may be half-updated, with pending operations in its state`;
      const error = `stopped by ${stopped} ${where}; not rolled back`;
      release = await ports.releases.markResult(id, "bad", {
        failedStage: stage,
        error,
        durationMs: durationMs(),
      });
      await ports.notify("ERROR", `Deploy of ${opts.stack} stopped by ${stopped} at ${stage}`, {
        ...versionFields(release),
        next: `'safe-deploy rollback --stack ${opts.stack} --quick' returns to the last good release`,
      });
      await sweepStreams(ports);
      throw new CannotRunError(
        `deploy of ${opts.stack} ${error}. Release ${id} is recorded as bad and the lock is released. Return to ` +
          `the last good release with 'safe-deploy rollback --stack ${opts.stack} --quick', or deploy again with ` +
          `'safe-deploy up --stack ${opts.stack}'; see 'safe-deploy status --stack ${opts.stack}'`,
      );
    }
    if (!failure) {
      // Issue 20: the stream stays for a manual `rollback --to` until the keep window ends.
      const stream = facts.backupFile ? await ports.changes?.of(facts.backupFile) : undefined;
      if (stream) {
        const keepUntil = await ports.changes!.keep(id, stream).catch((e: unknown) => {
          ports.log.warn(`the change stream ${stream.slot} could not be kept: ${message(e)}`);
          return undefined;
        });
        if (keepUntil) release = await ports.releases.update(id, { changes: { ...stream, keepUntil } });
      }
      release = await ports.releases.markResult(id, "good", { durationMs: durationMs() });
      ports.log.info(`release ${id} is good`);
      await ports.notify("SUCCESS", `Deploy of ${opts.stack} succeeded`, { release: id, commit });
      for (const w of warnings) await ports.notify("WARNING", w, { release: id, commit });
      return { exitCode: 0, release };
    }
    const failedStage = facts.failedStage ?? "containers";
    const error = message(failure).split("\n")[0];
    ports.log.error(`deploy failed at ${failedStage}: ${message(failure)}`);
    release = await ports.releases.markResult(id, "bad", { failedStage, error, durationMs: durationMs() });
    await ports.notify("ERROR", `Deploy of ${opts.stack} failed at ${failedStage}: ${error}`, {
      ...versionFields(release),
      next: opts.autoRollback
        ? "an automatic rollback follows; its outcome is the next notification"
        : `not rolled back (auto-rollback is off): return to the last good release with ` +
          `'safe-deploy rollback --stack ${opts.stack} --quick', or fix and deploy again`,
    });
    if (opts.autoRollback) {
      const back = await rollbackAfterFailure(release, facts.migrationRan, ports);
      release = back
        ? await ports.releases.markResult(id, "rolled-back", { rolledBackTo: back, durationMs: durationMs() })
        : await ports.releases.update(id, { error: `${error}; automatic rollback failed` });
    }
    // No slot outlives a failed deploy (issue 20): its rollback replayed it, or nothing ever will.
    await sweepStreams(ports);
    return { exitCode: 1, release };
  } finally {
    await unlock();
  }
}

/** Drops the slots of failed or cancelled deploys; a failure is said, never fatal (`changes prune` retries). */
async function sweepStreams(ports: DeployPorts): Promise<void> {
  await ports.changes
    ?.sweep()
    .catch((e: unknown) =>
      ports.log.warn(
        `could not drop the change stream slots of failed deploys: ${message(e)}; run 'safe-deploy changes prune'`,
      ),
    );
}

/**
 * What a person on call needs of a failed release, in every notification about it: why (stage and first
 * error line), which release, commit and image, the schema before and after, and the pre-deploy backup.
 */
export function versionFields(r: ReleaseRecord): Record<string, string> {
  return {
    release: r.id,
    commit: r.commit,
    reason: `${r.failedStage ?? "?"}: ${r.error ?? "unknown"}`,
    image: r.imageDigest ?? "unknown",
    schemaBefore: r.schemaVersionBefore ?? "none",
    schemaAfter: r.schemaVersion ?? "none",
    backup: r.backupFile ?? "none",
  };
}

/** What a rollback's steps produced: the safety backup, and what became of the writes after the backup. */
interface Taken {
  safety?: string;
  writes?: WritesAfterBackup;
}

/** What the steps of a rollback act on. */
interface StepContext {
  /** The release (or commit) re-applied by `reapply-release`. */
  reapply?: { commit: string; configFile?: string; imageDigest?: string };
  /** The exported state without its pending operations, for `clear-pending-operations`. */
  pending?: { state: unknown; cleared: number };
  /** Aborted by Ctrl-C/SIGTERM: no further step starts, and a running `pulumi up` is cancelled. */
  signal?: AbortSignal;
}

/**
 * Runs rollback steps in order; throws at the first that fails (a `manual` step always does). The
 * user's own `Pulumi.<stack>.yaml` is put back afterwards: the re-applied config is the release's,
 * the file in the checkout stays the user's. Returns the safety backup taken, if any.
 */
async function runSteps(
  steps: readonly RollbackStep[],
  ctx: StepContext,
  ports: DeployPorts,
  taken: Taken,
): Promise<void> {
  let worktree: { dir: string; remove(): Promise<void> } | undefined;
  let restoreConfig: (() => Promise<void>) | undefined;
  try {
    for (const step of steps) {
      if (ctx.signal?.aborted)
        throw new Error(`stopped by ${String(ctx.signal.reason)} before: ${describeStep(step)}`);
      switch (step.kind) {
        case "clear-pending-operations":
          ports.log.warn(
            `rollback: clearing ${ctx.pending?.cleared ?? 0} pending operation(s) left by the failed update`,
          );
          // An update killed mid-way also leaves the backend's lock, which `stack import` needs too. We hold
          // the deploy lock, so no deploy of ours runs: a Pulumi lock now is stale, and `cancel` clears it.
          await ports.stack
            .cancel()
            .catch((e: unknown) =>
              ports.log.warn(
                `rollback: pulumi cancel of the stale lock failed (${message(e).split("\n")[0]})`,
              ),
            );
          await ports.stack.importState(ctx.pending?.state);
          await ports.stack.refresh();
          break;
        case "safety-backup":
          ports.log.step("rollback: safety backup of the current database");
          taken.safety = await ports.database.safetyBackup();
          break;
        case "restore-backup": {
          ports.log.step(`rollback: restoring the backup ${step.file}`);
          const writes = await ports.database.restore(step.file, taken.safety);
          if (writes) taken.writes = writes;
          break;
        }
        case "checkout-commit":
          ports.log.step(`rollback: checking out ${step.commit.slice(0, 12)} in a temporary worktree`);
          worktree = await ports.git.checkout(step.commit);
          break;
        case "reapply-release": {
          ports.log.step(`rollback: re-applying ${step.release} against the current state`);
          const target = ctx.reapply!;
          if (target.configFile) {
            if (!worktree && ports.config.snapshot) restoreConfig = await ports.config.snapshot();
            await ports.config.write(pinReleaseImage(target.configFile, target.imageDigest), worktree?.dir);
          }
          await ports.stack.up({
            signal: ctx.signal,
            workDir: worktree?.dir,
            env: { SAFE_DEPLOY_COMMIT: target.commit },
            onOutput: (line) => ports.log.info(line.trimEnd()),
          });
          break;
        }
        case "verify-health": {
          const url = (await ports.stack.outputs()).url?.value;
          if (url) {
            ports.log.step(`rollback: verifying ${url}`);
            await ports.verify(url);
          }
          break;
        }
        case "manual":
          throw new Error(step.reason);
        case "notify":
          break;
      }
    }
  } finally {
    await restoreConfig?.();
    await worktree?.remove();
  }
}

/**
 * Runs the rollback plan of plan.ts step by step. Returns the id of the release running again, or
 * undefined when it stopped (ROLLBACK_FAILED, with everything a person needs to finish by hand).
 */
export async function rollbackAfterFailure(
  failed: ReleaseRecord,
  migrationRan: boolean,
  ports: DeployPorts,
): Promise<string | undefined> {
  const previous = await ports.releases.lastGood(failed.id);
  const pending = withoutPendingOperations(await ports.stack.exportState());
  const plan = rollbackPlan({
    failedStage: failed.failedStage ?? "containers",
    migrationRan,
    schemaMoved: failed.schemaVersionBefore !== failed.schemaVersion,
    backupFile: failed.backupFile,
    previous: previous && { id: previous.id, commit: previous.commit },
    currentCommit: failed.commit,
    pendingOperations: pending.cleared > 0,
  });
  ports.log.step(`rollback plan:\n${plan.steps.map((s, i) => `  ${i + 1}. ${describeStep(s)}`).join("\n")}`);
  const fields = versionFields(failed);
  const taken: Taken = {};
  try {
    await runSteps(plan.steps, { reapply: previous, pending }, ports, taken);
  } catch (e) {
    ports.log.error(`rollback failed: ${message(e)}`);
    if (taken.writes) await ports.releases.update(failed.id, { replay: taken.writes });
    await ports.notify(
      "ROLLBACK_FAILED",
      `Rollback of ${failed.stack} failed: ${message(e).split("\n")[0]}`,
      {
        ...fields,
        ...writesField(taken.writes),
        safetyBackup: taken.safety ?? "none",
        next:
          `the pre-deploy backup is ${failed.backupFile ?? "missing"}; the safety backup is ${taken.safety ?? "not taken"}; ` +
          `run 'safe-deploy rollback --stack ${failed.stack} --status' and finish by hand`,
      },
    );
    return undefined;
  }
  ports.log.info(`rollback to release ${previous!.id} succeeded`);
  if (taken.writes) await ports.releases.update(failed.id, { replay: taken.writes });
  const kept = writesField(taken.writes);
  await ports.notify(
    "ROLLBACK_SUCCESS",
    `Rolled ${failed.stack} back to release ${previous!.id} after ${failed.id} failed at ${failed.failedStage ?? "?"}` +
      (kept.writesAfterBackup ? `; writes made after the backup: ${kept.writesAfterBackup}` : ""),
    {
      ...fields,
      ...kept,
      safetyBackup: taken.safety ?? "none",
      next: `release ${previous!.id} runs again; fix the cause above and deploy again ('safe-deploy history --stack ${failed.stack}')`,
    },
  );
  return previous!.id;
}

/** A rollback a person asked for, already planned by `manualRollbackPlan`. */
export interface ManualRollback {
  stack: string;
  steps: readonly RollbackStep[];
  /** The release re-applied, if any. */
  target?: ReleaseRecord;
  /** A commit re-applied with the current config (no release recorded it). */
  commit?: string;
  backupFile?: string;
}

/**
 * Runs a person's rollback under the deploy lock and records it as a new release (rolledBackTo = the
 * target) so `history` shows it and the next rollback starts from it. A database-only restore records
 * nothing but is notified like any rollback. Exit 0 when the stack is healthy again, 1 otherwise.
 */
export async function rollbackTo(
  r: ManualRollback,
  ports: DeployPorts,
): Promise<{ exitCode: 0 | 1; release?: ReleaseRecord }> {
  // Ctrl-C or SIGTERM stops it between steps (a running restore or `pulumi up` is cancelled), and it
  // ends as any failed rollback does: recorded, ROLLBACK_FAILED with the next steps, the lock released.
  return catchingSignals(
    (_interrupted, abort) => guardedRollbackTo(r, ports, abort),
    (sig) => ports.log.warn(`${sig} received: stopping the rollback of ${r.stack} before its next step`),
  );
}

async function guardedRollbackTo(
  r: ManualRollback,
  ports: DeployPorts,
  signal: AbortSignal,
): Promise<{ exitCode: 0 | 1; release?: ReleaseRecord }> {
  const now = ports.now ?? (() => new Date());
  const started = now();
  const unlock = await ports.lock(r.stack, "rollback");
  const reapply = r.target
    ? { commit: r.target.commit, configFile: r.target.configFile, imageDigest: r.target.imageDigest }
    : r.commit
      ? { commit: r.commit, configFile: undefined }
      : undefined;
  const what = r.target
    ? `release ${r.target.id}`
    : r.commit
      ? `commit ${r.commit.slice(0, 12)}`
      : "the database";
  const fields = { to: what, backup: r.backupFile ?? "none" };
  const taken: Taken = {};
  try {
    let release = reapply
      ? await ports.releases.create({
          stack: r.stack,
          commit: reapply.commit,
          config: {},
          configFile: reapply.configFile ?? (await ports.config.read()),
          imageDigest: r.target?.imageDigest,
          schemaVersionBefore: await ports.database.schemaVersion().catch(() => undefined),
          rolledBackTo: r.target?.id,
          time: started,
        })
      : undefined;
    // An update interrupted earlier (Ctrl-C, a killed runner) leaves pending operations that make the
    // re-apply's `pulumi up` fail: they are cleared first, as the automatic rollback does.
    const pending = reapply
      ? withoutPendingOperations(await ports.stack.exportState())
      : { state: undefined, cleared: 0 };
    const steps: readonly RollbackStep[] = pending.cleared
      ? [
          ...r.steps.filter((st) => st.kind === "checkout-commit"),
          { kind: "clear-pending-operations" },
          ...r.steps.filter((st) => st.kind !== "checkout-commit"),
        ]
      : r.steps;
    ports.log.step(
      `rollback of ${r.stack} to ${what}:\n${steps.map((s, i) => `  ${i + 1}. ${describeStep(s)}`).join("\n")}`,
    );
    await ports.notify("INFO", `Rollback of ${r.stack} to ${what} started`, fields);
    try {
      await runSteps(
        steps,
        { reapply: reapply && { ...reapply, configFile: release?.configFile }, pending, signal },
        ports,
        taken,
      );
    } catch (e) {
      const error = message(e).split("\n")[0];
      ports.log.error(`rollback failed: ${message(e)}`);
      if (release) {
        // The safety backup holds the database as the release before this rollback left it.
        if (taken.safety) release = await ports.releases.update(release.id, { backupFile: taken.safety });
        if (taken.writes) release = await ports.releases.update(release.id, { replay: taken.writes });
        release = await ports.releases.markResult(release.id, "bad", {
          error,
          failedStage: "containers",
          durationMs: now().getTime() - started.getTime(),
        });
      }
      await ports.notify("ROLLBACK_FAILED", `Rollback of ${r.stack} to ${what} failed: ${error}`, {
        ...fields,
        ...writesField(taken.writes),
        safetyBackup: taken.safety ?? "none",
        next:
          `the safety backup is ${taken.safety ?? "not taken"}; ` +
          `run 'safe-deploy rollback --stack ${r.stack} --status' and finish by hand`,
      });
      return { exitCode: 1, release };
    }
    if (release) {
      // As a deploy records its pre-deploy backup, a rollback records the backup it took before changing
      // the database (its safety backup), not the one it restored: a later rollback to the release before
      // this one restores it as "the database as that release left it" (`backupAfter`).
      release = await ports.releases.update(release.id, {
        backupFile: taken.safety,
        schemaVersion: await ports.database.schemaVersion().catch(() => undefined),
        ...(taken.writes ? { replay: taken.writes } : {}),
      });
      release = await ports.releases.markResult(release.id, "good", {
        rolledBackTo: r.target?.id,
        durationMs: now().getTime() - started.getTime(),
      });
    }
    ports.log.info(`rollback of ${r.stack} to ${what} succeeded`);
    const kept = writesField(taken.writes);
    await ports.notify(
      "ROLLBACK_SUCCESS",
      `Rolled ${r.stack} back to ${what}` +
        (kept.writesAfterBackup ? `; writes made after the backup: ${kept.writesAfterBackup}` : ""),
      { ...fields, ...kept, safetyBackup: taken.safety ?? "none" },
    );
    return { exitCode: 0, release };
  } finally {
    await unlock();
  }
}
