import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import writeFileAtomic from "write-file-atomic";
import { CheckFailedError, ConfigError } from "../errors";

/** Stages of a guarded deploy, in order; `soak` is the watch after cutover. */
export const STAGES = ["preflight", "image", "backup", "migration", "hooks", "containers", "health", "soak"] as const;
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
  /** The pre-deploy backup this release took. */
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
    await fs.promises.mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.file(r.id), text);
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
      return JSON.parse(await fs.promises.readFile(this.file(id), "utf8")) as ReleaseRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      throw new ConfigError(
        `release \`${id}\` not found for stack "${this.stack}"; list them with \`safe-deploy history --stack ${this.stack}\``,
      );
    }
  }

  /** Every release, newest first; unreadable files are skipped (a crash mid-write leaves only temp files). */
  async list(): Promise<ReleaseRecord[]> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    const out: ReleaseRecord[] = [];
    for (const n of names) {
      if (!n.endsWith(".json") || !ID_RE.test(n.slice(0, -5))) continue;
      try {
        out.push(JSON.parse(await fs.promises.readFile(path.join(this.dir, n), "utf8")));
      } catch {
        continue;
      }
    }
    return sortReleases(out);
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
