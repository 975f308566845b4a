import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type * as auto from "@pulumi/pulumi/automation";
import {
  runCheckpointList,
  runCheckpointRestore,
  runCheckpointShow,
} from "../../src/cli/commands/checkpoint";
import { openContext } from "../../src/cli/context";
import { openStack, type StackOptions } from "../../src/cli/stack";
import type { ConfigMap, StackAccess } from "../../src/core/release/stack-port";
import { ConfigError, CheckFailedError } from "../../src/core/errors";
import {
  checkpointsToPrune,
  CheckpointStore,
  SECRET_SIG,
  SECRET_SIG_VALUE,
} from "../../src/core/release/checkpoints";
import { Ledger } from "../../src/core/release/ledger";
import { standIn } from "./pulumi-stand-in";

const root = resolve(__dirname, "..", "..");
const PASSWORD = "hunter22-db-password";

/** A state as `pulumi stack export` (no --show-secrets) of a passphrase stack gives it: the SDK's own type. */
function encryptedState(): auto.Deployment {
  const secret = (ciphertext: string) => ({ [SECRET_SIG]: SECRET_SIG_VALUE, ciphertext });
  return {
    version: 3,
    deployment: {
      manifest: { time: "2026-12-06T04:00:00Z", magic: "x", version: "v3.248.0" },
      secrets_providers: { type: "passphrase", state: { salt: "v1:abc:def" } },
      resources: [
        {
          urn: "urn:pulumi:staging::safe-deploy::pulumi:pulumi:Stack::safe-deploy-staging",
          type: "pulumi:pulumi:Stack",
          custom: false,
        },
        {
          urn: "urn:pulumi:staging::safe-deploy::docker:index/container:Container::staging-database-db",
          type: "docker:index/container:Container",
          custom: true,
          id: "0123abcd",
          inputs: { envs: secret("v1:Zm9v:YmFyYmF6"), name: "app-db" },
          outputs: { envs: secret("v1:cXV4:cXV1eA=="), name: "app-db" },
        },
      ],
      pending_operations: [],
    },
  };
}

/** The same with --show-secrets, as safe-deploy exported it before. */
function plaintextState(): auto.Deployment {
  const s = encryptedState();
  s.deployment.resources[1].outputs.envs = {
    [SECRET_SIG]: SECRET_SIG_VALUE,
    plaintext: JSON.stringify([`POSTGRES_PASSWORD=${PASSWORD}`]),
  };
  return s;
}

function stackConfig(): ConfigMap {
  const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
  return {
    "safe-deploy:app": plain({ image: "web:any" }),
    "safe-deploy:database": plain({ mode: "external" }),
    "safe-deploy:databaseUrl": { value: `postgres://app:${PASSWORD}@127.0.0.1:1/app`, secret: true },
  };
}

/** The recording stack fake: what the command asked of the engine, in order. */
function recordingStack(calls: string[], imported: unknown[]): (o: StackOptions) => Promise<StackAccess> {
  return async (o) => ({
    name: o.stack,
    getAllConfig: async () => stackConfig(),
    setAllConfig: async () => void calls.push("setAllConfig"),
    exportState: async () => (calls.push("exportState"), encryptedState()),
    importState: async (s) => void (calls.push("importState"), imported.push(s)),
    up: async () => (calls.push("up"), { outputs: {} }),
    refresh: async () => void calls.push("refresh"),
    history: async () => [],
    outputs: async () => ({}),
    cancel: async () => void calls.push("cancel"),
  });
}

async function project(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sd-checkpoint-"));
  await copyFile(join(root, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  return dir;
}

test("a deploy archives its checkpoint encrypted, 0600 in a 0700 directory, and refuses plaintext secrets", async () => {
  const dir = await project();
  try {
    const ctx = await openContext({
      stack: "staging",
      projectDir: dir,
      openStack: recordingStack([], []),
      console: { write: () => true },
    });
    // An older run left the directory world-readable.
    await mkdir(join(dir, ".safe-deploy/checkpoints/staging"), { recursive: true, mode: 0o755 });
    await chmod(join(dir, ".safe-deploy/checkpoints/staging"), 0o755);
    const r = await ctx.ledger.create({ stack: "staging", commit: "abc1234", config: {} });
    const file = await ctx.ports().archiveCheckpoint(r.id, await ctx.stack.exportState());
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, ".safe-deploy/checkpoints/staging")).mode & 0o777, 0o700);
    const text = readFileSync(file, "utf8");
    assert.ok(!text.includes(PASSWORD));
    assert.ok(!text.includes('"plaintext"'));
    assert.match(text, /"ciphertext": "v1:cXV4:cXV1eA=="/);
    const r2 = await ctx.ledger.create({ stack: "staging", commit: "abc1234", config: {} });
    await assert.rejects(ctx.ports().archiveCheckpoint(r2.id, plaintextState()), (e: unknown) => {
      assert.ok(e instanceof CheckFailedError);
      assert.match(
        e.message,
        /refusing to archive the checkpoint of release r-.*1 secret\(s\) in plaintext \(at \$\.deployment\.resources\[1\]\.outputs\.envs\)/,
      );
      assert.ok(!e.message.includes(PASSWORD));
      return true;
    });
    assert.ok(!existsSync(join(dir, ".safe-deploy/checkpoints/staging", `${r2.id}.json`)));
    const left = await readdir(join(dir, ".safe-deploy/checkpoints/staging"));
    assert.deepEqual(left, [`${r.id}.json`], "no temp file left behind");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("checkpoints are pruned with their releases: the newest N and the last good one stay", async () => {
  const rel = (n: number, result = "bad") => ({
    id: `r-20261201-0000${String(n).padStart(2, "0")}-abc-0`,
    result,
  });
  const releases = [rel(1, "good"), rel(2), rel(3), rel(4, "good"), rel(5), rel(6)];
  const files = [...releases.map((r) => r.id), "r-20261101-000000-gone-0"];
  assert.deepEqual(checkpointsToPrune(files, releases, 2), [
    rel(1).id,
    rel(2).id,
    rel(3).id,
    "r-20261101-000000-gone-0",
  ]);
  assert.deepEqual(checkpointsToPrune(files, releases, 10), ["r-20261101-000000-gone-0"]);
  assert.deepEqual(checkpointsToPrune(files, [], 10), files);

  // On disk: archiving prunes, and a legacy plaintext checkpoint is removed (it is the leak).
  const dir = await project();
  try {
    const ctx = await openContext({
      stack: "staging",
      projectDir: dir,
      openStack: recordingStack([], []),
      console: { write: () => true },
    });
    const store = new CheckpointStore(ctx.stateDir, "staging");
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await ctx.ledger.create({
        stack: "staging",
        commit: "abc1234",
        config: {},
        time: new Date(Date.UTC(2026, 11, 1, 0, 0, i)),
      });
      await ctx.ledger.markResult(r.id, i === 0 ? "good" : "bad", {});
      ids.push(r.id);
      if (i === 3) {
        await mkdir(store.dir, { recursive: true });
        await writeFile(store.file(r.id), JSON.stringify(plaintextState()));
      } else if (i < 11) await store.write(r.id, encryptedState());
    }
    await ctx.ports().archiveCheckpoint(ids[11], encryptedState());
    const kept = (await store.list()).map((f) => f.release);
    // ids[1] is older than the 10 newest; ids[3] held plaintext secrets; ids[0] is the last good release.
    assert.deepEqual(kept, [ids[0], ids[2], ...ids.slice(4, 12)]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("checkpoint list and show say what each holds, never a secret", async () => {
  const dir = await project();
  try {
    const stateDir = join(dir, ".safe-deploy");
    const r = await new Ledger(stateDir, "staging").create({
      stack: "staging",
      commit: "abc1234",
      config: {},
    });
    await new CheckpointStore(stateDir, "staging").write(r.id, encryptedState());
    const lines: string[] = [];
    await runCheckpointList({ stack: "staging", projectDir: dir }, { out: (l) => lines.push(l) });
    assert.equal(lines.length, 1);
    assert.match(lines[0], new RegExp(`^${r.id} .* pending .*KiB  ${r.id}\\.json$`));
    const shown: string[] = [];
    await runCheckpointShow(r.id, { stack: "staging", projectDir: dir }, { out: (l) => shown.push(l) });
    assert.match(shown[0], /deployment version 3, 2 resource\(s\), 0 pending operation\(s\)/);
    assert.match(shown[1], /secrets: 2 encrypted by the stack's secrets provider \(passphrase\)$/);
    assert.ok(shown.some((l) => /1 {2}docker:index\/container:Container/.test(l)));
    await assert.rejects(
      runCheckpointShow(
        "r-20260101-000000-none-0",
        { stack: "staging", projectDir: dir },
        { out: () => undefined },
      ),
      (e: unknown) =>
        e instanceof ConfigError &&
        /has no checkpoint .*'safe-deploy checkpoint list --stack staging'/.test(e.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("checkpoint restore says what it changes and not, asks, then imports and refreshes under the deploy lock", async () => {
  const dir = await project();
  try {
    const stateDir = join(dir, ".safe-deploy");
    const r = await new Ledger(stateDir, "staging").create({
      stack: "staging",
      commit: "abc1234",
      config: {},
    });
    await new CheckpointStore(stateDir, "staging").write(r.id, encryptedState());
    const calls: string[] = [];
    const imported: unknown[] = [];
    const out: string[] = [];
    const deps = {
      openStack: recordingStack(calls, imported),
      out: (l: string) => out.push(l),
      console: { write: () => true },
    };
    // Not on a terminal and no --yes: refused before anything changes.
    const { PassThrough } = await import("node:stream");
    await assert.rejects(
      runCheckpointRestore(
        r.id,
        { stack: "staging", projectDir: dir },
        { ...deps, terminal: { input: new PassThrough(), output: new PassThrough(), isTTY: false } },
      ),
      (e: unknown) =>
        e instanceof ConfigError && /needs confirmation: run it on a terminal or pass --yes/.test(e.message),
    );
    assert.deepEqual(calls, []);
    const notice = out.join("\n");
    assert.match(notice, /It does NOT change: running containers, the database/);
    assert.match(notice, /It is NOT a rollback: .*safe-deploy rollback --stack staging/);
    assert.match(notice, /then runs refresh/);

    out.length = 0;
    await runCheckpointRestore(r.id, { stack: "staging", projectDir: dir, yes: true }, deps);
    assert.deepEqual(calls, ["importState", "refresh"]);
    assert.deepEqual(imported, [
      JSON.parse(readFileSync(join(stateDir, "checkpoints/staging", `${r.id}.json`), "utf8")),
    ]);
    assert.match(out.at(-1)!, /imported into staging and refreshed/);
    assert.ok(
      !existsSync(join(stateDir, "locks")) || (await readdir(join(stateDir, "locks"))).length === 0,
      "the deploy lock is released",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("through the real Automation API: export keeps secrets encrypted, import goes through a 0600 file removed after", async () => {
  const pulumi = await standIn();
  const dir = await project();
  const saved = process.env.PATH;
  process.env.PATH = pulumi.path;
  try {
    await writeFile(join(pulumi.dir, "export.json"), JSON.stringify(encryptedState()));
    const stack = await openStack({
      stack: "staging",
      projectDir: dir,
      env: { PULUMI_BACKEND_URL: `file://${join(dir, ".state")}` },
    });
    const state = await stack.exportState();
    assert.deepEqual(state, encryptedState());
    const exportCall = readFileSync(pulumi.calls, "utf8")
      .split("\n")
      .find((l) => l.startsWith("stack export"));
    assert.equal(exportCall, "stack export --stack staging --non-interactive");
    await stack.importState(state);
    assert.equal(readFileSync(join(pulumi.dir, "import-mode"), "utf8").trim(), "600");
    assert.deepEqual(JSON.parse(readFileSync(join(pulumi.dir, "imported.json"), "utf8")), encryptedState());
    const importedFrom = readFileSync(join(pulumi.dir, "import-path"), "utf8").trim();
    assert.ok(!existsSync(importedFrom), `${importedFrom} is left behind`);
  } finally {
    process.env.PATH = saved;
    await rm(pulumi.dir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
});
