import * as pulumi from "@pulumi/pulumi";
import { createBackup } from "../../core/backup/create";
import { parseKey, uploadBackup } from "../../core/backup/offsite";
import { pruneBackups } from "../../core/backup/retention";
import { slotName } from "../../core/changes/slot";
import { diffBackup } from "./diff";

/** Inputs of a Backup. */
export interface BackupArgs {
  /** Image digest + migrations checksum; a change runs a new backup. */
  releaseKey: pulumi.Input<string>;
  /** Always a Pulumi secret; for runIn "container" the URL as seen inside the db container. */
  databaseUrl: pulumi.Input<string>;
  /** Local directory for backup files. */
  dir: pulumi.Input<string>;
  /** Default "pre-deploy". */
  label?: pulumi.Input<string>;
  /** Default zstd. */
  compression?: pulumi.Input<"zstd" | "gzip" | "none">;
  /** Default local. */
  runIn?: pulumi.Input<"local" | "container">;
  /** The db container's name, when runIn is "container". */
  container?: pulumi.Input<string>;
  /** e.g. unix:///var/run/docker.sock or ssh://user@host. */
  dockerHost?: pulumi.Input<string>;
  retention?: pulumi.Input<{ days: number; minKeep: number }>;
  s3?: pulumi.Input<{
    bucket: string;
    region: string;
    endpoint?: string;
    prefix: string;
    forcePathStyle: boolean;
  }>;
  /** AES-256-GCM key (64 hex chars or base64) for the off-site copy; default $SAFE_DEPLOY_BACKUP_KEY. Secret. */
  encryptionKey?: pulumi.Input<string>;
  /** Open the release's change stream (a logical slot at the dump's snapshot, issue 20). Default false. */
  changeStream?: pulumi.Input<boolean>;
  /** How long opening the stream may wait for transactions already running (`rollback.slotWaitSeconds`). */
  slotWaitSeconds?: pulumi.Input<number>;
  /** `rollback.requireNoLoss`: fail the backup (so the deploy) when the stream cannot be opened. */
  requireNoLoss?: pulumi.Input<boolean>;
  /** The stack, for the slot's name. */
  stack?: pulumi.Input<string>;
}

interface Inputs {
  releaseKey: string;
  databaseUrl: string;
  dir: string;
  label?: string;
  compression?: "zstd" | "gzip" | "none";
  runIn?: "local" | "container";
  container?: string;
  dockerHost?: string;
  retention?: { days: number; minKeep: number };
  s3?: { bucket: string; region: string; endpoint?: string; prefix: string; forcePathStyle: boolean };
  encryptionKey?: string;
  changeStream?: boolean;
  slotWaitSeconds?: number;
  requireNoLoss?: boolean;
  stack?: string;
}

/** Serialized engine errors are no longer `instanceof Error`; hosts print a plain Error's message. */
function plainError(e: unknown): never {
  const m = e && typeof e === "object" && "message" in e ? String((e as Error).message) : String(e);
  throw new Error(`backup failed: ${m}`);
}

// Methods require() nothing at module scope and call engine functions, which Pulumi copies by value
// into `__provider`; the provider host then runs them in a plain node process.
const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: Inputs, news: Inputs) {
    const failures: { property: string; reason: string }[] = [];
    for (const k of ["releaseKey", "databaseUrl", "dir"] as const) {
      if (typeof news[k] !== "string" || news[k] === "")
        failures.push({ property: k, reason: `\`${k}\` is required` });
    }
    if (news.runIn === "container" && !news.container) {
      failures.push({ property: "container", reason: '`container` is required when `runIn` is "container"' });
    }
    return { inputs: news, failures };
  },

  async diff(_id: string, olds: Inputs, news: Inputs) {
    return diffBackup(olds, news);
  },

  async create(inputs: Inputs) {
    // A bad key fails before the dump, not after minutes of it.
    const keyText = inputs.s3 ? (inputs.encryptionKey ?? process.env.SAFE_DEPLOY_BACKUP_KEY) : undefined;
    let encryptionKey: Buffer | undefined;
    try {
      encryptionKey = keyText
        ? parseKey(keyText, inputs.encryptionKey ? "backupEncryptionKey" : "SAFE_DEPLOY_BACKUP_KEY")
        : undefined;
    } catch (e) {
      plainError(e);
    }
    const r = await createBackup({
      databaseUrl: inputs.databaseUrl,
      dir: inputs.dir,
      label: inputs.label ?? "pre-deploy",
      compression: inputs.compression ?? "zstd",
      target: { runIn: inputs.runIn ?? "local", container: inputs.container, dockerHost: inputs.dockerHost },
      // One slot per backup: the release it guards is known by the backup's time (the ledger's id is not).
      changeSlot: inputs.changeStream
        ? slotName(inputs.stack ?? "stack", new Date().toISOString().replace(/\D/g, "").slice(0, 14))
        : undefined,
      changeSlotWaitMs: inputs.slotWaitSeconds ? inputs.slotWaitSeconds * 1000 : undefined,
      requireChanges: inputs.changeStream ? inputs.requireNoLoss === true : undefined,
    }).catch(plainError);
    let s3Key: string | undefined;
    if (inputs.s3) {
      const up = await uploadBackup(r.file, r.manifest, inputs.s3, { encryptionKey }).catch((e: unknown) =>
        plainError(`${(e as Error)?.message ?? String(e)} (the local backup ${r.file} is complete and kept)`),
      );
      s3Key = up.key;
    }
    if (inputs.retention) {
      await pruneBackups(inputs.dir, {
        keepDays: inputs.retention.days,
        keepMin: inputs.retention.minKeep,
      }).catch(plainError);
    }
    const { databaseUrl: _secret, encryptionKey: _key, ...settings } = inputs;
    return {
      id: r.manifest.file,
      outs: {
        ...settings,
        file: r.file,
        sha256: r.manifest.sha256,
        sizeBytes: r.manifest.sizeBytes,
        createdAt: r.manifest.createdAt,
        // Absent, not `undefined`: Pulumi's provider host marshals outs with Struct.fromJavaScript,
        // which throws on undefined after the dump is written (pulumi/pulumi#7576).
        ...(s3Key === undefined ? {} : { s3Key }),
        ...(r.manifest.changes
          ? { changeSlot: r.manifest.changes.slot, changeStartLsn: r.manifest.changes.startLsn }
          : {}),
        ...(r.changesSkipped ? { changesSkipped: r.changesSkipped } : {}),
      },
    };
  },

  async update(_id: string, olds: Record<string, unknown>, news: Inputs) {
    // Only settings changed: they apply to the next backup; this one stays as it is.
    const { databaseUrl: _secret, encryptionKey: _key, ...settings } = news;
    return { outs: { ...olds, ...settings } };
  },

  async delete() {
    // Never deletes a backup file: removing the resource only forgets it. Retention prunes files.
  },
};

/** The pre-deploy backup: runs the engine whenever the release key changes; delete keeps the file. */
export class Backup extends pulumi.dynamic.Resource {
  /** Absolute path of the backup file. */
  declare readonly file: pulumi.Output<string>;
  declare readonly sha256: pulumi.Output<string>;
  declare readonly sizeBytes: pulumi.Output<number>;
  /** ISO time. */
  declare readonly createdAt: pulumi.Output<string>;
  declare readonly s3Key: pulumi.Output<string | undefined>;
  /** The release's logical slot (issue 20), when the change stream is on and the server allows it. */
  declare readonly changeSlot: pulumi.Output<string | undefined>;
  /** The slot's consistent point: the dump holds what was committed before it. */
  declare readonly changeStartLsn: pulumi.Output<string | undefined>;
  /** Why the change stream was asked for but not opened. */
  declare readonly changesSkipped: pulumi.Output<string | undefined>;

  constructor(name: string, args: BackupArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        ...args,
        databaseUrl: pulumi.secret(args.databaseUrl),
        encryptionKey: args.encryptionKey === undefined ? undefined : pulumi.secret(args.encryptionKey),
        file: undefined,
        sha256: undefined,
        sizeBytes: undefined,
        createdAt: undefined,
        s3Key: undefined,
        changeSlot: undefined,
        changeStartLsn: undefined,
        changesSkipped: undefined,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["databaseUrl", "encryptionKey"] }),
      "safe-deploy",
      "Backup",
    );
  }
}
