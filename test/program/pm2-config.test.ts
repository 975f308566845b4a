// Issue 17: the config keys of the pm2 and render targets, checked in one pass with every problem named.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseStackConfig } from "../../src/config";
import { ConfigError } from "../../src/core/errors";

function problems(raw: Record<string, unknown>): string[] {
  try {
    parseStackConfig(raw, "staging");
    return [];
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
}

test("app.target defaults to docker, which still needs app.image", () => {
  assert.equal(
    parseStackConfig({ app: { image: "web:1" }, secretsSet: ["dbPassword"] }).app.target,
    "docker",
  );
  assert.deepEqual(
    problems({ app: {}, secretsSet: ["dbPassword"] }).map((p) => p.split(":")[0]),
    ["app.image"],
  );
});

test("pm2: no image needed; app.pm2 with root and script; defaults cluster x2, keepReleases 5", () => {
  const c = parseStackConfig({
    app: { target: "pm2", pm2: { root: "/srv/app", script: "dist/main.js" } },
    secretsSet: ["dbPassword"],
  });
  assert.equal(c.app.keepReleases, 5);
  assert.deepEqual(
    { ...c.app.pm2, root: undefined },
    {
      root: undefined,
      appDir: ".",
      install: ["npm ci"],
      script: "dist/main.js",
      execMode: "cluster",
      instances: 2,
      bin: "pm2",
      logLines: 200,
      timeoutSeconds: 1800,
    },
  );
  assert.match(
    problems({ app: { target: "pm2" }, secretsSet: ["dbPassword"] }).join("\n"),
    /^app.pm2: is required/,
  );
});

test("pm2 on a server without health.url, with Redis or a container hook: each named", () => {
  const p = problems({
    app: { target: "pm2", pm2: { root: "/srv/app", script: "a.js", host: "ssh://deploy@app.example.com" } },
    redis: { enabled: true },
    hooks: { postMigrate: [{ name: "seed", command: "npm run seed", runIn: "container" }] },
    secretsSet: ["dbPassword"],
  });
  assert.deepEqual(p.map((x) => x.split(":")[0]).sort(), [
    "health.url",
    "hooks.postMigrate.0.runIn",
    "redis.enabled",
  ]);
});

test("render: needs app.render, renderApiKey, an external database and health.url, all in one pass", () => {
  const p = problems({
    app: { target: "render", render: { serviceId: "srv-abc123" } },
    secretsSet: ["dbPassword"],
  });
  assert.deepEqual(p.map((x) => x.split(":")[0]).sort(), ["database.mode", "health.url", "renderApiKey"]);
  assert.match(p.join("\n"), /pulumi config set --secret renderApiKey/);
  const ok = parseStackConfig({
    app: { target: "render", render: { serviceId: "srv-abc123" } },
    database: { mode: "external" },
    health: { url: "https://web.onrender.com/health" },
    secretsSet: ["databaseUrl", "renderApiKey", "migrationDatabaseUrl"],
  });
  assert.deepEqual(ok.app.render, {
    serviceId: "srv-abc123",
    apiUrl: "https://api.render.com",
    deployTimeoutSeconds: 900,
    pollSeconds: 10,
  });
  assert.match(
    problems({ app: { target: "render", render: { serviceId: "web" } } }).join("\n"),
    /app.render.serviceId/,
  );
});
