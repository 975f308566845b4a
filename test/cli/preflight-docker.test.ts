import assert from "node:assert/strict";
import { test } from "node:test";
import { needsDocker } from "../../src/cli/context/preflight";

// Issue 17: preflight ran `docker info` for every stack, so a Render app on an external database was
// refused on a machine (a CI runner) without Docker, though nothing of it runs in Docker.
test("preflight asks Docker only of stacks that run something in it", () => {
  const cases: Array<[string, string, boolean, boolean]> = [
    ["docker", "container", false, true],
    ["docker", "external", false, true],
    ["swarm", "external", false, true],
    ["pm2", "container", false, true],
    ["pm2", "external", true, true],
    ["pm2", "external", false, false],
    ["render", "external", false, false],
  ];
  for (const [target, mode, redis, want] of cases)
    assert.equal(
      needsDocker({ app: { target }, database: { mode }, redis: { enabled: redis } }),
      want,
      `${target} + ${mode} database${redis ? " + redis" : ""}`,
    );
});
