import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStackConfig } from "../../src/config";
import { setupMocks, type RecordedResource } from "../helpers/mocks";
import { mockState, valueOf } from "../helpers/program";

// Issue 14, item 2: a rebuild under the same tag (deploy-staging.sh builds `...:staging`) must be a new
// release. Two real images under one tag on the real Docker engine; the program is declared once per image.
const TAG = `safe-deploy-test/mutable-${randomBytes(4).toString("hex")}:staging`;
const dir = mkdtempSync(join(tmpdir(), "mutable-tag-"));

/** Makes a tiny image (one file, no base image) under TAG and returns its id. */
function importImage(content: string): string {
  writeFileSync(join(dir, "version.txt"), content);
  execFileSync("sh", ["-c", `tar -C "${dir}" -c version.txt | docker import - "${TAG}"`], {
    stdio: "ignore",
  });
  return execFileSync("docker", ["image", "inspect", "--format", "{{.Id}}", TAG], {
    encoding: "utf8",
  }).trim();
}

let rec: { resources: RecordedResource[]; byName(n: string): RecordedResource };
before(async () => {
  rec = await setupMocks({ stack: "staging", state: mockState, config: {} });
});
after(() => {
  execFileSync("sh", [
    "-c",
    `docker image rm -f $(docker image ls -q "${TAG.split(":")[0]}") >/dev/null 2>&1 || true`,
  ]);
  rmSync(dir, { recursive: true, force: true });
});

async function declare(name: string) {
  const { Deployment } = await import("../../src/components/deployment");
  const config = parseStackConfig(
    { app: { image: TAG }, backup: { dir: "./backups/staging" }, secretsSet: ["dbPassword"] },
    "staging",
  );
  const d = new Deployment(name, {
    config,
    projectDir: join(__dirname, "../.."),
    commit: "0".repeat(40),
    secrets: { dbPassword: (await import("@pulumi/pulumi")).secret("pw-123456") },
  });
  await valueOf(d.url);
  await new Promise((r) => setTimeout(r, 200));
  return { releaseKey: await valueOf(d.releaseKey), imageId: await valueOf(d.imageId) };
}

test("two images under one tag give two release keys, container images and recorded ids", async () => {
  const first = importImage("one");
  const a = await declare("a");
  const second = importImage("two");
  assert.notEqual(first, second);
  const b = await declare("b");

  assert.equal(a.imageId, first);
  assert.equal(b.imageId, second);
  assert.notEqual(a.releaseKey, b.releaseKey);
  assert.equal(rec.byName("a-app-app").inputs.image, first);
  assert.equal(rec.byName("b-app-app").inputs.image, second);
  // The release key feeds the backup and migration triggers: both run again for the rebuilt tag.
  assert.notEqual(rec.byName("a-backup").inputs.releaseKey, rec.byName("b-backup").inputs.releaseKey);
});
