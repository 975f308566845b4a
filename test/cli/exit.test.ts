import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";

const root = resolve(__dirname, "..", "..");

/** Runs `runMain(<promise>)` in a fresh node process, as bin/safe-deploy does with the command's run. */
const runMain = (promise: string) =>
  spawnSync(
    process.execPath,
    ["--import", "tsx", "-e", `require("./src/cli/index.ts").runMain(${promise})`],
    { cwd: root, encoding: "utf8", timeout: 60_000 },
  );

test("a command whose work can never finish exits 3 and says so, never 0", () => {
  const r = runMain("new Promise(() => {})");
  assert.equal(r.status, 3, r.stderr);
  assert.match(
    r.stderr,
    /safe-deploy: the command stopped before it finished \(a step never completed\); it did not succeed/,
  );
});

test("a command that finishes keeps its own exit code and prints nothing more", () => {
  const late = runMain("new Promise((r) => setTimeout(() => r(0), 200))");
  assert.equal(late.status, 0, late.stderr);
  assert.equal(late.stderr.includes("stopped before it finished"), false);
  const failed = runMain("Promise.resolve(1)");
  assert.equal(failed.status, 1, failed.stderr);
  assert.equal(failed.stderr.includes("stopped before it finished"), false);
});
