// Cases the mutation runs of issue 22 found untested in the orchestrator's decisions (no PostgreSQL:
// recording ports, test/helpers/release-ports.ts; orchestrator.test.ts holds the data side).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CannotRunError } from "../../../src/core/errors";
import { deploy, rollbackTo, versionFields } from "../../../src/core/release/orchestrator";
import { NEW_COMMIT, OLD_COMMIT, recordingPorts, stepEvent } from "../../helpers/release-ports";
import { deferRunnerSignalHandlers } from "../../helpers/runner-signals";

// The signals these tests send must reach the orchestrator's handlers, not a runner's.
deferRunnerSignalHandlers();

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sd-orch-edges-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const GATE = "pulumi-nodejs:dynamic/safe-deploy:HealthGate";
const IMAGE = "docker:index/remoteImage:RemoteImage";
const URL = "http://127.0.0.1:9/health";

/**
 * Sends `signal` to this process and resolves once its handlers ran; rejects after 20 s. The timer also
 * keeps the event loop alive until the signal arrives (a signal listener does not).
 */
const sendSignal = (signal: NodeJS.Signals) =>
  new Promise<void>((resolve, reject) => {
    const bound = setTimeout(() => reject(new Error(`${signal} never arrived`)), 20_000);
    process.once(signal, () => {
      clearTimeout(bound);
      resolve();
    });
    process.kill(process.pid, signal);
  });

/** The CannotRunError `p` rejects with. */
const stopError = async (p: Promise<unknown>): Promise<CannotRunError> => {
  let err: unknown;
  await p.then(
    () => assert.fail("the deploy was not stopped"),
    (e: unknown) => void (err = e),
  );
  assert.ok(err instanceof CannotRunError, String(err));
  return err;
};

test("a signal at the end of a pulumi up that finishes, no soak asked: a stop during pulumi up at its last stage, not during a soak that never ran", async () => {
  const r = await recordingPorts(dir, {
    url: URL,
    events: [stepEvent(IMAGE, "staging-app-image"), stepEvent(GATE, "staging-health")],
  });
  const up = r.p.stack.up.bind(r.p.stack);
  r.p.stack.up = async (o) => {
    const out = await up(o);
    await sendSignal("SIGINT");
    return out;
  };
  const e = await stopError(deploy({ stack: "staging", autoRollback: true, soak: false }, r.p));
  const error =
    "stopped by SIGINT during pulumi up (at health): the stack may be half-updated, with pending operations in its state; not rolled back";
  assert.match(e.message, new RegExp(`^deploy of staging ${error.replace(/[()]/g, "\\$&")}\\. Release `));
  const [rec] = (await r.ledger.list()).filter((x) => x.id !== r.prev.id);
  assert.deepEqual([rec.result, rec.failedStage, rec.error], ["bad", "health", error]);
  assert.equal(r.notes.at(-1)?.message, "Deploy of staging stopped by SIGINT at health");
  assert.ok(!r.calls.some((c) => c.startsWith("verify")), r.calls.join("\n"));
});

test("a signal before the engine reported any step: stopped at the image stage (the first), the record and the notification say so", async () => {
  const r = await recordingPorts(dir, { url: URL });
  r.p.stack.up = async (o) => {
    await sendSignal("SIGTERM");
    assert.ok(o?.signal?.aborted, "the engine is cancelled");
    throw new Error("update canceled");
  };
  const e = await stopError(deploy({ stack: "staging", autoRollback: true, soak: true }, r.p));
  assert.match(e.message, /^deploy of staging stopped by SIGTERM during pulumi up \(at image\): /);
  const [rec] = (await r.ledger.list()).filter((x) => x.id !== r.prev.id);
  assert.deepEqual([rec.result, rec.failedStage], ["bad", "image"]);
  assert.equal(r.notes.at(-1)?.message, "Deploy of staging stopped by SIGTERM at image");
});

test("the deploy takes the stack's lock as `up` (the holder's message names the command); a step that failed while its op was `same` is still logged as FAILED", async () => {
  const CONTAINER = "docker:index/container:Container";
  const r = await recordingPorts(dir, {
    url: URL,
    events: [
      stepEvent(IMAGE, "staging-app-image", { op: "same" }),
      stepEvent(CONTAINER, "staging-app-app", { op: "same", kind: "failed" }),
    ],
  });
  const up = r.p.stack.up.bind(r.p.stack);
  r.p.stack.up = async (o) => {
    await up(o);
    throw new Error("container staging-app-app: exited (137)");
  };
  const out = await deploy({ stack: "staging", autoRollback: false, soak: true }, r.p);
  assert.deepEqual([out.exitCode, out.release.failedStage], [1, "containers"]);
  assert.equal(r.calls[0], "lock staging up");
  assert.deepEqual(
    r.logs.filter((l) => /^step: (image|containers):/.test(l)),
    ["step: containers: FAILED staging-app-app"],
  );
});

test("versionFields: a record missing its stage, error, image, schema versions or backup says so in each field", () => {
  const bare = { id: "r1", stack: "staging", time: "t", commit: "c1", config: {}, result: "bad" as const };
  assert.deepEqual(versionFields(bare), {
    release: "r1",
    commit: "c1",
    reason: "?: unknown",
    image: "unknown",
    schemaBefore: "none",
    schemaAfter: "none",
    backup: "none",
  });
  assert.deepEqual(
    versionFields({
      ...bare,
      failedStage: "migration",
      error: "relation t does not exist",
      imageDigest: "sha256:1",
      schemaVersionBefore: "002",
      schemaVersion: "003",
      backupFile: "/b/pre.dump",
    }),
    {
      release: "r1",
      commit: "c1",
      reason: "migration: relation t does not exist",
      image: "sha256:1",
      schemaBefore: "002",
      schemaAfter: "003",
      backup: "/b/pre.dump",
    },
  );
});

test("a person's rollback takes the stack's lock as `rollback`", async () => {
  const r = await recordingPorts(dir, { url: URL });
  const target = (await r.p.releases.lastGood())!;
  const out = await rollbackTo(
    { stack: "staging", target, steps: [{ kind: "reapply-release", release: target.id }] },
    r.p,
  );
  assert.equal(out.exitCode, 0);
  assert.equal(r.calls[0], "lock staging rollback");
  assert.equal(r.calls.at(-1), "unlock");
});

test("a rollback's health step with no url output verifies nothing; a previous release recorded without its config file is re-applied with the checkout's own", async () => {
  const BACKUP = "pulumi-nodejs:dynamic/safe-deploy:Backup";
  const r = await recordingPorts(dir, {
    events: [stepEvent(BACKUP, "staging-backup", { kind: "failed" })],
  });
  await r.ledger.update(r.prev.id, { configFile: undefined });
  const up = r.p.stack.up.bind(r.p.stack);
  let ups = 0;
  r.p.stack.up = async (o) => {
    const out = await up(o);
    if (++ups === 1) throw new Error("update failed at staging-backup: simulated");
    return out;
  };
  const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, r.p);
  assert.deepEqual([out.exitCode, out.release.result], [1, "rolled-back"]);
  assert.deepEqual(r.calls, [
    "lock staging up",
    "exportState",
    `up commit=${NEW_COMMIT}`,
    "exportState",
    "checkout aaaaaaa",
    `up workDir=/tmp/worktree-aaaaaaa commit=${OLD_COMMIT}`,
    "worktree removed",
    "unlock",
  ]);
});

test("a rollback that fails logs the whole error, automatic and manual (the notification has its first line)", async () => {
  const BACKUP = "pulumi-nodejs:dynamic/safe-deploy:Backup";
  const auto = await recordingPorts(dir, {
    events: [stepEvent(BACKUP, "staging-backup", { kind: "failed" })],
  });
  auto.p.stack.up = async () => {
    throw new Error("docker: port is already allocated\n  at the engine's second line");
  };
  const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, auto.p);
  assert.equal(out.release.result, "bad");
  assert.equal(
    auto.logs.at(-1),
    "error: rollback failed: docker: port is already allocated\n  at the engine's second line",
  );
  assert.equal(auto.notes.at(-1)?.message, "Rollback of staging failed: docker: port is already allocated");

  const manual = await recordingPorts(dir);
  manual.p.stack.up = auto.p.stack.up;
  const target = (await manual.p.releases.lastGood())!;
  const r = await rollbackTo(
    { stack: "staging", target, steps: [{ kind: "reapply-release", release: target.id }] },
    manual.p,
  );
  assert.equal(r.exitCode, 1);
  assert.equal(
    manual.logs.at(-1),
    "error: rollback failed: docker: port is already allocated\n  at the engine's second line",
  );
});

test("a person's rollback after an interrupted update: checkout, then the pending operations cleared, then the re-apply in the checkout, exactly once each", async () => {
  const r = await recordingPorts(dir, { url: URL, pending: 3 });
  const target = (await r.p.releases.lastGood())!;
  const out = await rollbackTo(
    {
      stack: "staging",
      target,
      steps: [
        { kind: "checkout-commit", commit: target.commit },
        { kind: "reapply-release", release: target.id },
        { kind: "verify-health" },
        { kind: "notify" },
      ],
    },
    r.p,
  );
  assert.equal(out.exitCode, 0);
  assert.deepEqual(r.calls, [
    "lock staging rollback",
    "exportState",
    "checkout aaaaaaa",
    "cancel",
    "importState pending=0",
    "refresh",
    "writeConfig /tmp/worktree-aaaaaaa old",
    `up workDir=/tmp/worktree-aaaaaaa commit=${OLD_COMMIT}`,
    `verify ${URL}`,
    "worktree removed",
    "unlock",
  ]);
});

test("a failed deploy whose schema moved though no migration step ran is rolled back with the database restored; one whose rollback needed no safety backup says 'none'", async () => {
  const BACKUP = "pulumi-nodejs:dynamic/safe-deploy:Backup";
  const CONTAINER = "docker:index/container:Container";
  const moved = await recordingPorts(dir, {
    events: [
      stepEvent(BACKUP, "staging-backup", { outputs: { file: "/b/pre.dump" } }),
      stepEvent("command:local:Command", "staging-migration-migrate", { op: "same" }),
      stepEvent(CONTAINER, "staging-app-app", { kind: "failed" }),
    ],
  });
  // A hook or another writer moved the schema during the update: the database is not as it was.
  let version = "002";
  moved.p.database.schemaVersion = async () => version;
  const up = moved.p.stack.up.bind(moved.p.stack);
  let ups = 0;
  moved.p.stack.up = async (o) => {
    const out = await up(o);
    if (++ups > 1) return out;
    version = "003";
    throw new Error("update failed at staging-app-app: simulated");
  };
  const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, moved.p);
  assert.equal(out.release.result, "rolled-back");
  assert.ok(moved.calls.includes("safetyBackup"), moved.calls.join("\n"));
  assert.ok(
    moved.calls.includes(`restore /b/pre.dump safety=${join(dir, "safety.dump")}`),
    moved.calls.join("\n"),
  );

  const still = await recordingPorts(dir, {
    events: [stepEvent(BACKUP, "staging-backup", { kind: "failed" })],
  });
  const up2 = still.p.stack.up.bind(still.p.stack);
  let ups2 = 0;
  still.p.stack.up = async (o) => {
    const r = await up2(o);
    if (++ups2 === 1) throw new Error("update failed at staging-backup: simulated");
    return r;
  };
  const back = await deploy({ stack: "staging", autoRollback: true, soak: true }, still.p);
  assert.equal(back.release.result, "rolled-back");
  assert.ok(!still.calls.includes("safetyBackup"), still.calls.join("\n"));
  assert.equal(still.notes.at(-1)?.type, "ROLLBACK_SUCCESS");
  assert.equal(still.notes.at(-1)?.fields.safetyBackup, "none");
});
