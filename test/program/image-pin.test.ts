import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { imageIdCommand } from "../../src/components/imagePin";
import { factsFromEvents, stageOf } from "../../src/core/release/orchestrator";
import { setupMocks, type RecordedResource } from "../helpers/mocks";
import { mockState, valueOf } from "../helpers/program";

// Issue 14, item 6: after `pulumi refresh`, RemoteImage.imageId is whatever the tag points at now on
// the host (pulumi-docker's read sets image_id from the local tag). The engine is mocked to return
// such a refreshed id for every RemoteImage, and the pins to return the id seen at first deploy.
const PINNED = `sha256:${"a".repeat(64)}`;
const REFRESHED = `sha256:${"b".repeat(64)}`;
let byName: (n: string) => RecordedResource;

before(async () => {
  ({ byName } = await setupMocks({
    stack: "staging",
    config: {
      app: {
        image: "web:2",
        rollout: "blue-green",
        healthcheck: { command: ["CMD", "true"] },
      },
      redis: { enabled: true },
      dbPassword: "pw-123456",
    },
    secretKeys: ["dbPassword"],
    state: (r) => {
      if (r.type === "docker:index/remoteImage:RemoteImage") return { imageId: REFRESHED };
      if (r.type === "command:local:Command" && r.name.endsWith("-image-pin"))
        return { stdout: `${PINNED}\n` };
      return mockState(r);
    },
  }));
  const program = await import("../../src/index");
  await valueOf(program.url);
  await new Promise((r) => setTimeout(r, 300));
});

test("database, Redis and proxy containers keep the pinned id when a refresh moved the tag", () => {
  for (const c of ["staging-database-db", "staging-redis-redis", "staging-app-proxy"]) {
    assert.equal(byName(c).inputs.image, PINNED, c);
  }
});

test("each pin runs once per configured reference and reads the id after the image was pulled", () => {
  const pin = byName("staging-database-image-pin");
  assert.equal(pin.inputs.create, "docker image inspect --format '{{.Id}}' postgres:15");
  assert.equal(pin.inputs.addPreviousOutputInEnv, false);
  assert.ok(pin.dependencies.includes(byName("staging-database-image").urn));
  assert.equal(
    byName("staging-redis-image-pin").inputs.create,
    "docker image inspect --format '{{.Id}}' redis:7",
  );
  assert.equal(
    byName("staging-app-proxy-image-pin").inputs.create,
    "docker image inspect --format '{{.Id}}' haproxy:2.8",
  );
});

test("a pin belongs to the image stage: creating one is no migration (no database restore on rollback)", () => {
  const pin = byName("staging-database-image-pin");
  assert.equal(stageOf(pin.type, pin.urn), "image");
  const facts = factsFromEvents([
    { kind: "done", op: "create", type: pin.type, urn: pin.urn, outputs: {} } as never,
  ]);
  assert.equal(facts.migrationRan, false);
  const mig = byName("staging-migration-migrate");
  assert.equal(stageOf(mig.type, mig.urn), "migration");
});

const TAG = `safe-deploy-test/pin-${randomBytes(4).toString("hex")}:1`;
const dir = mkdtempSync(join(tmpdir(), "pin-"));
after(() => {
  execFileSync("sh", ["-c", `docker image rm -f "${TAG}" >/dev/null 2>&1 || true`]);
  rmSync(dir, { recursive: true, force: true });
});

test("the pin's command, run against the real engine, prints the image's content id", () => {
  writeFileSync(join(dir, "f"), "x");
  execFileSync("sh", ["-c", `tar -C "${dir}" -c f | docker import - "${TAG}"`], { stdio: "ignore" });
  const want = execFileSync("docker", ["image", "inspect", "--format", "{{.Id}}", TAG], {
    encoding: "utf8",
  }).trim();
  assert.equal(execFileSync("/bin/sh", ["-c", imageIdCommand(TAG)], { encoding: "utf8" }).trim(), want);
  assert.throws(() => imageIdCommand("x; rm -rf /"), /plain image reference/);
});
