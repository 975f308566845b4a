import { test } from "node:test";
import assert from "node:assert/strict";
import { setupMocks } from "../helpers/mocks";

test(
  "offsite bucket: versioning, SSE, public access blocked, 30-day expiry, protected",
  { timeout: 60_000 },
  async () => {
    const rec = await setupMocks({ stack: "production" });
    const { offsiteBucket } = await import("../../src/components/backupBucket");
    const b = offsiteBucket("prod-backups");
    await rec.registered(
      "prod-backups",
      "prod-backups-expiry",
      "prod-backups-public-access",
      "prod-backups-sse",
      "prod-backups-versioning",
    );
    assert.ok(b.bucket);
    const types = rec.resources.map((r) => `${r.type} ${r.name}`).sort();
    assert.deepEqual(types, [
      "aws:s3/bucket:Bucket prod-backups",
      "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration prod-backups-expiry",
      "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock prod-backups-public-access",
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration prod-backups-sse",
      "aws:s3/bucketVersioning:BucketVersioning prod-backups-versioning",
    ]);
    assert.equal(rec.byName("prod-backups-versioning").inputs.versioningConfiguration.status, "Enabled");
    assert.equal(
      rec.byName("prod-backups-sse").inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm,
      "AES256",
    );
    const pab = rec.byName("prod-backups-public-access").inputs;
    for (const k of ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"])
      assert.equal(pab[k], true, k);
    const rule = rec.byName("prod-backups-expiry").inputs.rules[0];
    assert.equal(rule.expiration.days, 30);
    assert.equal(rule.noncurrentVersionExpiration.noncurrentDays, 30);
    assert.equal(rule.status, "Enabled");
    assert.ok(
      rec.byName("prod-backups-expiry").dependencies.includes(rec.byName("prod-backups-versioning").urn),
    );
    assert.throws(() => offsiteBucket("x", { expireDays: 0 }), /`expireDays`/);
  },
);
