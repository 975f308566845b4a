import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { isAbsolute, resolve } from "node:path";
import type { StackConfig } from "../config";
import { Backup } from "../providers/backup";
import { offsiteBucket } from "./backupBucket";
import type { DeploymentArgs } from "./deployment-args";

/** Where and how the pre-deploy dump is taken. */
export interface PreDeployBackupArgs {
  config: StackConfig;
  args: Pick<DeploymentArgs, "projectDir" | "dataDir">;
  releaseKey: pulumi.Input<string>;
  /** The URL the dump uses from this machine. */
  databaseUrl: pulumi.Input<string>;
  /** The database's container, when the dump runs inside it (`backup.runIn: container`). */
  container?: { url: pulumi.Input<string>; name?: pulumi.Input<string> };
  encryptionKey?: pulumi.Input<string>;
  /** What must exist before the dump (hooks, the database container, the new image). */
  dependsOn: pulumi.Resource[];
  parent: pulumi.Resource;
}

/**
 * The Backup stage, the same on every target: production's off-site bucket when it manages one
 * (versioned, encrypted, private, expiring), then the Backup resource with the stack's backup and
 * change-stream settings.
 */
export function preDeployBackup(name: string, o: PreDeployBackupArgs): Backup {
  const c = o.config;
  const parent = o.parent;
  const s3 = c.backup.s3;
  const offsite = s3?.manageBucket
    ? offsiteBucket(
        `${name}-backups`,
        { bucketName: s3.bucket, prefix: s3.prefix },
        {
          parent,
          provider: new aws.Provider(`${name}-aws`, { region: s3.region as aws.Region }, { parent }),
        },
      )
    : undefined;
  const inContainer = c.backup.runIn === "container" && o.container;
  const dataDir = o.args.dataDir ?? o.args.projectDir;
  return new Backup(
    `${name}-backup`,
    {
      releaseKey: o.releaseKey,
      databaseUrl: inContainer ? o.container!.url : o.databaseUrl,
      dir: isAbsolute(c.backup.dir) ? c.backup.dir : resolve(dataDir, c.backup.dir),
      label: "pre-deploy",
      compression: c.backup.compression,
      runIn: inContainer ? "container" : "local",
      container: inContainer ? o.container!.name : undefined,
      dockerHost: c.docker.host,
      retention: { days: c.backup.retentionDays, minKeep: c.backup.minKeep },
      s3: s3 && offsite ? offsite.bucket.bucket.apply((bucket) => ({ ...s3, bucket })) : s3,
      encryptionKey: o.encryptionKey,
      changeStream: c.rollback.changeStream,
      slotWaitSeconds: c.rollback.slotWaitSeconds,
      requireNoLoss: c.rollback.requireNoLoss,
      stack: pulumi.getStack(),
    },
    {
      parent,
      dependsOn: [
        ...(offsite
          ? [offsite.versioning, offsite.encryption, offsite.publicAccessBlock, offsite.lifecycle]
          : []),
        ...o.dependsOn,
      ],
    },
  );
}
