// Issue 17: a pooled Supabase URL and no `migrationDatabaseUrl`: the program fails before anything runs.
// Run in a child process, as the language host runs a program: the failure is the program's own error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";

const ROOT = resolve(__dirname, "../..");
const POOLED = "postgres://app.abcd:P00led-pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres";

const script = `
const { setupMocks } = require("./test/helpers/mocks");
const { mockState } = require("./test/helpers/program");
process.on("unhandledRejection", (e) => { console.error("PROGRAM FAILED: " + e.message); process.exit(7); });
(async () => {
  await setupMocks({
    config: {
      app: JSON.stringify({ target: "render", render: { serviceId: "srv-abc123" } }),
      database: JSON.stringify({ mode: "external" }),
      health: JSON.stringify({ url: "https://notes.onrender.com/health" }),
      databaseUrl: process.env.POOLED,
      renderApiKey: "rnd_x1234",
    },
    secretKeys: ["databaseUrl", "renderApiKey"],
    state: mockState,
  });
  const p = require("./src/index");
  await new Promise((r) => p.url.apply(r));
  console.log("PROGRAM OK");
})();
`;

test("render with only a pooled databaseUrl fails naming migrationDatabaseUrl; the URL is not in the message", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], {
    cwd: ROOT,
    env: { ...process.env, POOLED },
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.status, 7, r.stdout + r.stderr);
  assert.match(r.stderr, /PROGRAM FAILED: .*`databaseUrl` goes through a transaction pooler/);
  assert.match(r.stderr, /pulumi config set --secret migrationDatabaseUrl/);
  assert.ok(!r.stderr.includes("P00led-pw") && !r.stdout.includes("P00led-pw"));
});
