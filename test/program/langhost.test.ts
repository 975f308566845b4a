// Issue 14: `pulumi up` loads the program through the Node language host (`@pulumi/pulumi/cmd/run`), not
// through tsx as the other program tests do. These tests load it that way, with each stack file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFile, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runLikeLanghost, stackFileConfig, type LanghostRun } from "../helpers/langhost";

const root = resolve(__dirname, "..", "..");
// Secrets are set with `pulumi config set --secret`, never in the stack files (README).
const SECRETS: Record<string, Record<string, string>> = {
  staging: { dbPassword: "pw-staging-123456" },
  production: {
    dbPassword: "pw-production-123456",
    appSecrets: JSON.stringify({ JWT_SECRET_KEY: "jwt-example" }),
    slackWebhookUrl: "https://hooks.slack.com/services/T000/B000/XXXX",
    smtpUrl: "smtps://mailer:mail-pass@smtp.example.com:465",
  },
};

/** Every stack file of the project and of the examples, as [project dir, stack name]. */
function stackFiles(): [string, string][] {
  const out: [string, string][] = [];
  for (const dir of [root, ...readdirSync(join(root, "examples")).map((d) => join(root, "examples", d))]) {
    if (!existsSync(join(dir, "Pulumi.yaml"))) continue;
    for (const f of readdirSync(dir)) {
      const m = /^Pulumi\.(.+)\.ya?ml$/.exec(f);
      if (m) out.push([dir, m[1]]);
    }
  }
  return out;
}

const runs = new Map<string, Promise<LanghostRun>>();
function load(dir: string, stack: string): Promise<LanghostRun> {
  const key = `${dir}:${stack}`;
  if (!runs.has(key)) {
    runs.set(
      key,
      stackFileConfig(join(dir, `Pulumi.${stack}.yaml`)).then((config) =>
        runLikeLanghost({ projectDir: dir, stack, config, secrets: SECRETS[stack] ?? SECRETS.staging }),
      ),
    );
  }
  return runs.get(key)!;
}

test("the project has the staging and production stack files", () => {
  const stacks = stackFiles().map(([d, s]) => `${d === root ? "." : d}:${s}`);
  assert.ok(stacks.includes(".:staging") && stacks.includes(".:production"), stacks.join(", "));
});

for (const [dir, stack] of stackFiles()) {
  test(`${dir === root ? "" : dir + " "}${stack}: the language host's path produces the resource graph`, async () => {
    const r = await load(dir, stack);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /error:|TSError|SyntaxError|Unexpected/, r.stderr);
    const names = r.resources.map((x) => `${x.type} ${x.name}`);
    for (const want of [
      `pulumi:pulumi:Stack safe-deploy-${stack}`,
      `safe-deploy:deployment:Deployment ${stack}`,
      `pulumi-nodejs:dynamic/safe-deploy:Backup ${stack}-backup`,
      `command:local:Command ${stack}-migration-migrate`,
      `docker:index/container:Container ${stack}-app-app`,
      `pulumi-nodejs:dynamic/safe-deploy:HealthGate ${stack}-health`,
    ]) {
      assert.ok(names.includes(want), `missing ${want}; got:\n${names.join("\n")}`);
    }
    console.log(
      `# ${stack}: ${r.resources.length} resources; program compiled after ${r.firstProgramResourceMs.toFixed(0)} ms, ` +
        `last resource after ${r.lastResourceMs.toFixed(0)} ms`,
    );
  });
}

test("up compiles without type-checking and without dev dependencies", async () => {
  const r = await load(root, "staging");
  assert.equal(r.exitCode, 0, r.stderr);
  // ts-node's type check is what cost ~45 s per up and rollback.
  assert.equal(r.typescript, false, "Pulumi.yaml runtime.options.typescript must be false");
  assert.ok(!r.modules.includes("ts-node"), "ts-node was loaded");
  // Everything the run loaded must be installed by `npm ci --omit=dev`: reachable from `dependencies`.
  const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
  const lock = JSON.parse(await readFile(join(root, "package-lock.json"), "utf8"));
  const reach = new Set<string>();
  const visit = (name: string) => {
    if (reach.has(name)) return;
    reach.add(name);
    const entry = lock.packages[`node_modules/${name}`] ?? {};
    for (const d of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) visit(d);
    // Required peers are installed too; optional ones (typescript for @pulumi/pulumi) are not.
    for (const d of Object.keys(entry.peerDependencies ?? {}))
      if (!entry.peerDependenciesMeta?.[d]?.optional) visit(d);
  };
  for (const d of Object.keys(pkg.dependencies)) visit(d);
  // debug try-requires supports-color (and it has-flag); without them it prints no colours.
  const missing = r.modules.filter((m) => !reach.has(m) && !["supports-color", "has-flag"].includes(m));
  assert.deepEqual(
    missing,
    [],
    `loaded at run time but only a dev or optional dependency: ${missing.join(", ")}`,
  );
});

test("a rollback's worktree runs its own commit's sources through the same path, with no build step", async () => {
  // As src/cli/context/ports.ts `checkout` does: a detached worktree, the project's node_modules linked.
  const tmp = await mkdtemp(join(tmpdir(), "sd-langhost-wt-"));
  const dir = join(tmp, "program");
  const git = (...args: string[]) => execFileSync("git", args, { cwd: root, stdio: "pipe" });
  git("worktree", "add", "--detach", dir, "HEAD");
  try {
    await symlink(join(root, "node_modules"), join(dir, "node_modules"), "dir");
    // A change only this worktree has: the run must show it.
    await appendFile(
      join(dir, "src", "index.ts"),
      '\nnew pulumi.ComponentResource("test:worktree:Marker", "only-in-worktree");\n',
    );
    const r = await runLikeLanghost({
      projectDir: dir,
      stack: "staging",
      config: await stackFileConfig(join(dir, "Pulumi.staging.yaml")),
      secrets: SECRETS.staging,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    const names = r.resources.map((x) => `${x.type} ${x.name}`);
    assert.ok(names.includes("test:worktree:Marker only-in-worktree"), names.join("\n"));
    assert.ok(names.includes("safe-deploy:deployment:Deployment staging"), names.join("\n"));
    assert.ok(!existsSync(join(dir, "dist")), "nothing was built");
  } finally {
    git("worktree", "remove", "--force", dir);
    await rm(tmp, { recursive: true, force: true });
  }
});
