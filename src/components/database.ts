import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { urlHost } from "../core/address";
import { pinnedImage } from "./imagePin";
import { containerLabels } from "../core/release/labels";
import { appRoleName } from "../core/database/roles";
import { AppRole } from "./app-role";
import { dataVolumeName } from "../core/database/upgrade";

/** A managed PostgreSQL container with its volume, or an external database known only by its URL. */
export type DatabaseArgs =
  | {
      mode: "container";
      image: string;
      name: string;
      user: string;
      hostPort: number;
      bindAddress: string;
      password: pulumi.Input<string>;
      network: pulumi.Input<string>;
      /** The alias the app uses to reach the database on the stack's network. */
      alias?: string;
      /** A remote Docker host (`ssh://...`), where the image is looked up. */
      dockerHost?: string;
      /** The data volume's Docker name (default: {@link dataVolumeName} of project and stack). */
      volumeName?: string;
      /** The app role's password (issue 15): with it, the app connects as a non-superuser role. */
      appPassword?: pulumi.Input<string>;
      /** Re-runs the app role's set-up when it changes (the release key). */
      roleTrigger?: pulumi.Input<string>;
    }
  | {
      mode: "external";
      databaseUrl: pulumi.Input<string>;
      /** The app's own, less privileged URL; migrations and backups keep `databaseUrl`. */
      appDatabaseUrl?: pulumi.Input<string>;
    };

/**
 * The managed server's command: logical decoding on, so each release's change stream (issue 20) can
 * keep the writes a rollback with restore would otherwise lose. The same whatever `rollback.changeStream`
 * says, so switching it never restarts the database; costs a little more WAL per write. PostgreSQL
 * refuses to start at a lower `wal_level` while a logical slot exists, so it never goes back down.
 * Slots and senders: one slot per release kept (at most a few), headroom for the user's own.
 */
export const POSTGRES_COMMAND = [
  "postgres",
  "-c",
  "wal_level=logical",
  "-c",
  "max_replication_slots=20",
  "-c",
  "max_wal_senders=20",
] as const;

/** The fixed Docker name of a stack's database volume (the CLI's `db upgrade` names the next one). */
export { dataVolumeName };

/** The database every stage talks to, with its URLs as secrets for each point of view. */
export class Database extends pulumi.ComponentResource {
  /** URL from the stack's Docker network (what the app uses). Secret. */
  public readonly networkUrl: pulumi.Output<string>;
  /** URL from this machine, through the port published on the bind address. Secret. */
  public readonly hostUrl: pulumi.Output<string>;
  /** URL from inside the database container (for `docker exec pg_dump`). Secret. */
  public readonly containerUrl: pulumi.Output<string>;
  /** URL the app uses from the stack's network: its own role's when set up, else `networkUrl`. Secret. */
  public readonly appNetworkUrl: pulumi.Output<string>;
  /** The app role's set-up, when managed (the migration runs after it). */
  public readonly appRole?: AppRole;
  /** Name of the database container, when managed. */
  public readonly containerName?: pulumi.Output<string>;
  /** The container resource (the backup depends on it being up). */
  public readonly container?: docker.Container;

  constructor(name: string, args: DatabaseArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:database:Database", name, {}, opts);
    if (args.mode === "external") {
      const url = pulumi.secret(args.databaseUrl);
      this.networkUrl = url;
      this.hostUrl = url;
      this.containerUrl = url;
      this.appNetworkUrl = args.appDatabaseUrl ? pulumi.secret(args.appDatabaseUrl) : url;
      this.registerOutputs({});
      return;
    }
    if (!args.name || !args.user) throw new Error("`name` and `user` are required for a managed database");
    const alias = args.alias ?? "db";
    const image = pinnedImage(`${name}-image`, args.image, args.dockerHost, { parent: this });
    // The data outlives every release (issue 14): a fixed name, kept by `pulumi destroy` and by a
    // deleted or renamed resource (retainOnDelete). The resource name never changes so its URN stays the
    // same across commits (a rollback runs an older program). A stack created before this had an
    // auto-named volume: ignoring `name` keeps it, since a new name would replace it with an empty one.
    // A major upgrade (`safe-deploy db upgrade`) writes `database.volumeName` of a new volume: that is
    // another resource, so `ignoreChanges` cannot keep the container on the old major's volume, and a
    // rollback to the release before it (no volumeName) finds `${name}-data` again, kept by Docker.
    const base = dataVolumeName(pulumi.getProject(), pulumi.getStack());
    const volumeName = args.volumeName ?? base;
    const volume = new docker.Volume(
      volumeName === base ? `${name}-data` : `${name}-data-${volumeName}`,
      { name: volumeName },
      { parent: this, retainOnDelete: true, ignoreChanges: volumeName === base ? ["name"] : [] },
    );
    const urlFor = (
      host: pulumi.Input<string>,
      port: pulumi.Input<number>,
      user = args.user,
      password = args.password,
    ) =>
      pulumi.secret(
        pulumi.interpolate`postgres://${encodeURIComponent(user)}:${pulumi
          .output(password)
          .apply(encodeURIComponent)}@${host}:${port}/${args.name}`,
      );
    this.container = new docker.Container(
      `${name}-db`,
      {
        image: image.id,
        command: [...POSTGRES_COMMAND],
        envs: [
          `POSTGRES_USER=${args.user}`,
          `POSTGRES_DB=${args.name}`,
          pulumi.interpolate`POSTGRES_PASSWORD=${args.password}`,
        ],
        volumes: [{ volumeName: volume.name, containerPath: "/var/lib/postgresql/data" }],
        ports: [{ internal: 5432, external: args.hostPort, ip: args.bindAddress }],
        networksAdvanced: [{ name: args.network, aliases: [alias] }],
        healthcheck: {
          tests: ["CMD-SHELL", `pg_isready -U ${args.user} -d ${args.name} -h 127.0.0.1`],
          interval: "2s",
          timeout: "5s",
          retries: 30,
          startPeriod: "5s",
        },
        wait: true,
        waitTimeout: 120,
        restart: "unless-stopped",
        mustRun: true,
        destroyGraceSeconds: 30,
        // The CLI finds the database by these, not by the outputs of the last successful update.
        labels: containerLabels(pulumi.getStack(), "database"),
      },
      // A fixed host port means the old container must go before the new one binds it.
      { parent: this, deleteBeforeReplace: true, additionalSecretOutputs: ["envs"] },
    );
    this.containerName = this.container.name;
    this.networkUrl = urlFor(alias, 5432);
    this.hostUrl = urlFor(urlHost(args.bindAddress), args.hostPort);
    this.containerUrl = urlFor("127.0.0.1", 5432);
    if (args.appPassword !== undefined) {
      const role = appRoleName(args.user);
      this.appRole = new AppRole(
        `${name}-app-role`,
        {
          container: this.container.name,
          owner: args.user,
          ownerPassword: args.password,
          database: args.name,
          role,
          password: args.appPassword,
          trigger: args.roleTrigger ?? "",
          dockerHost: args.dockerHost,
        },
        { parent: this, dependsOn: [this.container] },
      );
      this.appNetworkUrl = urlFor(alias, 5432, role, args.appPassword);
    } else {
      this.appNetworkUrl = this.networkUrl;
    }
    this.registerOutputs({ containerName: this.containerName });
  }
}
