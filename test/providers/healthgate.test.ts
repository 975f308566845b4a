import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setupMocks, type RecordedResource } from "../helpers/mocks";
import { callSerializedProvider } from "../helpers/provider";
import { startTarget, type Target } from "../helpers/http-targets";

let healthy: Target;
let flaky: Target;
let never: Target;
let gate: RecordedResource;

before(async () => {
  healthy = await startTarget(() => [200]);
  flaky = await startTarget((n) => (n === 1 ? [503] : [200]));
  never = await startTarget(() => [503, "maintenance"]);
  const rec = await setupMocks({});
  const { HealthGate } = await import("../../src/providers/healthgate");
  new HealthGate("web-health", {
    url: healthy.url,
    retries: 2,
    delaySeconds: 0.1,
    timeoutSeconds: 2,
    triggers: { containerId: "c1", imageId: "sha256:aaa" },
  });
  await new Promise((r) => setTimeout(r, 1500));
  gate = rec.byName("web-health");
});

after(async () => {
  await Promise.all([healthy.close(), flaky.close(), never.close()]);
});

const provider = () => gate.inputs.__provider as string;
const inputs = (over: Record<string, unknown> = {}) => {
  const { __provider: _p, checkedAt: _c, attempts: _a, ...rest } = gate.inputs;
  return { ...rest, ...over };
};

test("registers with the HealthGate type token and the given inputs", () => {
  assert.equal(gate.type, "pulumi-nodejs:dynamic/safe-deploy:HealthGate");
  assert.deepEqual(gate.inputs.triggers, { containerId: "c1", imageId: "sha256:aaa" });
  assert.equal(typeof gate.inputs.__provider, "string");
});

test("check rejects a bad url and retries, naming the property", async () => {
  const r = await callSerializedProvider(provider(), "check", [{}, inputs({ url: "ftp://x", retries: 0 })]);
  assert.deepEqual(
    r.failures.map((f: { property: string }) => f.property),
    ["url", "retries"],
  );
  const ok = await callSerializedProvider(provider(), "check", [{}, inputs()]);
  assert.deepEqual(ok.failures, []);
});

test("create passes against a healthy server and records the attempts", async () => {
  const r = await callSerializedProvider(provider(), "create", [inputs()]);
  assert.match(r.id, /^healthgate-/);
  assert.equal(r.outs.attempts, 1);
  assert.ok(!Number.isNaN(Date.parse(r.outs.checkedAt)));
  assert.ok(healthy.hits() >= 1);
});

test("create retries through a 503 and passes on the second attempt", async () => {
  const r = await callSerializedProvider(provider(), "create", [inputs({ url: flaky.url })]);
  assert.equal(r.outs.attempts, 2);
});

test("a never-healthy server fails with one message listing every attempt", async () => {
  await assert.rejects(
    callSerializedProvider(provider(), "create", [inputs({ url: never.url, retries: 3 })]),
    (e: Error) => {
      assert.match(e.message, /health check of http:\/\/127\.0\.0\.1:\d+\/health failed/);
      assert.match(e.message, /after 3 attempt/);
      assert.equal(e.message.match(/#\d \S+ FAILED status 503/g)?.length, 3);
      assert.match(e.message, /--retries/);
      return true;
    },
  );
  assert.equal(never.hits(), 3);
});

test("a trigger change is an update that re-runs the gate; unchanged inputs are no change", async () => {
  const olds = { ...inputs(), checkedAt: "2026-01-01T00:00:00.000Z", attempts: 1 };
  const same = await callSerializedProvider(provider(), "diff", ["id", olds, inputs()]);
  assert.equal(same.changes, false);
  const next = inputs({ triggers: { containerId: "c2", imageId: "sha256:bbb" } });
  const d = await callSerializedProvider(provider(), "diff", ["id", olds, next]);
  assert.equal(d.changes, true);
  assert.deepEqual(d.replaces, []);
  const before = healthy.hits();
  const u = await callSerializedProvider(provider(), "update", ["id", olds, next]);
  assert.equal(healthy.hits(), before + 1, "update polled the server again");
  assert.notEqual(u.outs.checkedAt, olds.checkedAt);
  await assert.rejects(
    callSerializedProvider(provider(), "update", ["id", olds, { ...next, url: never.url, retries: 2 }]),
    /failed: no healthy result after 2 attempt/,
  );
});
