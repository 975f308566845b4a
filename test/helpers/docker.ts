import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";
import * as lockfile from "proper-lockfile";

const run = promisify(execFile);

/** Label put on every container, network and volume a test creates, so leftovers are easy to find. */
export const TEST_LABEL = "safe-deploy-test";

/** Per-process id on the same resources, so `cleanupDocker()` removes only what this process made. */
export const RUN_ID = `${process.pid}-${randomBytes(3).toString("hex")}`;

const LOCK_DIR = join(tmpdir(), "safe-deploy-test-locks");

/** Runs `docker ...` and returns trimmed stdout; stderr goes into the error message. */
export async function docker(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  try {
    const { stdout } = await run("docker", args, { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 });
    return stdout.trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`docker ${args[0]} failed: ${(err.stderr ?? "").trim() || err.message}`, { cause: e });
  }
}

async function which(bin: string): Promise<boolean> {
  return run("sh", ["-c", `command -v ${bin}`]).then(
    () => true,
    () => false,
  );
}

async function dockerUp(): Promise<boolean> {
  return run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 15_000 }).then(
    () => true,
    () => false,
  );
}

/** Holds a cross-process lock (a directory next to `name` under /tmp) while `fn` runs. */
async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(LOCK_DIR, { recursive: true });
  const file = join(LOCK_DIR, name.replace(/[^A-Za-z0-9_.-]/g, "_"));
  // The lock's mtime is refreshed every stale/2 ms; a holder that died lets go after `stale` ms. A lock
  // taken over under heavy load only costs a duplicate build, so it must not crash the test process.
  const release = await lockfile.lock(file, {
    realpath: false,
    stale: 60_000,
    onCompromised: (e) => console.warn(`warning: lock ${file} was taken over: ${e.message}`),
    retries: { retries: 1000, minTimeout: 250, maxTimeout: 1000, factor: 1.2 },
  });
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}

/**
 * Makes sure a Docker daemon answers: starts `dockerd` in the background (log in a temp file) when none
 * does, and waits up to 60 s. Safe to call from several test processes at once.
 */
export async function ensureDocker(): Promise<void> {
  if (await dockerUp()) return;
  if (!(await which("docker")) || !(await which("dockerd")))
    throw new Error(
      "Docker is not installed (no `docker`/`dockerd` on PATH). Install it with `apt-get install -y docker.io` and run the tests again.",
    );
  await withLock("dockerd", async () => {
    if (await dockerUp()) return;
    const logFile = join(tmpdir(), `safe-deploy-dockerd-${Date.now()}.log`);
    const log = await open(logFile, "a");
    const child = spawn("dockerd", [], { detached: true, stdio: ["ignore", log.fd, log.fd] });
    child.unref();
    await log.close();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (await dockerUp()) return;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`dockerd did not come up within 60 s; its log is ${logFile}`);
  });
}

/** How to build one test image from Debian packages. */
export interface ImageSpec {
  /** Repository part of the tag; the tag is `<name>:<version>-<hash of the spec>`. */
  name: string;
  version: string;
  /** Debian suite to debootstrap (default bookworm); trixie carries PostgreSQL 17, a second major. */
  suite?: string;
  /** Debian packages installed with `debootstrap --include`. */
  packages: string[];
  /** Files written into the root filesystem before import (path -> content, mode). */
  files?: Record<string, { content: string; mode?: number }>;
  /** Shell run inside the rootfs (chroot) after the files are written, e.g. to trim it. */
  setup?: string;
  /** Dockerfile instructions for `docker import --change` (ENTRYPOINT, ENV, CMD, EXPOSE...). */
  changes: string[];
}

/** The tag of an image spec: a changed recipe gets a new tag, an unchanged one is reused. */
export function imageTag(spec: ImageSpec): string {
  const hash = createHash("sha256")
    .update(
      JSON.stringify([
        spec.packages,
        spec.files ?? {},
        spec.setup ?? "",
        spec.changes,
        // Only a non-default suite enters the hash, so the existing bookworm tags stay the same.
        ...(spec.suite && spec.suite !== "bookworm" ? [spec.suite] : []),
      ]),
    )
    .digest("hex")
    .slice(0, 12);
  return `${spec.name}:${spec.version}-${hash}`;
}

async function imageExists(tag: string): Promise<boolean> {
  return run("docker", ["image", "inspect", tag], { maxBuffer: 16 << 20 }).then(
    () => true,
    () => false,
  );
}

function sh(script: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-o", "pipefail", "-ec", script, "bash", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(new Error(`${script.split(" ")[0]} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}

/**
 * Returns the tag of `spec`'s image, building it first when it is missing (debootstrap minbase +
 * `docker import`, ~70 s). Concurrent callers for the same tag wait for one build.
 */
export async function ensureImage(spec: ImageSpec): Promise<string> {
  const tag = imageTag(spec);
  await ensureDocker();
  if (await imageExists(tag)) return tag;
  return withLock(`image-${tag}`, async () => {
    if (await imageExists(tag)) return tag;
    if (!(await which("debootstrap")))
      throw new Error(
        `Building test image ${tag} needs debootstrap. Install it with \`apt-get install -y debootstrap\`.`,
      );
    const work = await mkdtemp(join(tmpdir(), "sd-image-"));
    const root = join(work, "rootfs");
    try {
      await sh(
        `debootstrap --variant=minbase --include="$1" "$3" "$2"`,
        [spec.packages.join(","), root, spec.suite ?? "bookworm"],
        15 * 60_000,
      );
      for (const [path, { content, mode }] of Object.entries(spec.files ?? {})) {
        const target = join(root, path);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, content);
        await chmod(target, mode ?? 0o644);
      }
      const setup = `${spec.setup ?? ""}\napt-get clean\nrm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n`;
      await sh(`chroot "$1" /bin/sh -ec "$2"`, [root, setup], 5 * 60_000);
      const changes = spec.changes.flatMap((c) => ["--change", c]);
      await sh(
        `tar -C "$1" -c . | docker import "\${@:3}" - "$2" >/dev/null`,
        [root, tag, ...changes],
        10 * 60_000,
      );
      return tag;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

/**
 * Entrypoint of the PostgreSQL test image, following the official image's contract: POSTGRES_USER,
 * POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB, PGDATA, init scripts in
 * /docker-entrypoint-initdb.d, an existing data directory reused as is.
 */
const POSTGRES_ENTRYPOINT = `#!/bin/bash
set -Eeuo pipefail
if [ "\${1:0:1}" = "-" ]; then set -- postgres "$@"; fi
if [ "\${1:-}" != "postgres" ]; then exec "$@"; fi
shift

export PGDATA="\${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="\${POSTGRES_USER:-postgres}"
POSTGRES_DB="\${POSTGRES_DB:-$POSTGRES_USER}"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
chmod 2777 /var/run/postgresql

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  method="\${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  if [ -z "\${POSTGRES_PASSWORD:-}" ] && [ "$method" != "trust" ]; then
    echo "error: database is uninitialized and POSTGRES_PASSWORD is not set." >&2
    echo "  Set POSTGRES_PASSWORD to a non-empty value (or POSTGRES_HOST_AUTH_METHOD=trust, never in production)." >&2
    exit 1
  fi
  pwfile="$(mktemp)"
  printf '%s\\n' "\${POSTGRES_PASSWORD:-}" > "$pwfile"
  chown postgres "$pwfile"
  pwopt=(); if [ -n "\${POSTGRES_PASSWORD:-}" ]; then pwopt=(--pwfile="$pwfile"); fi
  as_pg initdb -D "$PGDATA" -U "$POSTGRES_USER" "\${pwopt[@]}" -E UTF8 --locale=C.UTF-8 \\
    --auth-local=trust --auth-host="$method" >/dev/null
  rm -f "$pwfile"
  printf 'host all all all %s\\n' "$method" >> "$PGDATA/pg_hba.conf"
  printf "listen_addresses = '*'\\n" >> "$PGDATA/postgresql.conf"

  as_pg pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -p 5432" start >/dev/null
  psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc -U "$POSTGRES_USER" -h /var/run/postgresql)
  if [ "$POSTGRES_DB" != "postgres" ]; then
    as_pg "\${psql[@]}" -d postgres -q --set db="$POSTGRES_DB" <<< 'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) as_pg "\${psql[@]}" -d "$POSTGRES_DB" -q -f "$f" ;;
      *.sh) . "$f" ;;
    esac
  done
  as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "PostgreSQL init process complete; ready for start up."
fi

# The server runs as a direct child (not via a function, which would fork a subshell in between) so
# that docker stop's SIGTERM becomes a fast shutdown (SIGINT), which does not wait for clients.
setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null || true' TERM INT
trap 'kill -QUIT "$pid" 2>/dev/null || true' QUIT
set +e
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
wait "$pid"
`;

const DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Recipe of the PostgreSQL 15 test image (official-image-like entrypoint, client tools on PATH). */
export const POSTGRES_IMAGE: ImageSpec = {
  name: "safe-deploy-test/postgres",
  version: "15",
  packages: ["postgresql-15", "postgresql-client-15"],
  files: { "/usr/local/bin/docker-entrypoint.sh": { content: POSTGRES_ENTRYPOINT, mode: 0o755 } },
  // The package's postinst creates a cluster "main" the entrypoint never uses.
  setup: "rm -rf /var/lib/postgresql/15/main /etc/postgresql/15/main /usr/share/doc/* /usr/share/man/*",
  changes: [
    `ENV PATH=/usr/lib/postgresql/15/bin:${DEBIAN_PATH}`,
    "ENV PGDATA=/var/lib/postgresql/data",
    "ENV LANG=C.UTF-8",
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
    'CMD ["postgres"]',
    "EXPOSE 5432",
  ],
};

/** Recipe of a PostgreSQL 17 test image (Debian trixie), the second major for upgrade tests. */
export const POSTGRES_17_IMAGE: ImageSpec = {
  name: "safe-deploy-test/postgres",
  version: "17",
  suite: "trixie",
  packages: ["postgresql-17", "postgresql-client-17"],
  files: POSTGRES_IMAGE.files,
  setup: "rm -rf /var/lib/postgresql/17/main /etc/postgresql/17/main /usr/share/doc/* /usr/share/man/*",
  changes: POSTGRES_IMAGE.changes.map((c) => c.replace("/postgresql/15/", "/postgresql/17/")),
};

/** Recipe of the Node.js 18 base image the demo app is built on (`--build-arg NODE_IMAGE=`). */
export const NODE_BASE_IMAGE: ImageSpec = {
  name: "safe-deploy-test/node",
  version: "18",
  packages: ["nodejs", "ca-certificates"],
  setup: "rm -rf /usr/share/doc/* /usr/share/man/*",
  changes: [`ENV PATH=${DEBIAN_PATH}`, "ENV LANG=C.UTF-8", 'CMD ["node"]'],
};

/** Builds (or reuses) the PostgreSQL 15 test image and returns its tag. */
export function postgresImage(): Promise<string> {
  return ensureImage(POSTGRES_IMAGE);
}

/** Builds (or reuses) the PostgreSQL 17 test image (trixie) and returns its tag. */
export function postgres17Image(): Promise<string> {
  return ensureImage(POSTGRES_17_IMAGE);
}

/** Builds (or reuses) the Node.js 18 base image and returns its tag. */
export function nodeBaseImage(): Promise<string> {
  return ensureImage(NODE_BASE_IMAGE);
}

/** Every test image, for `npm run images`. */
export const ALL_IMAGES: ImageSpec[] = [POSTGRES_IMAGE, POSTGRES_17_IMAGE, NODE_BASE_IMAGE];

/** A unique, labelled-by-convention resource name. */
export function uniqueName(prefix: string): string {
  return `sd-test-${prefix}-${RUN_ID}-${randomBytes(3).toString("hex")}`;
}

function labels(): string[] {
  return ["--label", `${TEST_LABEL}=1`, "--label", `${TEST_LABEL}.run=${RUN_ID}`];
}

/** Options of `runContainer`. */
export interface RunContainerOptions {
  image: string;
  name?: string;
  env?: Record<string, string>;
  /** Container ports published on 127.0.0.1; `host` omitted means a random free host port. */
  ports?: { container: number; host?: number }[];
  network?: string;
  /** Network aliases on `network`. */
  aliases?: string[];
  volumes?: { source: string; target: string }[];
  healthcheck?: { test: string; intervalS?: number; retries?: number; startPeriodS?: number };
  command?: string[];
  /** Extra labels, e.g. `safe-deploy.stack` / `safe-deploy.role` for the CLI to find the container. */
  labels?: Record<string, string>;
}

/** A started container with its published ports resolved. */
export interface TestContainer {
  id: string;
  name: string;
  /** Host port of the first published port. */
  hostPort: number | undefined;
  /** Container port -> host port on 127.0.0.1. */
  hostPorts: Record<number, number>;
}

/** Host ports (on 127.0.0.1) currently published for a container's ports. */
export async function publishedPorts(id: string): Promise<Record<number, number>> {
  const out = await docker(["port", id]);
  const ports: Record<number, number> = {};
  for (const line of out.split("\n")) {
    const m = /^(\d+)\/tcp -> 127\.0\.0\.1:(\d+)$/.exec(line.trim());
    if (m) ports[Number(m[1])] = Number(m[2]);
  }
  return ports;
}

/** Starts a labelled container in the background; ports are only ever published on 127.0.0.1. */
export async function runContainer(opts: RunContainerOptions): Promise<TestContainer> {
  const name = opts.name ?? uniqueName("ctr");
  const args = ["run", "-d", "--name", name, ...labels()];
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push("-e", `${k}=${v}`);
  for (const [k, v] of Object.entries(opts.labels ?? {})) args.push("--label", `${k}=${v}`);
  for (const p of opts.ports ?? []) args.push("-p", `127.0.0.1:${p.host ?? ""}:${p.container}`);
  if (opts.network) args.push("--network", opts.network);
  for (const a of opts.aliases ?? []) args.push("--network-alias", a);
  for (const v of opts.volumes ?? []) args.push("-v", `${v.source}:${v.target}`);
  if (opts.healthcheck) {
    const h = opts.healthcheck;
    args.push("--health-cmd", h.test, "--health-interval", `${h.intervalS ?? 1}s`);
    args.push(
      "--health-retries",
      String(h.retries ?? 30),
      "--health-start-period",
      `${h.startPeriodS ?? 0}s`,
    );
  }
  args.push(opts.image, ...(opts.command ?? []));
  const id = await docker(args);
  const hostPorts = await publishedPorts(id);
  const first = opts.ports?.[0];
  return { id, name, hostPorts, hostPort: first ? hostPorts[first.container] : undefined };
}

/** Force-removes a container (and its anonymous volumes); missing containers are fine. */
export async function removeContainer(idOrName: string): Promise<void> {
  await run("docker", ["rm", "-f", "-v", idOrName], { timeout: 60_000 }).catch(() => {});
}

/**
 * Force-removes containers one after the other, never in one `docker rm a b c`: the CLI removes those
 * in parallel, and Docker 20.10 before .27 (Debian bookworm's 20.10.24) can deadlock for good when
 * several containers of one network leave it at once (moby/moby#46661, fixed by moby/libnetwork#2679).
 */
export async function removeContainers(ids: string[]): Promise<void> {
  for (const id of ids) await removeContainer(id);
}

/** Creates a labelled bridge network with a unique name and returns the name. */
export async function createNetwork(prefix = "net"): Promise<string> {
  const name = uniqueName(prefix);
  await docker(["network", "create", ...labels(), name]);
  return name;
}

/** Removes a network; missing networks are fine. */
export async function removeNetwork(name: string): Promise<void> {
  await run("docker", ["network", "rm", name]).catch(() => {});
}

/** Creates a labelled named volume with a unique name and returns the name. */
export async function createVolume(prefix = "vol"): Promise<string> {
  const name = uniqueName(prefix);
  await docker(["volume", "create", ...labels(), name]);
  return name;
}

/** Removes a volume; missing volumes are fine. */
export async function removeVolume(name: string): Promise<void> {
  await run("docker", ["volume", "rm", "-f", name]).catch(() => {});
}

/** Removes every container, network and volume this process created (call in `after()`). */
export async function cleanupDocker(): Promise<void> {
  const filter = ["--filter", `label=${TEST_LABEL}.run=${RUN_ID}`];
  const ids = (args: string[]) => docker(args).then((o) => o.split("\n").filter(Boolean));
  const containers = await ids(["ps", "-aq", ...filter]);
  await removeContainers(containers);
  const networks = await ids(["network", "ls", "-q", ...filter]);
  if (networks.length) await run("docker", ["network", "rm", ...networks]).catch(() => {});
  const volumes = await ids(["volume", "ls", "-q", ...filter]);
  if (volumes.length) await run("docker", ["volume", "rm", "-f", ...volumes]).catch(() => {});
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes what test processes that died without cleaning up left behind (their pid is in the label). */
export async function sweepDeadRuns(): Promise<number> {
  const label = `${TEST_LABEL}.run`;
  const format = `{{.ID}} {{.Label "${label}"}}`;
  const listed = async (args: string[], fmt = format) =>
    (await docker([...args, "--filter", `label=${label}`, "--format", fmt]))
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(" "))
      .filter(([, run]) => !processAlive(Number(run?.split("-")[0])))
      .map(([id]) => id);
  const containers = await listed(["ps", "-a"]);
  await removeContainers(containers);
  const networks = await listed(["network", "ls"]);
  if (networks.length) await run("docker", ["network", "rm", ...networks]).catch(() => {});
  const volumes = await listed(["volume", "ls"], `{{.Name}} {{.Label "${label}"}}`);
  if (volumes.length) await run("docker", ["volume", "rm", "-f", ...volumes]).catch(() => {});
  return containers.length + networks.length + volumes.length;
}

/** A container's output so far, stdout and stderr together (PostgreSQL logs to stderr). */
export async function containerLogs(id: string): Promise<string> {
  const { stdout, stderr } = await run("docker", ["logs", id], { maxBuffer: 64 << 20 });
  return stdout + stderr;
}

/** The container's health status (`healthy`, `starting`, `unhealthy`) or `none` without a healthcheck. */
export async function healthStatus(id: string): Promise<string> {
  return docker([
    "inspect",
    "--format",
    "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
    id,
  ]);
}

/** Waits until a container's healthcheck reports `healthy`; throws on `unhealthy` or timeout. */
export async function waitForHealthy(id: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let status = "";
  while (Date.now() < deadline) {
    status = await healthStatus(id);
    if (status === "healthy") return;
    if (status === "unhealthy" || status === "none") break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`container ${id.slice(0, 12)} is ${status || "unknown"}, not healthy`);
}

/** Waits until `SELECT 1` succeeds at `url`; the error names the last failure, never the password. */
export async function waitForPostgres(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const c = new Client({ connectionString: url });
    try {
      await c.connect();
      await c.query("SELECT 1");
      await c.end();
      return;
    } catch (e) {
      last = e;
      await c.end().catch(() => {});
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const where = url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
  throw new Error(`PostgreSQL at ${where} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

/** Waits until PostgreSQL in container `name` accepts connections as `user` to `db` (60 s at most). */
export async function waitForPostgresIn(name: string, user = "app", db = "app"): Promise<void> {
  for (let i = 0; ; i++) {
    const ready = await docker(["exec", name, "pg_isready", "-h", "127.0.0.1", "-U", user, "-d", db]).then(
      () => true,
      () => false,
    );
    if (ready) return;
    if (i > 120) throw new Error(`the database container ${name} did not become ready`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
