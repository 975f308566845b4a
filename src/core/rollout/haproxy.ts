import { RUNTIME_API } from "./drain";

/** One app container behind the proxy, addressed on the Docker network by name or IP. */
export interface ProxyBackend {
  name: string;
  host: string;
  port: number;
  /**
   * Up to this many servers discovered from `host` by Docker DNS (`server-template`): every container
   * sharing the network alias `host`, old and new release alike, so the proxy never needs a reload.
   */
  count?: number;
}

/** What the blue-green proxy routes: only backends whose health endpoint passes get traffic. */
export interface ProxyConfigInput {
  /** Port the proxy listens on inside its container. */
  listenPort: number;
  backends: ProxyBackend[];
  /** Health endpoint HAProxy polls on each backend, e.g. "/health". */
  healthPath: string;
  /** Accepted statuses, default [200]. */
  expectStatus?: number[];
  /** Health poll interval, default 1000 ms. */
  checkIntervalMs?: number;
  /** Failed checks before a backend leaves rotation (default 2) and passes before it joins (default 1). */
  fall?: number;
  rise?: number;
  /** Serve the maintenance page to every request (while migrations run). */
  maintenance?: boolean;
  /** Path of the maintenance page inside the proxy container. */
  maintenancePage?: string;
  /**
   * Maintenance switched at runtime, with no reload: while any container on the network carries this
   * alias, Docker DNS resolves it, the `maint` backend has a usable server, and every request gets the
   * maintenance page. The deploy starts such a container before migrating and removes it after.
   */
  maintenanceFlag?: string;
}

/** The network alias that turns maintenance on (see `maintenanceFlag`). */
export const MAINTENANCE_ALIAS = "safe-deploy-maintenance";

const NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Pure: the haproxy.cfg for a blue-green cutover. Backends failing their health check get no traffic;
 * with none healthy, or in maintenance mode, every request gets the maintenance page with a 503.
 */
export function haproxyConfig(i: ProxyConfigInput): string {
  if (!Number.isInteger(i.listenPort) || i.listenPort < 1 || i.listenPort > 65535) {
    throw new Error(`\`listenPort\` must be a TCP port, got ${i.listenPort}`);
  }
  if (!i.healthPath.startsWith("/") || /\s/.test(i.healthPath)) {
    throw new Error(
      `\`healthPath\` must start with "/" and contain no spaces, got ${JSON.stringify(i.healthPath)}`,
    );
  }
  if (i.maintenanceFlag !== undefined && !NAME.test(i.maintenanceFlag)) {
    throw new Error(`\`maintenanceFlag\` may hold only letters, digits, '.', '_' and '-'`);
  }
  for (const b of i.backends) {
    if (!NAME.test(b.name) || !NAME.test(b.host)) {
      throw new Error(`backend \`${b.name}\`: name and host may hold only letters, digits, '.', '_' and '-'`);
    }
  }
  const expect = i.expectStatus?.length ? i.expectStatus : [200];
  const page = i.maintenancePage ?? "/etc/haproxy/maintenance.html";
  const maintenance = `http-request return status 503 content-type "text/html; charset=utf-8" file ${page}`;
  return [
    "global",
    "  log stdout format raw local0",
    // The runtime API, on loopback inside the proxy container: a cutover drains the old container
    // through it before stopping it (drain.ts).
    `  stats socket ipv4@${RUNTIME_API.host}:${RUNTIME_API.port} level admin`,
    "",
    "defaults",
    "  mode http",
    "  log global",
    "  option httplog",
    // Short: a connection on the Docker network is set up in well under a millisecond, and a retry on a
    // refused connection waits min(timeout connect, 1 s) first (a new release's container that Docker
    // DNS announced before it listens).
    "  timeout connect 500ms",
    "  timeout client 30s",
    "  timeout server 30s",
    // A backend that stops accepting connections (an old container shutting down) stays in rotation until
    // its health check fails `fall` times; a refused connection is retried on another server meanwhile.
    "  retries 3",
    "  option redispatch 1",
    "",
    // Docker's embedded DNS: backends may start after the proxy, so names resolve at runtime.
    "resolvers docker",
    "  nameserver dns 127.0.0.11:53",
    "  hold valid 1s",
    // A flag container that went away must stop counting within a second or two.
    ...(i.maintenanceFlag
      ? ["  hold nx 1s", "  hold timeout 1s", "  hold refused 1s", "  hold other 1s"]
      : []),
    "",
    "frontend web",
    `  bind *:${i.listenPort}`,
    i.maintenance ? `  ${maintenance}` : `  ${maintenance} if { nbsrv(app) lt 1 }`,
    ...(i.maintenanceFlag ? [`  ${maintenance} if { nbsrv(maint) ge 1 }`] : []),
    "  default_backend app",
    "",
    "backend app",
    "  balance roundrobin",
    `  option httpchk GET ${i.healthPath}`,
    expect.length === 1
      ? `  http-check expect status ${expect[0]}`
      : `  http-check expect rstatus ^(${expect.join("|")})$`,
    `  default-server check inter ${i.checkIntervalMs ?? 1000}ms fall ${i.fall ?? 2} rise ${i.rise ?? 1} resolvers docker init-addr libc,none`,
    ...i.backends.map((b) =>
      b.count
        ? `  server-template ${b.name} 1-${b.count} ${b.host}:${b.port}`
        : `  server ${b.name} ${b.host}:${b.port}`,
    ),
    "",
    // No health check: the flag server is usable exactly while its name resolves.
    ...(i.maintenanceFlag
      ? [
          "backend maint",
          `  server-template flag 1-1 ${i.maintenanceFlag}:80 resolvers docker init-addr none`,
          "",
        ]
      : []),
  ].join("\n");
}

/** The default maintenance page. */
export const MAINTENANCE_PAGE =
  '<!doctype html><html><head><meta charset="utf-8"><title>Maintenance</title></head>' +
  "<body><h1>Down for maintenance</h1><p>A new release is being deployed. Please retry in a minute.</p></body></html>\n";
