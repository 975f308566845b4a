// The health tests' containers go when the test process is SIGKILLed (issue 22: a killed Stryker run
// left 40 crash-looping containers behind). Real Docker; every wait bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { until } from "../../helpers/bounded";
import { removeContainers } from "../../helpers/health-image";

const run = promisify(execFile);
const WAIT_MS = 60_000;

const labelled = async (label: string) =>
  (await run("docker", ["ps", "-aq", "--filter", `label=${label}`])).stdout.split("\n").filter(Boolean);

/** Starts the stand-in test file, returns it and the label of its container once that runs. */
async function standIn(mode: "reaper" | "no-reaper") {
  const p = spawn(process.execPath, ["--import", "tsx", join(__dirname, "container-reaper-child.ts"), mode], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  p.stderr.on("data", (c) => (stderr += c));
  const label = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no label from the stand-in in ${WAIT_MS / 1000} s: ${stderr}`)),
      WAIT_MS,
    );
    createInterface({ input: p.stdout }).once("line", (l) => {
      clearTimeout(timer);
      resolve(l.trim());
    });
    p.once("exit", (code) => reject(new Error(`the stand-in exited with ${code}: ${stderr}`)));
  });
  return { p, label };
}

test(
  "a SIGKILLed test process leaves no container behind; without the reaper one stays",
  { timeout: 240_000 },
  async () => {
    const { p, label } = await standIn("reaper");
    assert.equal((await labelled(label)).length, 1, "the stand-in's container runs");
    p.kill("SIGKILL");
    await until(
      `the reaper to remove the containers labelled ${label}`,
      async () => (await labelled(label)).length === 0,
      WAIT_MS,
      200,
    );

    // The same kill without the reaper: what a killed run left before (the check above is not vacuous).
    const bare = await standIn("no-reaper");
    bare.p.kill("SIGKILL");
    await new Promise((r) => bare.p.once("exit", r));
    const left = await labelled(bare.label);
    try {
      assert.equal(left.length, 1, "without the reaper the container outlives its test process");
    } finally {
      await removeContainers(left);
    }
  },
);
