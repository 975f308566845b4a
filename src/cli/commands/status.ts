import type { Command } from "commander";
import type { ReleaseRecord } from "../../core/release/ledger";
import type { ReleaseContext } from "../context";
import {
  contextOptions,
  projectDirOption,
  stateDirOption,
  stdout,
  unfinishedRelease,
  type CommandDeps,
} from "../shared";

/** Options of `safe-deploy status`. */
export interface StatusOpts {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  json?: boolean;
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
  /** Old databases restores and rebuilds kept on the server (`backup databases` lists and drops them). */
  keptDatabases?: string[];
  /** Release change streams (issue 20) on the stack's database, with the WAL each holds back. */
  changeSlots?: Array<{ slot: string; retainedMB: number; keptUntil?: string; release?: string }>;
}

/** `status --stack S`: what runs and whether it is healthy. Exit 0 healthy, 1 not, 3 when the stack cannot be read. */
export async function runStatus(o: StatusOpts, deps: CommandDeps = {}): Promise<number> {
  const { lockStatus, describeHolder } = await import("../../core/release/lock");
  const { openContext, secretLiterals } = await import("../context");
  const { ExitCode, SafeDeployError } = await import("../../core/errors");
  const { maskLiterals, redact } = await import("../../core/log/redact");
  const out = deps.out ?? stdout;
  const { Ledger, describeUnreadable } = await import("../../core/release/ledger");
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
  const { containerProbe } = await import("../../core/health/container");
  const { runGate } = await import("../../core/health");
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
  report.keptDatabases = await keptDatabases(ctx).catch(() => undefined);
  report.changeSlots = await changeSlots(ctx).catch(() => undefined);
}

/** The stack's change stream slots after dropping the expired ones (no daemon: every status prunes them). */
async function changeSlots(ctx: ReleaseContext): Promise<StatusReport["changeSlots"]> {
  const { pruneSlots, stackSlots } = await import("../context/changes");
  await pruneSlots(ctx, false);
  const kept = new Map((await ctx.ledger.list()).flatMap((r) => (r.changes ? [[r.changes.slot, r]] : [])));
  return (await stackSlots(ctx)).map((s) => {
    const r = kept.get(s.slot);
    return {
      slot: s.slot,
      retainedMB: Math.round((s.retainedBytes / 2 ** 20) * 10) / 10,
      ...(r ? { keptUntil: r.changes!.keepUntil, release: r.id } : {}),
    };
  });
}

/** The `<db>_before_restore_/_before_rebuild_` databases on the stack's server; undefined if it cannot be asked. */
async function keptDatabases(ctx: ReleaseContext): Promise<string[] | undefined> {
  const db = await ctx.database();
  if (!db) return undefined;
  const { runSql } = await import("../../core/backup/session");
  const { parseDatabaseUrl } = await import("../../core/backup/runner");
  const out = await runSql(
    db.target,
    parseDatabaseUrl(db.url),
    "SELECT datname FROM pg_database WHERE datname ~ '_before_(restore|rebuild)_[0-9]{14}$' ORDER BY datname;",
    "listing kept databases",
  );
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
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
  for (const c of r.changeSlots ?? [])
    out(
      `  change stream ${c.slot}: ${c.retainedMB} MB of WAL retained, ` +
        (c.release
          ? `kept for ${c.release} until ${c.keptUntil}`
          : "kept by no release ('safe-deploy changes prune' drops it)"),
    );
  if (r.keptDatabases?.length)
    out(
      `  kept databases: ${r.keptDatabases.join(", ")} (left by restores/rebuilds; once sure, drop with ` +
        "'safe-deploy backup databases --drop NAME --yes')",
    );
}

/** Registers `status --stack S`. */
export function register(program: Command): void {
  program
    .command("status")
    .description("Stack outputs, container health, the last release and the deploy lock")
    .requiredOption("--stack <name>", "the stack")
    .addOption(projectDirOption())
    .addOption(stateDirOption())
    .option("--json", "one JSON object, for machines")
    .action(async (o: StatusOpts) => {
      const code = await runStatus(o);
      if (code) process.exitCode = code;
    });
}
