#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { ExitCode, SafeDeployError } from "../core/errors";
import { redact } from "../core/log/redact";
import { register as backup } from "./commands/backup";
import { register as drift } from "./commands/drift";
import { register as health } from "./commands/health";
import { register as history } from "./commands/history";
import { register as lint } from "./commands/lint";
import { register as migrate } from "./commands/migrate";
import { register as lock } from "./commands/lock";
import { register as rehearse } from "./commands/rehearse";
import { register as rollback } from "./commands/rollback";
import { register as seed } from "./commands/seed";
import { register as status } from "./commands/status";
import { register as up } from "./commands/up";

/**
 * `safe-deploy`: parses flags and dispatches. Each verb lives in `commands/<verb>.ts`, loaded lazily so
 * `safe-deploy lint` never pays for the Automation API. One catch below sets the exit code.
 */
export function buildProgram(): Command {
  const program = new Command("safe-deploy")
    .description("Guarded deploys with PostgreSQL backups, migrations, health gates and rollback")
    .showHelpAfterError()
    .exitOverride();
  // Each `commands/<verb>.ts` exports `register(program)`; it must import only commander at module
  // scope and load the engine with `await import()` inside its action. Keep this list sorted.
  const registrars: Array<(p: Command) => void> = [
    backup,
    drift,
    health,
    history,
    lint,
    lock,
    migrate,
    rehearse,
    rollback,
    seed,
    status,
    up,
  ];
  for (const register of registrars) register(program);
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return ExitCode.ok;
      if (e.code === "commander.help") return ExitCode.ok;
      return ExitCode.usage;
    }
    const message = redact(e instanceof Error ? e.message : String(e));
    process.stderr.write(`safe-deploy: ${message}\n`);
    return e instanceof SafeDeployError ? e.exitCode : ExitCode.cannotRun;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
