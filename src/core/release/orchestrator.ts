// The guarded deploy and its rollback (issue 6, DESIGN.md "Rollback: re-apply the previous release").
// Pulumi-free: every outside part is a port, so the CLI wires the real engines and tests wire real
// PostgreSQL/HTTP behind the same ports with a recording fake of the stack.
import type { ConfigMap, StackAccess, StepEvent } from "../../cli/stack";

/** The stages of a deploy, in order; a failure names the first one that failed. */
export const STAGES = [
  "preflight",
  "image",
  "backup",
  "migration",
  "hooks",
  "containers",
  "health",
  "soak",
] as const;
/** One stage. */
export type Stage = (typeof STAGES)[number];

/** One deploy, as the ledger keeps it. */
export interface Release {
  id: string;
  stack: string;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  commit: string;
  config: ConfigMap;
  imageId?: string;
  schemaVersionBefore?: string;
  schemaVersion?: string;
  /** Path of the exported checkpoint taken before the update. */
  checkpoint?: string;
  /** The pre-deploy backup this release took. */
  backupFile?: string;
  result: "running" | "good" | "bad" | "rolled-back" | "rollback-failed";
  failedStage?: Stage;
  error?: string;
  warnings: string[];
}

/** Notification types of the users' scripts. */
export type NotifyType = "INFO" | "SUCCESS" | "WARNING" | "ERROR" | "ROLLBACK_SUCCESS" | "ROLLBACK_FAILED";

/** Everything the orchestrator needs from outside. */
export interface DeployPorts {
  stack: StackAccess;
  releases: { save(r: Release): Promise<void>; lastGood(stack: string): Promise<Release | undefined> };
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

/** One step of a rollback, in order. */
export type RollbackStep =
  | { do: "safety-backup" }
  | { do: "restore"; file: string }
  | { do: "clear-pending" }
  | { do: "reapply"; release: Release }
  | { do: "verify" };

/**
 * The rollback plan (pure): before any migration ran, no database restore; once one ran or the schema
 * version moved, a safety backup and then the pre-deploy backup restored; then the previous good
 * release re-applied and verified. Refuses (returns a reason) rather than start an old image against a
 * schema it does not know.
 */
export function rollbackPlan(args: {
  failed: Release;
  previous?: Release;
  migrationRan: boolean;
  schemaMoved: boolean;
}): { steps: RollbackStep[] } | { refuse: string } {
  const { failed, previous } = args;
  if (!previous) {
    return { refuse: `no earlier good release of stack "${failed.stack}" to roll back to` };
  }
  const restoreDb = args.migrationRan || args.schemaMoved;
  if (restoreDb && !failed.backupFile) {
    return {
      refuse:
        "the schema may have changed but this release has no pre-deploy backup to restore; " +
        `starting release ${previous.id}'s image against an unknown schema is refused`,
    };
  }
  const steps: RollbackStep[] = [];
  if (restoreDb) steps.push({ do: "safety-backup" }, { do: "restore", file: failed.backupFile! });
  steps.push({ do: "clear-pending" }, { do: "reapply", release: previous }, { do: "verify" });
  return { steps };
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

/** A release id: UTC time plus the short commit, sortable. */
export function releaseId(at: Date, commit: string): string {
  const t = at.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${t}-${commit.slice(0, 7)}`;
}

/** The outcome of `deploy`; `exitCode` follows the command-line contract. */
export interface DeployOutcome {
  exitCode: 0 | 1;
  release: Release;
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
  const problems = await ports.preflight();
  const commit = await ports.git.head();
  const started = now();
  const release: Release = {
    id: releaseId(started, commit),
    stack: opts.stack,
    startedAt: started.toISOString(),
    commit,
    config: {},
    result: "running",
    warnings: [],
  };
  if (problems.length) {
    release.result = "bad";
    release.failedStage = "preflight";
    release.error = problems.join("; ");
    ports.log.error(`preflight failed:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    return { exitCode: 1, release };
  }
  const unlock = await ports.lock(opts.stack, "up");
  const finish = async (result: Release["result"]) => {
    release.result = result;
    const end = now();
    release.finishedAt = end.toISOString();
    release.durationMs = end.getTime() - started.getTime();
    await ports.releases.save(release);
  };
  try {
    ports.log.step(`release ${release.id} of stack ${opts.stack} (commit ${commit.slice(0, 12)})`);
    release.config = await ports.stack.getAllConfig();
    release.schemaVersionBefore = await ports.database.schemaVersion();
    release.checkpoint = await ports.archiveCheckpoint(release.id, await ports.stack.exportState());
    await ports.releases.save(release);
    await ports.notify("INFO", `Deploy of ${opts.stack} started`, { release: release.id, commit });

    const events: StepEvent[] = [];
    let url: string | undefined;
    let failure: unknown;
    try {
      ports.log.step("pulumi up: backup, migration, containers, health gate");
      const { outputs } = await ports.stack.up({
        env: { SAFE_DEPLOY_COMMIT: commit },
        onEvent: (e) => events.push(e),
        onOutput: (line) => ports.log.info(line.trimEnd()),
      });
      url = outputs.url?.value;
      const warnings = outputs.postDeployWarnings?.value;
      if (warnings) release.warnings.push(...(JSON.parse(warnings) as string[]));
    } catch (e) {
      failure = e;
    }
    const facts = factsFromEvents(events);
    release.backupFile = facts.backupFile;
    release.imageId = facts.imageId;
    if (!failure && opts.soak && url) {
      try {
        ports.log.step(`soak: verifying ${url}`);
        await ports.verify(url);
      } catch (e) {
        failure = e;
        facts.failedStage = "soak";
      }
    }
    release.schemaVersion = await ports.database.schemaVersion().catch(() => undefined);
    if (!failure) {
      await finish("good");
      ports.log.info(`release ${release.id} is good`);
      await ports.notify("SUCCESS", `Deploy of ${opts.stack} succeeded`, { release: release.id, commit });
      for (const w of release.warnings) await ports.notify("WARNING", w, { release: release.id, commit });
      return { exitCode: 0, release };
    }
    release.failedStage = facts.failedStage ?? "containers";
    release.error = message(failure);
    ports.log.error(`deploy failed at ${release.failedStage}: ${release.error}`);
    await finish("bad");
    await ports.notify("ERROR", `Deploy of ${opts.stack} failed at ${release.failedStage}`, {
      release: release.id,
      commit,
      error: release.error.split("\n")[0],
    });
    if (opts.autoRollback) {
      const ok = await rollbackAfterFailure(release, facts.migrationRan, ports);
      await finish(ok ? "rolled-back" : "rollback-failed");
    }
    return { exitCode: 1, release };
  } finally {
    await unlock();
  }
}

/** Runs a rollback plan step by step; returns true when the previous release is back and healthy. */
export async function rollbackAfterFailure(
  failed: Release,
  migrationRan: boolean,
  ports: DeployPorts,
): Promise<boolean> {
  const previous = await ports.releases.lastGood(failed.stack);
  const schemaMoved =
    failed.schemaVersionBefore !== undefined && failed.schemaVersion !== failed.schemaVersionBefore;
  const plan = rollbackPlan({ failed, previous, migrationRan, schemaMoved });
  const fields = { release: failed.id, commit: failed.commit, backup: failed.backupFile ?? "none" };
  if ("refuse" in plan) {
    ports.log.error(`rollback refused: ${plan.refuse}`);
    await ports.notify("ROLLBACK_FAILED", `Rollback of ${failed.stack} refused: ${plan.refuse}`, {
      ...fields,
      next: `restore by hand: safe-deploy rollback --stack ${failed.stack}`,
    });
    return false;
  }
  let safety: string | undefined;
  try {
    for (const step of plan.steps) {
      switch (step.do) {
        case "safety-backup":
          ports.log.step("rollback: safety backup of the current database");
          safety = await ports.database.safetyBackup();
          break;
        case "restore":
          ports.log.step(`rollback: restoring the pre-deploy backup ${step.file}`);
          await ports.database.restore(step.file);
          break;
        case "clear-pending": {
          const { state, cleared } = withoutPendingOperations(await ports.stack.exportState());
          if (cleared) {
            ports.log.warn(`rollback: clearing ${cleared} pending operation(s) left by the failed update`);
            await ports.stack.importState(state);
            await ports.stack.refresh();
          }
          break;
        }
        case "reapply": {
          ports.log.step(
            `rollback: re-applying release ${step.release.id} (commit ${step.release.commit.slice(0, 12)})`,
          );
          await ports.stack.setAllConfig(step.release.config);
          const head = await ports.git.head();
          const checkout =
            step.release.commit !== head ? await ports.git.checkout(step.release.commit) : undefined;
          try {
            await ports.stack.up({
              workDir: checkout?.dir,
              env: { SAFE_DEPLOY_COMMIT: step.release.commit },
              onOutput: (line) => ports.log.info(line.trimEnd()),
            });
          } finally {
            await checkout?.remove();
          }
          break;
        }
        case "verify": {
          const outputs = await ports.stack.outputs();
          const url = outputs.url?.value;
          if (url) await ports.verify(url);
          break;
        }
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
    return false;
  }
  ports.log.info(`rollback to release ${previous!.id} succeeded`);
  await ports.notify("ROLLBACK_SUCCESS", `Rolled ${failed.stack} back to release ${previous!.id}`, {
    ...fields,
    safetyBackup: safety ?? "none",
  });
  return true;
}
