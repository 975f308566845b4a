import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../../src/core/errors";
import { setupMocks } from "../helpers/mocks";
import { mockState } from "../helpers/program";

test("a bad stack config stops the program with ONE error naming every key, before any resource", async () => {
  const rec = await setupMocks({
    stack: "staging",
    config: { app: { port: 70000 }, health: { retries: 0 }, helth: { path: "/x" } },
    state: mockState,
  });
  await assert.rejects(import("../../src/index"), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, /Stack config of "staging" is invalid \(5 problems\)/);
    assert.deepEqual(
      e.problems.map((p) => p.split(":")[0]),
      ["helth", "app.port", "app.image", "health.retries", "dbPassword"],
    );
    assert.match(e.message, /pulumi config set --secret dbPassword/);
    return true;
  });
  assert.deepEqual(rec.resources, []);
});
