import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";
import { ensureBusyboxImage } from "../helpers/health-image";

const run = promisify(execFile);
let byName: (n: string) => RecordedResource;

// blue-green + app.maintenanceDuringMigrations: the proxy serves its maintenance page while migrating.
before(async () => {
  const loaded = await loadProgram({
    config: {
      app: {
        image: "web:2",
        rollout: "blue-green",
        maintenanceDuringMigrations: true,
        healthcheck: { command: ["CMD", "node", "src/healthcheck.js"] },
      },
    },
    secrets: { dbPassword: "pw-maint" },
  });
  byName = loaded.rec.byName;
});

const network = `sd-maint-graph-${process.pid}`;
after(async () => {
  await run("docker", ["rm", "-f", "staging-maintenance"]).catch(() => undefined);
  await run("docker", ["network", "rm", network]).catch(() => undefined);
});

test("maintenance on after the backup, the migration after it, off after the migration, the app after that", () => {
  const on = byName("staging-maintenance-on");
  const off = byName("staging-maintenance-off");
  const migrate = byName("staging-migration-migrate");
  assert.equal(on.type, "command:local:Command");
  assert.ok(on.dependencies.includes(byName("staging-backup").urn));
  assert.ok(migrate.dependencies.includes(on.urn), "the migration waits for maintenance on");
  assert.ok(off.dependencies.includes(migrate.urn), "maintenance off waits for the migration");
  assert.ok(byName("staging-app-app").dependencies.includes(off.urn));
  assert.match(on.inputs.create, /--network-alias safe-deploy-maintenance/);
  assert.deepEqual(on.inputs.triggers, off.inputs.triggers.slice(0, 1), "both run on every release");
  // `create` runs again on any input change (pulumi-command): whatever re-runs "on" must re-run "off",
  // or e.g. a new migrations.timeoutSeconds leaves the site on its maintenance page with no release.
  assert.ok(off.inputs.triggers.includes(on.inputs.create), "off re-runs whenever on's command changes");
  assert.deepEqual(off.inputs.environment, on.inputs.environment);
  const cfg = byName("staging-app-proxy").inputs.uploads.find((u: any) =>
    u.file.endsWith("haproxy.cfg"),
  ).content;
  assert.match(cfg, /if \{ nbsrv\(maint\) ge 1 \}/);
  assert.match(cfg, /server-template flag 1-1 safe-deploy-maintenance:80/);
});

test("the recorded on/off commands really start and remove the flag container (real Docker)", async () => {
  const image = await ensureBusyboxImage();
  await run("docker", ["network", "create", network]);
  const on = byName("staging-maintenance-on")
    .inputs.create.replace(/--network \S+/, `--network ${network}`)
    .replace(/haproxy:2\.8/, image);
  const alias = async () =>
    (
      await run("docker", [
        "inspect",
        "-f",
        `{{json (index .NetworkSettings.Networks "${network}").Aliases}}`,
        "staging-maintenance",
      ])
    ).stdout;
  await run("sh", ["-c", on]);
  assert.match(await alias(), /safe-deploy-maintenance/);
  await run("sh", ["-c", on]); // a leftover of an interrupted deploy is replaced, not an error
  await run("sh", ["-c", byName("staging-maintenance-off").inputs.create]);
  await assert.rejects(alias(), /No such object/);
  await run("sh", ["-c", byName("staging-maintenance-off").inputs.create]); // idempotent
});
