// The only user of the Automation API (docs/architecture.md, "Layers"). Everything else talks to a stack
// through the engine's small `StackAccess` port (src/core/release/stack-port.ts), so the orchestrator is
// tested with a recording fake.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import type * as auto from "@pulumi/pulumi/automation";
import { CannotRunError, ConfigError, SafeDeployError } from "../core/errors";
import { redact } from "../core/log/redact";
import { manualInstallCommand, pulumiCli } from "./pulumi-cli";
import { inOwnProcessGroup, lineSplitter } from "./pulumi-process";
import type { ConfigMap, StackAccess, StepEvent, UpOptions } from "../core/release/stack-port";

/** Picks the step events out of the engine's event stream. */
export function toStepEvent(e: auto.EngineEvent): StepEvent | undefined {
  if (e.resOutputsEvent) {
    const m = e.resOutputsEvent.metadata;
    return { kind: "done", op: m.op, type: m.type, urn: m.urn, outputs: m.new?.outputs };
  }
  if (e.resOpFailedEvent) {
    const m = e.resOpFailedEvent.metadata;
    return { kind: "failed", op: m.op, type: m.type, urn: m.urn };
  }
  return undefined;
}

/** How to reach the stack's state and secrets. */
export interface StackOptions {
  stack: string;
  /** The Pulumi project directory (holds Pulumi.yaml). */
  projectDir: string;
  create?: boolean;
  /** Extra environment for the engine; by default the caller's environment decides. */
  env?: Record<string, string>;
  /** Told which Pulumi CLI and which backend are used when not the obvious ones; default stderr. */
  note?: (line: string) => void;
}

const INSTALL_HINT = `Install the Pulumi CLI ('${manualInstallCommand()}', https://www.pulumi.com/docs/install/) and run again.`;

/** Where a stack's state lives, and why: the engine environment to add for it. */
export interface Backend {
  /** Added to the engine's environment (PULUMI_BACKEND_URL for the project's local backend). */
  env: Record<string, string>;
  /** Said to the user: which backend and why. */
  source: string;
}

/** Stacks that are never created implicitly and never get the local file backend by default. */
export function isProductionStack(stack: string): boolean {
  return /^prod/i.test(stack);
}

/** The backend `pulumi login` selected (`current` in $PULUMI_HOME/credentials.json), if any. */
export function loggedInBackend(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const home = env.PULUMI_HOME || join(env.HOME || homedir(), ".pulumi");
  try {
    const creds = JSON.parse(readFileSync(join(home, "credentials.json"), "utf8")) as { current?: unknown };
    return typeof creds.current === "string" && creds.current ? creds.current : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Chooses the stack's backend (issue 14, item 10): PULUMI_BACKEND_URL when set; else the user's
 * `pulumi login`; else, for staging only, the project's `file://` backend in `.pulumi-state`, so staging
 * needs no account. Any other stack without a backend is an error: a production deploy must never start
 * from an empty local state (new containers and volume on the production ports).
 */
export function chooseBackend(
  stack: string,
  projectDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Backend {
  if (env.PULUMI_BACKEND_URL)
    return { env: {}, source: `PULUMI_BACKEND_URL (${redact(env.PULUMI_BACKEND_URL)})` };
  const login = loggedInBackend(env);
  if (login) return { env: {}, source: `pulumi login (${redact(login)})` };
  if (stack === "staging") {
    const url = `file://${join(projectDir, ".pulumi-state")}`;
    return {
      env: { PULUMI_BACKEND_URL: url },
      source: `the project's local backend ${url} (staging default)`,
    };
  }
  throw new ConfigError(
    `stack "${stack}" has no backend: PULUMI_BACKEND_URL is not set and 'pulumi login' has not been run ` +
      `(no credentials.json in $PULUMI_HOME or ~/.pulumi). Only staging defaults to the local file backend. ` +
      `Run 'pulumi login <backend>' (or set PULUMI_BACKEND_URL) to where this stack's state is; ` +
      `for a first deploy create the stack there with 'pulumi stack init ${stack}'.`,
  );
}

/** Refuses to create a production stack implicitly (`--create`): an empty one would deploy anew beside the real one. */
export function checkImplicitCreate(stack: string, create: boolean | undefined, backend: Backend): void {
  if (create && isProductionStack(stack)) {
    throw new ConfigError(
      `stack "${stack}" is never created implicitly (--create), since an empty production stack would start ` +
        `new containers and a new volume on the production ports. Backend: ${backend.source}. If that is where ` +
        `production's state lives, create the stack once with 'pulumi stack init ${stack}'; otherwise run ` +
        `'pulumi login' or set PULUMI_BACKEND_URL to the right backend. Then run without --create.`,
    );
  }
}

/** Turns the Automation API's errors into sentences that name the stack and the next step. */
export function mapPulumiError(e: unknown, stack: string): SafeDeployError {
  if (e instanceof SafeDeployError) return e;
  const name = (e as { constructor?: { name?: string } })?.constructor?.name ?? "";
  const text = redact(e instanceof Error ? e.message : String(e));
  if (/ENOENT: pulumi|spawn pulumi ENOENT/.test(text)) {
    return new CannotRunError(
      `the Pulumi CLI is not installed (needed for stack "${stack}"). ${INSTALL_HINT}`,
    );
  }
  if (name === "ConcurrentUpdateError" || /conflict: Another update is currently in progress/.test(text)) {
    return new CannotRunError(
      `stack "${stack}" is being updated by another process. Wait for it, or if it died (a killed deploy), run ` +
        `'safe-deploy recover --stack ${stack}': it clears the stale lock when no deploy holds the deploy lock.`,
    );
  }
  if (name === "StackNotFoundError" || /no stack named/.test(text)) {
    return new ConfigError(
      `stack "${stack}" does not exist in this backend. Create it with 'pulumi stack init ${stack}' ` +
        `(or run with --create).`,
    );
  }
  const firstLines = text.split("\n").slice(0, 12).join("\n");
  return new CannotRunError(`pulumi failed on stack "${stack}": ${firstLines}`);
}

function toConfigMap(m: auto.ConfigMap | auto.OutputMap): ConfigMap {
  return Object.fromEntries(
    Object.entries(m).map(([k, v]) => [
      k,
      { value: typeof v.value === "string" ? v.value : JSON.stringify(v.value), secret: !!v.secret },
    ]),
  );
}

/** The engine's output for `onLine` a whole line at a time, redacted (a chunk may end inside a secret). */
export function redactedLines(
  onLine: ((line: string) => void) | undefined,
): { push(chunk: string): void; flush(): void } | undefined {
  return onLine && lineSplitter((line) => onLine(redact(line)));
}

/**
 * Runs `pulumi ARGS` as the workspace runs its own commands (LocalWorkspace.runPulumiCmd, @pulumi/pulumi
 * 3.248: its `pulumiCommand` in its `workDir`, PULUMI_HOME and its `envVars`).
 */
async function runInWorkspace(ws: auto.LocalWorkspace, args: string[]): Promise<{ stdout: string }> {
  const env: Record<string, string> = {
    ...(ws.pulumiHome ? { PULUMI_HOME: ws.pulumiHome } : {}),
    ...ws.envVars,
  };
  const cmd = ws.pulumiCommand as unknown as {
    run(args: string[], cwd: string, env: Record<string, string>): Promise<{ stdout: string }>;
  };
  return cmd.run(args, ws.workDir, env);
}

/**
 * `pulumi stack export` with the secrets as the stack's secrets provider keeps them (ciphertext). The
 * Automation API's `exportStack` adds `--show-secrets` (localWorkspace.js), which put every secret in
 * plaintext into the checkpoints synced next to the backups.
 */
export async function exportEncrypted(stack: auto.Stack): Promise<unknown> {
  const ws = stack.workspace as auto.LocalWorkspace;
  return JSON.parse((await runInWorkspace(ws, ["stack", "export", "--stack", stack.name])).stdout);
}

/**
 * `pulumi stack import` from a 0600 file in a fresh 0700 directory, removed afterwards whatever happens
 * (the Automation API's `importStack` leaves a 0644 file in the temp dir when the import fails).
 */
export async function importFromPrivateFile(stack: auto.Stack, state: unknown): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "safe-deploy-import-"));
  try {
    const file = join(dir, "state.json");
    await writeFile(file, JSON.stringify(state), { mode: 0o600, flag: "wx" });
    await runInWorkspace(stack.workspace as auto.LocalWorkspace, [
      "stack",
      "import",
      "--file",
      file,
      "--stack",
      stack.name,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The workspace's CLI and engine environment: the CLI from pulumi-cli.ts, the backend from
 * `chooseBackend` (with `opts.env` as the caller's environment), and no implicit production stack.
 */
async function workspaceSetup(opts: StackOptions) {
  const note = opts.note ?? ((line: string) => process.stderr.write(`safe-deploy: ${line}\n`));
  // In its own process group: one SIGINT per cancel, whoever sent the signal (pulumi-process.ts).
  const pulumiCommand = inOwnProcessGroup(await pulumiCli({ note }));
  const backend = chooseBackend(opts.stack, opts.projectDir, { ...process.env, ...opts.env });
  checkImplicitCreate(opts.stack, opts.create, backend);
  if (backend.env.PULUMI_BACKEND_URL) note(`stack "${opts.stack}": state in ${backend.source}`);
  // Backups of a program re-applied from a rollback worktree still go to the project (src/index.ts).
  const envVars: Record<string, string> = {
    ...backend.env,
    SAFE_DEPLOY_DATA_DIR: opts.projectDir,
    ...opts.env,
  };
  if (envVars.PULUMI_BACKEND_URL?.startsWith("file://")) {
    const dir = envVars.PULUMI_BACKEND_URL.slice("file://".length);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  }
  return { envVars, pulumiCommand };
}

/** Opens (or creates) a stack of the local program in `projectDir` through the Automation API. */
export async function openStack(opts: StackOptions): Promise<StackAccess> {
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
  const { envVars, pulumiCommand } = await workspaceSetup(opts);
  const args = { stackName: opts.stack, workDir: opts.projectDir };
  const wsOpts = {
    envVars,
    pulumiCommand,
    secretsProvider: process.env.PULUMI_SECRETS_PROVIDER ?? "passphrase",
  };
  const stack = await (
    opts.create ? LocalWorkspace.createOrSelectStack(args, wsOpts) : LocalWorkspace.selectStack(args, wsOpts)
  ).catch((e: unknown) => {
    throw mapPulumiError(e, opts.stack);
  });
  const guard =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> =>
      f(...a).catch((e: unknown) => {
        throw mapPulumiError(e, opts.stack);
      });
  return {
    name: opts.stack,
    getAllConfig: guard(async () => toConfigMap(await stack.getAllConfig())),
    setAllConfig: guard(async (config: ConfigMap) => stack.setAllConfig(config)),
    exportState: guard(async () => exportEncrypted(stack)),
    importState: guard(async (state: unknown) => importFromPrivateFile(stack, state)),
    up: guard(async (o: UpOptions = {}) => {
      const ws = { ...wsOpts, envVars: { ...envVars, ...o.env } };
      const target =
        o.workDir || o.env
          ? await LocalWorkspace.selectStack(
              { stackName: opts.stack, workDir: o.workDir ?? opts.projectDir },
              ws,
            )
          : stack;
      const out = redactedLines(o.onOutput);
      const res = await target
        .up({
          signal: o.signal,
          onOutput: out?.push,
          onEvent: o.onEvent
            ? (e) => {
                const step = toStepEvent(e);
                if (step) o.onEvent!(step);
              }
            : undefined,
        })
        .finally(() => out?.flush());
      return { outputs: toConfigMap(res.outputs) };
    }),
    refresh: guard(async (o: { onOutput?: (line: string) => void } = {}) => {
      const out = redactedLines(o.onOutput);
      await stack.refresh({ onOutput: out?.push }).finally(() => out?.flush());
    }),
    history: guard(async () =>
      (await stack.history()).map((h) => ({
        version: h.version,
        kind: h.kind,
        result: h.result,
        startTime: String(h.startTime),
        endTime: h.endTime ? String(h.endTime) : undefined,
        config: toConfigMap(h.config ?? {}),
      })),
    ),
    outputs: guard(async () => toConfigMap(await stack.outputs())),
    cancel: guard(async () => stack.cancel()),
  };
}
