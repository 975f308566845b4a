import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ConcurrentUpdateError, StackNotFoundError } from "@pulumi/pulumi/automation";
import { engineEnv, mapPulumiError, openStack } from "../../src/cli/stack";
import { CannotRunError, ConfigError } from "../../src/core/errors";

const root = resolve(__dirname, "..", "..");
// Not in the package's type declarations, but it is what the Automation API builds its errors from.
const { CommandResult } = require("@pulumi/pulumi/automation/cmd");

test("without the Pulumi CLI, opening a stack fails with exit 3 and says how to install it", async () => {
  const saved = process.env.PATH;
  const state = await mkdtemp(join(tmpdir(), "sd-state-"));
  process.env.PATH = "/usr/bin:/bin"; // no pulumi here, whatever the machine has elsewhere
  try {
    await assert.rejects(
      openStack({
        stack: "staging",
        projectDir: root,
        create: true,
        env: { PULUMI_BACKEND_URL: `file://${state}` },
      }),
      (e: unknown) => {
        assert.ok(e instanceof CannotRunError);
        assert.equal(e.exitCode, 3);
        assert.match(e.message, /the Pulumi CLI is not installed \(needed for stack "staging"\)/);
        assert.match(e.message, /curl -fsSL https:\/\/get\.pulumi\.com \| sh/);
        return true;
      },
    );
  } finally {
    process.env.PATH = saved;
    await rm(state, { recursive: true, force: true });
  }
});

test("the Automation API's errors become sentences naming the stack and the next step", () => {
  const busy = mapPulumiError(
    new ConcurrentUpdateError(new CommandResult("", "conflict", 255)),
    "production",
  );
  assert.ok(busy instanceof CannotRunError);
  assert.match(
    busy.message,
    /stack "production" is being updated by another process.*safe-deploy recover --stack production/s,
  );
  const missing = mapPulumiError(
    new StackNotFoundError(new CommandResult("", "no stack named 'qa'", 255)),
    "qa",
  );
  assert.ok(missing instanceof ConfigError);
  assert.equal(missing.exitCode, 2);
  assert.match(missing.message, /pulumi stack init qa/);
  const leaky = mapPulumiError(new Error("connect failed: postgres://app:hunter22@db:5432/app"), "staging");
  assert.ok(!leaky.message.includes("hunter22"));
  assert.match(leaky.message, /pulumi failed on stack "staging": connect failed: postgres:\/\/app:\*\*\*@db/);
});

test("the engine uses the project's file:// backend unless the user configured one", () => {
  assert.deepEqual(engineEnv("/srv/app", {}), { PULUMI_BACKEND_URL: "file:///srv/app/.pulumi-state" });
  assert.deepEqual(engineEnv("/srv/app", { PULUMI_BACKEND_URL: "s3://state-bucket" }), {});
});
