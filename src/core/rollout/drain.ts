// Issue 18: a blue-green cutover lost a request when the old container was stopped while HAProxy still
// routed to its address (the health check and Docker DNS need a second or two to notice; a connection
// to an address that vanished hangs for `timeout connect`). So the old container leaves rotation first:
// these commands drain it through HAProxy's runtime API before it is stopped.

/** Where the proxy's runtime API listens: loopback inside the proxy container only (see haproxy.ts). */
export const RUNTIME_API = { host: "127.0.0.1", port: 9999 } as const;

/** One blue-green drain, as the program declares it. */
export interface DrainInput {
  /** The proxy container (name or id). */
  proxy: string;
  /** The app container leaving rotation (name or id). */
  container: string;
  /** The Docker network the proxy reaches the container on. */
  network: string;
  /** The HAProxy backend holding the app servers. */
  backend: string;
  /** Longest wait for the old container's requests in flight to finish, then `docker stop -t`. */
  graceSeconds: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$/;

function checked(what: string, v: string): string {
  if (!NAME.test(v))
    throw new Error(`drain: \`${what}\` must be a plain Docker name, got ${JSON.stringify(v)}`);
  return v;
}

// bash (in the proxy container: haproxy:2.x Debian images have it) talks to the runtime API through
// /dev/tcp, since the image ships no socat. `api CMD` prints the answer.
const API = [
  "api() {",
  `  exec 3<>/dev/tcp/${RUNTIME_API.host}/${RUNTIME_API.port} || return 1`,
  "  printf '%s\\n' \"$1\" >&3",
  "  cat <&3",
  "  exec 3<&-",
  "}",
  // `show servers state BE` rows: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
  // op_state 2 = running; admin_state bit 8 = drained by this API (FDRAIN), 32 = no address (RMAINT).
  'servers() { api "show servers state $be" | while read -r _ b _ name addr op adm _; do [ "$b" = "$be" ] && echo "$name $addr $op $adm"; done; }',
  // `show stat` CSV: pxname,svname,qcur,qmax,scur,...
  'sessions() { api "show stat" | while IFS=, read -r px sv _ _ scur _; do [ "$px" = "$be" ] && [ "$sv" = "$1" ] && echo "$scur"; done; }',
].join("\n");

/**
 * Run in the proxy (`bash -c SCRIPT drain <ip> <grace>`): puts the server at `ip` in DRAIN (no new request, the ones
 * in flight finish) once another server is running and not drained, then waits until it holds no
 * session. Prints the server's name. Exit 3: nothing to drain (no server has that address).
 */
const DRAIN_IN_PROXY = [
  "set -u",
  'ip=$1 grace=$2 be="$BACKEND"',
  API,
  'slot=$(servers | while read -r name addr _ _; do [ "$addr" = "$ip" ] && echo "$name"; done | head -n 1)',
  '[ -n "$slot" ] || exit 3',
  "i=0",
  // The new release must be in rotation before the old one leaves it, or every request gets the
  // maintenance page: wait for it (Docker DNS + one health check), up to the grace time. No other
  // server with an address at all (the stack is being destroyed): nothing to wait for.
  "while :; do",
  '  others=$(servers | while read -r name _ op adm; do [ "$name" = "$slot" ] && continue; if [ "$op" = 2 ] && [ $((adm & 8)) = 0 ]; then echo up; elif [ $((adm & 32)) = 0 ]; then echo starting; fi; done)',
  '  case "$others" in *up*) break ;; *starting*) ;; *) echo "no other server in backend $be: $slot is not drained" >&2; exit 4 ;; esac',
  '  i=$((i + 1)); [ "$i" -le $((grace * 10)) ] || { echo "no other server of backend $be is running: $slot is not drained" >&2; exit 4; }',
  "  sleep 0.1",
  "done",
  'api "set server $be/$slot state drain" >/dev/null',
  "i=0",
  'while [ "$(sessions "$slot")" != 0 ] && [ "$i" -lt $((grace * 10)) ]; do i=$((i + 1)); sleep 0.1; done',
  'echo "$slot"',
].join("\n");

/**
 * Run in the proxy (`bash -c SCRIPT drain <slot> <ip>`) once the drained container is stopped: waits until HAProxy
 * no longer counts `slot` as running at `ip` (a failed check, or Docker DNS dropped it), then clears
 * the drain so the slot can take a later release's address.
 */
const READY_IN_PROXY = [
  "set -u",
  'slot=$1 ip=$2 be="$BACKEND"',
  API,
  "i=0",
  'while servers | while read -r name addr op _; do [ "$name" = "$slot" ] && [ "$addr" = "$ip" ] && [ "$op" = 2 ] && echo up; done | grep -q up; do',
  '  i=$((i + 1)); [ "$i" -le 300 ] || { echo "$slot still counts as running at $ip: left drained" >&2; exit 4; }',
  "  sleep 0.1",
  "done",
  'api "set server $be/$slot state ready" >/dev/null',
].join("\n");

/** Run in the proxy: clears the drain of every server left drained (a deploy interrupted mid-drain). */
const READY_ALL_IN_PROXY = [
  "set -u",
  'be="$BACKEND"',
  API,
  'servers | while read -r name _ _ adm; do if [ $((adm & 8)) != 0 ]; then api "set server $be/$name state ready" >/dev/null; echo "$name: drain cleared"; fi; done',
].join("\n");

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function inProxy(proxy: string, backend: string, script: string, args: string): string {
  return `docker exec -e BACKEND=${checked("backend", backend)} ${proxy} bash -c ${shq(script)} drain ${args}`;
}

/**
 * Pure: the command run just before the old container of a blue-green cutover is deleted: drains it
 * in HAProxy once a successor serves, waits for its requests in flight, stops it (SIGTERM,
 * `graceSeconds`), waits until the proxy counts it gone, and clears the drain. Without a successor, or
 * when the proxy cannot be reached, it only says so: the provider's delete stops the container, as
 * before the drain. The drain never fails a deploy.
 */
export function drainCommand(i: DrainInput): string {
  const proxy = checked("proxy", i.proxy);
  const old = checked("container", i.container);
  const net = checked("network", i.network);
  const grace = Math.max(1, Math.ceil(i.graceSeconds));
  return [
    "set -u",
    `ip=$(docker inspect -f '{{with index .NetworkSettings.Networks "${net}"}}{{.IPAddress}}{{end}}' ${old} 2>/dev/null || true)`,
    `if [ -z "$ip" ]; then echo 'drain: container ${old} is not running on ${net}: nothing to drain'; exit 0; fi`,
    `slot=$(${inProxy(proxy, i.backend, DRAIN_IN_PROXY, `"$ip" ${grace}`)})`,
    "rc=$?",
    // Stopped here only once drained, i.e. while a successor serves: if Pulumi ever deletes this command
    // without its container, a live container must not be stopped. Otherwise the provider's delete
    // stops it, as it did before the drain.
    `case $rc in 0) echo "drain: ${old} ($ip, $slot) drained in proxy ${proxy}"`,
    `  docker stop -t ${grace} ${old} >/dev/null || true`,
    `  ${inProxy(proxy, i.backend, READY_IN_PROXY, `"$slot" "$ip"`)} || true;;`,
    `  3) echo 'drain: no server of proxy ${proxy} has the address of ${old}: nothing to drain';;`,
    `  4) echo 'drain: ${old} left to the provider to stop, undrained';;`,
    `  *) echo "drain: could not drain ${old} in proxy ${proxy} (exit $rc; the proxy needs bash and its runtime API on ${RUNTIME_API.host}:${RUNTIME_API.port}): the provider stops it undrained" >&2;; esac`,
    "exit 0",
  ].join("\n");
}

/** Pure: clears any drain an interrupted cutover left in the proxy (run when a new container is in). */
export function readyAllCommand(proxy: string, backend: string): string {
  return `${inProxy(checked("proxy", proxy), backend, READY_ALL_IN_PROXY, "")} || echo 'drain: could not reach the runtime API of proxy ${proxy}' >&2`;
}
