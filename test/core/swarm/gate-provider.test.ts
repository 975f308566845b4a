import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { swarmServiceSpec } from "../../../src/core/swarm/spec";
import { RUN_ID } from "../../helpers/docker";
import { ensureBusyboxImage } from "../../helpers/health-image";
import { startTarget, type Target } from "../../helpers/http-targets";
import { setupMocks, type RecordedResource } from "../../helpers/mocks";
import { callSerializedProvider } from "../../helpers/provider";
import { applyService, createOverlay, ensureSwarm, removeServices } from "../../helpers/swarm";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const svc = `sd-gate-${RUN_ID}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
let target: Target;
let gate: RecordedResource;

// The HealthGate's service check as Pulumi's provider host runs it: the serialized provider, a real
// one-task service on the single-node swarm.
before(async () => {
  await ensureSwarm();
  const image = await ensureBusyboxImage();
  target = await startTarget(() => [200]);
  await createOverlay(`${svc}-net`);
  const spec = swarmServiceSpec({
    name: svc,
    image,
    port: 8080,
    hostPort: 8080,
    replicas: 1,
    network: `${svc}-net`,
    release: "p1",
    healthcheck: {
      command: ["CMD-SHELL", "true"],
      intervalSeconds: 1,
      timeoutSeconds: 1,
      retries: 1,
      startPeriodSeconds: 0,
    },
    swarm: {
      publishMode: "host",
      constraints: [],
      maxReplicasPerNode: 0,
      limits: {},
      parallelism: 1,
      monitorSeconds: 1,
    },
  });
  const c = spec.taskSpec.containerSpec;
  await applyService({
    ...spec,
    taskSpec: { ...spec.taskSpec, containerSpec: { ...c, commands: ["/bin/sh", "-c", "exec sleep 3600"] } },
  });
  const rec = await setupMocks({});
  const { HealthGate } = await import("../../../src/providers/healthgate");
  new HealthGate("swarm-health", { url: target.url, triggers: { serviceId: "s1" } });
  await new Promise((r) => setTimeout(r, 1500));
  gate = rec.byName("swarm-health");
});

after(async () => {
  await target?.close();
  await removeServices([svc]);
  await run("docker", ["network", "rm", `${svc}-net`]).catch(() => undefined);
});

const create = (release: string, retries: number) => {
  const { __provider: p, checkedAt: _c, attempts: _a, ...rest } = gate.inputs;
  return callSerializedProvider(p as string, "create", [
    { ...rest, retries, delaySeconds: 1, timeoutSeconds: 3, service: { service: svc, release, replicas: 1 } },
  ]);
};

test("inside the provider host the service check passes once the release's task runs", async () => {
  const r = await create("p1", 60);
  assert.ok(r.id.startsWith("healthgate-"));
});

test("inside the provider host a task of another release fails the gate, naming the service", async () => {
  await assert.rejects(
    create("p2", 1),
    /service sd-gate-[a-z0-9-]+: 0\/1 tasks of this release running; task 1 running \(older release\)/,
  );
});
