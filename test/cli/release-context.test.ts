import { test } from "node:test";
import assert from "node:assert/strict";
import { databaseTarget } from "../../src/cli/release-context";
import { parseStackConfig } from "../../src/config";

test("the CLI reaches a database published on an IPv6 address through a URL with brackets", () => {
  const config = parseStackConfig({
    app: { image: "web:1" },
    database: { mode: "container", bindAddress: "::" },
    secretsSet: ["dbPassword"],
  });
  const t = databaseTarget(config, { dbPassword: "pw" }, undefined);
  assert.equal(t?.url, "postgres://app:pw@[::1]:5432/app");
});
