// The deploy workflow's "keep the release history" step, run as a runner runs it (bash -eo pipefail) with
// a stand-in `aws` that records its arguments: checkpoints go up with --delete (pruned ones leave the
// bucket too) and a checkpoint holding a plaintext secret never goes up.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { SECRET_SIG, SECRET_SIG_VALUE } from "../../src/core/release/checkpoints";

const ROOT = join(__dirname, "../..");
type Step = { name?: string; run?: string };
const workflow = parseYaml(readFileSync(join(ROOT, ".github/workflows/deploy.yml"), "utf8")) as {
  jobs: Record<string, { steps: Step[] }>;
};
const step = Object.values(workflow.jobs)
  .flatMap((j) => j.steps)
  .find((s) => s.name === "keep the release history")!;

function runStep(checkpoint: Record<string, unknown>): { code: number | null; aws: string[]; err: string } {
  const dir = mkdtempSync(join(tmpdir(), "sd-sync-"));
  try {
    const bin = join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "aws"), `#!/bin/sh\necho "$*" >> "${dir}/aws.log"\n`);
    chmodSync(join(bin, "aws"), 0o755);
    const work = join(dir, "work");
    mkdirSync(join(work, ".safe-deploy/checkpoints/production"), { recursive: true });
    writeFileSync(
      join(work, ".safe-deploy/checkpoints/production/r-20261206-000000-abc-0.json"),
      JSON.stringify(checkpoint),
    );
    const r = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", step.run!], {
      cwd: work,
      env: { PATH: `${bin}:${process.env.PATH}`, STATE_S3: "s3://bucket/state/", STACK: "production" },
      encoding: "utf8",
    });
    const aws = (() => {
      try {
        return readFileSync(join(dir, "aws.log"), "utf8").trim().split("\n");
      } catch {
        return [];
      }
    })();
    return { code: r.status, aws, err: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("encrypted checkpoints are synced with --delete, the rest of the state without them", () => {
  const r = runStep({ deployment: { x: { [SECRET_SIG]: SECRET_SIG_VALUE, ciphertext: "v1:abc" } } });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.aws, [
    "s3 sync --only-show-errors --exclude locks/* --exclude checkpoints/* .safe-deploy/ s3://bucket/state/production/",
    "s3 sync --only-show-errors --delete .safe-deploy/checkpoints/ s3://bucket/state/production/checkpoints/",
  ]);
});

test("a checkpoint with a plaintext secret is never uploaded, and the step fails saying so", () => {
  const r = runStep({ deployment: { x: { [SECRET_SIG]: SECRET_SIG_VALUE, plaintext: '"hunter22"' } } });
  assert.equal(r.code, 1);
  assert.match(r.err, /checkpoint with plaintext secrets .* not uploading checkpoints/);
  assert.ok(
    r.aws.every((a) => a.includes("--exclude checkpoints/*")),
    r.aws.join("\n"),
  );
});
