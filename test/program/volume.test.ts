import { before, test } from "node:test";
import assert from "node:assert/strict";
import type { RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";

// Issue 14, item 7: the database volume must survive `destroy`, a renamed resource and a rollback to
// an older program; an existing stack must keep its (auto-named) volume.
const options = new Map<string, { retainOnDelete: boolean; ignoreChanges: string[]; protect: boolean }>();
let byName: (n: string) => RecordedResource;

before(async () => {
  const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks");
  const original = MockMonitor.prototype.registerResource;
  MockMonitor.prototype.registerResource = function (req: any, callback: any) {
    options.set(req.getName(), {
      retainOnDelete: req.getRetainondelete(),
      ignoreChanges: req.getIgnorechangesList(),
      protect: req.getProtect(),
    });
    return original.call(this, req, callback);
  };
  ({ byName } = (
    await loadProgram({
      stack: "prod.eu",
      config: { app: { image: "web:1" } },
      secrets: { dbPassword: "pw-123456" },
    })
  ).rec);
});

test("the volume has a fixed name from project and stack, the same on every run", () => {
  const v = byName("prod.eu-database-data");
  assert.equal(v.type, "docker:index/volume:Volume");
  assert.equal(v.inputs.name, "safe-deploy-prod.eu-pgdata");
  const db = byName("prod.eu-database-db").inputs;
  assert.deepEqual(db.volumes, [
    { volumeName: "safe-deploy-prod.eu-pgdata", containerPath: "/var/lib/postgresql/data" },
  ]);
});

test("destroy or a deleted/renamed resource keeps the volume; an existing stack keeps its old name", () => {
  const o = options.get("prod.eu-database-data")!;
  assert.equal(o.retainOnDelete, true);
  // A changed `name` replaces a docker volume (a new, empty one): the name in state wins.
  assert.deepEqual(o.ignoreChanges, ["name"]);
});
