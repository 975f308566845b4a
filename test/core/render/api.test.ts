// Issue 17: the Render client against a loopback STAND-IN of Render's documented endpoints (standin.ts).
import { after, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { renderRelease, type RenderTarget } from "../../../src/core/render/api";
import { ConfigError, CannotRunError } from "../../../src/core/errors";
import { startRenderStandIn, type RenderStandIn } from "./standin";

let api: RenderStandIn;
const target = (over: Partial<RenderTarget> = {}): RenderTarget => ({
  apiUrl: api.apiUrl,
  apiKey: api.apiKey,
  serviceId: api.serviceId,
  baseDelayMs: 1,
  ...over,
});
const wait = { timeoutSeconds: 5, pollSeconds: 0.01 };

beforeEach(async () => {
  await api?.close();
  api = await startRenderStandIn("c0ffee0");
});
after(() => api.close());

test("a deploy of the commit goes live; the release records the deploy that was live before", async () => {
  const r = await renderRelease(target(), { commitId: "abc1234", ...wait });
  assert.deepEqual(r, { deployId: "dep-1", previousDeployId: "dep-live0", previousCommit: "c0ffee0" });
  assert.deepEqual(api.bodies[0], { clearCache: "do_not_clear", commitId: "abc1234" });
  assert.equal(api.deploys.find((d) => d.id === "dep-1")?.status, "live");
});

test("rollback: Render's rollback to the recorded deploy id, no new build", async () => {
  await renderRelease(target(), { commitId: "abc1234", ...wait });
  const r = await renderRelease(target(), { commitId: "c0ffee0", rollbackTo: "dep-live0", ...wait });
  assert.equal(r.previousDeployId, "dep-1");
  assert.ok(api.requests.includes(`POST /v1/services/${api.serviceId}/rollback`));
  assert.deepEqual(api.bodies.at(-1), { deployId: "dep-live0" });
  assert.equal(api.deploys.find((d) => d.id === r.deployId)?.trigger, "rollback");
});

test("a failed deploy fails with its status and carries the release it started", async () => {
  api.progress = ["build_in_progress", "build_failed"];
  await assert.rejects(renderRelease(target(), { commitId: "bad", ...wait }), (e: any) => {
    assert.match(e.message, /Render deploy dep-1 of srv-standin1 ended build_failed/);
    assert.deepEqual(e.release, {
      deployId: "dep-1",
      previousDeployId: "dep-live0",
      previousCommit: "c0ffee0",
    });
    return true;
  });
});

test("a deploy not live by the deadline fails naming app.render.deployTimeoutSeconds", async () => {
  api.progress = ["build_in_progress"];
  await assert.rejects(
    renderRelease(target(), { commitId: "slow", timeoutSeconds: 0.05, pollSeconds: 0.01 }),
    /not live after 0.05 s \(status build_in_progress\): raise `app.render.deployTimeoutSeconds`/,
  );
});

test("HTTP 401: one request, no retry, a message naming renderApiKey and never the key", async () => {
  await assert.rejects(
    renderRelease(target({ apiKey: "rnd_wrongKey999" }), { commitId: "x", ...wait }),
    (e: any) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /refused the API key \(HTTP 401\).*pulumi config set --secret renderApiKey/);
      assert.ok(!e.message.includes("rnd_wrongKey999"));
      return true;
    },
  );
  assert.equal(api.requests.length, 1);
});

test("429 and 5xx are retried (Retry-After honoured) until the API answers", async () => {
  api.failNext([429, 503, 502], "0");
  const r = await renderRelease(target(), { commitId: "abc1234", ...wait });
  assert.equal(r.deployId, "dep-1");
  assert.deepEqual(api.requests.slice(0, 4), Array(4).fill(`GET /v1/services/${api.serviceId}/deploys`));
});

test("a 5xx that persists fails after the attempts, saying what to do", async () => {
  api.failNext([500, 500, 500, 500]);
  await assert.rejects(renderRelease(target({ attempts: 3 }), { commitId: "x", ...wait }), (e: any) => {
    assert.ok(e instanceof CannotRunError);
    assert.match(e.message, /still failed after 3 attempts \(HTTP 500.*status.render.com/);
    return true;
  });
  assert.equal(api.requests.length, 3);
});

test("an unknown service is a 404 naming app.render.serviceId, not retried", async () => {
  await assert.rejects(
    renderRelease(target({ serviceId: "srv-other" }), { commitId: "x", ...wait }),
    /app.render.serviceId/,
  );
  assert.equal(api.requests.length, 1);
});
