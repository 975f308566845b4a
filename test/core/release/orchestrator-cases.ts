import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StackAccess, StepEvent, UpOptions } from "../../../src/core/release/stack-port";
import { CannotRunError, CheckFailedError } from "../../../src/core/errors";
import { Ledger } from "../../../src/core/release/ledger";
import {
  deploy,
  factsFromEvents,
  rollbackTo,
  stageOf,
  withoutPendingOperations,
  type DeployPorts,
  type NotifyType,
} from "../../../src/core/release/orchestrator";
import { recordingGit, recordingLog } from "../../helpers/release-ports";
import { deferRunnerSignalHandlers } from "../../helpers/runner-signals";

/**
 * The database the scripted stack's deploys change: `orchestrator.test.ts` gives a real PostgreSQL server
 * (pg_dump/pg_restore backups), `orchestrator-fast.test.ts` a model of one whose backups are real files
 * (issue 22: the same cases in 2 s for mutation runs). The orchestrator only relays to its database port,
 * so which steps run, in what order, and what is recorded, logged and notified are the same over both.
 */
export type OrchestratorDb = {
  /** The prefix of the cases' temp directory. */
  tmpPrefix: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The release before: schema version 002, 50 notes. */
  reset(): Promise<void>;
  /** The new release's migration: a column added, version 003. */
  migrate(): Promise<void>;
  /** A destructive migration: 40 of the 50 notes deleted, version 003. */
  destroy(): Promise<void>;
  /** Everything a user would call "the database's content": schema and rows. */
  snapshot(): Promise<string>;
  schemaVersion(): Promise<string | undefined>;
  dump(file: string): Promise<void>;
  restore(file: string): Promise<void>;
};

/** Registers every case over `db`. */
export function orchestratorCases(db: OrchestratorDb): void {
  // The signals these tests send must reach the orchestrator's handlers, not a runner's (issue 22).
  deferRunnerSignalHandlers();

  // Real parts: the database `db` gives, its backups, a real HTTP app for the soak checks, the ledger on
  // disk, the signals. Fake: only the Pulumi engine (a recording StackAccess).
  let dir: string;
  let app: Server;
  let appHealthy = true;
  let appUrl: string;

  before(async () => {
    await db.start();
    dir = await mkdtemp(join(tmpdir(), db.tmpPrefix));
    app = createServer((_req, res) => {
      res.statusCode = appHealthy ? 200 : 503;
      res.end(appHealthy ? "ok" : "down");
    });
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    const addr = app.address();
    appUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/health`;
  });
  after(async () => {
    await new Promise((r) => app.close(r));
    await db.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const snapshot = () => db.snapshot();

  beforeEach(async () => {
    await db.reset();
    appHealthy = true;
  });

  type Scenario = {
    /** What the new release's update does, in order; `fail` throws after the step's side effects. */
    steps: Array<{
      type: string;
      name: string;
      op?: string;
      outputs?: Record<string, unknown>;
      fail?: boolean;
      effect?: () => Promise<void>;
      /** The engine hangs after this step, as a long update does, until it is cancelled. */
      hang?: NodeJS.Signals;
    }>;
    /** The rollback's own `up` fails. */
    reapplyFails?: boolean;
    pending?: number;
  };

  const MIGRATE = () => db.migrate();
  const DESTRUCTIVE = () => db.destroy();

  function makeStack(s: Scenario, calls: string[]): StackAccess {
    let ups = 0;
    const urn = (type: string, name: string) => `urn:pulumi:staging::safe-deploy::${type}::${name}`;
    return {
      name: "staging",
      // Config travels as the stack's file (ciphertext secrets), never through these.
      getAllConfig: async () => assert.fail("getAllConfig would decrypt secrets"),
      setAllConfig: async () => assert.fail("setAllConfig is not how a release is re-applied"),
      exportState: async () => {
        calls.push("exportState");
        return {
          version: 3,
          deployment: { resources: [], pending_operations: Array(s.pending ?? 0).fill({ type: "creating" }) },
        };
      },
      importState: async (st: any) => {
        calls.push(`importState pending=${st.deployment.pending_operations.length}`);
      },
      refresh: async () => {
        calls.push("refresh");
      },
      up: async (o: UpOptions = {}) => {
        ups += 1;
        o.onOutput?.("Updating (staging):  \n");
        calls.push(`up${o.workDir ? ` workDir=${o.workDir}` : ""} commit=${o.env?.SAFE_DEPLOY_COMMIT}`);
        if (ups === 1) {
          for (const st of s.steps) {
            await st.effect?.();
            const e: StepEvent = {
              kind: st.fail ? "failed" : "done",
              op: st.op ?? "create",
              type: st.type,
              urn: urn(st.type, st.name),
              outputs: st.outputs,
            };
            o.onEvent?.(e);
            if (st.fail) throw new Error(`update failed at ${st.name}: simulated`);
            if (st.hang) {
              // Ctrl-C or a `kill` reaches the tool while the engine works; the engine stops when cancelled.
              const cancelled = new Promise((_, reject) =>
                o.signal?.addEventListener("abort", () => reject(new Error("update canceled"))),
              );
              process.kill(process.pid, st.hang);
              await cancelled;
            }
          }
          return { outputs: { url: { value: appUrl, secret: false } } };
        }
        if (s.reapplyFails) throw new Error("docker: port is already allocated");
        appHealthy = true;
        return { outputs: { url: { value: appUrl, secret: false } } };
      },
      history: async () => [],
      outputs: async () => ({ url: { value: appUrl, secret: false } }),
      cancel: async () => void calls.push("cancel"),
    };
  }

  const BACKUP = "pulumi-nodejs:dynamic/safe-deploy:Backup";
  const CMD = "command:local:Command";
  const CONTAINER = "docker:index/container:Container";
  const GATE = "pulumi-nodejs:dynamic/safe-deploy:HealthGate";
  const IMAGE = "docker:index/remoteImage:RemoteImage";

  async function ports(s: Scenario) {
    const calls: string[] = [];
    const notes: Array<{ type: NotifyType; message: string; fields: Record<string, string> }> = [];
    const logs: string[] = [];
    let locked = false;
    let preDeployBackup = "";
    // A real ledger on disk, with the previous good release in it.
    const ledger = new Ledger(await mkdtemp(join(dir, "state-")), "staging");
    const prev = await ledger.create({
      stack: "staging",
      commit: "aaaaaaa0000000000000000000000000000000000",
      config: {},
      configFile: "config:\n  safe-deploy:app:\n    image: web:old\n",
      time: new Date("2026-11-22T12:00:00Z"),
    });
    await ledger.markResult(prev.id, "good");
    const p: DeployPorts = {
      stack: makeStack(s, calls),
      releases: ledger,
      config: {
        read: async () => "config:\n  safe-deploy:app:\n    image: web:new\n",
        write: async (text, where) =>
          void calls.push(`writeConfig ${where} ${/web:old/.test(text) ? "old" : "?"}`),
      },
      lock: async () => {
        assert.equal(locked, false, "lock taken twice");
        locked = true;
        calls.push("lock");
        return async () => {
          locked = false;
          calls.push("unlock");
        };
      },
      preflight: async () => [],
      database: {
        schemaVersion: () => db.schemaVersion(),
        safetyBackup: async () => {
          const file = join(dir, `safety-${Date.now()}.dump`);
          await db.dump(file);
          calls.push("safetyBackup");
          return file;
        },
        restore: async (file) => {
          await db.restore(file);
          calls.push(`restore ${file === preDeployBackup ? "pre-deploy" : file}`);
        },
      },
      verify: async (url) => {
        const res = await fetch(url);
        calls.push(`verify ${res.status}`);
        if (res.status !== 200) throw new Error(`unhealthy: ${url} answered ${res.status}`);
      },
      notify: async (type, message, fields) => void notes.push({ type, message, fields }),
      git: recordingGit(calls, "bbbbbbb0000000000000000000000000000000000"),
      archiveCheckpoint: async (id) => join(dir, `${id}.checkpoint.json`),
      log: recordingLog(logs),
    };
    // The Backup step of each scenario takes a real pre-deploy dump before the "migration" runs.
    for (const st of s.steps) {
      if (st.type === BACKUP) {
        const file = join(dir, `pre-deploy-${Math.random().toString(36).slice(2)}.dump`);
        preDeployBackup = file;
        st.outputs = { ...st.outputs, file };
        const effect = st.effect;
        st.effect = async () => {
          await db.dump(file);
          await effect?.();
        };
      }
    }
    return { p, calls, notes, logs, ledger, prev, isLocked: () => locked };
  }

  const okSteps = (): Scenario["steps"] => [
    { type: IMAGE, name: "staging-app-image", outputs: { imageId: "sha256:new" } },
    { type: BACKUP, name: "staging-backup" },
    { type: CMD, name: "staging-migration-migrate", effect: MIGRATE },
    { type: CONTAINER, name: "staging-app-app", op: "replace" },
    { type: GATE, name: "staging-health" },
  ];

  test("a good deploy: one up, soak verified, release good, lock released, INFO then SUCCESS", async () => {
    const { p, calls, notes, ledger, isLocked } = await ports({ steps: okSteps() });
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.exitCode, 0);
    assert.equal(out.release.result, "good");
    assert.equal(out.release.schemaVersionBefore, "002");
    assert.equal(out.release.schemaVersion, "003");
    assert.equal(out.release.imageDigest, "sha256:new");
    assert.match(out.release.backupFile!, /pre-deploy-/);
    assert.deepEqual(calls, [
      "lock",
      "exportState",
      "up commit=bbbbbbb0000000000000000000000000000000000",
      "verify 200",
      "unlock",
    ]);
    assert.deepEqual(
      notes.map((n) => n.type),
      ["INFO", "SUCCESS"],
    );
    assert.equal((await ledger.get(out.release.id)).result, "good");
    assert.match((await ledger.get(out.release.id)).configFile!, /web:new/);
    assert.equal(isLocked(), false);
  });

  test("a backup that opened no change stream: the deploy is good, and the log, the release record and a WARNING say a rollback would lose writes", async () => {
    const steps = okSteps();
    const why =
      "waited 60 s for transactions that were already running to end: pid 4242 (idle in transaction)";
    steps[1].outputs = { changesSkipped: why };
    const { p, notes } = await ports({ steps });
    const warned: string[] = [];
    p.log = { ...p.log, warn: (l: string) => void warned.push(l) };
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.exitCode, 0);
    const said = new RegExp(
      `no-loss rollback is not possible for this release.*pid 4242.*would lose the writes`,
    );
    assert.ok(
      warned.some((l) => said.test(l)),
      warned.join("\n"),
    );
    assert.ok(
      out.release.warnings?.some((w) => said.test(w)),
      JSON.stringify(out.release.warnings),
    );
    assert.deepEqual(
      notes.map((n) => n.type),
      ["INFO", "SUCCESS", "WARNING"],
    );
    assert.match(notes[2].message, said);
    // An unchanged Backup step carries the previous release's outputs: not this release's news.
    const same = okSteps();
    same[1] = { ...same[1], op: "same", outputs: { changesSkipped: why } };
    assert.equal(
      factsFromEvents(
        same.map((x) => ({
          kind: "done" as const,
          op: x.op ?? "create",
          type: x.type,
          urn: `u::${x.name}`,
          outputs: x.outputs,
        })),
      ).changesSkipped,
      undefined,
    );
  });

  const rollbackCases: Array<[string, Scenario["steps"], boolean]> = [
    [
      "backup",
      [
        { type: IMAGE, name: "staging-app-image" },
        { type: BACKUP, name: "staging-backup", fail: true },
      ],
      false,
    ],
    [
      "migration (half-applied)",
      [
        { type: IMAGE, name: "staging-app-image" },
        { type: BACKUP, name: "staging-backup" },
        { type: CMD, name: "staging-migration-migrate", fail: true, effect: DESTRUCTIVE },
      ],
      true,
    ],
    [
      "containers",
      [
        { type: IMAGE, name: "staging-app-image" },
        { type: BACKUP, name: "staging-backup" },
        { type: CMD, name: "staging-migration-migrate", effect: MIGRATE },
        { type: CONTAINER, name: "staging-app-app", fail: true },
      ],
      true,
    ],
    [
      "health",
      [
        { type: IMAGE, name: "staging-app-image" },
        { type: BACKUP, name: "staging-backup" },
        { type: CMD, name: "staging-migration-migrate", effect: DESTRUCTIVE },
        { type: CONTAINER, name: "staging-app-app" },
        { type: GATE, name: "staging-health", fail: true },
      ],
      true,
    ],
  ];

  for (const [stage, steps, restores] of rollbackCases) {
    test(`a failure at ${stage} rolls back with exactly the right steps, and the data is as before`, async () => {
      const before = await snapshot();
      const { p, calls, notes, ledger, prev, isLocked } = await ports({ steps });
      const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
      assert.equal(out.exitCode, 1);
      assert.equal(out.release.failedStage, stage.split(" ")[0]);
      assert.equal(out.release.result, "rolled-back");
      const rollback = [
        "exportState",
        "checkout aaaaaaa",
        ...(restores ? ["safetyBackup", "restore pre-deploy"] : []),
        "writeConfig /tmp/worktree-aaaaaaa old",
        "up workDir=/tmp/worktree-aaaaaaa commit=aaaaaaa0000000000000000000000000000000000",
        "verify 200",
        "worktree removed",
      ];
      assert.deepEqual(calls, [
        "lock",
        "exportState",
        "up commit=bbbbbbb0000000000000000000000000000000000",
        ...rollback,
        "unlock",
      ]);
      assert.deepEqual(
        notes.map((n) => n.type),
        ["INFO", "ERROR", "ROLLBACK_SUCCESS"],
      );
      assert.equal(await snapshot(), before);
      const record = await ledger.get(out.release.id);
      assert.equal(record.result, "rolled-back");
      assert.equal(record.rolledBackTo, prev.id);
      assert.equal(isLocked(), false);
    });
  }

  test("soak checks failing after cutover still roll back, database included", async () => {
    const before = await snapshot();
    const { p, calls, notes } = await ports({ steps: okSteps() });
    appHealthy = false;
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.exitCode, 1);
    assert.equal(out.release.failedStage, "soak");
    assert.ok(calls.includes("verify 503") && calls.includes("restore pre-deploy"));
    assert.deepEqual(
      notes.map((n) => n.type),
      ["INFO", "ERROR", "ROLLBACK_SUCCESS"],
    );
    assert.equal(await snapshot(), before);
  });

  test("the failure and the rollback notifications carry what a person on call needs: reason, release, commit, image, schema before/after, backup, next step", async () => {
    const steps = rollbackCases[3][1].map((st) =>
      st.type === IMAGE ? { ...st, outputs: { imageId: "sha256:new" } } : { ...st },
    );
    const { p, notes, prev } = await ports({ steps });
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    const [, error, rolled] = notes;
    const want = {
      release: out.release.id,
      commit: "bbbbbbb0000000000000000000000000000000000",
      reason: "health: update failed at staging-health: simulated",
      image: "sha256:new",
      schemaBefore: "002",
      schemaAfter: "003",
      backup: out.release.backupFile!,
    };
    assert.match(want.backup, /pre-deploy-.*\.dump$/);
    assert.equal(error.type, "ERROR");
    assert.equal(
      error.message,
      "Deploy of staging failed at health: update failed at staging-health: simulated",
    );
    assert.deepEqual(error.fields, {
      ...want,
      next: "an automatic rollback follows; its outcome is the next notification",
    });
    assert.equal(rolled.type, "ROLLBACK_SUCCESS");
    assert.equal(
      rolled.message,
      `Rolled staging back to release ${prev.id} after ${out.release.id} failed at health`,
    );
    assert.deepEqual(
      { ...rolled.fields, safetyBackup: "-", next: "-" },
      { ...want, safetyBackup: "-", next: "-" },
    );
    assert.match(rolled.fields.next, new RegExp(`release ${prev.id} runs again; fix the cause`));
  });

  test("the rollback itself failing: ROLLBACK_FAILED with what a person needs, exit 1, nothing lost", async () => {
    const before = await snapshot();
    const { p, notes, ledger, isLocked } = await ports({ steps: rollbackCases[3][1], reapplyFails: true });
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.exitCode, 1);
    assert.equal(out.release.result, "bad");
    assert.match(out.release.error!, /automatic rollback failed/);
    const last = notes.at(-1)!;
    const safety = last.fields.safetyBackup;
    assert.match(safety, /safety-\d+\.dump$/);
    const backup = out.release.backupFile!;
    assert.deepEqual(last, {
      type: "ROLLBACK_FAILED",
      message: "Rollback of staging failed: docker: port is already allocated",
      fields: {
        release: out.release.id,
        commit: "bbbbbbb0000000000000000000000000000000000",
        reason: "health: update failed at staging-health: simulated",
        image: "unknown",
        schemaBefore: "002",
        schemaAfter: "003",
        backup,
        safetyBackup: safety,
        next:
          `the pre-deploy backup is ${backup}; the safety backup is ${safety}; ` +
          "run 'safe-deploy rollback --stack staging --status' and finish by hand",
      },
    });
    assert.equal(out.release.error, "update failed at staging-health: simulated; automatic rollback failed");
    // the database restore happened before the failing re-apply: data as before, and the safety copy kept
    assert.equal(await snapshot(), before);
    assert.equal((await ledger.get(out.release.id)).result, "bad");
    assert.equal(isLocked(), false);
  });

  test("the previous release's commit gone from git stops the rollback before the database is restored", async () => {
    const { p, calls, notes } = await ports({ steps: rollbackCases[3][1] });
    p.git.checkout = async (commit) => {
      calls.push(`checkout ${commit.slice(0, 7)} failed`);
      throw new Error(`git worktree failed: fatal: invalid reference: ${commit}`);
    };
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.release.result, "bad");
    assert.ok(calls.includes("checkout aaaaaaa failed"), calls.join("\n"));
    // Restoring the old database under the new program (still running) would corrupt it.
    assert.ok(!calls.some((c) => c.startsWith("restore") || c === "safetyBackup"), calls.join("\n"));
    assert.equal(notes.at(-1)!.type, "ROLLBACK_FAILED");
    assert.match(notes.at(-1)!.message, /invalid reference/);
  });

  test("pending operations left by the failed update are cleared through export/import, then refresh", async () => {
    const { p, calls } = await ports({ steps: rollbackCases[0][1], pending: 2 });
    await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    const i = calls.indexOf("importState pending=0");
    // The stale Pulumi lock a killed update leaves is cleared first: `stack import` takes the lock too.
    assert.equal(calls[i - 1], "cancel", calls.join("\n"));
    assert.ok(calls[i - 2].startsWith("checkout") && calls[i + 1] === "refresh", calls.join("\n"));
  });

  test("auto rollback off: the failed release is recorded and nothing else is touched", async () => {
    const { p, calls, notes } = await ports({ steps: rollbackCases[2][1] });
    const out = await deploy({ stack: "staging", autoRollback: false, soak: true }, p);
    assert.equal(out.release.result, "bad");
    assert.deepEqual(calls, [
      "lock",
      "exportState",
      "up commit=bbbbbbb0000000000000000000000000000000000",
      "unlock",
    ]);
    assert.deepEqual(
      notes.map((n) => n.type),
      ["INFO", "ERROR"],
    );
  });

  test("an unreadable release record stops the deploy before the lock and before anything changes", async () => {
    const { p, calls, notes, ledger, prev } = await ports({ steps: okSteps() });
    const file = join(ledger.dir, `${prev.id}.json`);
    await writeFile(file, '{"id": "' + prev.id + '", "res');
    await assert.rejects(deploy({ stack: "staging", autoRollback: true, soak: true }, p), (e: unknown) => {
      assert.ok(e instanceof CheckFailedError, String(e));
      assert.ok(e.message.includes(file), e.message);
      return true;
    });
    assert.deepEqual(calls, []);
    assert.deepEqual(notes, []);
    assert.deepEqual((await ledger.readAll()).releases, [], "no release was recorded");
  });

  /** Sends `signal` to this process and resolves once its handlers ran. */
  const sendSignal = (signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      process.once(signal, () => resolve());
      process.kill(process.pid, signal);
    });

  test("a signal during pulumi up: engine cancelled, release recorded bad at its stage with its backup, lock released, no rollback, exit 3 saying what to do", async () => {
    const steps = okSteps();
    steps[2].hang = "SIGINT";
    const listeners = process.listenerCount("SIGINT");
    const { p, calls, notes, ledger, isLocked } = await ports({ steps });
    await assert.rejects(deploy({ stack: "staging", autoRollback: true, soak: true }, p), (e: unknown) => {
      assert.ok(e instanceof CannotRunError, String(e));
      assert.match(
        e.message,
        /stopped by SIGINT during pulumi up \(at migration\): the stack may be half-updated/,
      );
      assert.match(e.message, /not rolled back.*lock is released.*rollback --stack staging --quick/);
      return true;
    });
    const [r] = await ledger.list();
    assert.equal(r.result, "bad", "never left pending");
    assert.equal(r.failedStage, "migration");
    assert.match(r.backupFile!, /pre-deploy-/, "the backup this deploy took is kept for a later rollback");
    assert.equal(r.schemaVersion, "003");
    assert.equal(isLocked(), false);
    assert.ok(!calls.some((c) => c === "safetyBackup" || c.startsWith("checkout")), calls.join("\n"));
    assert.deepEqual(
      notes.map((n) => n.type),
      ["INFO", "ERROR"],
    );
    assert.equal(process.listenerCount("SIGINT"), listeners, "the handlers are removed afterwards");
  });

  test("a deploy refused at preflight: recorded bad, no lock, no up, and the team is notified with the problems", async () => {
    const { p, calls, notes, ledger, isLocked } = await ports({ steps: okSteps() });
    p.preflight = async () => [
      "the working tree has uncommitted changes (src/app.ts)",
      "lint found 1 error(s)",
    ];
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.exitCode, 1);
    const [r] = await ledger.list();
    assert.deepEqual([r.result, r.failedStage], ["bad", "preflight"]);
    assert.ok(!calls.some((c) => c.startsWith("up")), calls.join("\n"));
    assert.equal(isLocked(), false);
    assert.deepEqual(
      notes.map((n) => n.type),
      ["ERROR"],
    );
    assert.match(
      notes[0].message,
      /refused at preflight: the working tree has uncommitted changes .*; lint found 1 error/,
    );
    assert.match(notes[0].fields.next, /nothing changed/);
  });

  test("a signal before pulumi up or during the soak: recorded (nothing changed / unverified), lock released, exit 3", async () => {
    const before = await ports({ steps: okSteps() });
    before.p.archiveCheckpoint = async (id) => {
      await sendSignal("SIGTERM");
      return join(dir, `${id}.checkpoint.json`);
    };
    await assert.rejects(
      deploy({ stack: "staging", autoRollback: true, soak: true }, before.p),
      (e: unknown) =>
        e instanceof CannotRunError && /stopped by SIGTERM before pulumi up: nothing changed/.test(e.message),
    );
    const [r1] = await before.ledger.list();
    assert.deepEqual([r1.result, r1.failedStage], ["bad", "preflight"]);
    assert.ok(!before.calls.some((c) => c.startsWith("up")), before.calls.join("\n"));
    assert.equal(before.isLocked(), false);

    const soak = await ports({ steps: okSteps() });
    soak.p.verify = async () => sendSignal("SIGHUP");
    await assert.rejects(
      deploy({ stack: "staging", autoRollback: true, soak: true }, soak.p),
      (e: unknown) =>
        e instanceof CannotRunError &&
        /stopped by SIGHUP during the soak: the new release runs, unverified/.test(e.message),
    );
    const [r2] = await soak.ledger.list();
    assert.deepEqual([r2.result, r2.failedStage], ["bad", "soak"]);
    assert.equal(soak.isLocked(), false);
  });

  test("a Ctrl-C during the soak that makes its check fail too: still a stop during the soak, pulumi up having finished", async () => {
    // It said "during pulumi up (at soak): the stack may be half-updated, with pending operations".
    const failing = await ports({ steps: okSteps() });
    failing.p.verify = async () => {
      await sendSignal("SIGINT");
      throw new Error("GET /health: aborted");
    };
    await assert.rejects(
      deploy({ stack: "staging", autoRollback: true, soak: true }, failing.p),
      (e: unknown) => {
        assert.ok(e instanceof CannotRunError);
        assert.match(
          e.message,
          /stopped by SIGINT during the soak: the new release runs, unverified; not rolled back/,
        );
        return true;
      },
    );
    const [r3] = await failing.ledger.list();
    assert.deepEqual([r3.result, r3.failedStage], ["bad", "soak"]);
  });

  // Pure decisions, table-tested.
  test("stageOf maps resources to stages", () => {
    const u = (name: string) => `urn:pulumi:s::p::t::${name}`;
    assert.equal(stageOf(BACKUP, u("x-backup")), "backup");
    assert.equal(stageOf(CMD, u("x-migration-migrate")), "migration");
    assert.equal(stageOf(CMD, u("x-hook-collectstatic")), "hooks");
    assert.equal(stageOf(IMAGE, u("x-app-image")), "image");
    assert.equal(stageOf(CONTAINER, u("x-app-app")), "containers");
    assert.equal(stageOf(GATE, u("x-health")), "health");
  });

  test("factsFromEvents: an unchanged migration did not run; a failed one may have", () => {
    const e = (type: string, op: string, kind: "done" | "failed" = "done"): StepEvent => ({
      kind,
      op,
      type,
      urn: "u::n-migrate",
    });
    assert.equal(factsFromEvents([e(CMD, "same")]).migrationRan, false);
    assert.equal(factsFromEvents([e(CMD, "replace")]).migrationRan, true);
    assert.equal(factsFromEvents([e(CMD, "create", "failed")]).migrationRan, true);
    assert.equal(
      factsFromEvents([e(CMD, "same"), e(CONTAINER, "replace", "failed")]).failedStage,
      "containers",
    );
  });

  test("withoutPendingOperations strips only pending operations", () => {
    const st = { version: 3, deployment: { resources: [1], pending_operations: [{ a: 1 }] } };
    assert.deepEqual(withoutPendingOperations(st), {
      state: { version: 3, deployment: { resources: [1], pending_operations: [] } },
      cleared: 1,
    });
    assert.equal(withoutPendingOperations({ deployment: {} }).cleared, 0);
  });

  test("a person's rollback after an interrupted update clears its pending operations before re-applying", async () => {
    const { p, calls } = await ports({ steps: [], pending: 3 });
    const target = (await p.releases.lastGood())!;
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
      p,
    );
    assert.equal(out.exitCode, 0, calls.join("\n"));
    const i = calls.indexOf("importState pending=0");
    assert.ok(i > 0, calls.join("\n"));
    assert.equal(calls[i - 1], "cancel", calls.join("\n"));
    assert.equal(calls[i + 1], "refresh");
    // Not findIndex(...) < i alone: -1 (no checkout at all) passed it (issue 22, a survivor of the reorder).
    const checkout = calls.findIndex((c) => c.startsWith("checkout"));
    assert.ok(checkout >= 0 && checkout < i, "the checkout still comes first");
    assert.equal(calls.filter((c) => c.startsWith("checkout")).length, 1, calls.join("\n"));
    assert.ok(calls.findIndex((c) => c.startsWith("up ")) > i, "pulumi up runs on the cleared state");
  });

  test("a person's rollback stopped by SIGTERM during its pulumi up: cancelled, recorded bad, ROLLBACK_FAILED, lock released", async () => {
    const { p, calls, notes } = await ports({ steps: [{ type: "x:y:Z", name: "app", hang: "SIGTERM" }] });
    const target = (await p.releases.lastGood())!;
    const out = await rollbackTo(
      {
        stack: "staging",
        target,
        steps: [
          { kind: "reapply-release", release: target.id },
          { kind: "verify-health" },
          { kind: "notify" },
        ],
      },
      p,
    );
    assert.equal(out.exitCode, 1);
    assert.equal(out.release?.result, "bad");
    assert.equal(notes.at(-1)!.type, "ROLLBACK_FAILED");
    assert.equal(calls.at(-1), "unlock", calls.join("\n"));
    assert.ok(!calls.some((c) => c.startsWith("verify")), "no step after the stop");
  });

  test("a good deploy records the image the stack output imageId names (the tag's id now), not the image resource's stored id", async () => {
    const { p } = await ports({ steps: okSteps() });
    const up = p.stack.up.bind(p.stack);
    p.stack.up = async (o) => {
      const r = await up(o);
      return { outputs: { ...r.outputs, imageId: { value: "sha256:rebuilt", secret: false } } };
    };
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.exitCode, 0);
    assert.equal(out.release.imageDigest, "sha256:rebuilt");
  });

  test("the automatic rollback re-applies the previous release's image by the id it ran, not by its tag (which may name a newer build now)", async () => {
    const { p, ledger, prev } = await ports({
      steps: [
        { type: IMAGE, name: "staging-app-image" },
        { type: BACKUP, name: "staging-backup", fail: true },
      ],
    });
    const ranId = `sha256:${"ab".repeat(32)}`;
    await ledger.update(prev.id, { imageDigest: ranId });
    const written: string[] = [];
    p.config.write = async (text) => void written.push(text);
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.release.result, "rolled-back");
    assert.equal(written.length, 1);
    assert.match(written[0], new RegExp(`image: ${ranId}`));
    // The ledger keeps the release's own file: only what is re-applied is pinned.
    assert.match((await ledger.get(prev.id)).configFile!, /image: web:old/);
  });

  test("the log tells a person each stage as it happens (what changed or failed, never the unchanged rest; the rollback plan and each step; the engine's own lines), and each notification says it in full", async () => {
    const steps: Scenario["steps"] = [
      { type: IMAGE, name: "staging-db-image", op: "same" },
      ...rollbackCases[2][1],
    ];
    const { p, logs, prev, notes } = await ports({ steps, pending: 2 });
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    const id = out.release.id;
    const backup = out.release.backupFile!;
    assert.deepEqual(logs, [
      `step: release ${id} of stack staging (commit bbbbbbb00000)`,
      "step: pulumi up: image, backup, migration, containers, health gate",
      "info: Updating (staging):",
      "step: image: create staging-app-image",
      "step: backup: create staging-backup",
      "step: migration: create staging-migration-migrate",
      "step: containers: FAILED staging-app-app",
      "error: deploy failed at containers: update failed at staging-app-app: simulated",
      "step: rollback plan:\n" +
        "  1. check out commit aaaaaaa0000000000000000000000000000000000 in a temporary git worktree\n" +
        "  2. clear the pending operations of the interrupted update (stack export, drop them, stack import, refresh)\n" +
        "  3. take a safety backup of the database as it is now\n" +
        `  4. restore the pre-deploy backup ${backup}\n` +
        `  5. re-apply release ${prev.id} (its config and program) with up against the current state\n` +
        "  6. verify health\n" +
        "  7. notify",
      "step: rollback: checking out aaaaaaa00000 in a temporary worktree",
      "warn: rollback: clearing 2 pending operation(s) left by the failed update",
      "step: rollback: safety backup of the current database",
      `step: rollback: restoring the backup ${backup}`,
      `step: rollback: re-applying ${prev.id} against the current state`,
      "info: Updating (staging):",
      `step: rollback: verifying ${appUrl}`,
      `info: rollback to release ${prev.id} succeeded`,
    ]);

    const good = await ports({ steps: okSteps() });
    const ok = await deploy({ stack: "staging", autoRollback: true, soak: true }, good.p);
    assert.deepEqual(good.logs, [
      `step: release ${ok.release.id} of stack staging (commit bbbbbbb00000)`,
      "step: pulumi up: image, backup, migration, containers, health gate",
      "info: Updating (staging):",
      "step: image: create staging-app-image",
      "step: backup: create staging-backup",
      "step: migration: create staging-migration-migrate",
      "step: containers: replace staging-app-app",
      "step: health: create staging-health",
      `step: soak: verifying ${appUrl}`,
      `info: release ${ok.release.id} is good`,
    ]);

    const manual = await ports({ steps: [] });
    const target = (await manual.p.releases.lastGood())!;
    await rollbackTo(
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
      manual.p,
    );
    assert.deepEqual(manual.logs, [
      `step: rollback of staging to release ${target.id}:\n` +
        "  1. check out commit aaaaaaa0000000000000000000000000000000000 in a temporary git worktree\n" +
        `  2. re-apply release ${target.id} (its config and program) with up against the current state\n` +
        "  3. verify health\n" +
        "  4. notify",
      "step: rollback: checking out aaaaaaa00000 in a temporary worktree",
      `step: rollback: re-applying ${target.id} against the current state`,
      "info: Updating (staging):",
      `step: rollback: verifying ${appUrl}`,
      `info: rollback of staging to release ${target.id} succeeded`,
    ]);

    // And each notification in full: the team reads these, not the log.
    const commit = "bbbbbbb0000000000000000000000000000000000";
    const failedFields = {
      release: id,
      commit,
      reason: "containers: update failed at staging-app-app: simulated",
      image: "unknown",
      schemaBefore: "002",
      schemaAfter: "003",
      backup,
    };
    const safety = notes.at(-1)?.fields.safetyBackup ?? "";
    assert.match(safety, /safety-\d+\.dump$/);
    assert.deepEqual(notes, [
      { type: "INFO", message: "Deploy of staging started", fields: { release: id, commit } },
      {
        type: "ERROR",
        message: "Deploy of staging failed at containers: update failed at staging-app-app: simulated",
        fields: {
          ...failedFields,
          next: "an automatic rollback follows; its outcome is the next notification",
        },
      },
      {
        type: "ROLLBACK_SUCCESS",
        message: `Rolled staging back to release ${prev.id} after ${id} failed at containers`,
        fields: {
          ...failedFields,
          safetyBackup: safety,
          next: `release ${prev.id} runs again; fix the cause above and deploy again ('safe-deploy history --stack staging')`,
        },
      },
    ]);
    assert.deepEqual(good.notes, [
      { type: "INFO", message: "Deploy of staging started", fields: { release: ok.release.id, commit } },
      { type: "SUCCESS", message: "Deploy of staging succeeded", fields: { release: ok.release.id, commit } },
    ]);
    const to = { to: `release ${target.id}`, backup: "none" };
    assert.deepEqual(manual.notes, [
      { type: "INFO", message: `Rollback of staging to release ${target.id} started`, fields: to },
      {
        type: "ROLLBACK_SUCCESS",
        message: `Rolled staging back to release ${target.id}`,
        fields: { ...to, safetyBackup: "none" },
      },
    ]);
  });

  /** A clock that reads `t0` once (the start), then `t0 + 5 s`: every recorded duration is exactly 5000 ms. */
  const fiveSeconds = () => {
    let first = true;
    return () => {
      const t = new Date(first ? "2026-12-01T10:00:00Z" : "2026-12-01T10:00:05Z");
      first = false;
      return t;
    };
  };

  test("a person's rollback: restore then re-apply recorded good with its safety backup; one whose re-apply fails recorded bad with it; a database-only one records nothing; each notified in full", async () => {
    const before = await snapshot();
    const good = await ports({ steps: [] });
    good.p.now = fiveSeconds();
    const target = (await good.p.releases.lastGood())!;
    const file = join(dir, "target.dump");
    await db.dump(file);
    await DESTRUCTIVE();
    const withRestore = (t: typeof target) => [
      { kind: "checkout-commit" as const, commit: t.commit },
      { kind: "safety-backup" as const },
      { kind: "restore-backup" as const, file },
      { kind: "reapply-release" as const, release: t.id },
      { kind: "verify-health" as const },
    ];
    const ok = await rollbackTo(
      { stack: "staging", target, backupFile: file, steps: withRestore(target) },
      good.p,
    );
    assert.equal(ok.exitCode, 0);
    assert.equal(await snapshot(), before, "the backup restored");
    const safety = good.calls.includes("safetyBackup") ? ok.release?.backupFile : undefined;
    assert.match(safety ?? "", /safety-\d+\.dump$/, "the release records the safety backup it took");
    assert.deepEqual(
      {
        result: ok.release?.result,
        rolledBackTo: ok.release?.rolledBackTo,
        commit: ok.release?.commit,
        schemaVersionBefore: ok.release?.schemaVersionBefore,
        schemaVersion: ok.release?.schemaVersion,
        durationMs: ok.release?.durationMs,
      },
      {
        result: "good",
        rolledBackTo: target.id,
        commit: target.commit,
        schemaVersionBefore: "003",
        schemaVersion: "002",
        durationMs: 5000,
      },
    );
    const to = { to: `release ${target.id}`, backup: file };
    assert.deepEqual(good.notes.at(-1), {
      type: "ROLLBACK_SUCCESS",
      message: `Rolled staging back to release ${target.id}`,
      fields: { ...to, safetyBackup: safety },
    });
    assert.equal(good.isLocked(), false);

    const failing = await ports({ steps: [] });
    failing.p.now = fiveSeconds();
    failing.p.stack.up = async () => {
      throw new Error("docker: port is already allocated\n  at the engine's second line");
    };
    const t2 = (await failing.p.releases.lastGood())!;
    const bad = await rollbackTo(
      { stack: "staging", target: t2, backupFile: file, steps: withRestore(t2) },
      failing.p,
    );
    assert.equal(bad.exitCode, 1);
    const safety2 = bad.release?.backupFile ?? "";
    assert.match(safety2, /safety-\d+\.dump$/, "the safety backup holds the database as it was before");
    assert.deepEqual(
      {
        result: bad.release?.result,
        failedStage: bad.release?.failedStage,
        error: bad.release?.error,
        durationMs: bad.release?.durationMs,
      },
      {
        result: "bad",
        failedStage: "containers",
        error: "docker: port is already allocated",
        durationMs: 5000,
      },
    );
    assert.deepEqual(failing.notes.at(-1), {
      type: "ROLLBACK_FAILED",
      message: `Rollback of staging to release ${t2.id} failed: docker: port is already allocated`,
      fields: {
        to: `release ${t2.id}`,
        backup: file,
        safetyBackup: safety2,
        next: `the safety backup is ${safety2}; run 'safe-deploy rollback --stack staging --status' and finish by hand`,
      },
    });
    assert.ok(
      failing.calls.includes("worktree removed"),
      "the temporary worktree is removed after a failure",
    );
    assert.equal(failing.isLocked(), false);

    const dbOnly = await ports({ steps: [] });
    dbOnly.p.database.restore = async () => {
      throw new Error("pg_restore: error: could not read the archive\nsecond line");
    };
    const none = await rollbackTo(
      { stack: "staging", backupFile: file, steps: [{ kind: "restore-backup", file }] },
      dbOnly.p,
    );
    assert.deepEqual(none, { exitCode: 1, release: undefined });
    assert.deepEqual((await dbOnly.ledger.list()).length, 1, "only the previous release: nothing recorded");
    assert.deepEqual(dbOnly.notes, [
      {
        type: "INFO",
        message: "Rollback of staging to the database started",
        fields: { to: "the database", backup: file },
      },
      {
        type: "ROLLBACK_FAILED",
        message: "Rollback of staging to the database failed: pg_restore: error: could not read the archive",
        fields: {
          to: "the database",
          backup: file,
          safetyBackup: "none",
          next: "the safety backup is not taken; run 'safe-deploy rollback --stack staging --status' and finish by hand",
        },
      },
    ]);
    assert.ok(!dbOnly.calls.includes("exportState"), "no stack is touched by a database-only rollback");
    assert.equal(dbOnly.isLocked(), false);
  });

  test("a person's rollback to a commit no release recorded re-applies it with the current config file", async () => {
    const { p, calls, notes, ledger } = await ports({ steps: [] });
    const written: string[] = [];
    p.config.write = async (text) => void written.push(text);
    const commit = "ccccccc0000000000000000000000000000000000";
    const out = await rollbackTo(
      {
        stack: "staging",
        commit,
        steps: [
          { kind: "checkout-commit", commit },
          { kind: "reapply-release", release: commit.slice(0, 12) },
        ],
      },
      p,
    );
    assert.equal(out.exitCode, 0);
    assert.deepEqual(written, ["config:\n  safe-deploy:app:\n    image: web:new\n"]);
    const r = await ledger.get(out.release!.id);
    assert.deepEqual([r.commit, r.result, r.rolledBackTo], [commit, "good", undefined]);
    assert.ok(calls.includes(`up workDir=/tmp/worktree-ccccccc commit=${commit}`), calls.join("\n"));
    assert.equal(notes[0].message, "Rollback of staging to commit ccccccc00000 started");
    assert.deepEqual(notes[0].fields, { to: "commit ccccccc00000", backup: "none" });
  });

  test("the stack's post-deploy warnings: recorded with the release and sent after the success, one WARNING each; durations come from the clock", async () => {
    const { p, notes, logs } = await ports({ steps: okSteps() });
    p.now = fiveSeconds();
    const up = p.stack.up.bind(p.stack);
    const said = ["the app's container has no healthcheck", "café: a warning with a non-ASCII character"];
    p.stack.up = async (o) => {
      const r = await up(o);
      return {
        outputs: { ...r.outputs, postDeployWarnings: { value: JSON.stringify(said), secret: false } },
      };
    };
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.exitCode, 0);
    assert.deepEqual(out.release.warnings, said);
    assert.equal(out.release.durationMs, 5000);
    const fields = { release: out.release.id, commit: "bbbbbbb0000000000000000000000000000000000" };
    assert.deepEqual(notes.slice(1), [
      { type: "SUCCESS", message: "Deploy of staging succeeded", fields },
      { type: "WARNING", message: said[0], fields },
      { type: "WARNING", message: said[1], fields },
    ]);
    assert.ok(!logs.some((l) => l.startsWith("warn:")), logs.join("\n"));

    // A failed deploy's durations: the bad result, then the rolled-back one.
    const failed = await ports({ steps: rollbackCases[2][1] });
    failed.p.now = fiveSeconds();
    const back = await deploy({ stack: "staging", autoRollback: true, soak: true }, failed.p);
    assert.deepEqual([back.release.result, back.release.durationMs], ["rolled-back", 5000]);
  });

  test("a deploy refused at preflight, in full: the log lists each problem, the record and the notification carry them all", async () => {
    const { p, notes, logs, ledger } = await ports({ steps: okSteps() });
    p.now = fiveSeconds();
    p.preflight = async () => [
      "the working tree has uncommitted changes (src/app.ts)",
      "lint found 1 error(s)",
    ];
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.exitCode, 1);
    assert.deepEqual(logs, [
      "error: preflight failed:\n  - the working tree has uncommitted changes (src/app.ts)\n  - lint found 1 error(s)",
    ]);
    const r = await ledger.get(out.release.id);
    assert.deepEqual(
      [r.result, r.failedStage, r.error, r.durationMs, r.commit],
      [
        "bad",
        "preflight",
        "the working tree has uncommitted changes (src/app.ts); lint found 1 error(s)",
        5000,
        "bbbbbbb0000000000000000000000000000000000",
      ],
    );
    assert.deepEqual(notes, [
      {
        type: "ERROR",
        message:
          "Deploy of staging refused at preflight: the working tree has uncommitted changes (src/app.ts); lint found 1 error(s)",
        fields: {
          release: out.release.id,
          commit: "bbbbbbb0000000000000000000000000000000000",
          next: "nothing changed; fix the above and run 'safe-deploy up --stack staging' again",
        },
      },
    ]);
  });

  test("a signal during the preflight stops the deploy before the lock: nothing recorded, nothing changed", async () => {
    const { p, calls, notes, logs, ledger } = await ports({ steps: okSteps() });
    p.preflight = async () => {
      await sendSignal("SIGINT");
      return [];
    };
    await assert.rejects(deploy({ stack: "staging", autoRollback: true, soak: true }, p), (e: unknown) => {
      assert.ok(e instanceof CannotRunError, String(e));
      assert.equal(e.message, "deploy of staging stopped by SIGINT before it started: nothing changed");
      return true;
    });
    assert.deepEqual(calls, []);
    assert.deepEqual(notes, []);
    assert.equal((await ledger.list()).length, 1, "only the previous release");
    assert.deepEqual(logs, [
      "warn: SIGINT received: stopping the deploy of staging at the next safe point (the release is recorded and the lock released)",
    ]);
  });

  test("a signal before pulumi up and during it, in full: the record's error, the notification and the error's text", async () => {
    const before = await ports({ steps: okSteps() });
    before.p.now = fiveSeconds();
    before.p.archiveCheckpoint = async (id) => {
      await sendSignal("SIGTERM");
      return join(dir, `${id}.checkpoint.json`);
    };
    let id = "";
    await assert.rejects(
      deploy({ stack: "staging", autoRollback: true, soak: true }, before.p),
      (e: unknown) => {
        id = (/release (\S+) is recorded/.exec(String(e)) ?? [])[1] ?? "";
        assert.equal(
          (e as Error).message,
          `deploy of staging stopped by SIGTERM before pulumi up: nothing changed; release ${id} is recorded as bad ` +
            "(preflight). Deploy again with 'safe-deploy up --stack staging'",
        );
        return true;
      },
    );
    const r1 = await before.ledger.get(id);
    assert.deepEqual(
      [r1.result, r1.failedStage, r1.error, r1.durationMs],
      ["bad", "preflight", "stopped by SIGTERM before pulumi up; nothing changed", 5000],
    );
    assert.deepEqual(before.notes, [], "nothing started, nothing to tell");

    const steps = okSteps();
    steps[2].hang = "SIGINT";
    const during = await ports({ steps });
    during.p.now = fiveSeconds();
    let rid = "";
    await assert.rejects(
      deploy({ stack: "staging", autoRollback: true, soak: true }, during.p),
      (e: unknown) => {
        rid = (/Release (\S+) is recorded/.exec(String(e)) ?? [])[1] ?? "";
        assert.equal(
          (e as Error).message,
          "deploy of staging stopped by SIGINT during pulumi up (at migration): the stack may be half-updated, " +
            `with pending operations in its state; not rolled back. Release ${rid} is recorded as bad and the lock ` +
            "is released. Return to the last good release with 'safe-deploy rollback --stack staging --quick', or " +
            "deploy again with 'safe-deploy up --stack staging'; see 'safe-deploy status --stack staging'",
        );
        return true;
      },
    );
    const r2 = await during.ledger.get(rid);
    const error =
      "stopped by SIGINT during pulumi up (at migration): the stack may be half-updated, with pending operations in its state; not rolled back";
    assert.deepEqual([r2.result, r2.failedStage, r2.error, r2.durationMs], ["bad", "migration", error, 5000]);
    assert.deepEqual(during.notes.at(-1), {
      type: "ERROR",
      message: "Deploy of staging stopped by SIGINT at migration",
      fields: {
        release: rid,
        commit: "bbbbbbb0000000000000000000000000000000000",
        reason: `migration: ${error}`,
        image: "sha256:new",
        schemaBefore: "002",
        schemaAfter: "003",
        backup: r2.backupFile!,
        next: "'safe-deploy rollback --stack staging --quick' returns to the last good release",
      },
    });
  });

  test("no soak asked, or no url to soak: no verification; a good deploy still good", async () => {
    const off = await ports({ steps: okSteps() });
    appHealthy = false; // a soak would fail: it must not run
    const out = await deploy({ stack: "staging", autoRollback: true, soak: false }, off.p);
    assert.deepEqual([out.exitCode, out.release.result], [0, "good"]);
    assert.ok(!off.calls.some((c) => c.startsWith("verify")), off.calls.join("\n"));

    const noUrl = await ports({ steps: okSteps().filter((st) => st.type !== CMD) }); // migrated above
    const up = noUrl.p.stack.up.bind(noUrl.p.stack);
    noUrl.p.stack.up = async (o) => ({ outputs: { ...(await up(o)).outputs, url: undefined as never } });
    const out2 = await deploy({ stack: "staging", autoRollback: true, soak: true }, noUrl.p);
    assert.deepEqual([out2.exitCode, out2.release.result], [0, "good"]);
    assert.ok(!noUrl.calls.some((c) => c.startsWith("verify")), noUrl.calls.join("\n"));
  });

  test("an update that fails before any resource step (the engine's own error): failed at containers, the first line recorded, the whole error logged; auto-rollback off says how to return", async () => {
    const { p, notes, logs } = await ports({ steps: [] });
    p.stack.up = async () => {
      throw new Error("error: the stack is locked by another update\n  details: the lock file is held");
    };
    const out = await deploy({ stack: "staging", autoRollback: false, soak: true }, p);
    assert.deepEqual(
      [out.exitCode, out.release.result, out.release.failedStage, out.release.error],
      [1, "bad", "containers", "error: the stack is locked by another update"],
    );
    assert.ok(
      logs.includes(
        "error: deploy failed at containers: error: the stack is locked by another update\n  details: the lock file is held",
      ),
      logs.join("\n"),
    );
    assert.deepEqual(notes.at(-1), {
      type: "ERROR",
      message: "Deploy of staging failed at containers: error: the stack is locked by another update",
      fields: {
        release: out.release.id,
        commit: "bbbbbbb0000000000000000000000000000000000",
        reason: "containers: error: the stack is locked by another update",
        image: "unknown",
        schemaBefore: "002",
        schemaAfter: "002",
        backup: "none",
        next:
          "not rolled back (auto-rollback is off): return to the last good release with " +
          "'safe-deploy rollback --stack staging --quick', or fix and deploy again",
      },
    });
  });

  test("the change-stream ports failing never fail a deploy: a stream not kept and a sweep that fails are said, with the command to retry", async () => {
    const stream = { slot: "safe_deploy_staging_x", startLsn: "0/16B3748" };
    const { p, logs } = await ports({ steps: okSteps() });
    p.changes = {
      of: async () => stream,
      keep: async () => {
        throw new Error("could not keep: permission denied");
      },
      sweep: async () => assert.fail("a good deploy sweeps nothing"),
    };
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.deepEqual([out.exitCode, out.release.result, out.release.changes], [0, "good", undefined]);
    assert.ok(
      logs.includes(
        "warn: the change stream safe_deploy_staging_x could not be kept: could not keep: permission denied",
      ),
      logs.join("\n"),
    );

    const failed = await ports({ steps: rollbackCases[0][1] });
    let swept = 0;
    failed.p.changes = {
      of: async () => undefined,
      keep: async () => assert.fail("a failed deploy keeps nothing"),
      sweep: async () => {
        swept++;
        throw new Error("slot in use");
      },
    };
    const bad = await deploy({ stack: "staging", autoRollback: false, soak: true }, failed.p);
    assert.deepEqual([bad.exitCode, bad.release.result, swept], [1, "bad", 1]);
    assert.equal(
      failed.logs.at(-1),
      "warn: could not drop the change stream slots of failed deploys: slot in use; run 'safe-deploy changes prune'",
    );
  });

  test("a re-apply in place (no checkout: the same commit) writes the release's config into the user's file and puts the user's back afterwards, also when the re-apply fails", async () => {
    for (const fails of [false, true]) {
      const { p, calls } = await ports({ steps: [] });
      p.config.snapshot = async () => {
        calls.push("snapshot");
        return async () => void calls.push("config put back");
      };
      if (fails)
        p.stack.up = async () => {
          calls.push("up");
          throw new Error("docker: port is already allocated");
        };
      const target = (await p.releases.lastGood())!;
      const out = await rollbackTo(
        { stack: "staging", target, steps: [{ kind: "reapply-release", release: target.id }] },
        p,
      );
      assert.equal(out.exitCode, fails ? 1 : 0);
      assert.deepEqual(calls.slice(1, -1), [
        "exportState",
        "snapshot",
        "writeConfig undefined old",
        fails ? "up" : "up commit=aaaaaaa0000000000000000000000000000000000",
        "config put back",
      ]);
    }
    // With a temporary checkout the release's config goes there: the user's file is not touched.
    const { p, calls } = await ports({ steps: [] });
    p.config.snapshot = async () => assert.fail("the user's file is not written with a checkout");
    const target = (await p.releases.lastGood())!;
    const out = await rollbackTo(
      {
        stack: "staging",
        target,
        steps: [
          { kind: "checkout-commit", commit: target.commit },
          { kind: "reapply-release", release: target.id },
        ],
      },
      p,
    );
    assert.equal(out.exitCode, 0);
    assert.ok(calls.includes("writeConfig /tmp/worktree-aaaaaaa old"), calls.join("\n"));
  });

  test("a stale Pulumi lock that `cancel` cannot clear is said and the rollback goes on; a signal between rollback steps stops before the next one, naming it", async () => {
    const { p, calls, logs } = await ports({ steps: rollbackCases[0][1], pending: 1 });
    p.stack.cancel = async () => {
      calls.push("cancel failed");
      throw new Error("error: no stack is locked\nsecond line");
    };
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.equal(out.release.result, "rolled-back");
    assert.ok(calls.includes("importState pending=0"), calls.join("\n"));
    assert.ok(
      logs.includes("warn: rollback: pulumi cancel of the stale lock failed (error: no stack is locked)"),
      logs.join("\n"),
    );

    const stopped = await ports({ steps: [] });
    const file = join(dir, "never-restored.dump");
    stopped.p.database.safetyBackup = async () => {
      await sendSignal("SIGTERM");
      return join(dir, "safety-stopped.dump");
    };
    const r = await rollbackTo(
      {
        stack: "staging",
        backupFile: file,
        steps: [{ kind: "safety-backup" }, { kind: "restore-backup", file }],
      },
      stopped.p,
    );
    assert.equal(r.exitCode, 1);
    assert.ok(!stopped.calls.some((c) => c.startsWith("restore")), stopped.calls.join("\n"));
    assert.deepEqual(stopped.notes.at(-1), {
      type: "ROLLBACK_FAILED",
      message: `Rollback of staging to the database failed: stopped by SIGTERM before: restore the pre-deploy backup ${file}`,
      fields: {
        to: "the database",
        backup: file,
        safetyBackup: join(dir, "safety-stopped.dump"),
        next: `the safety backup is ${join(dir, "safety-stopped.dump")}; run 'safe-deploy rollback --stack staging --status' and finish by hand`,
      },
    });
    assert.ok(
      stopped.logs.includes("warn: SIGTERM received: stopping the rollback of staging before its next step"),
      stopped.logs.join("\n"),
    );
  });

  test("the first deploy of a stack failing: no release to return to, ROLLBACK_FAILED says so with no backup and no safety backup", async () => {
    const { p, calls, notes, ledger, prev } = await ports({ steps: rollbackCases[0][1] });
    await ledger.markResult(prev.id, "bad");
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, p);
    assert.deepEqual([out.exitCode, out.release.result], [1, "bad"]);
    assert.equal(out.release.error, "update failed at staging-backup: simulated; automatic rollback failed");
    assert.ok(!calls.some((c) => c.startsWith("checkout") || c === "safetyBackup"), calls.join("\n"));
    const last = notes.at(-1)!;
    assert.equal(
      last.message,
      "Rollback of staging failed: there is no earlier good release to re-apply (first deploy of this stack): " +
        "fix the failure and deploy again, or destroy the stack's containers by hand",
    );
    assert.deepEqual(
      [last.fields.safetyBackup, last.fields.backup, last.fields.writesAfterBackup],
      ["none", "none", undefined],
    );
    assert.equal(
      last.fields.next,
      "the pre-deploy backup is missing; the safety backup is not taken; " +
        "run 'safe-deploy rollback --stack staging --status' and finish by hand",
    );
  });

  test("a rollback whose restore replayed the later writes and whose re-apply then failed: the replay is recorded and notified, automatic and manual", async () => {
    const writes = {
      applied: 2,
      transactions: 1,
      reported: 1,
      reportJson: "/r/late.json",
      reportSql: "/r/late.sql",
    };
    const said = "2 replayed (1 transaction(s)), 1 reported in /r/late.json (re-insert with /r/late.sql)";
    const auto = await ports({ steps: rollbackCases[3][1], reapplyFails: true });
    auto.p.database.restore = async () => writes;
    const out = await deploy({ stack: "staging", autoRollback: true, soak: true }, auto.p);
    assert.equal(out.release.result, "bad");
    assert.deepEqual((await auto.ledger.get(out.release.id)).replay, writes);
    assert.equal(auto.notes.at(-1)!.type, "ROLLBACK_FAILED");
    assert.equal(auto.notes.at(-1)!.fields.writesAfterBackup, said);

    const manual = await ports({ steps: [] });
    manual.p.database.restore = async () => writes;
    manual.p.stack.up = async () => {
      throw new Error("docker: port is already allocated");
    };
    const target = (await manual.p.releases.lastGood())!;
    const r = await rollbackTo(
      {
        stack: "staging",
        target,
        backupFile: "/b/target.dump",
        steps: [
          { kind: "restore-backup", file: "/b/target.dump" },
          { kind: "reapply-release", release: target.id },
        ],
      },
      manual.p,
    );
    assert.equal(r.exitCode, 1);
    assert.deepEqual(r.release?.replay, writes);
    assert.equal(r.release?.backupFile, undefined, "no safety backup was taken");
    assert.equal(manual.notes.at(-1)!.fields.writesAfterBackup, said);

    // And a manual rollback that succeeds says the writes in its message and records them.
    const okManual = await ports({ steps: [] });
    okManual.p.database.restore = async () => writes;
    const t2 = (await okManual.p.releases.lastGood())!;
    const good = await rollbackTo(
      {
        stack: "staging",
        target: t2,
        backupFile: "/b/target.dump",
        steps: [
          { kind: "restore-backup", file: "/b/target.dump" },
          { kind: "reapply-release", release: t2.id },
        ],
      },
      okManual.p,
    );
    assert.deepEqual(good.release?.replay, writes);
    assert.deepEqual(okManual.notes.at(-1), {
      type: "ROLLBACK_SUCCESS",
      message: `Rolled staging back to release ${t2.id}; writes made after the backup: ${said}`,
      fields: {
        to: `release ${t2.id}`,
        backup: "/b/target.dump",
        writesAfterBackup: said,
        safetyBackup: "none",
      },
    });
  });
}
