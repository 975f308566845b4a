import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import writeFileAtomic from "write-file-atomic";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";

/** Stages of a guarded deploy, in order; `soak` is the watch after cutover. */
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
export type Stage = (typeof STAGES)[number];

/** How a release ended. `pending` while it runs (or if the tool died mid-deploy). */
export type ReleaseResult = "pending" | "good" | "bad" | "rolled-back";

/** One deploy attempt, written before `up` starts so a rollback can always find what came before. */
export interface ReleaseRecord {
  id: string;
  stack: string;
  /** ISO-8601 UTC start time. */
  time: string;
  commit: string;
  /** The stack's config as `pulumi config --show-secrets=false` gives it: secure values stay ciphertext. */
  config: Record<string, unknown>;
  imageDigest?: string;
  /** Migration version before the deploy (what a rollback returns the database to). */
  schemaVersionBefore?: string;
  /** Migration version after the deploy's migration stage. */
  schemaVersion?: string;
  /** File of `stack export` taken before `up`. */
  checkpoint?: string;
  /** The pre-deploy backup this release took; for a rollback, its safety backup (the database before it). */
  backupFile?: string;
  result: ReleaseResult;
  durationMs?: number;
  failedStage?: Stage;
  /** Redacted one-line reason of the failure. */
  error?: string;
  /** For a rollback: the release it re-applied. */
  rolledBackTo?: string;
  /** Raw `Pulumi.<stack>.yaml` of the deploy (secrets as ciphertext): what a rollback re-applies. */
  configFile?: string;
  /** Warnings of a good release (failed postDeploy hooks). */
  warnings?: string[];
  /** A good release's change stream (issue 20), kept for a manual rollback until `keepUntil` (ISO). */
  changes?: { slot: string; startLsn: string; keepUntil: string };
  /**
   * A rollback with restore (issue 20): the writes made after the restored backup, replayed (counts and
   * report files) or why they were not (`lost`).
   */
  replay?: {
    slot?: string;
    transactions?: number;
    applied?: number;
    reported?: number;
    reportJson?: string;
    reportSql?: string;
    lost?: string;
  };
}

/** What a new record needs; id, time and result are filled in. */
export type NewRelease = Omit<ReleaseRecord, "id" | "time" | "result"> & { time?: Date };

/** `r-20261123-030000-abc1234-1a2b`: sorts by time, names the commit, unique across two runs in a second. */
export function newReleaseId(time: Date, commit: string, suffix = randomBytes(2).toString("hex")): string {
  const stamp = time.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const short = commit.replace(/[^0-9a-zA-Z]/g, "").slice(0, 7) || "nocommit";
  return `r-${stamp}-${short}-${suffix}`;
}

const ID_RE = /^r-\d{8}-\d{6}-[0-9a-zA-Z]+-[0-9a-f]+$/;

const RESULTS: readonly string[] = ["pending", "good", "bad", "rolled-back"];
const OPTIONAL_STRINGS = [
  "imageDigest",
  "schemaVersionBefore",
  "schemaVersion",
  "checkpoint",
  "backupFile",
  "error",
  "rolledBackTo",
  "configFile",
] as const;

/**
 * Why the text of `<id>.json` is not a release record, or undefined when it is. Pure. Unknown fields are
 * allowed (a newer version may add some); missing or mistyped known ones are not, since a rollback
 * would otherwise pick its target from a half-read record.
 */
export function recordProblem(text: string, id: string): string | undefined {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    return `not valid JSON (${(e as Error).message}); a write cut short or a hand edit`;
  }
  if (!r || typeof r !== "object" || Array.isArray(r)) return "not a JSON object";
  if (r.id !== id) return `its id is ${JSON.stringify(r.id)}, not the file's name ${id}`;
  for (const k of ["stack", "time", "commit"] as const)
    if (typeof r[k] !== "string" || !r[k]) return `\`${k}\` is missing or not a string`;
  if (Number.isNaN(Date.parse(r.time as string))) return `\`time\` ${JSON.stringify(r.time)} is not a date`;
  if (!RESULTS.includes(r.result as string))
    return `\`result\` is ${JSON.stringify(r.result)}, not one of ${RESULTS.join(", ")}`;
  for (const k of OPTIONAL_STRINGS)
    if (r[k] !== undefined && typeof r[k] !== "string") return `\`${k}\` is not a string`;
  if (r.failedStage !== undefined && !(STAGES as readonly unknown[]).includes(r.failedStage))
    return `\`failedStage\` ${JSON.stringify(r.failedStage)} is not a stage (${STAGES.join(", ")})`;
  if (r.durationMs !== undefined && typeof r.durationMs !== "number") return "`durationMs` is not a number";
  return undefined;
}

/** A record file that could not be read as a release. */
export interface UnreadableRecord {
  file: string;
  reason: string;
}

/** The sentence naming unreadable records and what to do with them (they are never skipped silently). */
export function describeUnreadable(stack: string, bad: readonly UnreadableRecord[]): string {
  return (
    `${bad.length} release record(s) of stack "${stack}" cannot be read:\n` +
    bad.map((b) => `  ${b.file}: ${b.reason}`).join("\n") +
    `\nA rollback could pick the wrong release without them. Restore the file from a copy, fix its JSON, ` +
    `or move it out of the releases directory (e.g. \`mv FILE FILE.broken\`) if that release is not needed.`
  );
}

/** A failed read or write of the state directory as a sentence naming the file and the fix. Pure. */
export function ioError(e: unknown, doing: string, file: string): CannotRunError {
  const code = (e as NodeJS.ErrnoException).code;
  const fix =
    code === "ENOSPC" || code === "EDQUOT"
      ? "free disk space there"
      : code === "EACCES" || code === "EPERM" || code === "EROFS"
        ? `give this user read and write access to ${path.dirname(file)}, or pass --state-dir`
        : `check that ${path.dirname(file)} is a directory this user may write, or pass --state-dir`;
  return new CannotRunError(`cannot ${doing} ${file}: ${(e as Error).message}; ${fix}`);
}

/** Newest first: by time, then id (ids embed the time, so ties only come from equal seconds). */
export function sortReleases(records: readonly ReleaseRecord[]): ReleaseRecord[] {
  return [...records].sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
}

/** The newest good release, skipping `except` (the one being rolled back). */
export function pickLastGood(records: readonly ReleaseRecord[], except?: string): ReleaseRecord | undefined {
  return sortReleases(records).find((r) => r.result === "good" && r.id !== except);
}

/** The release store of one stack: `<stateDir>/releases/<stack>/<id>.json`, each written atomically. */
export class Ledger {
  readonly dir: string;

  /** `secrets` are refused in any record: a leaked secret in a file people copy around is worse than a failed deploy. */
  constructor(
    stateDir: string,
    readonly stack: string,
    private readonly secrets: readonly string[] = [],
  ) {
    if (!stack) throw new ConfigError("`--stack` is required to read or write releases");
    this.dir = path.join(stateDir, "releases", encodeURIComponent(stack));
  }

  private file(id: string): string {
    if (!ID_RE.test(id))
      throw new ConfigError(`\`${id}\` is not a release id (like r-20261123-030000-abc1234-1a2b)`);
    return path.join(this.dir, `${id}.json`);
  }

  private async write(r: ReleaseRecord): Promise<void> {
    const text = JSON.stringify(r, null, 2) + "\n";
    for (const s of this.secrets) {
      if (s && s.length >= 4 && text.includes(s)) {
        throw new CheckFailedError(
          `refusing to write release ${r.id}: it contains a secret value in plaintext (keep secrets as ` +
            `\`pulumi config set --secret\` ciphertext in the recorded config)`,
        );
      }
    }
    const file = this.file(r.id);
    try {
      await fs.promises.mkdir(this.dir, { recursive: true });
      // write-file-atomic: a temp file renamed into place, so a kill or a full disk never leaves half a record.
      await writeFileAtomic(file, text);
    } catch (e) {
      throw ioError(e, `write the release record`, file);
    }
  }

  /** Reads and checks one record file; a CheckFailedError names the file and the fix. */
  private async read(id: string): Promise<ReleaseRecord> {
    const file = this.file(id);
    let text: string;
    try {
      text = await fs.promises.readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw e;
      throw ioError(e, "read the release record", file);
    }
    const reason = recordProblem(text, id);
    if (reason) throw new CheckFailedError(describeUnreadable(this.stack, [{ file, reason }]));
    return JSON.parse(text) as ReleaseRecord;
  }

  /** Records a new release as `pending` and returns it. */
  async create(input: NewRelease): Promise<ReleaseRecord> {
    const { time = new Date(), ...rest } = input;
    const record: ReleaseRecord = {
      ...rest,
      id: newReleaseId(time, input.commit),
      stack: this.stack,
      time: time.toISOString(),
      result: "pending",
    };
    await this.write(record);
    return record;
  }

  /** One release, or a ConfigError naming the id and how to list them. */
  async get(id: string): Promise<ReleaseRecord> {
    try {
      return await this.read(id);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      throw new ConfigError(
        `release \`${id}\` not found for stack "${this.stack}"; list them with \`safe-deploy history --stack ${this.stack}\``,
      );
    }
  }

  /**
   * Every release, newest first, and the record files that could not be read (temp files of a write
   * cut short are not records: their names do not end in `.json`).
   */
  async readAll(): Promise<{ releases: ReleaseRecord[]; unreadable: UnreadableRecord[] }> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { releases: [], unreadable: [] };
      throw ioError(e, "list the release records in", this.dir);
    }
    const releases: ReleaseRecord[] = [];
    const unreadable: UnreadableRecord[] = [];
    for (const n of names.sort()) {
      if (!n.endsWith(".json") || !ID_RE.test(n.slice(0, -5))) continue;
      const file = path.join(this.dir, n);
      const text = await fs.promises.readFile(file, "utf8").catch((e: Error) => e);
      const reason = typeof text === "string" ? recordProblem(text, n.slice(0, -5)) : text.message;
      if (reason) unreadable.push({ file, reason });
      else releases.push(JSON.parse(text as string) as ReleaseRecord);
    }
    return { releases: sortReleases(releases), unreadable };
  }

  /** Every release, newest first; an unreadable record is a CheckFailedError naming it, never skipped. */
  async list(): Promise<ReleaseRecord[]> {
    const { releases, unreadable } = await this.readAll();
    if (unreadable.length) throw new CheckFailedError(describeUnreadable(this.stack, unreadable));
    return releases;
  }

  /** The newest good release other than `except`. */
  async lastGood(except?: string): Promise<ReleaseRecord | undefined> {
    return pickLastGood(await this.list(), except);
  }

  /** Merges fields into a release (schema version after migration, image digest, ...). */
  async update(id: string, patch: Partial<Omit<ReleaseRecord, "id" | "stack">>): Promise<ReleaseRecord> {
    const next = { ...(await this.get(id)), ...patch };
    await this.write(next);
    return next;
  }

  /** Sets how a release ended, with its duration and, when bad, the stage that failed. */
  async markResult(
    id: string,
    result: Exclude<ReleaseResult, "pending">,
    extra: Pick<ReleaseRecord, "durationMs" | "failedStage" | "error" | "rolledBackTo"> = {},
  ): Promise<ReleaseRecord> {
    return this.update(id, { result, ...extra });
  }
}
