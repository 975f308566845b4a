import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { HookPoint } from "../config";

/** One hook as configured (`hooks.<point>[]`). */
export interface HookSpec {
  name: string;
  command: string;
  runIn: "local" | "container";
  timeoutSeconds: number;
  environment: Record<string, string>;
}

/** What every hook of a deploy shares. */
export interface HookContext {
  stack: string;
  projectDir: string;
  /** A new release re-runs every hook. */
  releaseKey: pulumi.Input<string>;
  /** The new app image (container mode runs the hook in a one-off container of it). */
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  dockerHost?: string;
  /** Secret: the database URL as seen from this machine (local hooks) and from the network (container). */
  databaseUrls: { local: pulumi.Input<string>; container: pulumi.Input<string> };
  /** Secret env vars for hooks (`hookSecrets`). */
  secretEnvironment?: pulumi.Input<Record<string, string>>;
}

/** The environment of one hook run by scripts/run-hook.sh; pure, so its contract is table-tested. */
export function hookEnvironment(
  hook: HookSpec,
  point: HookPoint,
  ctx: { stack: string; projectDir: string; image: string; network: string; dockerHost?: string },
  secrets: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = { ...hook.environment, ...secrets };
  const names = Object.keys(env);
  Object.assign(env, {
    SAFE_DEPLOY_HOOK_NAME: hook.name,
    SAFE_DEPLOY_HOOK_POINT: point,
    SAFE_DEPLOY_HOOK_CMD: hook.command,
    SAFE_DEPLOY_HOOK_MODE: hook.runIn,
    SAFE_DEPLOY_HOOK_TIMEOUT: String(hook.timeoutSeconds),
    // Relative: the command line puts it under SAFE_DEPLOY_DATA_DIR (or the project) at run time, so the
    // inputs are the same from every checkout (issue 14, item 11).
    SAFE_DEPLOY_HOOK_LOG: join("logs", "hooks", `${ctx.stack}-${point}-${hook.name}.log`),
    SAFE_DEPLOY_HOOK_ENV_NAMES: names.join(" "),
    SAFE_DEPLOY_SECRET_ENV_NAMES: Object.keys(secrets).join(" "),
    SAFE_DEPLOY_HOOK_SOFT: point === "postDeploy" ? "1" : "0",
  });
  if (hook.runIn === "container") {
    env.SAFE_DEPLOY_IMAGE = ctx.image;
    env.SAFE_DEPLOY_NETWORK = ctx.network;
  }
  if (ctx.dockerHost) env.DOCKER_HOST = ctx.dockerHost;
  return env;
}

/**
 * The command line every hook resource runs: the wrapper, never the user's command or a secret. It
 * runs from the project root (the command provider's directory) with paths relative to it, so a deploy
 * from another checkout (a rollback's temporary worktree) does not re-run every hook.
 */
export function hookCommandLine(): string {
  return 'SAFE_DEPLOY_HOOK_LOG="${SAFE_DEPLOY_DATA_DIR:-.}/$SAFE_DEPLOY_HOOK_LOG" bash scripts/run-hook.sh';
}

/**
 * One `local.Command` per hook at `point`, run in order after `after`. A failing hook fails the
 * deploy, except at `postDeploy`, where the wrapper reports it on stdout and exits 0 (the release is
 * live; a hook can warn but never roll it back).
 */
export function hookCommands(
  name: string,
  point: HookPoint,
  hooks: readonly HookSpec[],
  ctx: HookContext,
  after: pulumi.Resource[],
  opts: pulumi.CustomResourceOptions,
): command.local.Command[] {
  const made: command.local.Command[] = [];
  for (const hook of hooks) {
    const environment = pulumi
      .all([ctx.image, ctx.network, ctx.databaseUrls[hook.runIn], ctx.secretEnvironment ?? {}])
      .apply(([image, network, databaseUrl, extra]) =>
        hookEnvironment(hook, point, { ...ctx, image, network }, { ...extra, DATABASE_URL: databaseUrl }),
      );
    const spec = createHash("sha256").update(JSON.stringify(hook)).digest("hex").slice(0, 16);
    const previous = made.length ? [made[made.length - 1]] : [];
    made.push(
      new command.local.Command(
        `${name}-hook-${hook.name}`,
        {
          create: hookCommandLine(),
          environment: pulumi.secret(environment),
          triggers: [ctx.releaseKey, spec],
          logging: "none",
          // The default hands the previous run's (secret) stdout to the next run's environment.
          addPreviousOutputInEnv: false,
        },
        {
          ...opts,
          dependsOn: [...after, ...previous],
          additionalSecretOutputs: ["stdout", "stderr"],
          // Backstop only: the wrapper's own `timeout` ends the hook first and says so.
          customTimeouts: { create: `${hook.timeoutSeconds + 30}s`, update: `${hook.timeoutSeconds + 30}s` },
        },
      ),
    );
  }
  return made;
}

/** Lines like `safe-deploy-hook NAME: failed (...)` from postDeploy hooks' stdout, for a warning. */
export function failedHookLines(stdout: string): string[] {
  return stdout.split("\n").filter((l) => /^safe-deploy-hook \S+: failed/.test(l));
}
