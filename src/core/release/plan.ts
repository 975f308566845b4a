import type { ReleaseRecord, Stage } from "./ledger";

/** One step of an automatic rollback, in the order the orchestrator runs them. */
export type RollbackStep =
  | { kind: "clear-pending-operations" }
  | { kind: "safety-backup" }
  | { kind: "restore-backup"; file: string }
  | { kind: "checkout-commit"; commit: string }
  | { kind: "reapply-release"; release: string }
  | { kind: "verify-health" }
  | { kind: "manual"; reason: string }
  | { kind: "notify" };

/** What the orchestrator knows when a deploy fails. */
export interface RollbackInput {
  failedStage: Stage;
  /** A migration started (even one that failed half-way). */
  migrationRan: boolean;
  /** The recorded migration version differs from the one before the deploy. */
  schemaMoved: boolean;
  /** The pre-deploy backup of this release, if the backup stage produced one. */
  backupFile?: string;
  /** The release to return to (the last good one), if any. */
  previous?: { id: string; commit: string };
  /** The commit being deployed now (the program on disk). */
  currentCommit: string;
  /** The interrupted update left pending operations in the state. */
  pendingOperations?: boolean;
}

/** The plan, and whether it ends with the system back on a good release without a person. */
export interface RollbackPlan {
  steps: RollbackStep[];
  /** False when a `manual` step is in the plan: the rollback will end ROLLBACK_FAILED. */
  automatic: boolean;
}

/**
 * The rollback for a failed stage (docs/architecture.md "Rollback: re-apply the previous release", issue 6):
 * before any migration ran the database is left alone; once one ran or the schema moved, a safety
 * backup is taken and the pre-deploy backup restored; then the previous good release is re-applied
 * (from its own commit when it differs), health verified, and people notified. An old image is never
 * started against a schema it does not know: with no backup to restore, the plan stops for a person.
 */
export function rollbackPlan(input: RollbackInput): RollbackPlan {
  // Preflight fails before `up` touches anything: there is nothing to roll back.
  if (input.failedStage === "preflight") return { steps: [{ kind: "notify" }], automatic: true };
  const steps: RollbackStep[] = [];
  if (input.pendingOperations) steps.push({ kind: "clear-pending-operations" });
  const databaseChanged = input.migrationRan || input.schemaMoved || input.failedStage === "migration";
  if (databaseChanged) {
    steps.push({ kind: "safety-backup" });
    if (!input.backupFile) {
      steps.push({
        kind: "manual",
        reason:
          "the database changed but this release has no pre-deploy backup: restore one by hand with " +
          "`safe-deploy backup restore FILE`, then `safe-deploy rollback --to RELEASE`",
      });
      return { steps: [...steps, { kind: "notify" }], automatic: false };
    }
    steps.push({ kind: "restore-backup", file: input.backupFile });
  }
  if (!input.previous) {
    steps.push({
      kind: "manual",
      reason:
        "there is no earlier good release to re-apply (first deploy of this stack): fix the failure and " +
        "deploy again, or destroy the stack's containers by hand",
    });
    return { steps: [...steps, { kind: "notify" }], automatic: false };
  }
  // The checkout comes first: a commit gone from git (force-push, shallow clone) must stop the rollback
  // before the database is restored, not leave the new program running on the old schema.
  if (input.previous.commit !== input.currentCommit) {
    steps.unshift({ kind: "checkout-commit", commit: input.previous.commit });
  }
  steps.push({ kind: "reapply-release", release: input.previous.id });
  steps.push({ kind: "verify-health" });
  steps.push({ kind: "notify" });
  return { steps, automatic: true };
}

/** One line per step, for `rollback.log` and for the person finishing a failed rollback by hand. */
export function describeStep(s: RollbackStep): string {
  switch (s.kind) {
    case "clear-pending-operations":
      return "clear the pending operations of the interrupted update (stack export, drop them, stack import, refresh)";
    case "safety-backup":
      return "take a safety backup of the database as it is now";
    case "restore-backup":
      return `restore the pre-deploy backup ${s.file}`;
    case "checkout-commit":
      return `check out commit ${s.commit} in a temporary git worktree`;
    case "reapply-release":
      return `re-apply release ${s.release} (its config and program) with up against the current state`;
    case "verify-health":
      return "verify health";
    case "manual":
      return `STOP, needs a person: ${s.reason}`;
    case "notify":
      return "notify";
  }
}

/** What a person asked `safe-deploy rollback` for. */
export interface ManualRollbackInput {
  /** Releases of the stack, newest first. */
  releases: readonly ReleaseRecord[];
  /** The release to return to; undefined for `--backup FILE` alone (database only). */
  target?: ReleaseRecord;
  /** `--commit`/`--full` of a commit no release recorded: its program with the current config. */
  commit?: string;
  /** A backup the person named (`--backup`, `--full`): always restored. */
  backupFile?: string;
  /** The database's migration version now (undefined: no table, or a custom tool). */
  currentSchema?: string;
  /** Migration versions the target's program knows (its migration files), when they can be listed. */
  knownSchemas?: readonly string[];
  /** The program on disk now. */
  currentCommit: string;
}

/** A manual rollback's steps, the backup it restores and why; or the reason it refuses to run. */
export type ManualRollbackPlan =
  { ok: true; steps: RollbackStep[]; backupFile?: string; why: string } | { ok: false; reason: string };

/** The pre-deploy backup of the first release after `target` that took one: the database as `target` left it. */
export function backupAfter(releases: readonly ReleaseRecord[], target: ReleaseRecord): string | undefined {
  return [...releases]
    .filter((r) => r.time > target.time || (r.time === target.time && r.id > target.id))
    .sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id))
    .find((r) => r.backupFile)?.backupFile;
}

/**
 * A person's rollback (`--quick`, `--to`, `--commit`, `--backup`, `--full`): a named backup is always
 * restored; otherwise the database is restored only when its schema differs from the target's, from the
 * backup the next deploy took. An old program is never started against a schema it does not know:
 * without a backup to restore, the plan refuses and says which flag fixes it.
 */
export function manualRollbackPlan(input: ManualRollbackInput): ManualRollbackPlan {
  const steps: RollbackStep[] = [];
  const commit = input.target?.commit ?? input.commit;
  let backupFile = input.backupFile;
  let why = backupFile ? `restoring ${backupFile} as asked` : "the database is left as it is";
  if (!backupFile && commit) {
    const targetSchema = input.target?.schemaVersion ?? input.target?.schemaVersionBefore;
    const known = input.target
      ? targetSchema === undefined
        ? undefined
        : [targetSchema]
      : input.knownSchemas;
    const matches =
      known !== undefined && input.currentSchema !== undefined && known.includes(input.currentSchema);
    const bothEmpty = input.currentSchema === undefined && targetSchema === undefined && !!input.target;
    if (!matches && !bothEmpty) {
      backupFile = input.target ? backupAfter(input.releases, input.target) : undefined;
      const schemaText =
        `the database is at migration ${input.currentSchema ?? "(unknown)"}` +
        (input.target ? `, release ${input.target.id} ran ${targetSchema ?? "(unknown)"}` : "");
      if (!backupFile) {
        return {
          ok: false,
          reason:
            `${schemaText}: starting the old program against a schema it does not know could corrupt data, ` +
            `and no backup from that time was recorded. Name one: --full ${commit.slice(0, 12)} FILE ` +
            `(list them with 'safe-deploy rollback --list')`,
        };
      }
      why = `${schemaText}: restoring ${backupFile}, the backup taken right after it`;
    } else {
      why = `the database is already at migration ${input.currentSchema ?? "(none)"}, which it knows: no restore`;
    }
  }
  // Checkout before restore, as in `rollbackPlan`: a failed checkout leaves the database untouched.
  if (commit && commit !== input.currentCommit) steps.push({ kind: "checkout-commit", commit });
  if (backupFile) steps.push({ kind: "safety-backup" }, { kind: "restore-backup", file: backupFile });
  if (commit) steps.push({ kind: "reapply-release", release: input.target?.id ?? commit.slice(0, 12) });
  steps.push({ kind: "verify-health" }, { kind: "notify" });
  return { ok: true, steps, backupFile, why };
}
