// The guarded deploy and its rollback (issue 6, DESIGN.md "Rollback: re-apply the previous release").
// Pulumi-free: every outside part is a port, so the CLI wires the real engines and tests wire real
// PostgreSQL/HTTP behind the same ports with a recording fake of the stack.
import type { StackAccess, StepEvent } from "../../cli/stack";
import type { Ledger, ReleaseRecord, Stage } from "./ledger";
import { describeStep, rollbackPlan } from "./plan";

/** Notification types of the users' scripts. */
export type NotifyType = "INFO" | "SUCCESS" | "WARNING" | "ERROR" | "ROLLBACK_SUCCESS" | "ROLLBACK_FAILED";

/** Everything the orchestrator needs from outside. */
export interface DeployPorts {
  stack: StackAccess;
  releases: Pick<Ledger, "create" | "update" | "markResult" | "lastGood">;
  /** The stack's `Pulumi.<stack>.yaml`: recorded with each release, written back to re-apply one. */
  config: { read(): Promise<string>; write(text: string, dir?: string): Promise<void> };
  /** Takes the per-stack deploy lock; resolves with its release function, rejects naming the holder. */
  lock(stack: string, command: string): Promise<() => Promise<void>>;
  /** Checks before anything changes (config, clean tree, lint, database reachable, disk room): problems. */
  preflight(): Promise<string[]>;
  database: {
    schemaVersion(): Promise<string | undefined>;
    /** Takes a `safety` backup and returns its path. */
    safetyBackup(): Promise<string>;
    /** Restores a backup (itself safe: restore into new db, verify, swap). */
    restore(file: string): Promise<void>;
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
  if (type === "command:local:Command") return /-hook-/.test(name) ? "hooks" : "migration";
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
}

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
    if (stage === "backup" && typeof e.outputs?.file === "string") facts.backupFile = e.outputs.file;
    if (stage === "image" && typeof e.outputs?.imageId === "string") facts.imageId = e.outputs.imageId;
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
  const now = ports.now ?? (() => new Date());
  const started = now();
  const durationMs = () => now().getTime() - started.getTime();
  const commit = await ports.git.head();
  const problems = await ports.preflight();
  if (problems.length) {
    ports.log.error(`preflight failed:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    const r = await ports.releases.create({ stack: opts.stack, commit, config: {}, time: started });
    const release = await ports.releases.markResult(r.id, "bad", {
      failedStage: "preflight",
      error: problems.join("; "),
      durationMs: durationMs(),
    });
    return { exitCode: 1, release };
  }
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
    await ports.notify("INFO", `Deploy of ${opts.stack} started`, { release: id, commit });

    const events: StepEvent[] = [];
    let url: string | undefined;
    let warnings: string[] = [];
    let failure: unknown;
    try {
      ports.log.step("pulumi up: image, backup, migration, containers, health gate");
      const { outputs } = await ports.stack.up({
        env: { SAFE_DEPLOY_COMMIT: commit },
        onEvent: (e) => events.push(e),
        onOutput: (line) => ports.log.info(line.trimEnd()),
      });
      url = outputs.url?.value;
      if (outputs.postDeployWarnings?.value)
        warnings = JSON.parse(outputs.postDeployWarnings.value) as string[];
    } catch (e) {
      failure = e;
    }
    const facts = factsFromEvents(events);
    if (!failure && opts.soak && url) {
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
    if (!failure) {
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
    await ports.notify("ERROR", `Deploy of ${opts.stack} failed at ${failedStage}`, {
      release: id,
      commit,
      error,
    });
    if (opts.autoRollback) {
      const back = await rollbackAfterFailure(release, facts.migrationRan, ports);
      release = back
        ? await ports.releases.markResult(id, "rolled-back", { rolledBackTo: back, durationMs: durationMs() })
        : await ports.releases.update(id, { error: `${error}; automatic rollback failed` });
    }
    return { exitCode: 1, release };
  } finally {
    await unlock();
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
  const fields = { release: failed.id, commit: failed.commit, backup: failed.backupFile ?? "none" };
  let safety: string | undefined;
  let worktree: { dir: string; remove(): Promise<void> } | undefined;
  try {
    for (const step of plan.steps) {
      switch (step.kind) {
        case "clear-pending-operations":
          ports.log.warn(
            `rollback: clearing ${pending.cleared} pending operation(s) left by the failed update`,
          );
          await ports.stack.importState(pending.state);
          await ports.stack.refresh();
          break;
        case "safety-backup":
          ports.log.step("rollback: safety backup of the current database");
          safety = await ports.database.safetyBackup();
          break;
        case "restore-backup":
          ports.log.step(`rollback: restoring the pre-deploy backup ${step.file}`);
          await ports.database.restore(step.file);
          break;
        case "checkout-commit":
          ports.log.step(`rollback: checking out ${step.commit.slice(0, 12)} in a temporary worktree`);
          worktree = await ports.git.checkout(step.commit);
          break;
        case "reapply-release":
          ports.log.step(`rollback: re-applying release ${step.release} against the current state`);
          if (previous!.configFile) await ports.config.write(previous!.configFile, worktree?.dir);
          await ports.stack.up({
            workDir: worktree?.dir,
            env: { SAFE_DEPLOY_COMMIT: previous!.commit },
            onOutput: (line) => ports.log.info(line.trimEnd()),
          });
          break;
        case "verify-health": {
          const url = (await ports.stack.outputs()).url?.value;
          if (url) await ports.verify(url);
          break;
        }
        case "manual":
          throw new Error(step.reason);
        case "notify":
          break;
      }
    }
  } catch (e) {
    ports.log.error(`rollback failed: ${message(e)}`);
    await ports.notify(
      "ROLLBACK_FAILED",
      `Rollback of ${failed.stack} failed: ${message(e).split("\n")[0]}`,
      {
        ...fields,
        safetyBackup: safety ?? "none",
        next:
          `the pre-deploy backup is ${failed.backupFile ?? "missing"}; the safety backup is ${safety ?? "not taken"}; ` +
          `run 'safe-deploy rollback --stack ${failed.stack} --status' and finish by hand`,
      },
    );
    return undefined;
  } finally {
    await worktree?.remove();
  }
  ports.log.info(`rollback to release ${previous!.id} succeeded`);
  await ports.notify("ROLLBACK_SUCCESS", `Rolled ${failed.stack} back to release ${previous!.id}`, {
    ...fields,
    safetyBackup: safety ?? "none",
  });
  return previous!.id;
}
