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

test("a reader that stops early (`| head -1`): no EPIPE stack trace, the command's own exit code", async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "sd-epipe-"));
  try {
    writeFileSync(
      join(dir, "1_drop.sql"),
      Array.from({ length: 3000 }, (_, i) => `DROP TABLE t${i};\n`).join(""),
    );
    const r = spawnSync(
      "bash",
      ["-c", `"${resolve(root, "bin", "safe-deploy")}" lint "${dir}" | head -1; exit \${PIPESTATUS[0]}`],
      { encoding: "utf8", timeout: 60_000 },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /^.*1_drop\.sql:1: error \[drop-table\]/);
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled 'error' event/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a first Ctrl-C lets the clean-up run; a second stops at once (exit 130), saying so", () => {
  const script = `
    const { catchingSignals } = require("./src/core/backup/interrupt.ts");
    catchingSignals(async (interrupted) => {
      process.kill(process.pid, "SIGINT");
      await new Promise((r) => setTimeout(r, 200));
      console.log("first caught: " + interrupted());
      process.kill(process.pid, "SIGINT");
      await new Promise((r) => setTimeout(r, 5000));
      console.log("not reached");
    });`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 130, r.stderr);
  assert.match(r.stdout, /^first caught: SIGINT\n$/);
  assert.match(r.stderr, /SIGINT again: stopping at once, without finishing the clean-up/);
});
