import { z } from "zod";

// Defaults follow the users' own scripts (shared/seeds): 3 health retries 10 s apart, 7 days of backups.
const port = z.number().int().min(1).max(65535);
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name");
const duration = (min: number, max: number) => z.number().min(min).max(max);

/** Building the app image from source in the deploy (issue 8); secrets go in as build secrets only. */
export const BuildSchema = z
  .object({
    context: z.string().min(1),
    dockerfile: z.string().min(1).optional(),
    target: z.string().min(1).optional(),
    platform: z
      .string()
      .regex(/^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/, "must look like `linux/amd64`")
      .optional(),
    args: z.record(z.string(), z.string()).default({}),
    secrets: z
      .array(
        z
          .object({
            id: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-'"),
            env: envName,
          })
          .strict(),
      )
      .default([]),
    repository: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._/:-]*$/, "must be an image repository like `ghcr.io/acme/web` (no tag)")
      .optional(),
    push: z.boolean().default(false),
  })
  .strict();

// --- Issue 17: the pm2 and render targets (keys kept in one block) ---
/** `app.target: pm2`: a release directory per commit on this machine or a server, run by pm2. */
export const Pm2Schema = z
  .object({
    /** Absolute directory on the target: `releases/<commit>`, `current`, `shared`, the ecosystem file. */
    root: z
      .string()
      .regex(/^\/[^\s'"]*$/, "must be an absolute path without spaces or quotes, e.g. /srv/app"),
    /** `ssh://user@host[:port]`; absent: this machine (or `docker.host` when that is ssh://). */
    host: z
      .string()
      .regex(/^ssh:\/\/[^@\s]+@[^:\s]+(:\d+)?$/, "must be `ssh://user@host[:port]`")
      .optional(),
    /** The app's directory in the repository (`git archive <commit>:<appDir>` fills a release). */
    appDir: z.string().min(1).default("."),
    /** Run in the release directory, in order, once per release (a rollback does not rebuild). */
    install: z.array(z.string().min(1)).default(["npm ci"]),
    /** The app's entry file, relative to the release (cluster mode needs a Node file, not `npm start`). */
    script: z.string().min(1),
    execMode: z.enum(["cluster", "fork"]).default("cluster"),
    instances: z.union([z.number().int().min(1).max(64), z.literal("max")]).default(2),
    /** The pm2 executable on the target. */
    bin: z.string().min(1).default("pm2"),
    /** Lines of `pm2 logs --nostream` the health gate scans for critical lines. */
    logLines: z.number().int().min(1).max(10000).default(200),
    /** Deadline of one release (fetch, install, reload): a hung `npm ci` fails the deploy. */
    timeoutSeconds: z.number().int().min(10).max(86400).default(1800),
  })
  .strict();

/** `app.target: render`: a Render service deployed through Render's REST API. */
export const RenderSchema = z
  .object({
    serviceId: z.string().regex(/^srv-[a-z0-9]+$/, "must be a Render service id like `srv-cq1abc23def`"),
    apiUrl: z.url().default("https://api.render.com"),
    /** Deadline for a deploy to go live. */
    deployTimeoutSeconds: z.number().int().min(10).max(7200).default(900),
    pollSeconds: duration(0.01, 300).default(10),
  })
  .strict();

/** Where the app runs; every target passes the same gates. */
export const APP_TARGETS = ["docker", "pm2", "render", "swarm"] as const;
// --- end of issue 17 block ---

/** `app.target: swarm` (issue 18): the app as a Docker Swarm service, rolled task by task. */
export const SwarmSchema = z
  .object({
    /** `ingress`: the routing mesh publishes `app.hostPort` on every node; `host`: a proxy task per node does. */
    publishMode: z.enum(["ingress", "host"]).default("ingress"),
    /** e.g. `node.labels.app==true`, `node.role==worker`. */
    constraints: z
      .array(z.string().regex(/^[A-Za-z0-9_.-]+\s*(==|!=)\s*\S+$/, "like `node.role==worker`"))
      .default([]),
    /** Cap on tasks per node (0: no cap). */
    maxReplicasPerNode: z.number().int().min(0).max(100).default(0),
    /** Per task, e.g. 0.5 CPU and 512 MB. */
    limits: z
      .object({
        cpus: z.number().min(0.01).max(256).optional(),
        memoryMb: z.number().int().min(6).optional(),
      })
      .strict()
      .prefault({}),
    /** Tasks replaced at once, and how long Swarm watches each new task before the next. */
    parallelism: z.number().int().min(1).max(100).default(1),
    monitorSeconds: z.number().int().min(1).max(3600).default(15),
  })
  .strict();

/** The app container(s) the stack deploys. */
export const AppSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,40}$/, "lower-case letters, digits and '-'")
      .default("app"),
    image: z.string().min(1, "must not be empty").optional(),
    build: BuildSchema.optional(),
    keepImages: z.number().int().min(1).max(100).default(5),
    rollout: z.enum(["recreate", "blue-green"]).default("recreate"),
    healthcheck: z
      .object({
        command: z.array(z.string().min(1)).min(1),
        intervalSeconds: z.number().int().min(1).max(3600).default(5),
        timeoutSeconds: z.number().int().min(1).max(600).default(5),
        retries: z.number().int().min(1).max(100).default(3),
        startPeriodSeconds: z.number().int().min(0).max(3600).default(10),
      })
      .strict()
      .optional(),
    proxyImage: z.string().min(1).default("haproxy:2.8"),
    /** Blue-green only: the proxy serves the maintenance page while migrations run. */
    maintenanceDuringMigrations: z.boolean().default(false),
    port: port.default(3000),
    hostPort: port.default(8080),
    bindAddress: z.string().default("127.0.0.1"),
    environment: z.record(envName, z.string()).default({}),
    /** Where the app runs: `docker` containers (default), `pm2`, `render`, or a Swarm service (`app.swarm`, `app.replicas`). */
    target: z.enum(APP_TARGETS).default("docker"),
    keepReleases: z.number().int().min(1).max(100).default(5),
    pm2: Pm2Schema.optional(),
    render: RenderSchema.optional(),
    replicas: z.number().int().min(1).max(100).default(1),
    swarm: SwarmSchema.prefault({}),
  })
  .strict()
  .superRefine(
    (a, ctx) => {
      if (a.target === "pm2" && !a.pm2) {
        ctx.addIssue({
          code: "custom",
          path: ["pm2"],
          message: 'is required when `app.target` is "pm2": e.g. { root: /srv/app, script: dist/main.js }',
        });
      }
      if (a.target === "render" && !a.render) {
        ctx.addIssue({
          code: "custom",
          path: ["render"],
          message: 'is required when `app.target` is "render": e.g. { serviceId: srv-cq1abc23def }',
        });
      }
      if (a.target === "swarm" && !a.healthcheck) {
        ctx.addIssue({
          code: "custom",
          path: ["healthcheck"],
          message:
            'is required when `app.target` is "swarm": the rolling update starts each new task first and waits on it, e.g. { command: ["CMD", "node", "src/healthcheck.js"] }',
        });
      }
      if (a.target === "swarm" && a.rollout === "blue-green") {
        ctx.addIssue({
          code: "custom",
          path: ["rollout"],
          message:
            'conflicts with `app.target: "swarm"`: Swarm rolls the service task by task itself; remove `app.rollout`',
        });
      }
      if ((a.target === "docker" || a.target === "swarm") && !a.image && !a.build) {
        ctx.addIssue({
          code: "custom",
          path: ["image"],
          message:
            "is required (or `app.build`): the app image, e.g. `ghcr.io/acme/web:1.4.2` or a local tag",
        });
      }
      if (a.image && a.build) {
        ctx.addIssue({
          code: "custom",
          path: ["build"],
          message: "conflicts with `app.image`: set one of them",
        });
      }
      if (a.rollout === "blue-green" && !a.healthcheck) {
        ctx.addIssue({
          code: "custom",
          path: ["healthcheck"],
          message:
            'is required when `app.rollout` is "blue-green": the proxy and the cutover wait on it, e.g. { command: ["CMD", "node", "src/healthcheck.js"] }',
        });
      }
      if (a.maintenanceDuringMigrations && a.rollout !== "blue-green") {
        ctx.addIssue({
          code: "custom",
          path: ["maintenanceDuringMigrations"],
          message:
            'needs `app.rollout: "blue-green"`: the maintenance page is served by its proxy (with `recreate` there is none)',
        });
      }
      if (a.build?.push && !a.build.repository) {
        ctx.addIssue({
          code: "custom",
          path: ["build", "repository"],
          message: "is required when `app.build.push` is true: the registry repository to push to",
        });
      }
      // Runs even when other app keys are invalid, so a missing image is reported in the same pass.
    },
    { when: (p) => typeof p.value === "object" && p.value !== null },
  );

/** One user command run at a named point of the deploy (issue 8). */
export const HookSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,40}$/, "lower-case letters, digits and '-'"),
    command: z.string().min(1),
    runIn: z.enum(["local", "container"]).default("local"),
    timeoutSeconds: z.number().int().min(1).max(86400).default(300),
    environment: z.record(envName, z.string()).default({}),
  })
  .strict();

/** Hook points, in deploy order. */
export const HOOK_POINTS = ["preBackup", "postMigrate", "preCutover", "postDeploy"] as const;
/** A hook point's name. */
export type HookPoint = (typeof HOOK_POINTS)[number];

/** User commands per hook point. */
export const HooksSchema = z
  .object({
    preBackup: z.array(HookSchema).default([]),
    postMigrate: z.array(HookSchema).default([]),
    preCutover: z.array(HookSchema).default([]),
    postDeploy: z.array(HookSchema).default([]),
  })
  .strict()
  .superRefine((h, ctx) => {
    const seen = new Map<string, string>();
    for (const point of HOOK_POINTS) {
      h[point].forEach((hook, i) => {
        const prev = seen.get(hook.name);
        if (prev) {
          ctx.addIssue({
            code: "custom",
            path: [point, i, "name"],
            message: `"${hook.name}" is already used by a ${prev} hook: hook names must be unique`,
          });
        }
        seen.set(hook.name, point);
      });
    }
  })
  .default({ preBackup: [], postMigrate: [], preCutover: [], postDeploy: [] });

/** A managed PostgreSQL container with its volume, or an external database reached by `databaseUrl`. */
export const DatabaseSchema = z
  .discriminatedUnion("mode", [
    z
      .object({
        mode: z.literal("container"),
        image: z.string().min(1).default("postgres:15"),
        name: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "must be a PostgreSQL identifier")
          .default("app"),
        user: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "must be a PostgreSQL identifier")
          .default("app"),
        hostPort: port.default(5432),
        bindAddress: z.string().default("127.0.0.1"),
        volumeName: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be a Docker volume name (letters, digits, _ . -)")
          .optional(),
      })
      .strict(),
    z.object({ mode: z.literal("external") }).strict(),
  ])
  .default({
    mode: "container",
    image: "postgres:15",
    name: "app",
    user: "app",
    hostPort: 5432,
    bindAddress: "127.0.0.1",
  });

/** Optional Redis beside the app. */
export const RedisSchema = z
  .object({ enabled: z.boolean().default(false), image: z.string().min(1).default("redis:7") })
  .strict()
  .default({ enabled: false, image: "redis:7" });

/** Optional off-site copy of each backup. */
export const S3Schema = z
  .object({
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be an S3 bucket name"),
    region: z.string().default("us-east-1"),
    endpoint: z.url().optional(),
    prefix: z.string().default("safe-deploy/"),
    forcePathStyle: z.boolean().default(false),
    manageBucket: z.boolean().default(false),
  })
  .strict();

/** Pre-deploy backups. */
export const BackupSchema = z
  .object({
    dir: z.string().min(1).default("./backups"),
    retentionDays: z.number().int().min(1).max(3650).default(7),
    minKeep: z.number().int().min(1).max(1000).default(3),
    compression: z.enum(["zstd", "gzip", "none"]).default("zstd"),
    runIn: z.enum(["local", "container"]).default("local"),
    s3: S3Schema.optional(),
  })
  .strict()
  .default({ dir: "./backups", retentionDays: 7, minKeep: 3, compression: "zstd", runIn: "local" });

/** The migration tool and where its migrations live. */
export const MigrationsSchema = z
  .object({
    tool: z.enum(["node-pg-migrate", "prisma", "alembic", "command"]).default("node-pg-migrate"),
    dir: z.string().min(1).default("examples/app/migrations"),
    command: z.string().min(1).optional(),
    /** The variable the tool reads its URL from when not DATABASE_URL; set to the same URL (issue 21). */
    databaseUrlEnv: z
      .string()
      .regex(
        /^[A-Za-z_][A-Za-z0-9_]*$/,
        "must be an environment variable name, e.g. NEXT_PRIVATE_DATABASE_URL",
      )
      .optional(),
    workDir: z.string().min(1).default("."),
    runIn: z.enum(["local", "container"]).default("local"),
    timeoutSeconds: z.number().int().min(1).max(86400).default(600),
    lockTimeout: z
      .string()
      .regex(/^\d+(ms|s|min|h)$/, "must look like 5s, 500ms or 10min")
      .default("5s"),
    statementTimeout: z
      .string()
      .regex(/^\d+(ms|s|min|h)$/, "must look like 5s, 500ms or 10min")
      .default("15min"),
  })
  .strict()
  .default({
    tool: "node-pg-migrate",
    dir: "examples/app/migrations",
    workDir: ".",
    runIn: "local",
    timeoutSeconds: 600,
    lockTimeout: "5s",
    statementTimeout: "15min",
  })
  .superRefine((m, ctx) => {
    if (m.tool === "command" && !m.command) {
      ctx.addIssue({
        code: "custom",
        path: ["command"],
        message: 'is required when `tool` is "command": the shell command that applies pending migrations',
      });
    }
  });

/** The health gate every release must pass. */
export const HealthSchema = z
  .object({
    path: z.string().startsWith("/", "must start with '/'").default("/health"),
    url: z.url().optional(),
    retries: z.number().int().min(1).max(1000).default(3),
    delaySeconds: duration(0, 3600).default(10),
    timeoutSeconds: duration(0.1, 600).default(5),
    expectStatus: z.array(z.number().int().min(100).max(599)).min(1).default([200]),
    /** Soak after cutover (`safe-deploy up`): this many healthy answers in a row; 0 turns it off. */
    soakAttempts: z.number().int().min(0).max(1000).default(15),
    soakDelaySeconds: duration(0, 3600).default(2),
  })
  .strict()
  .default({
    path: "/health",
    retries: 3,
    delaySeconds: 10,
    timeoutSeconds: 5,
    expectStatus: [200],
    soakAttempts: 15,
    soakDelaySeconds: 2,
  });

/** Who hears about deploys; the webhook URLs and SMTP credentials are separate secret keys. */
export const NotificationsSchema = z
  .object({
    email: z
      .object({ to: z.array(z.email()).min(1), from: z.email() })
      .strict()
      .optional(),
  })
  .strict()
  .default({});

/** Where the containers run: this machine's Docker or a remote host over SSH. */
export const DockerSchema = z
  .object({
    host: z
      .string()
      .regex(
        // Only ssh:// counts as remote (backups, migrations and hooks follow it there); a tcp:// host
        // would be treated as this machine's, so it is refused rather than half-supported.
        /^(unix:\/\/\/.+|ssh:\/\/[^@\s]+@[^:\s]+(:\d+)?)$/,
        "must be `unix:///var/run/docker.sock` or `ssh://user@host[:port]` (a remote host is reached over SSH, not tcp://)",
      )
      .default("unix:///var/run/docker.sock"),
    network: z.string().optional(),
  })
  .strict()
  .default({ host: "unix:///var/run/docker.sock" });

/** Tables whose rows a migration must not lose (issue 4): counted before and after migrating. */
export const IntegritySchema = z
  .object({
    criticalTables: z
      .array(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/, "must be `table` or `schema.table`"),
      )
      .default([]),
    maxRowLossPercent: z.number().min(0).max(100).default(0),
  })
  .strict()
  .default({ criticalTables: [], maxRowLossPercent: 0 });

/**
 * What a rollback does by itself, and the change stream that lets a rollback with restore keep the
 * writes committed after the pre-deploy backup (issue 20, docs/operations.md "Rollback").
 */
export const RollbackSchema = z
  .object({
    auto: z.boolean().default(true),
    /** Off: no replication slot per release; a rollback with restore loses the writes made after the backup. */
    changeStream: z.boolean().default(true),
    /** How long after the soak a release's slot is kept for a manual `rollback --to`. */
    keepChangesMinutes: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 60)
      .default(60),
    // A slot holds WAL on the server's disk until dropped. 1024 MB is PostgreSQL's own default
    // `max_wal_size`: room for millions of small writes in the keep window, and a size any host
    // already has to hold during a checkpoint; at least one 16 MB segment.
    maxRetainedWalMB: z
      .number()
      .int()
      .min(16)
      .max(1024 * 1024)
      .default(1024),
    // Opening the stream waits for transactions already running to end; a session left idle in a
    // transaction would hold the deploy forever. A minute covers any healthy transaction.
    slotWaitSeconds: z.number().int().min(1).max(3600).default(60),
    /** Refuse to deploy (exit 2) when no-loss rollback is not possible, instead of saying so. */
    requireNoLoss: z.boolean().default(false),
  })
  .strict()
  .default({
    auto: true,
    changeStream: true,
    keepChangesMinutes: 60,
    maxRetainedWalMB: 1024,
    slotWaitSeconds: 60,
    requireNoLoss: false,
  });

/** Names of the stack's secret keys (set with `pulumi config set --secret`). */
export const SECRET_KEYS = [
  "dbPassword",
  "dbAppPassword",
  "databaseUrl",
  "appDatabaseUrl",
  "appSecrets",
  "slackWebhookUrl",
  "webhookUrl",
  "webhookSecret",
  "smtpUrl",
  "backupEncryptionKey",
  "hookSecrets",
  "renderApiKey",
  "migrationDatabaseUrl",
] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/** The plain (non-secret) keys of a stack's config, under the `safe-deploy:` namespace. */
export const PLAIN_KEYS = [
  "app",
  "database",
  "redis",
  "backup",
  "migrations",
  "health",
  "notifications",
  "docker",
  "rollback",
  "hooks",
  "integrity",
] as const;

/** Every section of a stack's config with its schema; the key is the `safe-deploy:` config key. */
export const SECTIONS = {
  app: AppSchema,
  database: DatabaseSchema,
  redis: RedisSchema,
  backup: BackupSchema,
  migrations: MigrationsSchema,
  health: HealthSchema,
  notifications: NotificationsSchema,
  docker: DockerSchema,
  rollback: RollbackSchema,
  hooks: HooksSchema,
  integrity: IntegritySchema,
} as const;

/** The whole stack config, plus which secret keys are set (their values never pass through here). */
export const StackConfigSchema = z
  .object({ ...SECTIONS, secretsSet: z.array(z.enum(SECRET_KEYS)).default([]) })
  .strict();

type Sections = { [K in keyof typeof SECTIONS]: z.infer<(typeof SECTIONS)[K]> };
/** One cross-key problem: the key path and the rule broken. */
export interface CrossIssue {
  path: string[];
  message: string;
}

/**
 * Rules that span sections. Each runs only when the sections it reads are valid, so a config with
 * problems in several places still gets every applicable rule checked in one pass.
 */
export function crossChecks(c: Partial<Sections>, secretsSet: readonly string[]): CrossIssue[] {
  const issues: CrossIssue[] = [];
  const need = (k: SecretKey, why: string) => {
    if (!secretsSet.includes(k)) {
      issues.push({
        path: [k],
        message: `secret is required ${why}: run \`pulumi config set --secret ${k} <value>\``,
      });
    }
  };
  if (c.database?.mode === "container") need("dbPassword", 'when `database.mode` is "container"');
  if (c.database?.mode === "external") need("databaseUrl", 'when `database.mode` is "external"');
  if (c.database?.mode === "container" && secretsSet.includes("appDatabaseUrl")) {
    issues.push({
      path: ["appDatabaseUrl"],
      message:
        'is only for `database.mode: "external"`; a managed database sets up its app role itself (password: `dbAppPassword`): run `pulumi config rm appDatabaseUrl`',
    });
  }
  if (c.app && c.database?.mode === "container" && c.app.hostPort === c.database.hostPort) {
    issues.push({
      path: ["app", "hostPort"],
      message: `is the same as \`database.hostPort\` (${c.app.hostPort}): pick another port`,
    });
  }
  // Email needs both halves: the SMTP server (a secret) and who gets the mail (plain config).
  if (c.notifications?.email) need("smtpUrl", "when `notifications.email` is set");
  if (c.notifications && !c.notifications.email && secretsSet.includes("smtpUrl")) {
    issues.push({
      path: ["notifications", "email"],
      message:
        "is required when the `smtpUrl` secret is set (else no email is sent): `{ to: [ops@example.com], from: deploy@example.com }`",
    });
  }
  targetChecks(c, need, issues);
  if (c.rollback?.requireNoLoss && !c.rollback.changeStream) {
    issues.push({
      path: ["rollback", "requireNoLoss"],
      message:
        "needs `rollback.changeStream: true` (a rollback keeps writes only through the change stream): set one of the two",
    });
  }
  const remote = c.docker?.host.startsWith("ssh://") ?? false;
  if (remote && c.health && !c.health.url) {
    issues.push({
      path: ["health", "url"],
      message:
        "is required when `docker.host` is remote: the URL this machine polls, e.g. https://app.example.com/health",
    });
  }
  const remoteDb = remote && c.database?.mode === "container";
  const mustRunInContainer =
    'must be "container" when the database container runs on a remote `docker.host` (this machine cannot reach its port)';
  if (remoteDb && c.backup?.runIn === "local")
    issues.push({ path: ["backup", "runIn"], message: mustRunInContainer });
  if (remoteDb && c.migrations?.runIn === "local") {
    issues.push({ path: ["migrations", "runIn"], message: mustRunInContainer });
  }
  // Swarm (issue 18): the migration runs once, from the new image, on the overlay network, before the update.
  if (c.app?.target === "swarm" && c.migrations?.runIn === "local") {
    issues.push({
      path: ["migrations", "runIn"],
      message:
        'must be "container" when `app.target` is "swarm": migrations run once as a one-off container of the new image',
    });
  }
  return issues;
}

/** Issue 17: rules of the pm2 and render targets. */
function targetChecks(
  c: Partial<Sections>,
  need: (k: SecretKey, why: string) => void,
  issues: CrossIssue[],
): void {
  const target = c.app?.target;
  if (target === "render") {
    need("renderApiKey", 'when `app.target` is "render" (a Render API key)');
    if (c.database && c.database.mode !== "external") {
      issues.push({
        path: ["database", "mode"],
        message: 'must be "external" when `app.target` is "render" (e.g. Supabase): set `databaseUrl` too',
      });
    }
  }
  // An ssh:// `docker.host` already needs `health.url` (the rule below targetChecks' call).
  const pm2Remote = target === "pm2" && !!c.app?.pm2?.host && !c.docker?.host.startsWith("ssh://");
  if ((target === "render" || pm2Remote) && c.health && !c.health.url) {
    issues.push({
      path: ["health", "url"],
      message: `is required when \`app.target\` is "${target}" on another machine: the URL this machine polls, e.g. https://app.example.com/health`,
    });
  }
  if (target === "render" || target === "pm2") {
    if (c.redis?.enabled) {
      issues.push({
        path: ["redis", "enabled"],
        message: `must be false when \`app.target\` is "${target}": its Redis runs on the Docker network; pass REDIS_URL in \`appSecrets\``,
      });
    }
    for (const point of HOOK_POINTS) {
      (c.hooks?.[point] ?? []).forEach((h, i) => {
        if (h.runIn === "container") {
          issues.push({
            path: ["hooks", point, String(i), "runIn"],
            message: `must be "local" when \`app.target\` is "${target}": there is no app image to run it in`,
          });
        }
      });
    }
  }
  if ((target === "render" || target === "pm2") && c.migrations?.runIn === "container") {
    issues.push({
      path: ["migrations", "runIn"],
      message: `must be "local" when \`app.target\` is "${target}": there is no app image to run migrations in`,
    });
  }
}

/** A stack's config after defaults. */
export type StackConfig = z.infer<typeof StackConfigSchema>;
/** Raw input to `parseStackConfig`: plain objects as Pulumi's config holds them. */
export type RawStackConfig = z.input<typeof StackConfigSchema>;
