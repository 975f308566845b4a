import { test } from "node:test";
import assert from "node:assert/strict";
import { rolloutPlan, type RolloutStrategy } from "../../../src/core/rollout/plan";

test("rollout plans per strategy", () => {
  const cases: [RolloutStrategy, boolean, Partial<ReturnType<typeof rolloutPlan>>][] = [
    [
      "recreate",
      true,
      { deleteBeforeReplace: true, fixedName: true, publishHostPort: true, waitHealthy: true, proxy: false },
    ],
    ["recreate", false, { deleteBeforeReplace: true, waitHealthy: false }],
    [
      "blue-green",
      true,
      {
        deleteBeforeReplace: false,
        fixedName: false,
        publishHostPort: false,
        waitHealthy: true,
        proxy: true,
        downtime: null,
      },
    ],
  ];
  for (const [strategy, hasHealthcheck, want] of cases) {
    const plan = rolloutPlan(strategy, { hasHealthcheck });
    for (const [k, v] of Object.entries(want))
      assert.equal(plan[k as keyof typeof plan], v, `${strategy}.${k}`);
  }
  assert.match(rolloutPlan("recreate", { hasHealthcheck: true }).downtime ?? "", /requests fail until/);
});

test("blue-green without a healthcheck, and unknown strategies, are refused naming the key", () => {
  assert.throws(() => rolloutPlan("blue-green", { hasHealthcheck: false }), /`app.healthcheck`/);
  assert.throws(
    () => rolloutPlan("canary" as RolloutStrategy, { hasHealthcheck: true }),
    /`rollout` must be/,
  );
});
