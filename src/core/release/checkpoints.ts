// The stack checkpoints archived with each release (issue 14, part 3): `pulumi stack export` as the
// stack's secrets provider keeps it, secrets as ciphertext. They are the documented way back from broken
// state (`safe-deploy checkpoint restore`), never a rollback. Pulumi-free: the CLI exports and imports.
import * as fs from "node:fs";
import * as path from "node:path";
import writeFileAtomic from "write-file-atomic";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";

/** The key Pulumi marks a secret value with in a deployment (apitype.SecretSig). */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";
/** Its value. */
export const SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** How many of the newest releases keep their checkpoint (the last good release always keeps its own). */
export const CHECKPOINTS_KEPT = 10;

/**
 * JSON paths of the secrets an exported deployment holds in plaintext (`stack export --show-secrets`
 * writes `{"<sig>": ..., "plaintext": "..."}`; without it `"ciphertext"`). Pure.
 */
export function plaintextSecretPaths(state: unknown, at = "$"): string[] {
  if (Array.isArray(state)) return state.flatMap((v, i) => plaintextSecretPaths(v, `${at}[${i}]`));
  if (!state || typeof state !== "object") return [];
  const o = state as Record<string, unknown>;
  if (o[SECRET_SIG] === SECRET_SIG_VALUE) return "plaintext" in o ? [at] : [];
  return Object.entries(o).flatMap(([k, v]) => plaintextSecretPaths(v, `${at}.${k}`));
}

/** What `checkpoint show` says of one checkpoint. */
export interface CheckpointSummary {
  version?: number;
  resources: number;
  /** Resource count per type, e.g. `docker:index/container:Container: 3`. */
  types: Record<string, number>;
  pendingOperations: number;
  /** `passphrase`, `awskms`, ... or `service` (Pulumi Cloud). */
  secretsProvider?: string;
  encryptedSecrets: number;
  plaintextSecrets: number;
}

/** Counts what a checkpoint holds, without a secret's value. Pure. */
export function summarizeCheckpoint(state: unknown): CheckpointSummary {
  const s = state as {
    version?: number;
    deployment?: {
      resources?: Array<{ type?: string }>;
      pending_operations?: unknown[];
      secrets_providers?: { type?: string };
    };
  };
  const types: Record<string, number> = {};
  for (const r of s?.deployment?.resources ?? []) types[r.type ?? "?"] = (types[r.type ?? "?"] ?? 0) + 1;
  let encrypted = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== "object") return;
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG] === SECRET_SIG_VALUE) {
      if ("ciphertext" in o) encrypted++;
      return;
    }
    Object.values(o).forEach(walk);
  };
  walk(state);
  return {
    version: s?.version,
    resources: s?.deployment?.resources?.length ?? 0,
    types,
    pendingOperations: s?.deployment?.pending_operations?.length ?? 0,
    secretsProvider: s?.deployment?.secrets_providers?.type,
    encryptedSecrets: encrypted,
    plaintextSecrets: plaintextSecretPaths(state).length,
  };
}

/**
 * Checkpoints to delete: those of releases the ledger no longer has (pruned with their releases), and
 * those older than the `keep` newest releases, except the last good release's. Pure.
 */
export function checkpointsToPrune(
  checkpoints: readonly string[],
  releases: ReadonlyArray<{ id: string; result: string }>,
  keep = CHECKPOINTS_KEPT,
): string[] {
  const newestFirst = [...releases].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const kept = new Set(newestFirst.slice(0, keep).map((r) => r.id));
  const lastGood = newestFirst.find((r) => r.result === "good");
  if (lastGood) kept.add(lastGood.id);
  return checkpoints.filter((id) => !kept.has(id));
}

/** One archived checkpoint file. */
export interface CheckpointFile {
  release: string;
  file: string;
  bytes: number;
}

/** The checkpoints of one stack: `<stateDir>/checkpoints/<stack>/<release>.json`, 0600 in a 0700 directory. */
export class CheckpointStore {
  readonly dir: string;

  constructor(
    stateDir: string,
    readonly stack: string,
  ) {
    if (!stack) throw new ConfigError("`--stack` is required to read or write checkpoints");
    this.dir = path.join(stateDir, "checkpoints", encodeURIComponent(stack));
  }

  /** The file of release `id`'s checkpoint. */
  file(id: string): string {
    if (!/^r-[0-9A-Za-z-]+$/.test(id))
      throw new ConfigError(`\`${id}\` is not a release id (like r-20261123-030000-abc1234-1a2b)`);
    return path.join(this.dir, `${id}.json`);
  }

  /**
   * Writes release `id`'s checkpoint atomically (a temp file renamed into place: never half a file), 0600
   * in a 0700 directory. Refuses a state with a plaintext secret: the folder is synced to the backup bucket.
   */
  async write(id: string, state: unknown): Promise<string> {
    const leaks = plaintextSecretPaths(state);
    if (leaks.length) {
      throw new CheckFailedError(
        `refusing to archive the checkpoint of release ${id}: ${leaks.length} secret(s) in plaintext (at ` +
          `${leaks.slice(0, 3).join(", ")}). Export it without --show-secrets so the stack's secrets provider keeps them encrypted`,
      );
    }
    const file = this.file(id);
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
    // mkdir's mode applies only to directories it creates: an older run's may be 0755.
    await fs.promises.chmod(this.dir, 0o700);
    await writeFileAtomic(file, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
    return file;
  }

  /** Every checkpoint of the stack, oldest first. */
  async list(): Promise<CheckpointFile[]> {
    const names = await fs.promises.readdir(this.dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return [] as string[];
      throw e;
    });
    const out: CheckpointFile[] = [];
    for (const n of names.filter((n) => /^r-.*\.json$/.test(n)).sort()) {
      const file = path.join(this.dir, n);
      out.push({ release: n.slice(0, -".json".length), file, bytes: (await fs.promises.stat(file)).size });
    }
    return out;
  }

  /** Release `id`'s checkpoint; a ConfigError naming `checkpoint list` when there is none. */
  async read(id: string): Promise<unknown> {
    const file = this.file(id);
    let text: string;
    try {
      text = await fs.promises.readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        throw new ConfigError(
          `release ${id} has no checkpoint in ${this.dir}: see 'safe-deploy checkpoint list --stack ${this.stack}'`,
        );
      }
      throw new CannotRunError(`cannot read the checkpoint ${file}: ${(e as Error).message}`);
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new CheckFailedError(`the checkpoint ${file} is not valid JSON (${(e as Error).message})`);
    }
  }

  /**
   * Deletes the checkpoints `checkpointsToPrune` picks, and any checkpoint an older version wrote with
   * plaintext secrets (the leak this store exists to end). Returns the files removed.
   */
  async prune(
    releases: ReadonlyArray<{ id: string; result: string }>,
    keep = CHECKPOINTS_KEPT,
  ): Promise<string[]> {
    const files = await this.list();
    const old = new Set(
      checkpointsToPrune(
        files.map((f) => f.release),
        releases,
        keep,
      ),
    );
    const removed: string[] = [];
    for (const f of files) {
      let leak = false;
      if (!old.has(f.release)) {
        const text = await fs.promises.readFile(f.file, "utf8").catch(() => "");
        leak = text.includes('"plaintext"') && plaintextSecretPaths(safeParse(text)).length > 0;
      }
      if (old.has(f.release) || leak) {
        await fs.promises.rm(f.file, { force: true });
        removed.push(f.file);
      }
    }
    return removed;
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
