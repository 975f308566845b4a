import { MAINTENANCE_ALIAS } from "./haproxy";

const SAFE = /^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$/;

function checked(what: string, v: string): string {
  if (!SAFE.test(v))
    throw new Error(`maintenance: \`${what}\` must be a plain Docker name, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Maintenance on: a container holding the proxy's flag alias on the stack's network (see
 * `maintenanceFlag` in haproxy.ts). A leftover of an earlier, interrupted deploy is replaced. It ends by
 * itself after `seconds` (the migration's timeout and some): a deploy that died mid-way does not keep
 * the site in maintenance for ever. Pure.
 */
export function maintenanceOnCommand(
  container: string,
  network: string,
  image: string,
  seconds: number,
): string {
  const c = checked("container", container);
  return (
    `docker rm -f ${c} >/dev/null 2>&1 || true; ` +
    `docker run -d --rm --name ${c} --network ${checked("network", network)} --network-alias ${MAINTENANCE_ALIAS} ` +
    `--label safe-deploy.role=maintenance --entrypoint sleep ${checked("image", image)} ${Math.max(1, Math.ceil(seconds))} >/dev/null`
  );
}

/** Maintenance off: the flag container goes, and with it the alias; a missing one is fine. Pure. */
export function maintenanceOffCommand(container: string): string {
  return `docker rm -f ${checked("container", container)} >/dev/null 2>&1 || true`;
}
