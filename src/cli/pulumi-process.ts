// How the `pulumi` binary runs under the Automation API (issue 14, part 2 items 3 and 9). Kept apart from
// the workspace/backend code in stack.ts: it wraps whatever `PulumiCommand` that code chose.
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, isAbsolute } from "node:path";
import type { PulumiCommand } from "@pulumi/pulumi/automation";

// Not in the package's type declarations; the SDK's own `exec` builds its results and errors from them,
// so `ConcurrentUpdateError` / `StackNotFoundError` stay what they are (mapPulumiError relies on them).
const { CommandResult } = require("@pulumi/pulumi/automation/cmd") as {
  CommandResult: new (stdout: string, stderr: string, code: number, err?: Error) => unknown;
};
const { createCommandError } = require("@pulumi/pulumi/automation/errors") as {
  createCommandError: (result: unknown) => Error;
};

type Run = (
  args: string[],
  cwd: string,
  additionalEnv: Record<string, string>,
  onOutput?: (data: string) => void,
  onError?: (data: string) => void,
  signal?: AbortSignal,
) => Promise<unknown>;

/** The `pulumi` processes running now, each in a group of its own. */
const running = new Set<ChildProcess>();
let exitHook = false;

/**
 * When this process exits with an engine still running (a second Ctrl-C: `catchingSignals` exits at once),
 * the engine gets SIGINT, as it would have from the terminal: in its own group it would otherwise run on
 * alone, its output going nowhere. Only then: a first signal reaches it once, through `signal`.
 */
function stopEnginesOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const child of running)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
  });
}

/**
 * `cmd` with every `pulumi` it runs in a process group of its own. The SDK's `exec` spawns the binary in
 * ours (execa without `detached`, @pulumi/pulumi 3.248 automation/cmd.js) and sends it SIGINT when the
 * `signal` aborts: a terminal Ctrl-C reaches the whole foreground group, so the engine got SIGINT twice,
 * and a second SIGINT makes `pulumi` stop at once, leaving pending operations (the provider host killed
 * mid-pg_dump). In its own group only our forward reaches it: exactly one SIGINT, a graceful cancel,
 * whether the signal came from the terminal, `kill -INT` to our pid, or SIGTERM to our group from CI.
 */
export function inOwnProcessGroup(cmd: PulumiCommand): PulumiCommand {
  const run: Run = (args, cwd, additionalEnv, onOutput, onError, signal) => {
    // As PulumiCommand.run does: never prompt; the CLI's folder first on PATH for its bundled plugins.
    if (!args.includes("--non-interactive")) args.push("--non-interactive");
    const env: Record<string, string> = { ...additionalEnv };
    if (isAbsolute(cmd.command)) {
      env.PATH = `${dirname(cmd.command)}:${additionalEnv.PATH ?? process.env.PATH ?? ""}`;
    }
    env.PULUMI_AUTOMATION_API = "true";
    return new Promise((resolve, reject) => {
      const child = spawn(cmd.command, args, {
        cwd,
        env: { ...process.env, ...env },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      stopEnginesOnExit();
      running.add(child);
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        stdout += d;
        onOutput?.(d);
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
        onError?.(d);
      });
      const cancel = () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      };
      if (signal?.aborted) cancel();
      signal?.addEventListener("abort", cancel, { once: true });
      child.on("error", (e) => {
        running.delete(child);
        signal?.removeEventListener("abort", cancel);
        reject(createCommandError(new CommandResult("", e.message, -2, e)));
      });
      child.on("close", (code, sig) => {
        running.delete(child);
        signal?.removeEventListener("abort", cancel);
        const result = new CommandResult(stdout.replace(/\n$/, ""), stderr.replace(/\n$/, ""), code ?? -2);
        if (code === 0) resolve(result);
        else
          reject(
            createCommandError(sig ? new CommandResult(stdout, `${stderr}\nkilled by ${sig}`, -2) : result),
          );
      });
    });
  };
  return Object.assign(Object.create(cmd) as PulumiCommand, { run });
}

/**
 * Turns the chunks a stream delivers into whole lines for `onLine` (a chunk ends anywhere: a secret split
 * across two would slip past a redaction that looks at one chunk at a time). `flush` hands over the tail
 * without a newline, once the stream ended.
 */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; flush(): void } {
  let tail = "";
  return {
    push(chunk) {
      const parts = (tail + chunk).split("\n");
      tail = parts.pop()!;
      for (const p of parts) onLine(`${p}\n`);
    },
    flush() {
      if (tail) onLine(tail);
      tail = "";
    },
  };
}
