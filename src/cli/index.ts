#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { ExitCode, SafeDeployError } from "../core/errors";
import { redact } from "../core/log/redact";
import { register as backup } from "./commands/backup";
import { register as changes } from "./commands/changes";
import { register as checkpoint } from "./commands/checkpoint";
import { register as db } from "./commands/db";
import { register as drift } from "./commands/drift";
import { register as health } from "./commands/health";
import { register as history } from "./commands/history";
import { register as lint } from "./commands/lint";
import { register as migrate } from "./commands/migrate";
import { register as lock } from "./commands/lock";
import { register as rebuild } from "./commands/rebuild";
import { register as recover } from "./commands/recover";
import { register as rehearse } from "./commands/rehearse";
import { register as rollback } from "./commands/rollback";
import { register as seed } from "./commands/seed";
import { register as status } from "./commands/status";
import { register as up } from "./commands/up";
import { checkStackName } from "./stack-name";

/**
 * `safe-deploy`: parses flags and dispatches. Each verb lives in `commands/<verb>.ts`, loaded lazily so
 * `safe-deploy lint` never pays for the Automation API. One catch below sets the exit code.
 */
export function buildProgram(opts: { checkStack?: boolean } = {}): Command {
  const program = new Command("safe-deploy")
    .description("Guarded deploys with PostgreSQL backups, migrations, health gates and rollback")
    .version(packageVersion(), "-V, --version", "print the safe-deploy version")
    .showHelpAfterError()
    .exitOverride();
  // Each `commands/<verb>.ts` exports `register(program)` and its `run<Verb>`; at module scope it imports
  // only commander, Node built-ins and light modules (../shared: no other package, checked by
  // test/architecture.test.ts) and loads the engine with `await import()` inside. Keep this list sorted.
  const registrars: Array<(p: Command) => void> = [
    backup,
    changes,
    checkpoint,
    db,
    drift,
    health,
    history,
    lint,
    lock,
    migrate,
    rebuild,
    recover,
    rehearse,
    rollback,
    seed,
    status,
    up,
  ];
  for (const register of registrars) register(program);
  for (const c of allCommands(program)) unknownBeforeMissing(c);
  // Every command taking `--stack` checks the name first: `history --stack stagin` said "no releases", exit 0.
  // Off for the workflow checker, which parses invocations whose `--stack` is a `${{ }}` expression.
  if (opts.checkStack !== false)
    program.hook("preAction", (_program, action) => {
      const o = action.opts<{ stack?: unknown; projectDir?: unknown }>();
      if (typeof o.stack === "string")
        checkStackName(o.stack, typeof o.projectDir === "string" ? o.projectDir : ".");
    });
  return program;
}

/** The version in package.json (read at run time: the CLI runs from source through tsx). */
function packageVersion(): string {
  return (require("../../package.json") as { version: string }).version;
}

function allCommands(c: Command): Command[] {
  return [c, ...c.commands.flatMap(allCommands)];
}

/**
 * Commander checks required options before unknown ones, so a typo (`--dri`) was reported as
 * "required option '--dir' not specified". This reports the unknown option first.
 */
function unknownBeforeMissing(c: Command): void {
  let unknown: string[] = [];
  const parse = c.parseOptions.bind(c);
  c.parseOptions = (args) => {
    const r = parse(args);
    unknown = r.unknown;
    return r;
  };
  // Two methods commander 14 marks private (not in its typings); test/cli/dba.test.ts fails if they change.
  const raw = c as unknown as {
    missingMandatoryOptionValue(option: unknown): void;
    unknownOption(flag: string): void;
  };
  const missing = raw.missingMandatoryOptionValue.bind(c);
  raw.missingMandatoryOptionValue = (option) => {
    const typo = unknown.find((a) => a.startsWith("-"));
    if (typo) raw.unknownOption(typo);
    missing(option);
  };
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

/**
 * Sets the exit code from `run`. Should the process run out of work while `run` is still pending (a
 * step waiting on something that can never come), it exits 3 saying so, never 0 as if all went well.
 */
export function runMain(run: Promise<number>): void {
  // A reader that stops early (`safe-deploy lint DIR | head`) closes the pipe: the rest of the output
  // has nowhere to go, which is no error of the command's (its exit code still stands).
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
  });
  let settled = false;
  const unfinished = () => {
    if (settled) return;
    process.stderr.write(
      "safe-deploy: the command stopped before it finished (a step never completed); it did not succeed, check what it reported above\n",
    );
    process.exitCode = ExitCode.cannotRun;
  };
  process.once("exit", unfinished);
  run.then((code) => {
    settled = true;
    process.exitCode = code;
  });
}

if (require.main === module) runMain(main(process.argv.slice(2)));
