import { before, test } from "node:test";
import assert from "node:assert/strict";
import type { RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";

// Issue 15: after `safe-deploy db upgrade` wrote `database.volumeName`, the container really moves to
// the new volume. Before, the one `-data` resource ignored changes of `name`, so the new image started on
// the old major's data directory and refused it.
let rec: { byName: (n: string) => RecordedResource; resources: RecordedResource[] };

before(async () => {
  ({ rec } = await loadProgram({
    stack: "prod",
    config: {
      app: { image: "web:1" },
      database: { mode: "container", image: "postgres:17", volumeName: "safe-deploy-prod-pgdata-17" },
    },
    secrets: { dbPassword: "pw-123456" },
  }));
});

test("an upgraded volume is its own resource and the container mounts it", () => {
  const v = rec.byName("prod-database-data-safe-deploy-prod-pgdata-17");
  assert.equal(v.type, "docker:index/volume:Volume");
  assert.equal(v.inputs.name, "safe-deploy-prod-pgdata-17");
  assert.equal(
    rec.resources.some((r) => r.name === "prod-database-data"),
    false,
    "the first major's volume resource is left to Docker (retainOnDelete), not renamed",
  );
  assert.deepEqual(rec.byName("prod-database-db").inputs.volumes, [
    { volumeName: "safe-deploy-prod-pgdata-17", containerPath: "/var/lib/postgresql/data" },
  ]);
});
