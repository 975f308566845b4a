// The container labels and the pure choices `recover`/`status` make from them (issue 22: each mutant of
// labels.ts is a container the CLI would pick wrongly, or an orphan it would miss or invent).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ROLE_LABEL,
  STACK_LABEL,
  containerLabels,
  containersByRole,
  orphanContainers,
  type StackContainer,
} from "../../../src/core/release/labels";

const c = (id: string, role: string, state: string, created: string): StackContainer => ({
  id,
  name: `name-${id}`,
  role,
  state,
  created,
});

test("containerLabels: the stack and the role, under the names the CLI filters on", () => {
  assert.equal(STACK_LABEL, "safe-deploy.stack");
  assert.equal(ROLE_LABEL, "safe-deploy.role");
  assert.deepEqual(containerLabels("staging", "app"), [
    { label: "safe-deploy.stack", value: "staging" },
    { label: "safe-deploy.role", value: "app" },
  ]);
});

test("containersByRole: a running container beats a newer exited one; the newest running one wins", () => {
  const list = [
    c("old", "app", "running", "2026-12-06 04:10:11 +0000 UTC"),
    c("failed", "app", "exited", "2026-12-06 05:00:00 +0000 UTC"),
    c("new", "app", "running", "2026-12-06 04:20:00 +0000 UTC"),
    c("db", "database", "running", "2026-12-01 00:00:00 +0000 UTC"),
  ];
  assert.deepEqual(containersByRole(list), { app: "name-new", database: "name-db" });
  assert.deepEqual(containersByRole([...list].reverse()), { app: "name-new", database: "name-db" });
});

test("containersByRole: among equals the first listed stays; exited ones count when nothing runs", () => {
  const same = "2026-12-06 04:10:11 +0000 UTC";
  assert.deepEqual(containersByRole([c("a", "app", "running", same), c("b", "app", "running", same)]), {
    app: "name-a",
  });
  assert.deepEqual(
    containersByRole([
      c("a", "app", "exited", "2026-12-06 01:00:00"),
      c("b", "app", "created", "2026-12-06 02:00:00"),
    ]),
    { app: "name-b" },
  );
});

test("containersByRole: a container without a role is nobody's", () => {
  assert.deepEqual(containersByRole([c("x", "", "running", "2026-12-06")]), {});
  assert.deepEqual(containersByRole([]), {});
});

test("orphanContainers: only containers the state's Container resources do not name by id", () => {
  const labelled = [
    c("a", "app", "running", ""),
    c("b", "app", "running", ""),
    c("d", "database", "running", ""),
  ];
  const state = {
    deployment: {
      resources: [
        { type: "docker:index/container:Container", id: "a" },
        // Same id under another type (an image, a network) does not make the container known.
        { type: "docker:index/network:Network", id: "b" },
        { type: "docker:index/container:Container" },
        { type: "docker:index/container:Container", id: "d" },
      ],
    },
  };
  assert.deepEqual(
    orphanContainers(labelled, state).map((x) => x.id),
    ["b"],
  );
});

test("orphanContainers: with no state, or a state without resources, every labelled container is an orphan", () => {
  const labelled = [c("a", "app", "running", "")];
  for (const state of [undefined, null, {}, { deployment: {} }, { deployment: { resources: [] } }]) {
    assert.deepEqual(
      orphanContainers(labelled, state).map((x) => x.id),
      ["a"],
      JSON.stringify(state),
    );
  }
});
