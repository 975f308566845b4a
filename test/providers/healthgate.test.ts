import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { plaintextPart, setupMocks, type RecordedResource } from "../helpers/mocks";
import { callSerializedProvider, UNKNOWN } from "../helpers/provider";
import { startTarget, type Target } from "../helpers/http-targets";

let healthy: Target;
let flaky: Target;
let never: Target;
let gate: RecordedResource;
let withDb: RecordedResource;

before(
  async () => {
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
    new HealthGate("db-health", {
      url: healthy.url,
      postgresUrl: "postgres://app:s3cret-pw@127.0.0.1:1/app",
      triggers: { containerId: "c1" },
    });
    await rec.registered("web-health", "db-health");
    gate = rec.byName("web-health");
    withDb = rec.byName("db-health");
  },
  { timeout: 120_000 },
);

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

test("the database URL is stored only as a secret", () => {
  assert.equal(withDb.inputs.postgresUrl, "postgres://app:s3cret-pw@127.0.0.1:1/app");
  assert.ok(!JSON.stringify(plaintextPart(withDb.wireInputs)).includes("s3cret-pw"));
  assert.ok(withDb.additionalSecretOutputs.includes("postgresUrl"));
});

test("an unreachable database fails the gate without leaking its password", async () => {
  const { __provider: text, checkedAt: _c, attempts: _a, ...ins } = withDb.inputs;
  await assert.rejects(
    callSerializedProvider(text, "create", [{ ...ins, retries: 1, timeoutSeconds: 1 }]),
    (e: Error) => {
      assert.match(e.message, /postgres: ECONNREFUSED/);
      assert.ok(!e.message.includes("s3cret-pw"));
      return true;
    },
  );
});

test("the container and TCP checks run inside the provider host too", async () => {
  await assert.rejects(
    callSerializedProvider(provider(), "create", [
      inputs({
        retries: 1,
        container: { name: "safe-deploy-test-no-such-container", logPatterns: [] },
        tcp: [{ host: "127.0.0.1", port: 1 }],
      }),
    ]),
    (e: Error) => {
      assert.match(e.message, /container safe-deploy-test-no-such-container: no such container/);
      assert.match(e.message, /tcp 127\.0\.0\.1:1 ECONNREFUSED/);
      return true;
    },
  );
});

test("preview: check and diff take unknown inputs, even inside lists and objects, without failing", async () => {
  // In preview the engine sends a value not known yet as its UUID, also inside lists: a list of
  // status codes with one unknown is not "not a list of HTTP status codes".
  const unknowns = inputs({
    url: UNKNOWN,
    retries: UNKNOWN,
    expectStatus: [200, UNKNOWN],
    triggers: { containerId: UNKNOWN, imageId: "sha256:aaa" },
    tcp: [{ host: "127.0.0.1", port: UNKNOWN }],
  });
  const r = await callSerializedProvider(provider(), "check", [{}, unknowns]);
  assert.deepEqual(r.failures, []);
  const bad = await callSerializedProvider(provider(), "check", [
    {},
    inputs({ expectStatus: [UNKNOWN, 42] }),
  ]);
  assert.deepEqual(
    bad.failures.map((f: { property: string }) => f.property),
    ["expectStatus"],
    "a known bad code still fails",
  );
  const olds = { ...inputs(), checkedAt: "2026-01-01T00:00:00.000Z", attempts: 1 };
  const d = await callSerializedProvider(provider(), "diff", ["id", olds, unknowns]);
  assert.deepEqual([d.changes, d.replaces], [true, []]);
});
