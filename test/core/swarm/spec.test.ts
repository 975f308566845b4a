import { test } from "node:test";
import assert from "node:assert/strict";
import { parseTaskLine, serviceVerdict, type TaskState } from "../../../src/core/swarm/check";
import { swarmServiceSpec } from "../../../src/core/swarm/spec";

const check = { service: "web", release: "r2", replicas: 2 };
const task = (slot: number, state: string, release: string, err?: string): TaskState => ({
  ID: `t${slot}`,
  Slot: slot,
  DesiredState: "running",
  Status: { State: state, Err: err },
  Spec: { ContainerSpec: { Labels: { "safe-deploy.release": release } } },
});

test("serviceVerdict: table", () => {
  const cases: [string, Parameters<typeof serviceVerdict>[1], TaskState[], boolean, RegExp][] = [
    [
      "all tasks of the release running",
      {},
      [task(1, "running", "r2"), task(2, "running", "r2")],
      true,
      /2\/2 tasks/,
    ],
    [
      "update completed",
      { UpdateStatus: { State: "completed" } },
      [task(1, "running", "r2"), task(2, "running", "r2")],
      true,
      /2\/2/,
    ],
    [
      "Swarm rolled back",
      { UpdateStatus: { State: "rollback_completed", Message: "rollback completed" } },
      [task(1, "running", "r1"), task(2, "running", "r1")],
      false,
      /Swarm rolled the update back \(UpdateStatus rollback_completed: rollback completed\).*app\.swarm\.monitorSeconds/,
    ],
    [
      "rollback under way",
      { UpdateStatus: { State: "rollback_started" } },
      [],
      false,
      /rolling the update back/,
    ],
    ["update paused", { UpdateStatus: { State: "paused", Message: "x" } }, [], false, /paused the update/],
    [
      "one task still the old release",
      {},
      [task(1, "running", "r2"), task(2, "running", "r1")],
      false,
      /1\/2 tasks.*task 2 running \(older release\)/,
    ],
    [
      "one task starting",
      {},
      [task(1, "running", "r2"), task(2, "starting", "r2")],
      false,
      /1\/2.*task 2 starting/,
    ],
    [
      "a task failed with an error",
      {},
      [task(1, "failed", "r2", "task: non-zero exit (1)")],
      false,
      /task 1 failed: task: non-zero exit/,
    ],
    ["too few tasks", {}, [task(1, "running", "r2")], false, /1\/2 tasks/],
  ];
  for (const [name, svc, tasks, ok, detail] of cases) {
    const v = serviceVerdict(check, svc, tasks);
    assert.equal(v.ok, ok, name);
    // Only Swarm's own rollback/pause is final; tasks still starting may pass on a later attempt.
    assert.equal(v.final ?? false, !!svc.UpdateStatus?.State && svc.UpdateStatus.State !== "completed", name);
    assert.match(v.detail ?? "", detail, name);
  }
});

test("serviceVerdict ignores tasks Swarm is shutting down", () => {
  const old = { ...task(3, "running", "r1"), DesiredState: "shutdown" };
  assert.equal(serviceVerdict(check, {}, [task(1, "running", "r2"), task(2, "running", "r2"), old]).ok, true);
});

test("parseTaskLine reads the probe's task format, a missing label and an error holding '|'", () => {
  assert.deepEqual(parseTaskLine('abc|2|running|running|r2|""'), {
    ID: "abc",
    Slot: 2,
    DesiredState: "running",
    Status: { State: "running", Err: undefined },
    Spec: { ContainerSpec: { Labels: { "safe-deploy.release": "r2" } } },
  });
  const l = parseTaskLine('abc|1|running|rejected|<no value>|"exec: a|b not found"');
  assert.deepEqual(l.Spec?.ContainerSpec?.Labels, {});
  assert.equal(l.Status?.Err, "exec: a|b not found");
});

test("swarmServiceSpec: converge timeout covers every batch; limits only when set; argument checks", () => {
  const base = {
    name: "web",
    image: "web:1",
    port: 3000,
    hostPort: 8080,
    replicas: 4,
    network: "n",
    release: "r",
    healthcheck: {
      command: ["CMD", "true"],
      intervalSeconds: 5,
      timeoutSeconds: 5,
      retries: 3,
      startPeriodSeconds: 10,
    },
    swarm: {
      publishMode: "ingress" as const,
      constraints: [],
      maxReplicasPerNode: 0,
      limits: {},
      parallelism: 2,
      monitorSeconds: 15,
    },
  };
  const s = swarmServiceSpec(base);
  // 2 batches x (10 + 3 x 10 + 15) s, doubled, + 60 s.
  assert.equal(s.convergeConfig.timeout, `${2 * 55 * 2 + 60}s`);
  assert.equal(s.taskSpec.resources, undefined);
  assert.equal(s.taskSpec.placement.maxReplicas, undefined);
  assert.throws(() => swarmServiceSpec({ ...base, replicas: 0 }), /`replicas` must be an integer >= 1/);
  assert.throws(
    () => swarmServiceSpec({ ...base, healthcheck: { ...base.healthcheck, command: [] } }),
    /`healthcheck.command`/,
  );
});
