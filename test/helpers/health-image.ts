import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ensureImage, type ImageSpec } from "./docker";

const run = promisify(execFile);

// Busybox gives sh, httpd and wget: enough for containers that turn healthy, never do, or crash-loop.
// Built by the shared, locked builder of docker.ts, and prebuilt by `npm run images`.
/** Recipe of the busybox test image. */
export const BUSYBOX_IMAGE: ImageSpec = {
  name: "safe-deploy-test/health-busybox",
  version: "1",
  packages: ["busybox"],
  setup: "/bin/busybox --install -s /usr/local/bin",
  changes: ['CMD ["/bin/busybox","sh"]'],
};
/** HAProxy from Debian, plus busybox for a shell: the blue-green proxy (only healthy backends). */
export const HAPROXY_IMAGE: ImageSpec = {
  name: "safe-deploy-test/health-haproxy",
  version: "1",
  packages: ["busybox", "haproxy"],
  setup: "/bin/busybox --install -s /usr/local/bin",
  changes: ['CMD ["/bin/busybox","sh"]'],
};

/** The tag of the busybox test image, built with debootstrap + docker import when missing (~1 min, once). */
export function ensureBusyboxImage(): Promise<string> {
  return ensureImage(BUSYBOX_IMAGE);
}

/** The tag of the HAProxy test image (Debian's haproxy package), built when missing. */
export function ensureHaproxyImage(): Promise<string> {
  return ensureImage(HAPROXY_IMAGE);
}

/** Runs a labelled detached container and returns its id; `cleanup()` removes every one started. */
export async function runContainer(args: string[]): Promise<string> {
  const { stdout } = await run("docker", ["run", "-d", "--label", "safe-deploy-test=health", ...args]);
  return stdout.trim();
}

/** The host port Docker published for a container port on 127.0.0.1. */
export async function publishedPort(id: string, port: number): Promise<number> {
  const { stdout } = await run("docker", ["port", id, `${port}/tcp`]);
  const m = /127\.0\.0\.1:(\d+)/.exec(stdout);
  if (!m) throw new Error(`no 127.0.0.1 port for ${port} on ${id}: ${stdout}`);
  return Number(m[1]);
}

/** Removes the given containers (forcefully, one at a time: see docker.ts). */
export { removeContainers } from "./docker";
