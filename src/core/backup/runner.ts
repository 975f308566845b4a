import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { CannotRunError, ConfigError } from "../errors";
import { portProblem, urlProblem } from "../address";
import { redact } from "../log/redact";

/** Where the PostgreSQL client tools run. */
export interface RunTarget {
  /** "local": this machine's binaries; "container": `docker exec` in the database container. */
  runIn: "local" | "container";
  container?: string;
  /** DOCKER_HOST for the docker CLI, e.g. unix:///var/run/docker.sock or ssh://user@host. */
  dockerHost?: string;
  /**
   * For an external database: with runIn "container" and no `container`, the tools run in a throwaway
   * `docker run --rm` of this image (use one of the server's major version, e.g. postgres:16).
   */
  image?: string;
  /** Docker network of the throwaway container (default "host", so it reaches what this machine reaches). */
  network?: string;
}

/** The docker CLI's environment for `target`. */
export function dockerEnv(target: RunTarget, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (target.dockerHost) env.DOCKER_HOST = target.dockerHost;
  return env;
}

/** docker CLI arguments that run `tool` for `target` (values of `envNames` come from the CLI's env). */
export function dockerArgs(target: RunTarget, envNames: string[], tool: string, args: string[]): string[] {
  const envFlags = envNames.flatMap((k) => ["-e", k]);
  if (target.container) return ["exec", "-i", ...envFlags, target.container, tool, ...args];
  if (target.image) {
    return [
      "run",
      "--rm",
      "-i",
      "--network",
      target.network ?? "host",
      ...envFlags,
      "--entrypoint",
      tool,
      target.image,
      ...args,
    ];
  }
  throw new ConfigError(
    '`container` (or `image` for an external database) is required when `runIn` is "container"',
  );
}

/** Libpq connection settings, passed only through the environment so no secret is in a command line. */
export interface Conn {
  env: Record<string, string>;
  database: string;
  user: string;
  host: string;
  password: string;
}

/** Parses a postgres:// URL into libpq environment variables; throws ConfigError naming the flag. */
export function parseDatabaseUrl(url: string, flag = "`--database-url` / DATABASE_URL"): Conn {
  const port = portProblem(url);
  if (port) throw new ConfigError(`${flag} ${port}: use the server's port, 5432 by default`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Never quoted, even redacted: a libpq string or a password with a space has no masking rule.
    throw new ConfigError(
      `${flag} is not a URL: ${urlProblem(url)}; write it as postgres://USER@HOST:PORT/DATABASE with \`:PASSWORD\` after USER, percent-encoding \`@ : / ? # %\` in the password (\`#\` as %23)`,
    );
  }
  if (!/^postgres(ql)?:$/.test(u.protocol)) {
    throw new ConfigError(`${flag} must start with postgres:// (got ${u.protocol}//)`);
  }
  let database: string, user: string, password: string;
  try {
    database = decodeURIComponent(u.pathname.replace(/^\//, "")) || "postgres";
    user = decodeURIComponent(u.username) || "postgres";
    password = decodeURIComponent(u.password);
  } catch {
    throw new ConfigError(
      `${flag} has a \`%\` that is not followed by two hex digits in its user, password or database name (${redact(url)}): percent-encode those characters, \`%\` as %25, \`@\` as %40, \`/\` as %2F`,
    );
  }
  const host = u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1";
  const env: Record<string, string> = {
    PGHOST: host,
    PGPORT: u.port || "5432",
    PGUSER: user,
    PGDATABASE: database,
    PGCONNECT_TIMEOUT: "10",
    PGAPPNAME: "safe-deploy-backup",
  };
  if (password) env.PGPASSWORD = password;
  const sslmode = u.searchParams.get("sslmode");
  if (sslmode) env.PGSSLMODE = sslmode;
  return { env, database, user, host, password };
}

/** The same connection pointed at another database on that server. */
export function withDatabase(conn: Conn, database: string): Conn {
  return { ...conn, database, env: { ...conn.env, PGDATABASE: database } };
}

/**
 * Directory of the newest local PostgreSQL client binaries (`PG_BIN` overrides); `root` holds one
 * directory per major version, as Debian and Ubuntu install them.
 */
export function localPgBin(root = "/usr/lib/postgresql"): string | undefined {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v) && existsSync(`${root}/${v}/bin/pg_dump`))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? `${root}/${versions[0]}/bin` : undefined;
}

/** Spawns a PostgreSQL client tool (`pg_dump`, `pg_restore`, `psql`) where the target says. */
export function spawnPg(
  target: RunTarget,
  tool: "pg_dump" | "pg_restore" | "psql",
  args: string[],
  conn: Conn,
): ChildProcess {
  if (target.runIn === "container") {
    return spawn("docker", dockerArgs(target, Object.keys(conn.env), tool, args), {
      env: dockerEnv(target, conn.env),
      stdio: ["pipe", "pipe", "pipe"],
    });
  }
  const bin = localPgBin();
  const cmd = bin ? `${bin}/${tool}` : tool;
  // pg_dump writes its archive through stdio, which flushes a pipe every 4 kB: 65,000 writes and as
  // many reads for a 500 MB dump, half the CPU the reading process spent on it (issue 18). coreutils'
  // stdbuf gives it a 1 MB buffer. (In a container, docker's own copy already moves 32 kB pieces.)
  const buffered = tool === "pg_dump" && stdbuf();
  return spawn(buffered || cmd, buffered ? ["-o1M", cmd, ...args] : args, {
    env: { ...process.env, ...conn.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Path of coreutils' `stdbuf` on this machine's PATH (absolute directories only), or false. */
function stdbuf(): string | false {
  return (
    (process.env.PATH ?? "/usr/bin:/bin")
      .split(":")
      .map((d) => `${d}/stdbuf`)
      .find((p) => p.startsWith("/") && existsSync(p)) ?? false
  );
}

/** Resolves with the exit code (or signal) once `child` has exited; collects stderr (capped). */
export function watch(child: ChildProcess): { done: Promise<number>; stderr: () => string } {
  let err = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    if (err.length < 64_000) err += d;
  });
  const done = new Promise<number>((resolve) => {
    child.on("error", (e) => {
      err += String(e);
      resolve(127);
    });
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  return { done, stderr: () => err };
}

/** Turns a client tool's failure into an error with the right exit code, the password never echoed. */
export function pgFailure(what: string, stderr: string, conn: Conn, target: RunTarget): Error {
  const text = redact(stderr.trim().split("\n").slice(-6).join("\n"), [conn.password]);
  const where = `database "${conn.database}" on ${conn.host}:${conn.env.PGPORT} as "${conn.user}"`;
  if (/password authentication failed|no password supplied|authentication failed/i.test(stderr)) {
    return new CannotRunError(
      `${what}: could not log in to ${where}: password authentication failed. ` +
        "Check the user and password in `--database-url` / DATABASE_URL.",
    );
  }
  if (/permission denied to create database/.test(stderr)) {
    return new CannotRunError(
      `${what}: role "${conn.user}" may not create databases, and a restore or restore test first restores ` +
        `into a new one: grant it with \`ALTER ROLE "${conn.user}" CREATEDB\` or use an admin's \`--database-url\``,
    );
  }
  const denied = /permission denied for (table|sequence|schema|large object|function) ([^\s]+)/.exec(stderr);
  if (denied) {
    return new CannotRunError(
      `${what}: role "${conn.user}" may not read ${denied[1]} "${denied[2]}" of database "${conn.database}": ` +
        "use the URL of the role that owns the tables (or a superuser), or grant it, " +
        `e.g. \`GRANT SELECT ON ALL TABLES IN SCHEMA public TO "${conn.user}"\``,
    );
  }
  if (/database ".*" does not exist/.test(stderr)) {
    return new CannotRunError(
      `${what}: ${where} does not exist. Check the database name in \`--database-url\`.`,
    );
  }
  if (
    /could not connect|connection refused|could not translate host|timeout expired|Connection timed out/i.test(
      stderr,
    )
  ) {
    return new CannotRunError(
      `${what}: cannot reach ${where}: ${text.replace(/[\s?.]+$/, "")}. Is the server running and the host/port in \`--database-url\` right?`,
    );
  }
  if (
    target.runIn === "container" &&
    /No such container|Cannot connect to the Docker daemon|error during connect/i.test(stderr)
  ) {
    return new CannotRunError(`${what}: docker exec in container "${target.container}" failed: ${text}`);
  }
  if (/ENOENT|not found/i.test(stderr) && target.runIn === "local") {
    return new CannotRunError(
      `${what}: PostgreSQL client tools not found (${text}); install them or set PG_BIN`,
    );
  }
  return new CannotRunError(`${what} failed: ${text}`);
}
