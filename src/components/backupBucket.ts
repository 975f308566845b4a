import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

/** Settings of the off-site backup bucket. */
export interface OffsiteBucketArgs {
  /** Days before a backup object (and a replaced version) expires; default 30. */
  expireDays?: number;
  /**
   * Key prefix of the backups (`backup.s3.prefix`): only objects under it expire, so anything else kept in
   * the bucket (the release history of docs/ci-cd.md) is not deleted with them. Default: the whole bucket.
   */
  prefix?: string;
  /** Bucket name; default: generated from `name`. */
  bucketName?: pulumi.Input<string>;
  /** Extra tags. */
  tags?: Record<string, string>;
}

/** The bucket and its settings, for wiring (the bucket name goes into the backup's `s3` input). */
export interface OffsiteBucket {
  bucket: aws.s3.Bucket;
  versioning: aws.s3.BucketVersioning;
  encryption: aws.s3.BucketServerSideEncryptionConfiguration;
  publicAccessBlock: aws.s3.BucketPublicAccessBlock;
  lifecycle: aws.s3.BucketLifecycleConfiguration;
}

/**
 * Declares the production off-site bucket: versioning (an overwrite or delete keeps the old copy),
 * SSE encryption at rest, every kind of public access blocked, and backups expiring after 30 days.
 */
export function offsiteBucket(
  name: string,
  args: OffsiteBucketArgs = {},
  opts: pulumi.CustomResourceOptions = {},
): OffsiteBucket {
  const days = args.expireDays ?? 30;
  if (!Number.isInteger(days) || days < 1)
    throw new Error("`expireDays` must be a whole number of days >= 1");
  const bucket = new aws.s3.Bucket(
    name,
    { bucket: args.bucketName, forceDestroy: false, tags: { purpose: "safe-deploy-backups", ...args.tags } },
    { protect: true, ...opts },
  );
  const child = { ...opts, parent: opts.parent ?? bucket };
  const versioning = new aws.s3.BucketVersioning(
    `${name}-versioning`,
    { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } },
    child,
  );
  const encryption = new aws.s3.BucketServerSideEncryptionConfiguration(
    `${name}-sse`,
    {
      bucket: bucket.id,
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
    },
    child,
  );
  const publicAccessBlock = new aws.s3.BucketPublicAccessBlock(
    `${name}-public-access`,
    {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    },
    child,
  );
  const lifecycle = new aws.s3.BucketLifecycleConfiguration(
    `${name}-expiry`,
    {
      bucket: bucket.id,
      rules: [
        {
          id: "expire-backups",
          status: "Enabled",
          filter: { prefix: args.prefix ?? "" },
          expiration: { days },
          noncurrentVersionExpiration: { noncurrentDays: days },
          abortIncompleteMultipartUpload: { daysAfterInitiation: 2 },
        },
      ],
    },
    { ...child, dependsOn: [versioning] },
  );
  return { bucket, versioning, encryption, publicAccessBlock, lifecycle };
}
