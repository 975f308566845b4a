import { before, test } from "node:test";
import assert from "node:assert/strict";
import type { RecordedResource } from "../helpers/mocks";
import { loadProgram, valueOf } from "../helpers/program";
import { callSerializedProvider } from "../helpers/provider";

let byName: (n: string) => RecordedResource;
let program: typeof import("../../src/index");

// Ports published on IPv6 addresses: Docker takes them bare, URLs need them in brackets.
before(async () => {
  const loaded = await loadProgram({
    config: {
      app: { image: "web:2", bindAddress: "::" },
      database: { bindAddress: "::1", mode: "container" },
    },
    secrets: { dbPassword: "pw-v6" },
  });
  byName = loaded.rec.byName;
  program = loaded.program;
});

test("the gate polls loopback in brackets, and its provider accepts the URL", async () => {
  const { __provider: text, ...gate } = byName("staging-health").inputs;
  assert.equal(gate.url, "http://[::1]:8080/health");
  assert.deepEqual((await callSerializedProvider(text, "check", [{}, gate])).failures, []);
  assert.equal(await valueOf(program.url), "http://[::1]:8080");
});

test("backup and migration reach the database at [::1]; Docker publishes on the bare addresses", () => {
  assert.match(byName("staging-backup").inputs.databaseUrl, /@\[::1\]:5432\/app$/);
  assert.match(byName("staging-migration-migrate").inputs.environment.DATABASE_URL, /@\[::1\]:5432\/app$/);
  assert.deepEqual(byName("staging-app-app").inputs.ports, [{ internal: 3000, external: 8080, ip: "::" }]);
  assert.deepEqual(byName("staging-database-db").inputs.ports, [
    { internal: 5432, external: 5432, ip: "::1" },
  ]);
});
