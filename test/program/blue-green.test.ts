import { before, test } from "node:test";
import assert from "node:assert/strict";
import type { RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";

let byName: (n: string) => RecordedResource;
let resources: RecordedResource[];

// rollout: blue-green — the proxy owns the host port; app containers come and go behind it.
before(async () => {
  const loaded = await loadProgram({
    config: {
      app: {
        image: "web:2",
        rollout: "blue-green",
        hostPort: 8080,
        healthcheck: { command: ["CMD", "node", "src/healthcheck.js"], retries: 5 },
      },
      health: { expectStatus: [200, 204] },
    },
    secrets: { dbPassword: "pw-bluegreen" },
  });
  ({ byName, resources } = loaded.rec);
});

test("the new app container has no fixed name or host port, joins the `app` alias, waits healthy, old one goes after", () => {
  const app = byName("staging-app-app");
  assert.equal(app.inputs.name, undefined);
  assert.equal(app.inputs.ports, undefined);
  assert.deepEqual(app.inputs.networksAdvanced[0].aliases, ["app"]);
  assert.deepEqual(app.inputs.healthcheck.tests, ["CMD", "node", "src/healthcheck.js"]);
  assert.equal(app.inputs.healthcheck.retries, 5);
  assert.equal(app.inputs.wait, true);
  assert.equal(app.deleteBeforeReplace, false);
});

test("a proxy container owns the host port and routes to every healthy container of the alias", () => {
  const proxy = byName("staging-app-proxy");
  assert.equal(proxy.type, "docker:index/container:Container");
  assert.deepEqual(proxy.inputs.ports, [{ internal: 3000, external: 8080, ip: "127.0.0.1" }]);
  assert.equal(proxy.deleteBeforeReplace, true);
  const cfg = proxy.inputs.uploads.find((u: any) => u.file === "/usr/local/etc/haproxy/haproxy.cfg").content;
  assert.match(cfg, /^ {2}server-template app 1-4 app:3000$/m);
  assert.match(cfg, /^ {2}option httpchk GET \/health$/m);
  assert.match(cfg, /http-check expect rstatus \^\(200\|204\)\$/);
  assert.ok(byName("staging-app-app").dependencies.includes(proxy.urn), "the proxy is up before the app");
  assert.equal(byName("staging-app-proxy-image").inputs.name, "haproxy:2.8");
});

test("the gate checks the URL through the proxy AND the new container itself", () => {
  const g = byName("staging-health").inputs;
  assert.equal(g.url, "http://127.0.0.1:8080/health");
  assert.equal(g.container.dockerHost, "unix:///var/run/docker.sock");
  assert.ok(g.container.name, "the new container's name");
  assert.ok(byName("staging-health").dependencies.includes(byName("staging-app-app").urn));
});

test("blue-green adds exactly the proxy, its image and the image's pin to the recreate graph", () => {
  assert.deepEqual(
    resources
      .filter((r) => r.name.includes("proxy"))
      .map((r) => r.name)
      .sort(),
    ["staging-app-proxy", "staging-app-proxy-image", "staging-app-proxy-image-pin"],
  );
});

test("without app.maintenanceDuringMigrations: no maintenance commands, no flag backend in the proxy", () => {
  assert.deepEqual(
    resources.filter((r) => r.name.includes("maintenance")).map((r) => r.name),
    [],
  );
  const cfg = byName("staging-app-proxy").inputs.uploads.find((u: any) =>
    u.file.endsWith("haproxy.cfg"),
  ).content;
  assert.doesNotMatch(cfg, /nbsrv\(maint\)|backend maint|safe-deploy-maintenance/);
  assert.match(cfg, /if \{ nbsrv\(app\) lt 1 \}/, "the page still shows when no app container is healthy");
  assert.ok(
    byName("staging-app-app").dependencies.includes(byName("staging-migration-migrate").urn),
    "the app still waits for the migration",
  );
});

test("issue 18: a drain command per app container, replaced with it, drains it in the proxy before its delete", () => {
  const drain = byName("staging-app-drain");
  const app = byName("staging-app-app");
  const proxy = byName("staging-app-proxy");
  assert.equal(drain.type, "command:local:Command");
  assert.ok(drain.dependencies.includes(app.urn), "deleted before the container it drains");
  assert.ok(drain.dependencies.includes(proxy.urn));
  assert.deepEqual(drain.inputs.triggers, ["staging-app-app-id"], "the mocks' id of the container");
  assert.match(drain.inputs.delete, /set server \$be\/\$slot state drain/);
  assert.match(drain.inputs.delete, /docker stop -t 30 \S+/);
  assert.match(drain.inputs.create, /state ready/);
  assert.equal(drain.inputs.environment, undefined, "a local Docker engine: no DOCKER_HOST");
  const cfg = proxy.inputs.uploads.find((u: any) => u.file.endsWith("haproxy.cfg")).content;
  assert.match(cfg, /^ {2}stats socket ipv4@127\.0\.0\.1:9999 level admin$/m);
});
