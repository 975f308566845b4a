// Signals during a command (issue 22): Ctrl-C, `timeout`/`docker stop` (SIGTERM) and a closed terminal
// (SIGHUP) must each stop the work at a step boundary and run its clean-up; a second one stops at once
// with exit 130; once the command is done, a signal kills the process as usual again.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { catchingSignals, stoppedBySignal } from "../../../src/core/backup/interrupt";
import { CannotRunError } from "../../../src/core/errors";
import { deferRunnerSignalHandlers } from "../../helpers/runner-signals";

deferRunnerSignalHandlers();

const CHILD = join(__dirname, "fixtures", "interrupt-child.ts");
const child = (sig: string, mode = "once") =>
  spawnSync(process.execPath, ["--import", "tsx", CHILD, sig, mode], { encoding: "utf8", timeout: 120_000 });

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  test(`${sig}: caught, told to the work and its abort signal, and released afterwards`, () => {
    const r = child(sig);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `onSignal=${sig}\ninterrupted=${sig} reason=${sig}\nlisteners=0\n`);
  });
}

test("a second signal stops the process at once with exit 130 and says so", () => {
  const r = child("SIGINT", "twice");
  assert.equal(r.status, 130, r.stdout + r.stderr);
  assert.equal(r.stdout, "onSignal=SIGINT\ninterrupted=SIGINT reason=SIGINT\n");
  assert.equal(
    r.stderr,
    "safe-deploy: SIGINT again: stopping at once, without finishing the clean-up (see what was reported above)\n",
  );
});

test("no signal: interrupted() is undefined, nothing aborts, the result comes back", async () => {
  const got = await catchingSignals(async (interrupted, abort) => [interrupted(), abort.aborted]);
  assert.deepEqual(got, [undefined, false]);
});

/** Resolves once the process got `sig` (catchingSignals' own listener, registered first, has run). */
const signalled = async (sig: NodeJS.Signals) => {
  // Signal listeners hold no handle: keep the loop alive until the signal arrived.
  const hold = setInterval(() => {}, 1000);
  const p = new Promise((r) => process.once(sig, r));
  process.kill(process.pid, sig);
  await p;
  clearInterval(hold);
};
const said = (s: NodeJS.Signals) => `stopped by ${s}`;

test("stoppedBySignal: without a signal, fn's result or fn's own error", async () => {
  assert.equal(await stoppedBySignal(async () => 5, said), 5);
  const boom = new Error("boom");
  await assert.rejects(
    stoppedBySignal(async () => Promise.reject(boom), said),
    (e) => e === boom,
  );
});

test("stoppedBySignal: after a signal, exit 3 with what the command says, whether fn returned or threw", async () => {
  for (const fails of [false, true]) {
    await assert.rejects(
      stoppedBySignal(async () => {
        await signalled("SIGTERM");
        if (fails) throw new Error("psql: terminated by signal");
        return 5;
      }, said),
      (e) => e instanceof CannotRunError && e.message === "stopped by SIGTERM" && e.exitCode === 3,
    );
  }
});
