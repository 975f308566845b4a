// `up`, `rollback` and `status`: flags in, the orchestrator and the real ports behind it, a summary out.
import { basename } from "node:path";
import type { RollbackOpts } from "./commands/rollback";
import type { SeedOpts } from "./commands/seed";
import type { StatusOpts } from "./commands/status";
import type { UpOpts } from "./commands/up";
import { formatDuration, runHistory } from "./commands/history";
import {
  git,
  hasCommit,
  migrationsAt,
  openContext,
  readSchemaVersion,
  secretLiterals,
  type ContextOptions,
  type ReleaseContext,
} from "./release-context";
import type { StackOptions } from "./stack";
import type { StackAccess } from "../core/release/stack-port";
import { listBackups, type BackupEntry } from "../core/backup";
import { CannotRunError, CheckFailedError, ConfigError, ExitCode, SafeDeployError } from "../core/errors";
import { runGate } from "../core/health";
import { maskLiterals, redact } from "../core/log/redact";
import { containerProbe } from "../core/health/container";
import type { ReleaseRecord } from "../core/release/ledger";
import { describeHolder, lockStatus } from "../core/release/lock";
import { deploy, rollbackTo } from "../core/release/orchestrator";
import { describeStep, manualRollbackPlan } from "../core/release/plan";

/** What tests swap: the stack (no Pulumi engine here), where text goes, and the terminal of the menu. */
export interface CommandDeps {
  openStack?: (o: StackOptions) => Promise<StackAccess>;
  out?: (line: string) => void;
  console?: { write(chunk: string): unknown };
  /** The menu's terminal (default stdin/stdout); `isTTY` decides whether there is one. */
  terminal?: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream; isTTY: boolean };
}

const stdout = (line: string) => process.stdout.write(line + "\n");

function contextOptions(
  o: { stack: string; projectDir?: string; stateDir?: string },
  deps: CommandDeps,
): ContextOptions {
  return {
    stack: o.stack,
    projectDir: o.projectDir,
    stateDir: o.stateDir,
    openStack: deps.openStack,
    console: deps.console,
  };
}

/** `up --stack S`: the guarded deploy. Exit 0 healthy; 1 failed (rolled back or not); 2 config; 3 cannot run. */
export async function runUp(o: UpOpts, deps: CommandDeps = {}): Promise<ReleaseRecord> {
  const out = deps.out ?? stdout;
  const ctx = await openContext({ ...contextOptions(o, deps), create: o.create, logName: "update.log" });
  const autoRollback = o.rollback === false ? false : ctx.config.rollback.auto;
  const { exitCode, release } = await deploy(
    { stack: ctx.stackName, autoRollback, soak: o.soak !== false },
    ctx.ports({ allowDirty: o.allowDirty, allowMigrationEdits: o.allowMigrationEdits }),
  );
  out(summary(release));
  if (exitCode !== 0) {
    const back = release.rolledBackTo ? `; rolled back to ${release.rolledBackTo}` : "";
    throw new CheckFailedError(
      `deploy of ${ctx.stackName} failed at ${release.failedStage ?? "?"}: ${release.error ?? "see logs/update.log"}${back}. ` +
        `Details: logs/update.log, 'safe-deploy history --stack ${ctx.stackName}'`,
    );
  }
  return release;
}

function summary(r: ReleaseRecord): string {
  const parts = [
    `release ${r.id}`,
    `result ${r.result}${r.failedStage ? ` (${r.failedStage})` : ""}`,
    `commit ${r.commit.slice(0, 12)}`,
    r.schemaVersion ? `schema ${r.schemaVersion}` : undefined,
    r.backupFile ? `backup ${r.backupFile}` : undefined,
    `in ${formatDuration(r.durationMs)}`,
  ];
  return parts.filter(Boolean).join(", ");
}

/** What `status` found; also printed by `rollback --status`. */
export interface StatusReport {
  stack: string;
  outputs?: Record<string, string>;
  outputsError?: string;
  containers: Array<{ role: string; name: string; ok: boolean; detail: string }>;
  health?: { url: string; ok: boolean; detail: string };
  lastRelease?: ReleaseRecord;
  lastGood?: ReleaseRecord;
  lock: string;
  /** Release records that cannot be read: "last release" and "last good" may be wrong until they are fixed. */
  ledgerError?: string;
  /** The newest deploy failed and was not rolled back, or never finished: what runs is no good release. */
  attention?: string;
}

/** `status --stack S`: what runs and whether it is healthy. Exit 0 healthy, 1 not, 3 when the stack cannot be read. */
export async function runStatus(o: StatusOpts, deps: CommandDeps = {}): Promise<number> {
  const out = deps.out ?? stdout;
  const { Ledger, describeUnreadable } = await import("../core/release/ledger");
  const { resolve } = await import("node:path");
  const projectDir = resolve(o.projectDir ?? ".");
  const stateDir = resolve(projectDir, o.stateDir ?? ".safe-deploy");
  const ledger = new Ledger(stateDir, o.stack);
  const { releases, unreadable } = await ledger.readAll();
  const lock = await lockStatus({ stateDir, stack: o.stack });
  const report: StatusReport = {
    stack: o.stack,
    containers: [],
    lastRelease: releases[0],
    lastGood: releases.find((r) => r.result === "good"),
    lock:
      lock.state === "free"
        ? "free"
        : `${lock.state === "stale" ? `stale (${lock.reason}) ` : ""}held by ${describeHolder(lock.info)}`,
    ledgerError: unreadable.length ? describeUnreadable(o.stack, unreadable) : undefined,
  };
  let code: number = ExitCode.ok;
  let masked: string[] = [];
  try {
    const ctx = await openContext({ ...contextOptions(o, deps), logName: "status.log" });
    masked = secretLiterals(ctx.secrets);
    await inspect(ctx, report);
    if (!report.containers.every((c) => c.ok) || report.health?.ok === false) code = ExitCode.checkFailed;
  } catch (e) {
    report.outputsError = e instanceof Error ? e.message : String(e);
    code = e instanceof SafeDeployError ? e.exitCode : ExitCode.cannotRun;
  }
  report.attention = unfinished(o.stack, releases, lock.state === "held");
  if ((report.ledgerError || report.attention) && code === ExitCode.ok) code = ExitCode.checkFailed;
  // Masked as the logs are: a health URL may carry `?token=...`, an error may quote a connection URL.
  // The URLs are masked field by field (the line's own punctuation must not read as part of a token).
  if (report.health) report.health.url = redact(report.health.url);
  if (report.outputsError) report.outputsError = redact(report.outputsError);
  for (const [k, v] of Object.entries(report.outputs ?? {})) report.outputs![k] = redact(v);
  const say = (line: string) => out(maskLiterals(line, masked));
  if (o.json) say(JSON.stringify(report, (k, v) => (k === "configFile" ? undefined : v), 2));
  else printStatus(report, say);
  return code;
}

/**
 * The newest deploy when it left the stack running no good release: it failed and was not rolled back,
 * or it is still `pending` (interrupted, or running now). Releases stopped at preflight changed nothing
 * and do not count. `what` says which, for `status` and `--quick`.
 */
function unfinishedRelease(
  releases: readonly ReleaseRecord[],
): { release: ReleaseRecord; what: string } | undefined {
  const newest = releases.find((r) => r.failedStage !== "preflight");
  if (!newest || (newest.result !== "bad" && newest.result !== "pending")) return undefined;
  const what =
    newest.result === "pending"
      ? `release ${newest.id} never finished (interrupted?)`
      : `release ${newest.id} failed${newest.failedStage ? ` at ${newest.failedStage}` : ""} and was not rolled back`;
  return { release: newest, what };
}

/** Why `status` is not OK although nothing may be down: no deploy holds the lock, and the newest is unfinished. */
function unfinished(stack: string, releases: readonly ReleaseRecord[], locked: boolean): string | undefined {
  const u = unfinishedRelease(releases);
  if (!u || (u.release.result === "pending" && locked)) return undefined; // a pending one may be running now
  return (
    `${u.what}: what runs may be half of it. Return to the last good release with ` +
    `'safe-deploy rollback --stack ${stack} --quick', or deploy again`
  );
}

async function inspect(ctx: ReleaseContext, report: StatusReport): Promise<void> {
  const outputs = await ctx.stack.outputs();
  report.outputs = Object.fromEntries(
    Object.entries(outputs).map(([k, v]) => [k, v.secret ? "[secret]" : v.value]),
  );
  const names = await ctx.containers();
  for (const [role, name] of Object.entries(names)) {
    const probe = containerProbe({ name, dockerHost: ctx.config.docker.host });
    const r = await probe(10_000);
    report.containers.push({ role, name, ok: r.ok, detail: r.detail ?? (r.ok ? "running" : "not running") });
  }
  const url = outputs.url?.value;
  if (url) {
    const target = ctx.config.health.url ?? `${url.replace(/\/$/, "")}${ctx.config.health.path}`;
    const g = await runGate({
      url: target,
      expectStatus: ctx.config.health.expectStatus,
      retries: 1,
      timeoutSeconds: ctx.config.health.timeoutSeconds,
    });
    report.health = { url: target, ok: g.ok, detail: g.ok ? "healthy" : g.message };
  }
}

function printStatus(r: StatusReport, out: (l: string) => void): void {
  out(`stack ${r.stack}`);
  const rel = (x?: ReleaseRecord) =>
    x
      ? `${x.id} (${x.result}, commit ${x.commit.slice(0, 12)}, ${x.time.replace("T", " ").slice(0, 19)} UTC)`
      : "none";
  out(`  last release:  ${rel(r.lastRelease)}`);
  out(`  last good:     ${rel(r.lastGood)}`);
  out(`  deploy lock:   ${r.lock}`);
  if (r.ledgerError) out(`  releases:      ${r.ledgerError.replace(/\n/g, "\n    ")}`);
  if (r.attention) out(`  NOT OK:        ${r.attention}`);
  if (r.outputsError) out(`  stack:         cannot be read: ${r.outputsError}`);
  for (const [k, v] of Object.entries(r.outputs ?? {})) if (k !== "containers") out(`  output ${k}: ${v}`);
  for (const c of r.containers)
    out(`  container ${c.role} (${c.name}): ${c.ok ? "ok" : "NOT OK"}, ${c.detail}`);
  if (r.health) out(`  health ${r.health.url}: ${r.health.ok ? "ok" : `NOT OK: ${r.health.detail}`}`);
}

/**
 * The good release before the one running now (`--quick`), and why it is the one. When the running one
 * is itself a rollback, "before" counts from the release it re-applied, so a second quick rollback goes
 * further back, never forward again. When the newest deploy failed without being rolled back (or was
 * interrupted: still `pending`), the stack runs no good release at all, and the target is the last
 * good one, not the one before it. Releases stopped at preflight changed nothing and do not count.
 */
export function quickChoice(releases: readonly ReleaseRecord[]): { target: ReleaseRecord; why: string } {
  const good = releases.filter((r) => r.result === "good");
  const unfinishedNewest = unfinishedRelease(releases);
  if (unfinishedNewest && good[0]) {
    return {
      target: good[0],
      why: `the newest ${unfinishedNewest.what}, so the last good release ${good[0].id} is the target`,
    };
  }
  const current = good[0];
  const anchor = (current?.rolledBackTo && releases.find((r) => r.id === current.rolledBackTo)) || current;
  const target =
    anchor && good.find((r) => r.time < anchor.time || (r.time === anchor.time && r.id < anchor.id));
  if (!target) {
    throw new ConfigError(
      `--quick needs a good release before the running one${current ? ` (${current.id})` : ""}; none is recorded. ` +
        `See 'safe-deploy rollback --list' and use --to RELEASE or --backup FILE`,
    );
  }
  return {
    target,
    why: `${current!.id} is running${anchor !== current ? ` (a rollback to ${anchor!.id})` : ""}; the good release before it is ${target.id}`,
  };
}

/** The target of `--quick` (see `quickChoice`). */
export function quickTarget(releases: readonly ReleaseRecord[]): ReleaseRecord {
  return quickChoice(releases).target;
}

/** A chosen rollback, before planning. */
interface Choice {
  target?: ReleaseRecord;
  commit?: string;
  backupFile?: string;
}

async function resolveCommit(
  ctx: ReleaseContext,
  releases: readonly ReleaseRecord[],
  sha: string,
): Promise<Choice> {
  const full = await git(ctx.projectDir, ["rev-parse", "--verify", `${sha}^{commit}`]).catch(() => {
    throw new ConfigError(`--commit ${sha}: no such commit in ${ctx.projectDir} (try 'git log --oneline')`);
  });
  const target = releases.find((r) => r.commit === full && r.result === "good");
  return target ? { target } : { commit: full };
}

async function requireBackup(file: string, flag = "--backup"): Promise<string> {
  const { existsSync } = await import("node:fs");
  const { resolve } = await import("node:path");
  const abs = resolve(file);
  if (!existsSync(abs))
    throw new ConfigError(`${flag} ${file}: no such file (list them with 'safe-deploy rollback --list')`);
  return abs;
}

/**
 * The release `--to ID` names. An id of another stack's release (the ids look alike) says which stack it
 * belongs to; every other mistake names the flag.
 */
async function releaseOfFlag(ctx: ReleaseContext, id: string): Promise<ReleaseRecord> {
  try {
    return await ctx.ledger.get(id);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const { readdir } = await import("node:fs/promises");
    const { existsSync } = await import("node:fs");
    const { join } = await import("node:path");
    const root = join(ctx.stateDir, "releases");
    const owners = (await readdir(root).catch(() => [] as string[]))
      .filter((d) => /^r-[\w-]+$/.test(id) && existsSync(join(root, d, `${id}.json`)))
      .map((d) => decodeURIComponent(d))
      .filter((s) => s !== ctx.stackName);
    if (owners.length) {
      throw new ConfigError(
        `--to ${id}: that is a release of stack "${owners[0]}", not of "${ctx.stackName}": pass ` +
          `--stack ${owners[0]} to roll that stack back, or pick a release of ${ctx.stackName} from ` +
          `'safe-deploy history --stack ${ctx.stackName}'`,
      );
    }
    throw new ConfigError(`--to ${id}: ${e.message}`);
  }
}

/** Flags to a choice; undefined when no mode flag was given (the menu decides). */
async function choiceFromFlags(
  ctx: ReleaseContext,
  o: RollbackOpts,
  releases: ReleaseRecord[],
  deps: CommandDeps,
): Promise<Choice | undefined> {
  if (o.quick) {
    const { target, why } = quickChoice(releases);
    (deps.out ?? stdout)(`--quick: ${why}`);
    return { target };
  }
  if (o.to) {
    const target = await releaseOfFlag(ctx, o.to);
    if (target.result !== "good") {
      throw new ConfigError(
        `--to ${o.to}: that release ended ${target.result}; pick a good one from 'safe-deploy history'`,
      );
    }
    return { target };
  }
  if (o.commit) return resolveCommit(ctx, releases, o.commit);
  if (o.backup) return { backupFile: await requireBackup(o.backup) };
  if (o.full) {
    return {
      ...(await resolveCommit(ctx, releases, o.full[0])),
      backupFile: await requireBackup(o.full[1], "--full SHA"),
    };
  }
  return undefined;
}

/**
 * Refuses a rollback whose program is gone from git (a force-push rewrote history, a shallow CI clone)
 * before anything changes, naming the ways on.
 */
async function requireCommit(ctx: ReleaseContext, commit: string, target?: ReleaseRecord): Promise<void> {
  if (await hasCommit(ctx.projectDir, commit)) return;
  throw new ConfigError(
    `rollback refused: ${target ? `release ${target.id} ran commit` : "commit"} ${commit.slice(0, 12)}, which is not ` +
      `in the git repository at ${ctx.projectDir} (history rewritten by a force-push, or a shallow clone), so its ` +
      `program cannot be re-applied; nothing was changed. Fetch it ('git fetch origin ${commit}' or ` +
      `'git fetch --unshallow') and run again, pick another release with --to RELEASE ('safe-deploy rollback ` +
      `--list'), or restore only the database with --backup FILE`,
  );
}

/**
 * A rollback returns the stack's own database to an earlier state: a backup of another database (another
 * stack's, another app's) is refused before anything changes, naming the commands that load one on purpose.
 */
async function requireSameDatabase(file: string, url: string, stack: string): Promise<void> {
  const { readManifest, parseDatabaseUrl } = await import("../core/backup");
  const from = (await readManifest(file)).database;
  const ours = parseDatabaseUrl(url).database;
  if (from === ours) return;
  throw new ConfigError(
    `rollback refused: ${file} is a backup of database "${from}", not of "${ours}", the database of stack ` +
      `${stack}; nothing was changed. Pick one of ${stack}'s backups ('safe-deploy rollback --stack ${stack} ` +
      `--list'); to load another database's data on purpose, use 'safe-deploy seed --stack ${stack} --backup ` +
      `FILE' or 'safe-deploy backup restore FILE'`,
  );
}

/** Plans a choice, shows the plan, asks (unless --yes), runs it. */
async function execute(
  ctx: ReleaseContext,
  choice: Choice,
  o: RollbackOpts,
  deps: CommandDeps,
): Promise<void> {
  const out = deps.out ?? stdout;
  const releases = await ctx.ledger.list();
  const db = await ctx.database();
  const currentSchema = db ? await readSchemaVersion(db, ctx.config) : undefined;
  const ports = ctx.ports({});
  const currentCommit = await ports.git.head();
  const commit = choice.target?.commit ?? choice.commit;
  if (commit && commit !== currentCommit) await requireCommit(ctx, commit, choice.target);
  const plan = manualRollbackPlan({
    releases,
    target: choice.target,
    commit: choice.commit,
    backupFile: choice.backupFile,
    currentSchema,
    knownSchemas: choice.commit ? await migrationsAt(ctx.projectDir, ctx.config, choice.commit) : undefined,
    currentCommit,
  });
  if (!plan.ok) throw new ConfigError(`rollback refused: ${plan.reason}`);
  if (choice.backupFile && db) await requireSameDatabase(choice.backupFile, db.url, ctx.stackName);
  out(`rollback of ${ctx.stackName}: ${plan.why}`);
  plan.steps.forEach((s, i) => out(`  ${i + 1}. ${describeStep(s)}`));
  if (!o.yes) {
    const term = terminal(deps);
    if (!term.isTTY) throw new ConfigError("rollback needs confirmation: run it on a terminal or pass --yes");
    const { confirm } = await import("@inquirer/prompts");
    const ok = await confirm(
      { message: "Go ahead?", default: false },
      { input: term.input, output: term.output },
    );
    if (!ok) {
      out("rollback cancelled; nothing changed");
      return;
    }
  }
  const { exitCode, release } = await rollbackTo(
    {
      stack: ctx.stackName,
      steps: plan.steps,
      target: choice.target,
      commit: choice.commit,
      backupFile: plan.backupFile,
    },
    ports,
  );
  if (release) out(summary(release));
  if (exitCode !== 0) {
    throw new CheckFailedError(
      `rollback of ${ctx.stackName} failed; see logs/rollback.log and 'safe-deploy rollback --stack ${ctx.stackName} --status'`,
    );
  }
  out(`rollback of ${ctx.stackName} done: healthy`);
}

function terminal(deps: CommandDeps) {
  return (
    deps.terminal ?? {
      input: process.stdin,
      output: process.stdout,
      isTTY: !!process.stdin.isTTY && !!process.stdout.isTTY,
    }
  );
}

async function printBackups(ctx: ReleaseContext, out: (l: string) => void): Promise<BackupEntry[]> {
  const list = await listBackups(ctx.backupDir);
  if (!list.length) out(`no backups in ${ctx.backupDir}`);
  for (const b of list) {
    const size = b.sizeBytes === undefined ? "?" : `${(b.sizeBytes / 2 ** 20).toFixed(1)} MiB`;
    out(
      `  ${b.createdAt.replace("T", " ").slice(0, 19)}  ${(b.label ?? "-").padEnd(10)} ${size.padStart(10)}  ${b.file}`,
    );
  }
  return list;
}

/** `rollback --stack S [...]`: flags, or with none on a terminal the users' seven-option menu. */
export async function runRollback(o: RollbackOpts, deps: CommandDeps = {}): Promise<void> {
  const out = deps.out ?? stdout;
  if (o.status) {
    const code = await runStatus({ stack: o.stack, projectDir: o.projectDir, stateDir: o.stateDir }, deps);
    if (code) process.exitCode = code;
    return;
  }
  // Flag mistakes are found before the stack is opened (which needs Pulumi and takes time).
  if (o.full && o.full.length !== 2) throw new ConfigError("--full takes two values: --full SHA FILE");
  if (o.backup) await requireBackup(o.backup);
  if (o.full) await requireBackup(o.full[1], "--full SHA");
  const mode = o.quick || o.to || o.commit || o.backup || o.full || o.list;
  if (!mode && !terminal(deps).isTTY) {
    throw new ConfigError(
      "rollback needs a mode when not on a terminal: --quick, --to RELEASE, --commit SHA, --backup FILE, " +
        "--full SHA FILE, --status or --list",
    );
  }
  const ctx = await openContext({ ...contextOptions(o, deps), logName: "rollback.log" });
  if (o.list) {
    out("releases (newest first):");
    await runHistory({ stack: o.stack, stateDir: ctx.stateDir }, out);
    out(`backups in ${ctx.backupDir}:`);
    await printBackups(ctx, out);
    return;
  }
  const releases = await ctx.ledger.list();
  const choice = await choiceFromFlags(ctx, o, releases, deps);
  // Prompts come before anything changes: Ctrl-C at one is a cancel, said as such (exit 3, as any
  // command stopped by Ctrl-C), not the prompt library's "User force closed the prompt".
  return (choice ? execute(ctx, choice, o, deps) : menu(ctx, o, deps)).catch(cancelled("rollback"));
}

/** Turns Ctrl-C at a prompt (@inquirer/prompts' ExitPromptError) into "cancelled; nothing changed". */
function cancelled(what: string) {
  return (e: unknown): never => {
    if (e instanceof Error && e.name === "ExitPromptError")
      throw new CannotRunError(`${what} cancelled (Ctrl-C at the prompt); nothing changed`);
    throw e;
  };
}

/** The users' rollback.sh menu (seeds/001), on @inquirer/prompts; returns after an action or "exit". */
async function menu(ctx: ReleaseContext, o: RollbackOpts, deps: CommandDeps): Promise<void> {
  const out = deps.out ?? stdout;
  const { select, input } = await import("@inquirer/prompts");
  const term = terminal(deps);
  const io = { input: term.input, output: term.output };
  for (;;) {
    const releases = await ctx.ledger.list();
    const action = await select(
      {
        message: `Rollback of ${ctx.stackName}: what do you want to do?`,
        choices: [
          { name: "1. Recent releases", value: "releases" },
          { name: "2. Available backups", value: "backups" },
          { name: "3. Roll back to a commit", value: "commit" },
          { name: "4. Restore the database from a backup", value: "backup" },
          { name: "5. Full rollback (commit and database)", value: "full" },
          { name: "6. System status", value: "status" },
          { name: "7. Quick rollback (last good release and its backup)", value: "quick" },
          { name: "Exit", value: "exit" },
        ],
      },
      io,
    );
    // The release shown is the release re-applied: several releases can share a commit (the stack file
    // may change without one), so the choice is the release itself, not its commit.
    const pickCommit = async (): Promise<Choice> => {
      const good = releases.filter((r) => r.result === "good");
      const id = await select(
        {
          message: "Which release?",
          choices: [
            ...good.slice(0, 10).map((r) => ({
              name: `${r.id}  ${r.commit.slice(0, 12)}  schema ${r.schemaVersion ?? "-"}`,
              value: r.id,
            })),
            { name: "another commit...", value: "" },
          ],
        },
        io,
      );
      const target = good.find((r) => r.id === id);
      if (target) return { target };
      return resolveCommit(ctx, releases, await input({ message: "Commit (sha):", required: true }, io));
    };
    const pickBackup = async () => {
      const list = await listBackups(ctx.backupDir);
      if (!list.length) throw new ConfigError(`no backups in ${ctx.backupDir}`);
      return select(
        {
          message: "Which backup?",
          choices: list.slice(0, 20).map((b) => ({
            name: `${b.createdAt.replace("T", " ").slice(0, 19)}  ${b.label ?? "-"}  ${basename(b.file)}`,
            value: b.file,
          })),
        },
        io,
      );
    };
    switch (action) {
      case "exit":
        return;
      case "releases":
        await runHistory({ stack: ctx.stackName, stateDir: ctx.stateDir }, out);
        break;
      case "backups":
        await printBackups(ctx, out);
        break;
      case "status":
        await runStatus({ stack: ctx.stackName, projectDir: ctx.projectDir, stateDir: ctx.stateDir }, deps);
        break;
      case "quick": {
        const { target, why } = quickChoice(releases);
        out(`quick rollback: ${why}`);
        return execute(ctx, { target }, o, deps);
      }
      case "commit":
        return execute(ctx, await pickCommit(), o, deps);
      case "backup":
        return execute(ctx, { backupFile: await pickBackup() }, o, deps);
      case "full": {
        const commit = await pickCommit();
        return execute(ctx, { ...commit, backupFile: await pickBackup() }, o, deps);
      }
    }
  }
}

/**
 * `seed --stack S`: replaces the stack's database with another stack's backup (the users load staging
 * from the latest production backup before a production deploy). Under the stack's deploy lock; the
 * backup is verified, a safety backup taken, the copy restored into a new database, row counts checked,
 * then swapped in (the old database is kept under a dated name).
 */
export async function runSeed(o: SeedOpts, deps: CommandDeps = {}): Promise<string> {
  const out = deps.out ?? stdout;
  if (!!o.backup === !!o.fromDir)
    throw new ConfigError("seed needs exactly one of --backup FILE or --from-dir DIR");
  if (/prod/i.test(o.stack) && !o.allowProduction) {
    throw new ConfigError(
      `seed replaces the whole database of "${o.stack}", which looks like production: pass --allow-production if you mean it`,
    );
  }
  let file: string;
  if (o.backup) file = await requireBackup(o.backup);
  else {
    const { resolve } = await import("node:path");
    const { existsSync } = await import("node:fs");
    if (!existsSync(resolve(o.fromDir!))) throw new ConfigError(`--from-dir ${o.fromDir}: no such directory`);
    const list = (await listBackups(resolve(o.fromDir!))).filter(
      (b) => b.label !== "safety" && b.hasManifest,
    );
    if (!list.length)
      throw new ConfigError(
        `--from-dir ${o.fromDir}: no backup with a manifest there (safety backups are skipped)`,
      );
    file = list[0].file;
  }
  const ctx = await openContext({ ...contextOptions(o, deps), logName: "seed.log" });
  const db = await ctx.database();
  if (!db)
    throw new ConfigError(`stack "${ctx.stackName}" has no database yet: deploy it once, then seed it`);
  out(`seed: the database of ${ctx.stackName} (${db.where}) will be replaced by ${file}`);
  if (!o.yes) {
    const term = terminal(deps);
    if (!term.isTTY) throw new ConfigError("seed replaces a database: run it on a terminal or pass --yes");
    const { confirm } = await import("@inquirer/prompts");
    const ok = await confirm(
      { message: `Replace the ${ctx.stackName} database?`, default: false },
      { input: term.input, output: term.output },
    ).catch(cancelled("seed"));
    if (!ok) {
      out("seed cancelled; nothing changed");
      return file;
    }
  }
  const ports = ctx.ports({});
  const unlock = await ports.lock(ctx.stackName, "seed");
  try {
    const safety = await ports.database.safetyBackup();
    await ports.database.restore(file, safety);
    out(`seed: ${ctx.stackName} now holds ${file}; safety backup of what was there: ${safety}`);
    out(`next: 'safe-deploy up --stack ${ctx.stackName}' applies the pending migrations to this copy`);
  } finally {
    await unlock();
  }
  return file;
}
