// The real parts behind the orchestrator's ports (src/core/release/orchestrator.ts): the stack's config
// and secrets, its database (locally or through `docker exec`, also over ssh://), the ledger, the deploy
// lock, git worktrees, checkpoints, notifications and the logs. `up`, `rollback` and `status` share it.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, statfs, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { promisify } from "node:util";
import writeFileAtomic from "write-file-atomic";
import {
  parseStackConfig,
  PLAIN_KEYS,
  secretValueProblems,
  SECRET_KEYS,
  type SecretKey,
  type StackConfig,
} from "../config";
import { urlHost } from "../core/address";
import { createBackup, listBackups, restoreBackup } from "../core/backup";
import { parseDatabaseUrl, type RunTarget } from "../core/backup/runner";
import { runSql } from "../core/backup/session";
import { CannotRunError, CheckFailedError, ConfigError } from "../core/errors";
import { runGate } from "../core/health";
import { createLogger, type Logger } from "../core/log/logger";
import { urlSecrets } from "../core/log/redact";
import { versionQuery } from "../core/migrations/presets";
import { notifiersFrom, notifyAll, webhookSecrets } from "../core/notify";
import { Ledger } from "../core/release/ledger";
import { CheckpointStore } from "../core/release/checkpoints";
import { containersByRole } from "../core/release/labels";
import { acquireLock } from "../core/release/lock";
import { appliedMigrationEdits } from "../core/migrations/edits";
import type { DeployPorts, NotifyType } from "../core/release/orchestrator";
import { stackContainers } from "./containers";
import { openStack, type StackOptions } from "./stack";
import type { ConfigMap, StackAccess } from "../core/release/stack-port";

const run = promisify(execFile);

/** How a command reaches a stack; tests replace `openStack` (the Pulumi engine cannot run here). */
export interface ContextOptions {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  create?: boolean;
  /** Progress for a person (default stderr). */
  console?: { write(chunk: string): unknown };
  /** `update.log` (deploys) or `rollback.log` (rollbacks), in `<projectDir>/logs`. */
  logName?: string;
  openStack?: (o: StackOptions) => Promise<StackAccess>;
}

/** The decrypted secrets of a stack (kept in memory, registered with every logger for masking). */
export type StackSecrets = Partial<Record<SecretKey, string>>;

/** Splits a stack's config into the validated sections and the secrets. Throws one ConfigError. */
export function configFromStack(
  map: ConfigMap,
  stack: string,
): { config: StackConfig; secrets: StackSecrets } {
  const raw: Record<string, unknown> = {};
  const secrets: StackSecrets = {};
  const plainSecrets: string[] = [];
  for (const [key, entry] of Object.entries(map)) {
    if (!key.startsWith("safe-deploy:")) continue;
    const k = key.slice("safe-deploy:".length);
    if ((SECRET_KEYS as readonly string[]).includes(k)) {
      secrets[k as SecretKey] = entry.value;
      if (!entry.secret) plainSecrets.push(k);
      continue;
    }
    let value: unknown = entry.value;
    try {
      value = JSON.parse(entry.value);
    } catch {
      // a plain string value
    }
    raw[k] = (PLAIN_KEYS as readonly string[]).includes(k) ? value : true;
  }
  raw.secretsSet = Object.keys(secrets);
  if (plainSecrets.length) raw.secretsInPlainText = plainSecrets;
  const malformed = secretValueProblems(secrets);
  if (malformed.length) raw.secretsMalformed = malformed;
  return { config: parseStackConfig(raw, stack), secrets };
}

/**
 * Every literal a log or notification must mask: each secret, each value of the JSON maps (`appSecrets`,
 * `hookSecrets`: a hook or the app prints one value, never the whole map) and the password of each URL,
 * raw and decoded. The ledger keeps the plain list: it refuses records holding any of these.
 */
export function secretLiterals(secrets: StackSecrets): string[] {
  const out = new Set<string>();
  for (const [key, value] of Object.entries(secrets)) {
    if (!value) continue;
    out.add(value);
    if (key === "slackWebhookUrl" || key === "webhookUrl") for (const w of webhookSecrets(value)) out.add(w);
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      parsed = undefined;
    }
    if (parsed && typeof parsed === "object") {
      for (const v of Object.values(parsed)) if (typeof v === "string" && v) out.add(v);
    }
    for (const u of urlSecrets(value)) out.add(u);
  }
  return [...out];
}

/** Where and how the tool reaches the stack's database. */
export interface DatabaseTarget {
  url: string;
  target: RunTarget;
  /** For messages: "postgres on 127.0.0.1:55432" or "container app-db on ssh://...". */
  where: string;
}

/**
 * The database as the CLI reaches it: an external URL; a managed container through its host port; or,
 * when the backups run in the container (a remote Docker host), `docker exec` into the container the
 * stack's `containers` output names. Undefined before the first deploy created the container.
 */
export function databaseTarget(
  config: StackConfig,
  secrets: StackSecrets,
  containers: Record<string, string> | undefined,
): DatabaseTarget | undefined {
  const db = config.database;
  if (db.mode === "external") {
    if (!secrets.databaseUrl) return undefined;
    const u = parseDatabaseUrl(secrets.databaseUrl);
    return {
      url: secrets.databaseUrl,
      target: { runIn: "local" },
      where: `${u.host}/${u.database}`,
    };
  }
  const pw = encodeURIComponent(secrets.dbPassword ?? "");
  const user = encodeURIComponent(db.user);
  if (config.backup.runIn === "container") {
    const name = containers?.database;
    if (!name) return undefined;
    return {
      url: `postgres://${user}:${pw}@127.0.0.1:5432/${db.name}`,
      target: { runIn: "container", container: name, dockerHost: config.docker.host },
      where: `container ${name} on ${config.docker.host}`,
    };
  }
  const host = urlHost(db.bindAddress);
  return {
    url: `postgres://${user}:${pw}@${host}:${db.hostPort}/${db.name}`,
    target: { runIn: "local" },
    where: `${host}:${db.hostPort}/${db.name}`,
  };
}

/** Everything `up`, `rollback` and `status` share for one stack. */
export interface ReleaseContext {
  stackName: string;
  projectDir: string;
  stateDir: string;
  logsDir: string;
  stack: StackAccess;
  config: StackConfig;
  secrets: StackSecrets;
  /** Console + log file; engine output goes to the file only (`fileLog`). */
  log: Logger;
  fileLog: Logger;
  ledger: Ledger;
  /** The stack's containers as its last update left them (empty before the first deploy). */
  containers(): Promise<Record<string, string>>;
  database(): Promise<DatabaseTarget | undefined>;
  /** The backup directory, absolute. */
  backupDir: string;
  /** `notifyDeadlineMs`: how long one notification may take in all (default 30 s). */
  ports(o?: {
    allowDirty?: boolean;
    allowMigrationEdits?: boolean;
    notifyDeadlineMs?: number;
    lockRenewMs?: number;
  }): DeployPorts;
}

/** The stack's `Pulumi.<stack>.yaml`. */
export function stackFile(projectDir: string, stack: string): string {
  return join(projectDir, `Pulumi.${stack}.yaml`);
}

/**
 * The stack's containers by role, found on the Docker host by their labels: the stack's `containers`
 * output is that of the last successful update and may name a container a failed update replaced. The
 * output is used only when no container carries the labels (deployed by a version that set none) or
 * Docker does not answer.
 */
export async function containersOf(stack: StackAccess, dockerHost: string): Promise<Record<string, string>> {
  // Docker not answering: the output is the best guess left (preflight reports Docker itself).
  const labelled = containersByRole(await stackContainers(dockerHost, stack.name).catch(() => []));
  if (Object.keys(labelled).length) return labelled;
  const raw = (await stack.outputs()).containers?.value;
  return raw ? (JSON.parse(raw) as Record<string, string>) : {};
}

/** Opens the stack and reads its config; a bad config is one ConfigError (exit 2) naming every key. */
export async function openContext(o: ContextOptions): Promise<ReleaseContext> {
  if (!o.stack) throw new ConfigError("`--stack` is required, e.g. --stack staging");
  const projectDir = resolve(o.projectDir ?? ".");
  if (!existsSync(join(projectDir, "Pulumi.yaml"))) {
    throw new ConfigError(
      `no Pulumi.yaml in ${projectDir}: run from the project directory or pass --project-dir`,
    );
  }
  const stateDir = resolve(projectDir, o.stateDir ?? ".safe-deploy");
  const logsDir = join(projectDir, "logs");
  const stack = await (o.openStack ?? openStack)({ stack: o.stack, projectDir, create: o.create });
  const { config, secrets } = configFromStack(await stack.getAllConfig(), o.stack);
  const secretValues = Object.values(secrets).filter((s): s is string => !!s);
  const masked = secretLiterals(secrets);
  const fileLog = createLogger({ file: join(logsDir, o.logName ?? "update.log"), secrets: masked });
  const consoleLog = createLogger({
    file: join(logsDir, o.logName ?? "update.log"),
    console: o.console ?? process.stderr,
    secrets: masked,
  });
  const ledger = new Ledger(stateDir, o.stack, secretValues);
  const backupDir = isAbsolute(config.backup.dir)
    ? config.backup.dir
    : resolve(projectDir, config.backup.dir);
  let containersCache: Record<string, string> | undefined;
  const containers = async () => {
    if (containersCache) return containersCache;
    containersCache = await containersOf(stack, config.docker.host);
    return containersCache;
  };
  const database = async () => databaseTarget(config, secrets, await containers().catch(() => undefined));
  const ctx: ReleaseContext = {
    stackName: o.stack,
    projectDir,
    stateDir,
    logsDir,
    stack,
    config,
    secrets,
    log: consoleLog,
    fileLog,
    ledger,
    containers,
    database,
    backupDir,
    ports: (p = {}) => realPorts(ctx, p),
  };
  return ctx;
}

/** Runs git in `projectDir`; its trimmed stdout, or a CannotRunError quoting git's stderr. */
export async function git(projectDir: string, args: string[]): Promise<string> {
  try {
    return (await run("git", ["-C", projectDir, ...args], { maxBuffer: 16 << 20 })).stdout.trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new CannotRunError(`git ${args[0]} failed in ${projectDir}: ${(err.stderr || err.message).trim()}`);
  }
}

/** The latest applied migration of the stack's tool, read with psql where the database is reached. */
export async function readSchemaVersion(
  db: DatabaseTarget,
  config: StackConfig,
): Promise<string | undefined> {
  const q = versionQuery(config.migrations.tool);
  if (!q) return undefined;
  const conn = parseDatabaseUrl(db.url);
  const exists = await runSql(
    db.target,
    conn,
    `SELECT to_regclass('${q.table}') IS NOT NULL;`,
    "reading the schema version",
  );
  if (exists.trim() !== "t") return undefined;
  return (await runSql(db.target, conn, `${q.sql};`, "reading the schema version")).trim() || undefined;
}

/** Migration versions (file names without extension) in the migrations directory at `commit`. */
export async function migrationsAt(
  projectDir: string,
  config: StackConfig,
  commit: string,
): Promise<string[] | undefined> {
  if (config.migrations.tool !== "node-pg-migrate" && config.migrations.tool !== "prisma") return undefined;
  const dir = join(config.migrations.workDir, config.migrations.dir);
  if (isAbsolute(dir)) return undefined;
  const names = await git(projectDir, ["ls-tree", "--name-only", `${commit}:${dir}`]).catch(() => undefined);
  if (names === undefined) return undefined;
  return names
    .split("\n")
    .filter(Boolean)
    .map((n) => n.replace(/\.[^.]+$/, ""));
}

/** Whether `commit` is in the git repository at `dir` (a force-push or a shallow clone may have lost it). */
export async function hasCommit(dir: string, commit: string): Promise<boolean> {
  return git(dir, ["cat-file", "-e", `${commit}^{commit}`]).then(
    () => true,
    () => false,
  );
}

/**
 * Applied migrations edited or removed since the last good release (which had applied every migration of
 * its commit): a migration that ran never runs again, so the edit would never reach this database. Flyway
 * refuses the same by checksum; git already holds the applied versions. Said, not refused, when that
 * commit is not in this clone (a shallow CI checkout).
 */
async function migrationEdits(ctx: ReleaseContext, migDir: string): Promise<string[]> {
  const last = await ctx.ledger.lastGood();
  if (!last || !/^[0-9a-f]{7,64}$/i.test(last.commit)) return [];
  const short = last.commit.slice(0, 12);
  if (!(await hasCommit(migDir, last.commit))) {
    ctx.log.warn(
      `applied migrations not checked for edits: commit ${short} of the last good release ${last.id} is not in ` +
        `this clone (fetch the whole history, e.g. fetch-depth: 0)`,
    );
    return [];
  }
  const diff = await git(migDir, [
    "-c",
    "core.quotePath=false",
    "diff",
    "--no-renames",
    "--name-status",
    "--relative",
    last.commit,
    "--",
    ".",
  ]);
  const edits = appliedMigrationEdits(ctx.config.migrations.tool, diff);
  if (!edits.length) return [];
  return [
    `applied migration(s) changed since release ${last.id} (commit ${short}) applied them: ` +
      `${edits.map((e) => `${e.file} (${e.change})`).join(", ")}. A migration that already ran never runs ` +
      `again, so the change would never reach the database: restore them (\`git checkout ${short} -- FILE\` in ` +
      `${migDir}) and put the change in a new migration; if the database already matches (you applied it by ` +
      `hand), pass --allow-migration-edits`,
  ];
}

/** Checks before anything changes; each problem says what to do. */
async function preflight(
  ctx: ReleaseContext,
  allowDirty: boolean,
  allowMigrationEdits = false,
): Promise<string[]> {
  const problems: string[] = [];
  const { config, projectDir } = ctx;
  if (!allowDirty) {
    // The stack's own file may differ from the commit (a secret just set): the release records its text.
    // Untracked files count: a new migration nobody committed would run, and no rollback could know it.
    const dirty = await git(projectDir, [
      "status",
      "--porcelain",
      "--untracked-files=all",
      "--",
      ".",
      `:(exclude)Pulumi.${ctx.stackName}.yaml`,
    ]).catch((e: Error) => `?? ${e.message}`);
    if (dirty) {
      problems.push(
        `the git tree has uncommitted changes or untracked files (a release must be reproducible from its ` +
          `commit): commit them, add what is not source to .gitignore, or pass --allow-dirty:\n${dirty
            .split("\n")
            .slice(0, 10)
            .map((l) => `      ${l}`)
            .join("\n")}`,
      );
    }
  }
  const migDir = resolve(projectDir, config.migrations.workDir, config.migrations.dir);
  if (config.migrations.tool !== "command" && existsSync(migDir)) {
    const { lintPaths } = await import("../core/migrations/lint");
    const errors = (await lintPaths([migDir])).filter((f) => f.severity === "error");
    if (errors.length) {
      problems.push(
        `lint found ${errors.length} error(s) in the migrations (${errors.map((f) => `${f.file}:${f.line} [${f.rule}]`).join(", ")}): ` +
          `see 'safe-deploy lint ${migDir}'`,
      );
    }
  }
  if (!allowMigrationEdits && existsSync(migDir)) problems.push(...(await migrationEdits(ctx, migDir)));
  // A managed database exists once an update created its container (the stack's `containers` output).
  const dbExists =
    config.database.mode === "external" ||
    !!((await ctx.containers().catch(() => ({}))) as Record<string, string>).database;
  const db = await ctx.database();
  // The app always runs in Docker: it must answer wherever the containers run.
  await run("docker", ["info", "--format", "{{.ServerVersion}}"], {
    env: { ...process.env, DOCKER_HOST: config.docker.host },
    timeout: 30_000,
  }).catch((e: { stderr?: string; message: string }) =>
    problems.push(
      `Docker at ${config.docker.host} does not answer (${(e.stderr || e.message).trim().split("\n")[0]}): start it, or check docker.host`,
    ),
  );
  let dbBytes: number | undefined;
  if (db && dbExists) {
    try {
      dbBytes = Number(
        (
          await runSql(
            db.target,
            parseDatabaseUrl(db.url),
            "SELECT pg_database_size(current_database());",
            "connecting",
          )
        ).trim(),
      );
      // Edits of applied migrations by checksum (issue 15): a data fix changes no file list git could show.
      if (!allowMigrationEdits && existsSync(migDir)) {
        const { recordedChecksumProblems } = await import("../core/migrations/checksums");
        const sql = (q: string) =>
          runSql(db.target, parseDatabaseUrl(db.url), q, "reading migration checksums");
        problems.push(
          ...(await recordedChecksumProblems(config.migrations.tool, migDir, sql).catch((e: Error) => [
            `the checksums of applied migrations could not be checked: ${ctx.log.redact(e.message)}`,
          ])),
        );
      }
    } catch (e) {
      problems.push(`the database (${db.where}) is not reachable: ${ctx.log.redact((e as Error).message)}`);
    }
  }
  await mkdir(ctx.backupDir, { recursive: true, mode: 0o700 });
  const newest = (await listBackups(ctx.backupDir).catch(() => []))[0];
  const need = Math.max(64 << 20, newest?.sizeBytes ? newest.sizeBytes * 2 : Math.ceil((dbBytes ?? 0) / 2));
  const fs = await statfs(ctx.backupDir);
  const free = fs.bavail * fs.bsize;
  if (free < need) {
    problems.push(
      `only ${(free / 2 ** 20).toFixed(0)} MiB free in ${ctx.backupDir}; the pre-deploy backup needs about ` +
        `${(need / 2 ** 20).toFixed(0)} MiB: free space, prune old backups ('safe-deploy backup prune --dir ${ctx.backupDir}') or set backup.dir`,
    );
  }
  return problems;
}

/** A temporary worktree of `commit` with the project's dependencies (linked when the lockfile is the same). */
async function checkout(
  projectDir: string,
  commit: string,
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = join(await mkdtemp(join(tmpdir(), "safe-deploy-rollback-")), "program");
  await git(projectDir, ["worktree", "add", "--detach", dir, commit]);
  const remove = async () => {
    await git(projectDir, ["worktree", "remove", "--force", dir]).catch(() => undefined);
    await rm(dirname(dir), { recursive: true, force: true });
    await git(projectDir, ["worktree", "prune"]).catch(() => undefined);
  };
  try {
    for (const sub of [".", ...(await subPackages(dir))]) {
      const lock = (d: string) => readFile(join(d, sub, "package-lock.json"), "utf8").catch(() => "");
      const [theirs, ours] = await Promise.all([lock(dir), lock(projectDir)]);
      if (!theirs) continue;
      if (theirs === ours && existsSync(join(projectDir, sub, "node_modules"))) {
        await symlink(join(projectDir, sub, "node_modules"), join(dir, sub, "node_modules"), "dir");
      } else {
        await run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: join(dir, sub), maxBuffer: 64 << 20 });
      }
    }
  } catch (e) {
    await remove();
    throw new CannotRunError(`preparing the program of ${commit.slice(0, 12)}: ${(e as Error).message}`);
  }
  return { dir, remove };
}

/** Directories with their own package-lock.json one level below `examples/` (the demo app's migrations tool). */
async function subPackages(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const top of ["examples"]) {
    const entries = await readdir(join(dir, top), { withFileTypes: true }).catch(() => []);
    for (const e of entries)
      if (e.isDirectory() && existsSync(join(dir, top, e.name, "package.json"))) out.push(join(top, e.name));
  }
  return out;
}

function realPorts(
  ctx: ReleaseContext,
  o: { allowDirty?: boolean; allowMigrationEdits?: boolean; notifyDeadlineMs?: number; lockRenewMs?: number },
): DeployPorts {
  const { config, secrets, projectDir } = ctx;
  const file = stackFile(projectDir, ctx.stackName);
  const needDb = async () => {
    const db = await ctx.database();
    if (!db) {
      throw new CannotRunError(
        `cannot reach the database of stack "${ctx.stackName}": its container is not known yet (no deploy has finished)`,
      );
    }
    return db;
  };
  const hung = new Set<string>();
  const notifiers = notifiersFrom({
    logsDir: ctx.logsDir,
    slackWebhookUrl: secrets.slackWebhookUrl,
    webhookUrl: secrets.webhookUrl,
    webhookSecret: secrets.webhookSecret,
    smtpUrl: secrets.smtpUrl,
    email: config.notifications.email,
  });
  return {
    stack: ctx.stack,
    releases: ctx.ledger,
    config: {
      read: () => readFile(file, "utf8"),
      write: (text, dir) => writeFileAtomic(stackFile(dir ?? projectDir, ctx.stackName), text),
      snapshot: async () => {
        const original = await readFile(file, "utf8");
        return () => writeFileAtomic(file, original);
      },
    },
    lock: async (stack, command) => {
      const handle = await acquireLock({
        stateDir: ctx.stateDir,
        stack,
        command: `safe-deploy ${command}`,
        warn: (m) => ctx.log.warn(m),
      });
      // A long deploy keeps its lock alive; a dead one lets it expire. A renewal that fails is said once
      // (the lock was forced away, or the state directory became unwritable): another deploy may start.
      let told = false;
      const renew = () =>
        handle.renew().catch((e: unknown) => {
          if (told) return;
          told = true;
          const why = e instanceof Error ? e.message : String(e);
          const when = e instanceof CheckFailedError ? "" : ` (it expires at ${handle.info.expiresAt})`;
          ctx.log.warn(
            `could not renew the deploy lock of stack ${stack}${when}: ${why}. Another deploy of ${stack} could ` +
              `start alongside this one`,
          );
        });
      const timer = setInterval(() => void renew(), o.lockRenewMs ?? 10 * 60_000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await handle.release();
      };
    },
    preflight: () => preflight(ctx, !!o.allowDirty, !!o.allowMigrationEdits),
    database: {
      schemaVersion: async () => {
        const db = await ctx.database();
        return db ? readSchemaVersion(db, config) : undefined;
      },
      safetyBackup: async () => {
        const db = await needDb();
        const r = await createBackup({
          databaseUrl: db.url,
          dir: ctx.backupDir,
          label: "safety",
          compression: config.backup.compression,
          target: db.target,
        });
        ctx.log.info(`safety backup: ${r.file}`);
        return r.file;
      },
      restore: async (backupFile, safety) => {
        const db = await needDb();
        const r = await restoreBackup(backupFile, {
          databaseUrl: db.url,
          target: db.target,
          safetyFile: safety,
        });
        ctx.log.info(
          r.previousDatabase
            ? `restored ${backupFile}; the database as it was is kept as ${r.previousDatabase}`
            : `restored ${backupFile} into the new database ${r.database} (it did not exist)`,
        );
      },
    },
    verify: async (url) => {
      const h = config.health;
      if (h.soakAttempts === 0) return;
      const target = config.health.url ?? `${url.replace(/\/$/, "")}${h.path}`;
      const r = await runGate({
        url: target,
        expectStatus: h.expectStatus,
        retries: h.soakAttempts,
        successThreshold: h.soakAttempts,
        delaySeconds: h.soakDelaySeconds,
        timeoutSeconds: h.timeoutSeconds,
      });
      if (!r.ok) throw new Error(`soak after cutover failed: ${r.message}`);
      ctx.log.info(`soak: ${target} answered healthy ${h.soakAttempts} time(s) in a row`);
    },
    notify: async (type: NotifyType, message, fields) => {
      const results = await notifyAll(
        notifiers.filter((n) => !hung.has(n.name)),
        {
          type,
          message,
          stack: ctx.stackName,
          commit: fields.commit,
          release: fields.release,
          time: new Date(),
          details: Object.fromEntries(
            Object.entries(fields).filter(([k]) => k !== "commit" && k !== "release"),
          ),
        },
        // notifyAll warns of each failed channel once, on the console and in the log file.
        { logger: ctx.log, deadlineMs: o.notifyDeadlineMs },
      );
      // A channel still silent at the deadline is skipped for the rest of the run: each later
      // notification (failure, rollback) would wait the whole deadline again, with the lock held.
      for (const r of results) {
        if (r.ok || r.attempts > 0) continue;
        hung.add(r.name);
        ctx.log.warn(
          `notifications via ${r.name} are skipped for the rest of this run: it did not answer in time`,
        );
      }
    },
    git: {
      head: () => git(projectDir, ["rev-parse", "HEAD"]),
      checkout: (commit) => checkout(projectDir, commit),
    },
    archiveCheckpoint: async (id, state) => {
      const store = new CheckpointStore(ctx.stateDir, ctx.stackName);
      const file = await store.write(id, state);
      // Pruned here, with the releases: the folder is synced to the backup bucket with --delete.
      const removed = await store.prune(await ctx.ledger.list());
      if (removed.length) ctx.fileLog.info(`checkpoints pruned: ${removed.join(", ")}`);
      return file;
    },
    log: {
      step: (m) => ctx.log.step(m),
      info: (m) => ctx.fileLog.info(m),
      warn: (m) => ctx.log.warn(m),
      error: (m) => ctx.log.error(m),
    },
  };
}
