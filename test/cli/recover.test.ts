import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runRecover } from "../../src/cli/commands/recover";
import { openContext } from "../../src/cli/context";
import type { StackOptions } from "../../src/cli/stack";
import type { ConfigMap, StackAccess } from "../../src/core/release/stack-port";
import { CheckFailedError, ConfigError } from "../../src/core/errors";
import { containersByRole, orphanContainers } from "../../src/core/release/labels";
import { acquireLock } from "../../src/core/release/lock";
import { cleanupDocker, docker, ensureDocker, RUN_ID, TEST_LABEL, uniqueName } from "../helpers/docker";
import { ensureBusyboxImage } from "../helpers/health-image";

const root = resolve(__dirname, "..", "..");
let image: string;

before(async () => {
  await ensureDocker();
  image = await ensureBusyboxImage();
});
after(() => cleanupDocker());

/** A container as src/components labels one of `stack`'s; `running` false leaves it created, not started. */
async function labelled(stack: string, role: string, running = true): Promise<{ id: string; name: string }> {
  const name = uniqueName(role);
  const args = ["--name", name, "--label", `${TEST_LABEL}=1`, "--label", `${TEST_LABEL}.run=${RUN_ID}`];
  args.push("--label", `safe-deploy.stack=${stack}`, "--label", `safe-deploy.role=${role}`);
  const id = running
    ? await docker(["run", "-d", ...args, image, "sleep", "3600"])
    : await docker(["create", ...args, image, "sleep", "3600"]);
  return { id, name };
}

async function exists(id: string): Promise<boolean> {
  return docker(["inspect", "--format", "{{.Id}}", id]).then(
    () => true,
    () => false,
  );
}

function stackConfig(): ConfigMap {
  const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
  return {
    "safe-deploy:app": plain({ image: "web:any" }),
    "safe-deploy:database": plain({ mode: "container" }),
    "safe-deploy:dbPassword": { value: "hunter22-db-password", secret: true },
    "safe-deploy:backup": plain({ runIn: "container" }),
  };
}

/** The recording stack fake; `outputs` are those of the last successful update, `state` what it exports. */
function recordingStack(
  calls: string[],
  outputs: ConfigMap,
  state: () => unknown,
): (o: StackOptions) => Promise<StackAccess> {
  return async (o) => ({
    name: o.stack,
    getAllConfig: async () => stackConfig(),
    setAllConfig: async () => void calls.push("setAllConfig"),
    exportState: async () => (calls.push("exportState"), state()),
    importState: async () => void calls.push("importState"),
    up: async () => (calls.push("up"), { outputs: {} }),
    refresh: async () => void calls.push("refresh"),
    history: async () => [],
    outputs: async () => (calls.push("outputs"), outputs),
    cancel: async () => void calls.push("cancel"),
  });
}

function stateWith(...ids: string[]): unknown {
  return {
    version: 3,
    deployment: {
      resources: ids.map((id, i) => ({ urn: `urn:x::c${i}`, type: "docker:index/container:Container", id })),
    },
  };
}

async function project(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sd-recover-"));
  await copyFile(join(root, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  return dir;
}

test("the CLI finds the database container by its labels, not by the outputs of the last successful update", async () => {
  const stack = uniqueName("stack");
  const dir = await project();
  try {
    // The failed update replaced the database container: the outputs still name the old one.
    const exited = await labelled(stack, "database", false);
    const current = await labelled(stack, "database");
    await labelled(`${stack}-other`, "database");
    const calls: string[] = [];
    const outputs = { containers: { value: JSON.stringify({ database: "app-db-replaced" }), secret: false } };
    const ctx = await openContext({
      stack,
      projectDir: dir,
      openStack: recordingStack(calls, outputs, () => stateWith()),
      console: { write: () => true },
    });
    assert.equal((await ctx.containers()).database, current.name);
    const db = await ctx.database();
    assert.equal(db?.target.runIn, "container");
    assert.equal((db?.target as { container: string }).container, current.name);
    assert.notEqual(current.name, exited.name);
    assert.ok(!calls.includes("outputs"), "the outputs were not consulted");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("without labelled containers (deployed by an older version) the outputs still name them", async () => {
  const dir = await project();
  try {
    const outputs = { containers: { value: JSON.stringify({ database: "app-db-1" }), secret: false } };
    const ctx = await openContext({
      stack: uniqueName("stack"),
      projectDir: dir,
      openStack: recordingStack([], outputs, () => stateWith()),
      console: { write: () => true },
    });
    assert.deepEqual(await ctx.containers(), { database: "app-db-1" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("picking by role and finding orphans are pure", () => {
  const c = (id: string, role: string, state: string, created: string) => ({
    id,
    name: `n-${id}`,
    role,
    state,
    created,
  });
  assert.deepEqual(
    containersByRole([
      c("a", "app", "running", "2026-12-06 04:00:00 +0000 UTC"),
      c("b", "app", "running", "2026-12-06 04:05:00 +0000 UTC"),
      c("c", "database", "exited", "2026-12-06 04:09:00 +0000 UTC"),
      c("d", "database", "running", "2026-12-06 03:00:00 +0000 UTC"),
      c("e", "", "running", "2026-12-06 04:09:00 +0000 UTC"),
    ]),
    { app: "n-b", database: "n-d" },
  );
  assert.deepEqual(
    orphanContainers([c("a", "app", "running", ""), c("b", "app", "running", "")], stateWith("a")).map(
      (x) => x.id,
    ),
    ["b"],
  );
});

test("recover clears the stale Pulumi lock and removes only the stack's containers the state does not know", async () => {
  const stack = uniqueName("stack");
  const dir = await project();
  try {
    const known = await labelled(stack, "database");
    const orphan = await labelled(stack, "app");
    const otherStack = await labelled(`${stack}-other`, "app");
    const calls: string[] = [];
    const out: string[] = [];
    const deps = {
      openStack: recordingStack(calls, {}, () => stateWith(known.id)),
      out: (l: string) => out.push(l),
      console: { write: () => true },
    };
    // No terminal, no --yes: the orphans are named and left.
    await assert.rejects(
      runRecover(
        { stack, projectDir: dir },
        { ...deps, terminal: { input: process.stdin, output: process.stdout, isTTY: false } },
      ),
      (e: unknown) => e instanceof ConfigError && /1 orphan container\(s\) .* pass --yes/.test(e.message),
    );
    assert.ok(out.some((l) => l.includes(orphan.name) && l.includes("role=app")));
    assert.ok(await exists(orphan.id));

    calls.length = 0;
    await runRecover({ stack, projectDir: dir, yes: true }, deps);
    assert.deepEqual(calls.slice(0, 2), ["cancel", "exportState"]);
    assert.ok(!(await exists(orphan.id)), "the orphan is removed");
    assert.ok(await exists(known.id), "the container the state knows stays");
    assert.ok(await exists(otherStack.id), "another stack's container stays");
    assert.match(out.at(-1)!, /removed 1 orphan container\(s\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("recover refuses while a deploy holds the deploy lock: no cancel, nothing removed", async () => {
  const stack = uniqueName("stack");
  const dir = await project();
  try {
    const orphan = await labelled(stack, "app");
    const held = await acquireLock({ stateDir: join(dir, ".safe-deploy"), stack, command: "safe-deploy up" });
    const calls: string[] = [];
    await assert.rejects(
      runRecover(
        { stack, projectDir: dir, yes: true },
        {
          openStack: recordingStack(calls, {}, () => stateWith()),
          out: () => undefined,
          console: { write: () => true },
        },
      ),
      (e: unknown) =>
        e instanceof CheckFailedError && /is locked by another deploy: .*safe-deploy up/.test(e.message),
    );
    await held.release();
    assert.deepEqual(calls, []);
    assert.ok(await exists(orphan.id));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
