import type { Command } from "commander";
import type { StackAccess } from "../../core/release/stack-port";
import type { StackOptions } from "../stack";

/** Options of `safe-deploy db upgrade`. */
export interface DbUpgradeOptions {
  stack: string;
  to: string;
  projectDir?: string;
  /** The new volume's name (default `<current volume>-<major>`). */
  volume?: string;
  yes?: boolean;
  /** The Pulumi stack (tests pass one; default the Automation API's). */
  openStack?: (o: StackOptions) => Promise<StackAccess>;
  out?: (line: string) => void;
}

/** The project's name from its Pulumi.yaml (the volume names start with it). */
async function projectName(projectDir: string): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const { parse } = await import("yaml");
  const doc = parse(await readFile(`${projectDir}/Pulumi.yaml`, "utf8")) as { name?: string };
  return doc?.name ?? "safe-deploy";
}

/**
 * Upgrades the stack's managed PostgreSQL to `--to`'s major: a verified copy on a new volume, then
 * `database.image` and `database.volumeName` written into the stack config for the next `safe-deploy up`.
 */
export async function runDbUpgrade(o: DbUpgradeOptions): Promise<void> {
  const { CannotRunError, ConfigError } = await import("../../core/errors");
  if (!o.to) throw new ConfigError("`--to` is required: the new PostgreSQL image, e.g. --to postgres:17");
  const out = o.out ?? ((l: string) => process.stdout.write(l + "\n"));
  const { openContext } = await import("../context");
  const ctx = await openContext({
    stack: o.stack,
    projectDir: o.projectDir,
    logName: "upgrade.log",
    openStack: o.openStack,
  });
  const db = ctx.config.database;
  if (db.mode !== "container")
    throw new ConfigError(
      "database.mode is external: its server is upgraded by whoever runs it; `db upgrade` moves a managed (container) database",
    );
  if (!ctx.secrets.dbPassword)
    throw new ConfigError("the secret dbPassword is not set: `pulumi config set --secret dbPassword ...`");
  const container = (await ctx.containers()).database;
  if (!container)
    throw new CannotRunError(
      `stack ${o.stack} has no database container at ${ctx.config.docker.host}: deploy it first (\`safe-deploy up --stack ${o.stack}\`), or check docker.host`,
    );
  const eng = await import("../../core/database/upgrade");
  const dockerHost = ctx.config.docker.host;
  const [fromMajor, toMajor] = [
    await eng.dataDirectoryMajor(container, dockerHost),
    await eng.imageServerMajor(o.to, dockerHost),
  ];
  if (fromMajor === toMajor)
    throw new ConfigError(
      `the database already runs PostgreSQL ${fromMajor} and \`--to\` ${o.to} is ${toMajor}: nothing to upgrade; set database.image to it and deploy`,
    );
  if (!o.yes && !process.stdin.isTTY)
    throw new ConfigError(
      "the copy is of the moment of the pre-upgrade backup, so the app must not write meanwhile: stop it (or put it in maintenance) and pass `--yes` to confirm",
    );
  const base = db.volumeName ?? eng.dataVolumeName(await projectName(ctx.projectDir), o.stack);
  const volumeName = o.volume ?? eng.upgradedVolumeName(base, toMajor);
  if (!o.yes) {
    const { createInterface } = await import("node:readline/promises");
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question(
      `Upgrade stack ${o.stack} from PostgreSQL ${fromMajor} to ${toMajor} on new volume ${volumeName}? The app must be stopped. [y/N] `,
    );
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) throw new ConfigError("not confirmed; nothing was changed");
  }
  const user = encodeURIComponent(db.user);
  const pw = encodeURIComponent(ctx.secrets.dbPassword);
  const r = await eng.upgradeDatabase({
    container,
    databaseUrl: `postgres://${user}:${pw}@127.0.0.1:5432/${db.name}`,
    toImage: o.to,
    volumeName,
    backupDir: ctx.backupDir,
    dockerHost,
    volumeLabels: { "safe-deploy.stack": o.stack },
    log: ctx.log,
  });
  // Written into Pulumi.<stack>.yaml: the next release records it, and a rollback to the release before
  // re-applies the old image and no volumeName, that is the old volume, which is kept.
  const all = await ctx.stack.getAllConfig();
  const key = "safe-deploy:database";
  const current = all[key] ? (JSON.parse(all[key].value) as Record<string, unknown>) : {};
  all[key] = {
    value: JSON.stringify({ mode: "container", ...current, image: o.to, volumeName }),
    secret: false,
  };
  await ctx.stack.setAllConfig(all);
  out(
    `PostgreSQL ${r.fromMajor} -> ${r.toMajor}: ${Object.keys(r.rowCounts).length} tables verified on volume ${volumeName}; backup ${r.backup.file}`,
  );
  out(`stack config: database.image=${o.to}, database.volumeName=${volumeName}`);
  out(`next: safe-deploy up --stack ${o.stack}  (the old volume ${base} is kept; see docs/operations.md)`);
}

/** Registers `db upgrade`. */
export function register(program: Command): void {
  const db = program.command("db").description("Operations on the stack's managed PostgreSQL");
  db.command("upgrade")
    .description(
      "Move the database to a new PostgreSQL major: backup, restore into a new volume, verify, then set database.image and database.volumeName",
    )
    .requiredOption("--stack <name>", "the stack")
    .requiredOption("--to <image>", "the new PostgreSQL image, e.g. postgres:17")
    .option("--project-dir <dir>", "the Pulumi project directory", ".")
    .option(
      "--volume <name>",
      "name of the new data volume (default: the current one's base name + -<major>)",
    )
    .option("--yes", "confirm that the app is stopped (required without a terminal)")
    .action(async (opts: DbUpgradeOptions) => runDbUpgrade(opts));
}
