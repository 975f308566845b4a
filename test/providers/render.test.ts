// Issue 17: RenderDeploy through Pulumi's own dynamic-provider host (callSerializedProvider), against a
// loopback STAND-IN of Render's API (test/core/render/standin.ts).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { plaintextPart, setupMocks, type RecordedResource } from "../helpers/mocks";
import { callSerializedProvider, SerializedProviderError } from "../helpers/provider";
import { startRenderStandIn, type RenderStandIn } from "../core/render/standin";

let api: RenderStandIn;
let res: RecordedResource;

before(async () => {
  api = await startRenderStandIn("c0ffee0");
  const rec = await setupMocks({});
  const { RenderDeploy } = await import("../../src/providers/render");
  new RenderDeploy("web-render", {
    apiUrl: api.apiUrl,
    apiKey: api.apiKey,
    serviceId: api.serviceId,
    commit: "abc1234",
    timeoutSeconds: 5,
    pollSeconds: 0.01,
  });
  await rec.registered("web-render");
  res = rec.byName("web-render");
});
after(() => api.close());

const provider = () => res.inputs.__provider as string;
const inputs = (over: Record<string, unknown> = {}) => {
  const { __provider: _p, deployId: _d, previousDeployId: _x, previousCommit: _c, ...rest } = res.inputs;
  return { ...rest, ...over };
};

test("registers as safe-deploy:RenderDeploy with the API key secret on the wire and in outputs", () => {
  assert.equal(res.type, "pulumi-nodejs:dynamic/safe-deploy:RenderDeploy");
  assert.ok(!JSON.stringify(plaintextPart(res.wireInputs)).includes(api.apiKey));
  assert.ok(res.additionalSecretOutputs.includes("apiKey"));
  assert.ok(!provider().includes(api.apiKey), "the key is not captured in __provider");
});

test("check names a bad serviceId", async () => {
  const r = await callSerializedProvider(provider(), "check", [{}, inputs({ serviceId: "web" })]);
  assert.deepEqual(
    r.failures.map((f: { property: string }) => f.property),
    ["serviceId"],
  );
});

test("create deploys and returns deployId and previousDeployId; the rollback update goes back to it", async () => {
  const created = await callSerializedProvider(provider(), "create", [inputs()]);
  assert.equal(created.id, `render-${api.serviceId}`);
  assert.equal(created.outs.deployId, "dep-1");
  assert.equal(created.outs.previousDeployId, "dep-live0");
  assert.equal(created.outs.previousCommit, "c0ffee0");

  // The next release, then re-applying the previous one (what `safe-deploy rollback` does).
  const next = await callSerializedProvider(provider(), "update", [
    created.id,
    created.outs,
    inputs({ commit: "def5678" }),
  ]);
  assert.equal(next.outs.previousDeployId, "dep-1");
  const back = await callSerializedProvider(provider(), "update", [
    created.id,
    next.outs,
    inputs({ commit: "abc1234" }),
  ]);
  assert.deepEqual(api.bodies.at(-1), { deployId: "dep-1" });
  assert.equal(api.deploys.find((d) => d.id === back.outs.deployId)?.trigger, "rollback");

  const diff = await callSerializedProvider(provider(), "diff", [
    created.id,
    back.outs,
    inputs({ pollSeconds: 1 }),
  ]);
  assert.equal(diff.changes, true);
  const quiet = await callSerializedProvider(provider(), "update", [
    created.id,
    back.outs,
    inputs({ pollSeconds: 1 }),
  ]);
  assert.equal(quiet.outs.deployId, back.outs.deployId, "a settings change deploys nothing");
});

test("a failed deploy is a partial failure that records the deploy it started and the live one before", async () => {
  api.progress = ["build_failed"];
  try {
    await assert.rejects(
      callSerializedProvider(provider(), "create", [inputs({ commit: "bad0000" })]),
      (e: unknown) => {
        assert.ok(e instanceof SerializedProviderError, String(e));
        assert.match(e.message, /ended build_failed/);
        const props = e.properties as { deployId: string; previousDeployId: string };
        assert.equal(props.deployId, api.deploys[0].id);
        assert.ok(props.previousDeployId.startsWith("dep-"));
        return true;
      },
    );
  } finally {
    api.progress = ["build_in_progress", "live"];
  }
});

test("a 401 fails the step at once with the fix", async () => {
  const before = api.requests.length;
  await assert.rejects(
    callSerializedProvider(provider(), "create", [inputs({ apiKey: "rnd_bad" })]),
    /refused the API key \(HTTP 401\).*renderApiKey/,
  );
  assert.equal(api.requests.length, before + 1);
});
